package mask

// The chain fast path. Most digits in terminal output belong to chains
// that cannot hold cardholder data: timestamps, IP addresses, counters,
// sizes. Feeding them to the chain byte by byte (and holding the ones that
// start like a brand until the chain ends) costs tens of nanoseconds a
// byte; plainChain instead looks at a whole chain at once, while the
// stream is idle, and passes it over when it can prove that the chain
// detectors would leave every byte of it clear and change no state.

// idleRun passes over the bytes of p from i on that the slow path would
// forward unchanged without opening a candidate or changing any other
// state than the offset, the keyword history and the line flag; it
// returns where the slow path must take over. The stream must be idle.
//
// Besides the runs of bytes outside the stop set (skip) it passes over:
//   - chains of digits that stay clear (plainChain);
//   - a ';' or '%' that cannot start track data because the next byte
//     already rules it out: track 2 needs a digit after ';', track 1 a 'B'
//     after '%', unless transparent bytes come between (mayJoin). The
//     candidate the slow path would open dies at that next byte having
//     masked nothing, and the next byte is judged on its own;
//   - a '\n' on a line where a PAN was masked: it only ends the line's
//     context;
//   - runs of invisible controls (NUL and friends): outside a candidate
//     they change nothing but must stay out of the keyword history;
//   - escape sequences that end within p (escapeLen): the same, and the
//     custom rules do not see them either.
//
// Custom rules see every byte, so bytes a rule's match can start with are
// left to the slow path.
func (s *Stream) idleRun(p []byte, i int) int {
	e := s.e
	start, vis := i, i
	// dirty: blockRun passed invisible controls in p[vis:i], which the
	// history must not get. The history is only read by kwBefore and after
	// idleRun returns, so the visible bytes are gathered then, once: the
	// spans passed before the last escape or run of invisible controls
	// wait in spans until then.
	dirty := false
	var spans histSpans
	for {
		if e.block && !s.line {
			var inv bool
			i, inv = s.blockRun(p, i)
			dirty = dirty || inv
			if i == len(p) {
				break
			}
		}
		if i = e.skip(p, i, s.line); i == len(p) {
			break
		}
		b := p[i]
		if e.first[b] {
			break
		}
		if invisible[b] {
			// While idle an invisible control opens nothing and is
			// forwarded as it is; it is only transparent to the keyword
			// check, so the history gets what came before it and
			// resumes after the run.
			spans.add(s, p, vis, i, dirty)
			dirty = false
			for i < len(p) && invisible[p[i]] && !e.first[p[i]] {
				i++
			}
			vis = i
			continue
		}
		if b-'0' < 10 {
			if !e.fastChain || s.line {
				break
			}
			n := e.plainChain(p, i)
			if n == 0 {
				break
			}
			spans.flush(s, p) // kwBefore reads the history
			if dirty {
				s.pushVisible(p[vis:i]) // kwBefore reads p[vis:i]
				vis, dirty = i, false
			}
			if s.kwBefore(p, &vis, i) {
				break
			}
			i += n
			continue
		}
		if b == 0x1b {
			// An escape sequence that ends within p is transparent to an
			// idle stream from its ESC to its last byte: nothing opens,
			// nothing is masked, and the history does not get it. Binary
			// output has an ESC every 256 bytes, two thirds of its stops.
			n := escapeLen(p[i:])
			if n == 0 {
				break
			}
			spans.add(s, p, vis, i, dirty)
			i += n
			vis, dirty = i, false
			continue
		}
		if i+1 == len(p) {
			break
		}
		switch b {
		case ';', '%':
			if !e.passSentinel(p, i) {
				goto done
			}
		case '\n':
			s.line = false
		default:
			goto done
		}
		i++
	}
done:
	s.off += int64(i - start)
	spans.add(s, p, vis, i, dirty)
	spans.flush(s, p)
	return i
}

// histSpans holds the spans of p that idleRun passed and the keyword
// history has not had yet, oldest first. Binary output has an escape
// sequence or a run of invisible controls every 200 bytes, five for each
// return of idleRun, and pushing the history at each was an eighth of the
// masker's time on it. Only the last histKeep visible bytes of all the
// spans can matter: flush gathers them from the end, once.
type histSpans struct {
	n  int
	sp [8]histSpan
}

// histSpan is p[lo:hi], with dirty as for pushSpan.
type histSpan struct {
	lo, hi int
	dirty  bool
}

// add defers the history's update with p[lo:hi], flushing first if the
// spans are full.
func (h *histSpans) add(s *Stream, p []byte, lo, hi int, dirty bool) {
	if lo == hi {
		return
	}
	if h.n == len(h.sp) {
		h.flush(s, p)
	}
	h.sp[h.n] = histSpan{lo, hi, dirty}
	h.n++
}

// flush gives the history what pushing each span in order would have.
func (h *histSpans) flush(s *Stream, p []byte) {
	switch h.n {
	case 0:
		return
	case 1:
		sp := h.sp[0]
		h.n = 0
		s.pushSpan(p[sp.lo:sp.hi], sp.dirty)
		return
	}
	var tmp [histKeep]byte
	n := 0
	for k := h.n - 1; k >= 0 && n < histKeep; k-- {
		sp := h.sp[k]
		b := p[sp.lo:sp.hi]
		if !sp.dirty {
			m := min(len(b), histKeep-n)
			n += copy(tmp[histKeep-n-m:], b[len(b)-m:])
			continue
		}
		n = gatherVisible(&tmp, n, b)
	}
	h.n = 0
	s.pushHist(tmp[histKeep-n:])
}

// pushSpan adds the bytes b to the keyword history: all of them, or the
// visible ones if b may hold invisible controls (dirty).
func (s *Stream) pushSpan(b []byte, dirty bool) {
	if dirty {
		s.pushVisible(b)
	} else {
		s.pushHist(b)
	}
}

// escapeLen returns the length of the escape sequence that starts with the
// ESC q[0], as the lexer would take it from an idle stream: its bytes are
// transparent, and after them the stream is idle again. The sequence ends
// with a byte that completes it, or before a byte that ends it by being
// text (ESC then a byte of binary output), which the idle stream then
// takes as it takes any text. It returns 0 if q ends first.
func escapeLen(q []byte) int {
	esc, n := uint8(escEsc), 1
	for k := 1; k < len(q); k++ {
		var transparent bool
		if esc, n, transparent = lexEsc(esc, n, q[k]); !transparent {
			return k
		}
		if esc == escNone {
			return k + 1
		}
	}
	return 0
}

// mayJoin holds the bytes that, right after a group or its separator, may
// not end the chain: ESC and the invisible controls are transparent, and
// 0xC2, 0xE2 and 0xEF may start a zero-width character, transparent inside
// a candidate. Any other byte that is neither a digit nor a separator ends
// the chain for sure.
var mayJoin = func() (t [256]bool) {
	t = invisible
	t[0x1b], t[0xc2], t[0xe2], t[0xef] = true, true, true, true
	return t
}()

// joins reports whether p[k], a byte right after a group or its separator,
// may join the chain to what follows: mayJoin, narrowed for the lead of a
// zero-width character by the bytes after it (mayZW).
func joins(p []byte, k int) bool {
	c := p[k]
	if c == 0xc2 || c == 0xe2 || c == 0xef {
		return mayZW(p, k)
	}
	return mayJoin[c]
}

// joinsPast is joins, looking through what a candidate takes as
// transparent: when p[k] is an invisible control or an ESC, the chain may
// go on only if the first byte after the controls and escape sequences
// that start at k is a digit, a separator or a joiner (or p ends first,
// or they run on for more than maxTransparentLook bytes). Binary output
// has one of them after every tenth digit, and giving up on each sent the
// chain through the slow path a byte at a time; any other byte there is
// visible and ends the chain, in the slow path too.
func joinsPast(p []byte, k int) bool {
	if c := p[k]; c != 0x1b && !invisible[c] {
		return joins(p, k)
	}
	for lim := k + maxTransparentLook; k < len(p) && k < lim; {
		c := p[k]
		switch {
		case c == 0x1b:
			n := escapeLen(p[k:])
			if n == 0 {
				return true // the sequence goes on into the next write
			}
			k += n
		case invisible[c]:
			k++
		default:
			return c-'0' < 10 || chainSep(c) || joins(p, k)
		}
	}
	return true
}

// maxTransparentLook bounds joinsPast's look ahead, so that a chain before
// a long run of NULs costs no more than that to settle.
const maxTransparentLook = 64

// mayZW reports whether p[k], 0xC2, 0xE2 or 0xEF, may start a zero-width
// character: one that Stream.utfNext takes whole (U+00AD, U+200B–U+200F,
// U+2060–U+2064, U+FEFF). Only such a character is transparent inside a
// candidate; any other sequence is visible from its lead on, and so ends a
// chain as any other byte does. Where p ends first, it may.
func mayZW(p []byte, k int) bool {
	if k+1 >= len(p) {
		return true
	}
	b1 := p[k+1]
	switch p[k] {
	case 0xc2:
		return b1 == 0xad
	case 0xe2:
		if b1 != 0x80 && b1 != 0x81 {
			return false
		}
		if k+2 >= len(p) {
			return true
		}
		b2 := p[k+2]
		if b1 == 0x80 {
			return b2 >= 0x8b && b2 <= 0x8f
		}
		return b2 >= 0xa0 && b2 <= 0xa4
	case 0xef:
		return b1 == 0xbb && (k+2 >= len(p) || p[k+2] == 0xbf)
	}
	return true
}

// plainChain returns the length of the chain that starts with the digit
// p[i], including a separator that ends it, if the chain detectors would
// pass all of it through unmasked; 0 if they might not, or if p ends
// before the chain does. The stream must be idle (no candidate open, no
// escape or UTF-8 sequence pending), no PAN may have been masked on the
// line (s.line), and digits must start no custom rule (Engine.fastChain);
// the caller checks the keyword before the chain (kwBefore).
//
// Why the chain is then clear:
//   - pan: a window starts at a group and needs 13 digits from there, whose
//     first four a brand allows (pfxMax); mayPAN rules out every group.
//     Windows also need a single separator and a valid Luhn digit, which
//     this ignores: it may send a clear chain to the slow path, never the
//     other way.
//   - cvv and expiry need context: a PAN masked on the line (excluded) or
//     a keyword before a group that follows no separator or a space. The
//     first group's keyword is the caller's check. For a later group after
//     a space, the history ends with the previous group's last digit and
//     the space; a keyword can end there only if that digit is a keyword's
//     last byte ('2' of cvv2, cvc2), so such chains go to the slow path.
//   - nothing else looks at digits and separators while the stream is
//     idle: the track detectors wait for '%' or ';', and custom rules for
//     one of their first bytes, which digits are not.
//
// The byte after the chain is left to the caller: it ends the chain, and
// the slow path would treat it the same way with the chain closed.
func (e *Engine) plainChain(p []byte, i int) int {
	j := i
	total := 0
	for {
		g := j
		for j < len(p) && p[j]-'0' < 10 {
			j++
		}
		if j == len(p) {
			return 0 // the next write may go on with the group
		}
		total += j - g
		c := p[j]
		if chainSep(c) {
			if j+1 == len(p) {
				return 0
			}
			d := p[j+1]
			if d-'0' < 10 {
				if c == ' ' && kwLast[p[j-1]] {
					return 0
				}
				j++
				continue
			}
			if joinsPast(p, j+1) {
				return 0
			}
			j++ // the separator ends the chain: d is neither digit nor join
			break
		}
		if joinsPast(p, j) {
			return 0
		}
		break
	}
	if total >= 13 && e.pan && mayPAN(p[i:j], total) {
		return 0
	}
	return j - i
}

// mayPAN reports whether some group of the chain ch (digits and single
// separators, total digits in all) starts 13 or more digits whose first
// four a brand allows.
func mayPAN(ch []byte, total int) bool {
	cum := 0 // digits before ch[k]
	for k := 0; k < len(ch); {
		if total-cum < 13 {
			return false
		}
		// ch[k] starts a group: read the first four digits from it.
		v, n := 0, 0
		for x := k; x < len(ch) && n < 4; x++ {
			if d := ch[x] - '0'; d < 10 {
				v = v*10 + int(d)
				n++
			}
		}
		if pfxMax[pfxOff[4]+v] != 0 {
			return true
		}
		// Skip to the next group.
		for k < len(ch) && ch[k]-'0' < 10 {
			k++
			cum++
		}
		k++ // the separator
	}
	return false
}

// kwBefore reports whether a cvv or expiry keyword (for a detector that is
// on) may end right before offset j of p, the start of a chain. The
// visible history is s.hist followed by p[*vis:j], bytes the fast path
// passed over; kwBefore may move them into s.hist, advancing *vis.
func (s *Stream) kwBefore(p []byte, vis *int, j int) bool {
	e := s.e
	if !e.cvv && !e.expiry {
		return false
	}
	if j > *vis {
		// Most chains follow a byte that is neither a separator nor a
		// keyword's last letter.
		if c := p[j-1]; !kwSep[c] && !kwLast[c] {
			return false
		}
	}
	// Decide on p alone when it holds enough: the separators keywordIn
	// skips, the byte before them and, for a keyword, the two before
	// that. Exactly keywordIn's first tests, on the end of the history.
	if h := p[*vis:j]; len(h) > 0 {
		n, k := len(h), 0
		for k < n && k < maxKwSep && kwSep[h[n-1-k]] {
			k++
		}
		if k < n {
			if !kwLast[h[n-1-k]] {
				return false
			}
			if k+3 <= n && !kwTail(h[n-3-k], h[n-2-k], h[n-1-k]) {
				return false
			}
		}
	}
	var cvv, exp bool
	if j-*vis >= histKeep {
		cvv, exp = keywordIn(p[*vis:j])
	} else {
		s.pushHist(p[*vis:j])
		*vis = j
		cvv, exp = s.keyword()
	}
	return e.cvv && cvv || e.expiry && exp
}
