package mask

import "math/bits"

// The block fast path. Terminal output is mostly text whose digit chains
// are short (timestamps, addresses, counters). idleRun proves such a chain
// clear one chain at a time, which costs a few nanoseconds per chain and
// caps the masker well under a gigabyte a second on log text. blockRun
// instead classifies 64 bytes at once (one table lookup per byte, done with
// SIMD where the CPU has it: block_simd.go) and reasons on bitmasks: it
// passes over a block when every chain in it is provably one that idleRun
// would pass over too, and hands the first one it cannot prove to idleRun.
//
// It is a filter in front of idleRun, never a second masker: whatever it
// cannot rule out it leaves to the per-chain path, so a wrong guess here
// costs speed, not a clear PAN. TestBlockRunMatches holds the two paths to
// the same output on random and adversarial text.

// Class bits of a byte for the block filter (Engine.cls).
const (
	clDigit = 1 << iota // '0'–'9'
	clChain             // a digit or a chain separator: ' ', '-', '.', '/'
	clStop              // the slow path must see it (stop set minus digits, zero-width leads)
	clSep               // may separate a keyword from its value: kwSep
	clLast              // may end a keyword: kwLast
	clTwo               // '2', the last byte of cvv2 and cvc2
	clSpace             // ' '
	clDot               // '.'
)

// chainMin is the fewest digits a PAN has: a run (and a chain in it) with
// fewer cannot hold one. (A run of fewer bytes has fewer digits.)
const chainMin = 13

// blockMasks describes up to 64 bytes, bit k for byte k: one mask per
// class, in class-bit order (the SIMD classifier stores them as one
// vector), then tail.
type blockMasks struct {
	digit, chain, stop, sep, last, two, space, dot uint64
	// tail: the byte may end a keyword's last three bytes (their hash,
	// tailHash, is one of the keywords'), or fewer than two bytes of p
	// come before it. A filter: kwMay decides.
	tail uint64
	// inv: an invisible control (the invisible table): transparent, so
	// blockRun treats it as a chain byte that may join digits (see
	// Engine.passInv).
	inv uint64
	// zw: 0xC2, 0xE2 or 0xEF, which may start a zero-width character
	// (Engine.passZW).
	zw uint64
}

// clearBelow clears the bits of the block's first k bytes in every mask.
func (m *blockMasks) clearBelow(k int) {
	low := uint64(1)<<k - 1
	m.digit, m.chain, m.stop, m.sep = m.digit&^low, m.chain&^low, m.stop&^low, m.sep&^low
	m.last, m.two, m.space, m.dot = m.last&^low, m.two&^low, m.space&^low, m.dot&^low
	m.tail, m.inv, m.zw = m.tail&^low, m.inv&^low, m.zw&^low
}

// tailHash hashes the last three bytes a, b, c of a would-be keyword,
// folded to lower case (|0x20 folds every letter; other bytes only need to
// hash the same way every time). The SIMD classifier computes the same sum
// with byte adds, which wrap as these do.
func tailHash(a, b, c byte) byte {
	a, b, c = a|0x20, b|0x20, c|0x20
	return (c + 2*b + 4*a) & 127
}

// tailSet marks the hashes of every keyword's last three bytes.
var tailSet = func() (t [128]byte) {
	for _, w := range append(append([]string{}, cvvWords...), expWords...) {
		n := len(w)
		t[tailHash(w[n-3], w[n-2], w[n-1])] = 1
	}
	return t
}()

// initBlock fills the class table and decides whether streams use the
// block filter: only when idleRun may pass over digit chains at all, and
// no custom rule can start with a chain separator (a stop byte inside a
// run would split what idleRun sees as one chain).
func (e *Engine) initBlock() {
	for b := range 256 {
		var c byte
		switch {
		case b >= '0' && b <= '9':
			c = clDigit | clChain
		case b == ' ':
			c = clChain | clSpace
		case b == '.':
			c = clChain | clDot
		case b == '-' || b == '/':
			c = clChain
		}
		if e.stop[b] && c&clDigit == 0 {
			if c&clChain != 0 {
				return // a rule starts with a separator: no block filter
			}
			c |= clStop
		}
		if b == 0xc2 || b == 0xe2 || b == 0xef {
			c |= clStop // may start a zero-width character: mayJoin
		}
		if kwSep[b] {
			c |= clSep
		}
		if kwLast[b] {
			c |= clLast
		}
		if b == '2' {
			c |= clTwo
		}
		e.cls[b] = c
	}
	// One byte at a time, the classes cost more than the chain path they
	// would save: without the SIMD classifier the filter stays off (tests
	// turn it on to check its reasoning on any machine).
	e.block = e.fastChain && haveSIMD
	e.simd = e.block
	// A byte a custom rule may start with must reach idleRun.
	e.passInv = true
	for b := range 256 {
		if invisible[b] && e.first[b] {
			e.passInv = false
		}
	}
	e.passZW = !e.first[0xc2] && !e.first[0xe2] && !e.first[0xef]
	if e.simd {
		e.prepareSIMD()
	}
}

// masksScalarBatch is masksScalar on the blocks of p from at on, as many
// as fit in out.
func (e *Engine) masksScalarBatch(p []byte, at int, out []blockMasks) int {
	k := 0
	for b0 := at; b0 < len(p) && k < len(out); b0 += 64 {
		out[k] = e.masksScalar(p, b0)
		k++
	}
	return k
}

// masksScalar classifies p[at:min(len(p), at+64)] one byte at a time: the
// reference for the SIMD classifier, and what tests use to check
// blockRun's reasoning on any machine. The tail mask looks at the two
// bytes before each, which may lie before at.
func (e *Engine) masksScalar(p []byte, at int) (m blockMasks) {
	for k, b := range p[at:min(len(p), at+64)] {
		c, bit := e.cls[b], uint64(1)<<k
		if q := at + k; q < 2 || tailSet[tailHash(p[q-2], p[q-1], b)] != 0 {
			m.tail |= bit
		}
		if c&clDigit != 0 {
			m.digit |= bit
		}
		if c&clChain != 0 {
			m.chain |= bit
		}
		if c&clStop != 0 {
			m.stop |= bit
		}
		if c&clSep != 0 {
			m.sep |= bit
		}
		if c&clLast != 0 {
			m.last |= bit
		}
		if c&clTwo != 0 {
			m.two |= bit
		}
		if c&clSpace != 0 {
			m.space |= bit
		}
		if c&clDot != 0 {
			m.dot |= bit
		}
		if invisible[b] {
			m.inv |= bit
		}
		if b == 0xc2 || b == 0xe2 || b == 0xef {
			m.zw |= bit
		}
	}
	return m
}

// blockRun returns the first offset q >= i of p that idleRun must look at:
// every byte of p[i:q] is one idleRun would pass over unchanged, without
// opening a candidate. The stream must be idle with no PAN masked on the
// line, and e.block set.
//
// A run is a maximal stretch of chain bytes (digits and the separators
// plainChain accepts); every digit chain lies inside one. blockRun stops
// at the start of a run when
//   - it holds chainMin digits or more (it may hold a PAN);
//   - it touches the end of p (the next write may continue it), or the
//     byte after it is a stop byte (an escape sequence or invisible
//     control may join it to more digits);
//   - a keyword may end right before a chain in it (kwMay), the cvv and
//     expiry context;
//   - a space follows a '2' inside it: plainChain's guard for cvv2 and
//     cvc2, kept so that the two paths agree byte for byte;
//
// and at a stop byte outside runs. Starting idleRun at a run's start is
// safe: the chain before it ended at a byte that is no chain byte.
//
// Invisible controls (Engine.passInv) are no stops: binary output has one
// every ten bytes, and stopping at each made blockRun start again every
// few bytes. They are transparent, so blockRun counts them as chain bytes
// (a run goes on through them, and may join digits), and it also stops at
// a run with three digits or more (what a cvv or expiry needs) when an
// invisible control lies in it or within keyword reach before it
// (invReach): the keyword tests read the bytes of p, which the slow path's
// history does not hold. A run with fewer digits holds nothing to mask.
// The second result reports that p[i:q] may hold invisible controls, so
// that the caller keeps them out of the keyword history (pushVisible).
//
// Bytes before i were handled by the caller; the tests treat them as
// unknown, which can only make blockRun stop sooner.
func (s *Stream) blockRun(p []byte, i int) (int, bool) {
	e := s.e
	kwOn := e.cvv || e.expiry
	j0, s0 := i/64, i%64
	// The first block starts at i: its bytes before i are unknown. They get
	// no class but for the byte right before i, which counts as the last
	// letter of a keyword (the visible text before i is not p[:i], since
	// escape sequences and invisible controls are transparent:
	// "cvv:\x1b[0m123"), and the trigrams of i and i+1, which reach before
	// i, count as a keyword's (tail).
	first := *s.blockMasks(p, j0)
	first.clearBelow(s0)
	first.tail |= 3 << s0
	var prev blockMasks // the block before m
	if s0 == 0 {
		prev = blockMasks{last: 1 << 63, tail: 1 << 63}
	} else {
		first.last |= 1 << (s0 - 1)
		first.tail |= 1 << (s0 - 1)
	}
	runStart := -1  // start of the run open at the end of the last block
	runDigits := 0  // and the digits in it so far
	runInv := false // and whether an invisible control is in it or in reach before it
	sawInv := false // an invisible control was passed
	m := &first
	for j := j0; j*64 < len(p); j, prev = j+1, *m {
		b0 := j * 64
		n := min(len(p)-b0, 64)
		if j > j0 {
			m = s.blockMasks(p, j)
		}

		// Bits inside runs that make their run stop.
		var flag uint64
		if kwOn {
			// Chain starts after a keyword byte, but not the digit after a
			// single ' ' or '.' inside a chain: plainChain goes on there
			// without a keyword check.
			starts := m.digit &^ back1(m.digit, prev.digit)
			inChain := back1(m.space|m.dot, prev.space|prev.dot) & back2(m.digit, prev.digit)
			// After a keyword's last letter whose last three bytes hash
			// like a keyword's, or after a separator that follows one or
			// another separator: kwMay's first tests, on the whole block.
			// Bytes before i count as keyword bytes, whatever they are.
			kl := m.last & m.tail
			kwBefore := back1(kl&^m.sep, prev.last&prev.tail&^prev.sep) |
				back1(m.sep, prev.sep)&back2(m.sep|kl, prev.sep|prev.last&prev.tail)
			for x := starts & kwBefore &^ inChain; x != 0; x &= x - 1 {
				k := bits.TrailingZeros64(x)
				at := b0 + k
				if at-3 >= i {
					// Most chains follow "name=" or "12:": settle those on
					// the two bytes before, as kwMay would, without a call.
					if c1 := p[at-1]; !kwSep[c1] {
						// c1 is a keyword's last letter: the tail decides.
						if !kwTail(p[at-3], p[at-2], c1) {
							continue
						}
					} else if c2 := p[at-2]; !kwSep[c2] {
						if !kwLast[c2] || at-4 >= i && !kwTail(p[at-4], p[at-3], c2) {
							continue
						}
					}
				}
				if e.kwMay(p, i, at) {
					flag |= 1 << k
				}
			}
		}
		flag |= m.digit & back1(m.space, prev.space) & back2(m.two, prev.two)

		// A ';' or '%' that cannot start track data, because the byte
		// after it rules that out, is no stop: idleRun passes it too.
		var inv, zw uint64
		if e.passInv {
			inv = m.inv
			sawInv = sawInv || inv != 0
		}
		if e.passZW {
			zw = m.zw
		}
		stop := m.stop &^ inv &^ zw
		for stop != 0 && e.passSentinel(p, b0+bits.TrailingZeros64(stop)) {
			stop &= stop - 1
		}
		stopAt := len(p)
		if stop != 0 {
			stopAt = b0 + bits.TrailingZeros64(stop)
		}
		// A run right before one of these may go on past it: a run stops
		// there. A zero-width character's lead is one: transparent inside
		// a candidate, it is plain text to the idle stream otherwise, so
		// blockRun passes it where no run comes right before it. Where a
		// run does, the bytes after the lead decide (mayZW): binary output
		// has such a lead after a run every 300 bytes, and stopping at each
		// sent the run through the slow path a byte at a time.
		adj := stop | zw
		c := m.chain | inv
		if runStart >= 0 {
			// The run open at the end of the block before goes on to the
			// first byte that is no chain byte.
			fz := bits.TrailingZeros64(^c)
			runDigits += bits.OnesCount64(m.digit & (1<<fz - 1))
			runInv = runInv || inv&(1<<fz-1) != 0
			if runDigits >= chainMin || runDigits > 0 && b0+fz == len(p) || flag&(1<<fz-1) != 0 ||
				runDigits >= invDigits && runInv {
				return runStart, sawInv
			}
			if fz == 64 {
				continue
			}
			if adj>>fz&1 != 0 && (stop>>fz&1 != 0 || mayZW(p, b0+fz)) {
				return runStart, sawInv
			}
			runStart = -1
			c &^= 1<<fz - 1
		}
		// Invisible controls in reach before each byte of the block: only
		// a run of invDigits digits needs to know, and the block has none
		// with fewer. (The open run at the block's end takes any control
		// in this block or the one before as in reach: a superset.)
		var near uint64
		anyInv := (inv | prev.inv) != 0
		if anyInv && bits.OnesCount64(m.digit) >= invDigits {
			near = invReachMask(inv, prev.inv)
		}
		// The runs that need a closer look, by the bits that mark them:
		// chainMin bytes or more (a13 marks the 13th and later; fewer bytes
		// hold fewer digits), or three with an invisible control in reach
		// (they may hold invDigits), a stop byte right after, a flag, or
		// the end of p right after. Any other run is clear. Only the marked
		// runs are looked at, so a block of binary output, with a short run
		// every few bytes, costs a few mask operations. What counts in a
		// run is its digits: "10.0.100.188" is 12 bytes, 9 digits.
		a2 := c & (c << 1)
		long := a2 & (c << 2)
		if near == 0 {
			a4 := a2 & (a2 << 2)
			long = a4 & (a4 << 4) & (a4 << 8) & (c << 12)
		}
		look := long | c&(adj>>1) | flag
		if n < 64 {
			look |= 1 << (n - 1)
		}
		look &= c
		starts := c &^ (c << 1)
		open := c>>63 != 0 // a run goes on into the next block
		for look != 0 {
			k := bits.TrailingZeros64(look)
			st := 63 - bits.LeadingZeros64(starts&(2<<k-1))
			start := b0 + st
			if start >= stopAt {
				return stopAt, sawInv
			}
			rest := ^c & (^uint64(0) << st)
			if rest == 0 {
				// Open to the end of a full block: decided in the next.
				if flag>>st != 0 {
					return start, sawInv
				}
				runStart, runDigits, runInv = start, bits.OnesCount64(m.digit>>st), anyInv
				open = false
				break
			}
			en := bits.TrailingZeros64(rest)
			end := b0 + en
			inRun := (flag & (1<<en - 1)) >> st
			digits := bits.OnesCount64((m.digit & (1<<en - 1)) >> st)
			hasInv := near>>st&1 != 0 || (inv&(1<<en-1))>>st != 0
			if digits >= chainMin || digits > 0 && end == len(p) || inRun != 0 ||
				adj>>en&1 != 0 && (stop>>en&1 != 0 || mayZW(p, end)) ||
				digits >= invDigits && hasInv {
				return start, sawInv
			}
			look &^= 1<<en - 1
		}
		if stopAt < len(p) {
			return stopAt, sawInv
		}
		if open {
			// The run open at the block's end needed no look here.
			st := 64 - bits.LeadingZeros64(^c)
			runStart, runDigits, runInv = b0+st, bits.OnesCount64(m.digit>>st), anyInv
		}
	}
	if runStart >= 0 && runDigits > 0 {
		return runStart, sawInv // the run reaches the end of p
	}
	return len(p), sawInv
}

// invDigits is the fewest digits anything the chain detectors mask has:
// a cvv has three (an expiry four, a PAN thirteen).
const invDigits = 3

// invReach is how far before a run an invisible control can reach into
// its keyword context: the keyword history the slow path consults
// (histKeep) and the byte before it.
const invReach = histKeep + 1

// invReachMask has bit k set when an invisible control lies within the
// invReach bytes before byte k of a block: inv is the block's invisible
// controls, pinv those of the block before.
func invReachMask(inv, pinv uint64) uint64 {
	// Smear each control of this block over itself and the invReach-1
	// bytes after it: shifts of 1, 2, 4, 8 and 16 cover 32 bytes, one
	// more covers 33.
	hi := inv
	hi |= hi << 1
	hi |= hi << 2
	hi |= hi << 4
	hi |= hi << 8
	hi |= hi << 16
	hi |= hi << 1
	// One byte later is "before byte k".
	near := hi << 1
	// Of the block before, only its last control can reach furthest: one
	// at byte t covers up to byte t+invReach-1 of the two blocks, so
	// "before" bytes 0 to t+invReach-64 of this one.
	if t := 63 - bits.LeadingZeros64(pinv); t >= 64-invReach {
		near |= 1<<uint(t+invReach-63) - 1
	}
	return near
}

// passSentinel reports whether the stop byte p[at] is a track sentinel
// that idleRun passes over: one no custom rule starts with, after which
// the bytes of p rule track data out. A '%' (track 1) needs a 'B' next; a
// ';' (track 2) needs 12 digits or more next and then '=', so a ';' passes
// when fewer digits follow it and then some byte that ends the candidate.
// Invisible controls (up to sentinelReach of them, Engine.passInv) are
// looked through, as the track detectors do: binary output has one after
// half its sentinels. The byte that decides must be no joiner (an escape
// sequence or a zero-width character is transparent to a candidate, and
// the track detectors would look past it): then it is visible and not
// what the format needs, and the candidate ends without masking anything.
// Digits after a ';' are left to the caller, which handles them as a
// chain like any other.
func (e *Engine) passSentinel(p []byte, at int) bool {
	c := p[at]
	if c != ';' && c != '%' || e.first[c] {
		return false
	}
	k, digits := at+1, 0
	for {
		if k == len(p) || k-at > sentinelReach+track2MinDigits {
			return false // the next write, or the slow path, decides
		}
		d := p[k]
		switch {
		case invisible[d]:
			if !e.passInv {
				return false
			}
		case c == ';' && d-'0' < 10:
			if digits++; digits == track2MinDigits {
				return false // room for a PAN: the detector must see it
			}
		case joins(p, k):
			return false
		case c == ';':
			return true // fewer than track2MinDigits digits, then no digit
		default:
			return d != 'B'
		}
		k++
	}
}

// sentinelReach bounds the invisible controls passSentinel looks through,
// so that blockRun, which may judge a stop again on each call, stays
// linear; past it the slow path decides. (With the digits of a ';', the
// look ahead is at most sentinelReach+track2MinDigits bytes.)
const sentinelReach = 16

// track2MinDigits is the fewest digits of the PAN in track 2 data
// (track2.byte): a ';' followed by fewer, then something else, is no track.
const track2MinDigits = 12

// kwMay reports whether a cvv or expiry keyword (for a detector that is
// on) may end right before p[k], judging on p[lo:k] alone: kwBefore's
// tests. What those bytes cannot rule out counts as a keyword, so that
// idleRun decides.
func (e *Engine) kwMay(p []byte, lo, k int) bool {
	q, n := k-1, 0
	for q >= lo && n < maxKwSep && kwSep[p[q]] {
		q--
		n++
	}
	if q < lo {
		return true
	}
	if !kwLast[p[q]] {
		return false
	}
	if q-2 < lo {
		return true
	}
	if !kwTail(p[q-2], p[q-1], p[q]) {
		return false
	}
	if k-lo < histKeep {
		return true // the keyword may begin before lo
	}
	cvv, exp := keywordIn(p[k-histKeep : k])
	return e.cvv && cvv || e.expiry && exp
}

// blockMasks returns the masks of p's j-th 64-byte block, from the cache
// when it holds them. The cache describes one p, the one Write is working
// through (Write empties it, since a caller may reuse its buffer), and a
// miss classifies the next blocks in one batch: see classifier.masks.
//
// On binary output blockRun stops every few bytes, at a control, an ESC or
// a UTF-8 lead, and starts again a byte or two on. Blocks aligned to p's
// start, rather than to where each call starts, let those calls share one
// classification: without the cache the masker classified every block a
// dozen times over, and that was half its time on random data.
func (s *Stream) blockMasks(p []byte, j int) *blockMasks {
	c := &s.blocks
	if c.n > 0 && (c.p != &p[0] || c.len != len(p)) {
		c.n = 0
	}
	if k := j - c.j; c.n > 0 && k >= 0 && k < c.n {
		return &c.m[k]
	}
	cl := s.e.classifier()
	c.p, c.len, c.j = &p[0], len(p), j
	c.n = cl.masks(p, j*64, c.m[:])
	return &c.m[0]
}

// blockCache is Stream.blocks: the masks of blocks j up to j+n of the p
// that starts at p and is len bytes long.
type blockCache struct {
	m   [16]blockMasks
	p   *byte
	len int
	j   int
	n   int
}

// back1 moves each bit of a block's mask x one byte later, taking the bit
// for the first byte from the mask px of the block before.
func back1(x, px uint64) uint64 { return x<<1 | px>>63 }

// back2 is back1 for two bytes.
func back2(x, px uint64) uint64 { return x<<2 | px>>62 }
