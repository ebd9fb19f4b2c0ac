package mask

import (
	"encoding/binary"
	"io"
	"math"
	"sync/atomic"
)

// Per-byte state of held bytes.
const (
	fClear byte = 0 // written as is
	fStar  byte = 1 // written as '*'
	fDrop  byte = 2 // not written: part of a match a rule's Replacement replaces
	fEsc   byte = 4 // transparent (escape sequence, invisible control): never masked
)

// maxHold bounds the bytes a stream holds. Only transparent bytes (escape
// sequences, invisible controls) between the digits of a candidate can make
// a hold this long, which only a target trying to get past the masker
// does; the stream then fails closed: every digit held is masked.
const maxHold = 64 << 10

// Escape-sequence lexer states.
const (
	escNone  = iota
	escEsc   // after ESC
	escInter // ESC, intermediate bytes 0x20–0x2F
	escCSI   // ESC [ parameters and intermediates
	escStr   // ESC ] (OSC), ESC P (DCS), ESC X, ESC ^, ESC _: a string up to BEL or ST
	escStrST // ESC inside a string: ST if '\' follows
)

// Bounds on the sequences the lexer treats as transparent. A longer one is
// taken to have ended, so its bytes count as visible text again: the masker
// may then mask something hidden, never miss something shown.
const (
	maxCSI = 256
	maxStr = 4096
)

// invisible holds the C0 controls (and DEL) a terminal neither prints nor
// moves the cursor for. They are transparent like escape sequences, so
// "4111\x001111…" (or UTF-16 text in binary junk) is still seen as digits.
// BS, HT, LF, VT, FF and CR move the cursor and so separate; ESC starts a
// sequence.
var invisible = func() (t [256]bool) {
	for b := 0; b < 0x20; b++ {
		t[b] = true
	}
	for _, b := range []byte{0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1b} {
		t[b] = false
	}
	t[0x7f] = true
	return t
}()

// replOp is a rule's replacement text, written in place of the dropped
// bytes from offset at on.
type replOp struct {
	at   int64
	text []byte
}

// Stream masks one output stream. Bytes go in through Write in chunks of
// any size; whatever cannot be part of a candidate is forwarded to the
// underlying writer in the same call, and a candidate (a run that could
// still become a PAN, track data, an expiry date or CVV in context, or a
// custom rule's match) is held until it is decided, then forwarded masked
// or clear. The output does not depend on how the input was chunked.
//
// Processing one byte, in call order: the escape lexer decides whether the
// byte is transparent (part of an escape sequence or invisible); a visible
// byte goes to the digit-chain, track and custom-rule detectors, which mark
// held bytes to mask and say how far back they must hold; the stream then
// forwards everything before the earliest hold.
//
// A Stream is not safe for concurrent Write or Flush; Counts and Held may
// be called from any goroutine.
type Stream struct {
	e   *Engine
	w   io.Writer
	err error // sticky error from w

	pend  []byte // held bytes, from offset base
	flags []byte // per held byte: fClear, fStar, fDrop, fEsc
	base  int64
	off   int64 // offset of the next input byte
	repl  []replOp
	out   []byte // output of the current call
	held  atomic.Int64

	esc    uint8
	escLen int

	// A UTF-8 zero-width character (U+00AD, U+200B–U+200F, U+2060–U+2064,
	// U+FEFF) inside a candidate is transparent too; utf holds the first
	// bytes of one until it is complete or turns out to be something else.
	utf   [2]byte
	utfN  int
	utfAt int64

	// hist[:histN] ends with the last visible bytes, for keywords before a
	// value; it holds at least histKeep of them once that many were seen.
	hist  [2 * histKeep]byte
	histN int
	line  bool // a PAN was masked since the last '\n'

	ch  chain
	t1  track1
	t2  track2
	seg segment

	counts []atomic.Int64
	leaked int // marks that came too late to apply: a bug, tests check it is 0

	blocks blockCache // blockRun's classified blocks of the current Write
}

// NewStream returns a Stream that forwards masked output to w.
func (e *Engine) NewStream(w io.Writer) *Stream {
	return &Stream{e: e, w: w, counts: make([]atomic.Int64, nBuiltin+len(e.rules))}
}

// reset makes s a fresh stream writing to w, keeping its buffers.
func (s *Stream) reset(w io.Writer) {
	s.w, s.err = w, nil
	s.pend, s.flags = s.pend[:0], s.flags[:0]
	s.base, s.off = 0, 0
	s.repl, s.out = s.repl[:0], s.out[:0]
	s.held.Store(0)
	s.esc, s.escLen = escNone, 0
	s.utfN, s.utfAt = 0, 0
	s.histN, s.line = 0, false
	s.ch.reset()
	s.t1, s.t2 = track1{}, track2{}
	s.seg.open, s.seg.start = false, 0
	s.seg.vis, s.seg.pos = s.seg.vis[:0], s.seg.pos[:0]
	for i := range s.counts {
		s.counts[i].Store(0)
	}
	s.leaked = 0
}

// Counts returns a snapshot of how many values this stream has masked.
func (s *Stream) Counts() Counts {
	c := Counts{}
	for i := range s.counts {
		if n := s.counts[i].Load(); n > 0 {
			if i < nBuiltin {
				c[builtinNames[i]] = n
			} else {
				c[s.e.rules[i-nBuiltin].name] = n
			}
		}
	}
	return c
}

// Held returns how many bytes the stream holds back, undecided.
func (s *Stream) Held() int { return int(s.held.Load()) }

// idle reports whether no candidate is open and the lexer is in text, so
// that bytes the engine's stop table passes over need no processing.
func (s *Stream) idle() bool {
	return !s.ch.open && s.t1.state == 0 && s.t2.state == 0 && !s.seg.open &&
		s.esc == escNone && s.utfN == 0 && len(s.pend) == 0
}

// Write masks p and forwards what is decided. It returns len(p) and nil
// when the underlying writer accepts the output; after the writer fails,
// every call returns that error.
func (s *Stream) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.e.noop {
		return s.forward(p, len(p))
	}
	s.out = s.out[:0]
	s.blocks.n = 0 // p may be the last call's buffer with new bytes
	pass := 0      // p[pass:i] passes through once written
	i := 0
	for i < len(p) {
		if s.idle() && !s.e.slowOnly {
			// The fast path: see idleRun.
			if i = s.idleRun(p, i); i == len(p) {
				break
			}
		} else if s.ch.inGroup && s.plainDigits() && p[i] >= '0' && p[i] <= '9' {
			// Inside a group, a run of digits only feeds the chain, and can
			// only shorten the hold: take it at once.
			j := i
			for j < len(p) && p[j] >= '0' && p[j] <= '9' {
				s.digit(p[j], s.off)
				s.off++
				j++
			}
			s.pushHist(p[i:j])
			h := s.holdStart()
			if len(s.pend) == 0 {
				if h >= s.off {
					i = j
					continue
				}
				s.out = append(s.out, p[pass:i]...)
				s.base = s.off - int64(j-i)
			}
			s.pend = append(s.pend, p[i:j]...)
			for k := i; k < j; k++ {
				s.flags = append(s.flags, fClear)
			}
			i = j
			if h > s.base {
				s.emitTo(h)
			}
			if len(s.pend) > maxHold {
				s.overflow()
			}
			if len(s.pend) == 0 {
				pass = i
			}
			continue
		}
		b := p[i]
		at := s.off
		f := s.step(b)
		s.off++
		h := s.holdStart()
		i++
		if len(s.pend) == 0 {
			if h > at {
				continue
			}
			s.out = append(s.out, p[pass:i-1]...)
			s.base = at
		}
		s.pend = append(s.pend, b)
		s.flags = append(s.flags, f)
		if h > s.base {
			s.emitTo(h)
		}
		if len(s.pend) > maxHold {
			s.overflow()
		}
		if len(s.pend) == 0 {
			pass = i
		}
	}
	if len(s.pend) == 0 {
		if len(s.out) == 0 {
			return s.forward(p[pass:], len(p))
		}
		s.out = append(s.out, p[pass:]...)
	}
	s.held.Store(int64(len(s.pend)))
	return s.forward(s.out, len(p))
}

// forward writes b to w and reports n accepted input bytes.
func (s *Stream) forward(b []byte, n int) (int, error) {
	if len(b) == 0 {
		return n, nil
	}
	if _, err := s.w.Write(b); err != nil {
		s.err = err
		return n, err
	}
	return n, nil
}

// Flush ends every open candidate as if the stream ended there, and
// forwards everything held, masked as decided. Call it at the end of the
// stream, or at a boundary the caller knows of (the REPL before its own
// prompt). Do not call it because the target went quiet: a target that
// pauses in the middle of a PAN would get its first half out in clear,
// since the two halves are then judged apart.
func (s *Stream) Flush() error {
	if s.err != nil {
		return s.err
	}
	if s.e.noop {
		return nil
	}
	s.out = s.out[:0]
	s.flushUTF()
	if s.ch.open {
		s.chainEnd()
	}
	s.t1.end(s, s.off)
	s.t2.end(s, s.off)
	if s.seg.open {
		s.applyRules(0, false)
	}
	s.emitTo(s.off)
	s.held.Store(0)
	_, err := s.forward(s.out, 0)
	return err
}

// overflow fails closed when the hold grows past maxHold: every held digit
// is masked, every candidate dropped, everything forwarded.
func (s *Stream) overflow() {
	for i, b := range s.pend {
		if s.flags[i] == fClear && b >= '0' && b <= '9' {
			s.flags[i] = fStar
		}
	}
	s.ch.reset()
	s.t1.state, s.t2.state = 0, 0
	if s.seg.open {
		s.applyRules(0, false)
	}
	s.utfN = 0
	s.emitTo(s.off)
}

// holdStart returns the offset of the first byte that must stay held.
func (s *Stream) holdStart() int64 {
	h := s.off
	if s.ch.open {
		if c := s.ch.hold(); c < h {
			h = c
		}
	}
	if s.t1.state != 0 && s.t1.start < h {
		h = s.t1.start
	}
	if s.t2.state != 0 && s.t2.start < h {
		h = s.t2.start
	}
	if s.seg.open && s.seg.start < h {
		h = s.seg.start
	}
	if s.utfN > 0 && s.utfAt < h {
		h = s.utfAt
	}
	return h
}

// emitTo moves held bytes before offset h to the output, masked.
func (s *Stream) emitTo(h int64) {
	n := int(h - s.base)
	if n > len(s.pend) {
		n = len(s.pend) // bytes after the held ones passed through already
	}
	if n <= 0 {
		s.base = h
		return
	}
	k := 0
	for k < n {
		// Copy runs of unmasked bytes at once.
		j := k
		for j < n && s.flags[j]&(fStar|fDrop) == 0 {
			j++
		}
		s.out = append(s.out, s.pend[k:j]...)
		k = j
		if k == n {
			break
		}
		switch s.flags[k] {
		case fStar:
			s.out = append(s.out, '*')
		case fDrop:
			at := s.base + int64(k)
			for x, op := range s.repl {
				if op.at == at {
					s.out = append(s.out, op.text...)
					s.repl = append(s.repl[:x], s.repl[x+1:]...)
					break
				}
			}
		}
		k++
	}
	m := copy(s.pend, s.pend[n:])
	s.pend = s.pend[:m]
	copy(s.flags, s.flags[n:])
	s.flags = s.flags[:m]
	s.base = h
}

// star marks the held byte at offset at to be written as '*', unless it is
// transparent or already dropped.
func (s *Stream) star(at int64) {
	i := at - s.base
	if i < 0 || i >= int64(len(s.pend)) {
		s.leaked++
		return
	}
	if s.flags[i] == fClear {
		s.flags[i] = fStar
	}
}

// starRange marks every visible held byte in [a, b) but newlines.
func (s *Stream) starRange(a, b int64) {
	for at := a; at < b; at++ {
		i := at - s.base
		if i < 0 || i >= int64(len(s.pend)) {
			s.leaked++
			continue
		}
		if s.flags[i] == fClear && s.pend[i] != '\n' && s.pend[i] != '\r' {
			s.flags[i] = fStar
		}
	}
}

// count adds one to counter i.
func (s *Stream) count(i int) { s.counts[i].Add(1) }

// pushHist appends visible bytes to the keyword history. The fast path
// stops at invisible controls, so b holds none.
func (s *Stream) pushHist(b []byte) {
	if len(b) >= histKeep {
		s.histN = copy(s.hist[:], b[len(b)-histKeep:])
		return
	}
	s.histRoom(len(b))
	s.histN += copy(s.hist[s.histN:], b)
}

// histRoom makes room for n <= histKeep more bytes at the end of the
// history, keeping the last histKeep-n.
func (s *Stream) histRoom(n int) {
	if s.histN+n > len(s.hist) {
		keep := histKeep - n
		copy(s.hist[:keep], s.hist[s.histN-keep:s.histN])
		s.histN = keep
	}
}

// pushVisible appends the visible bytes of b, all but its invisible
// controls, to the keyword history. Only the last histKeep of them can
// matter, so it gathers them from the end.
func (s *Stream) pushVisible(b []byte) {
	if len(b) <= histKeep {
		// Short, as between the stops of binary output: every byte is
		// written, and only a visible one advances.
		s.histRoom(len(b))
		n := s.histN
		for _, c := range b {
			s.hist[n&(len(s.hist)-1)] = c
			n += int(visible[c])
		}
		s.histN = n
		return
	}
	var tmp [histKeep]byte
	n := gatherVisible(&tmp, 0, b)
	s.pushHist(tmp[histKeep-n:])
}

// gatherVisible puts the visible bytes of b, from its end, before the n
// last bytes of tmp that are filled, until tmp is full; it returns how
// many of tmp's last bytes are filled then.
func gatherVisible(tmp *[histKeep]byte, n int, b []byte) int {
	for k := len(b) - 1; k >= 0 && n < histKeep; k-- {
		c := b[k]
		if c == 0 {
			// NUL padding, a stream of zeros: whole zero words at once.
			for k >= 8 && binary.LittleEndian.Uint64(b[k-8:k]) == 0 {
				k -= 8
			}
			continue
		}
		// Written whatever it is, kept only if visible: no branch on a
		// class that binary output makes a coin toss.
		tmp[histKeep-1-n] = c
		n += int(visible[c])
	}
	return n
}

// pushVisible indexes hist with a mask, which needs its length to be a
// power of two: this fails to compile if it is not.
var _ = [1]struct{}{}[len(Stream{}.hist)&(len(Stream{}.hist)-1)]

// visible is 1 for the bytes that are not invisible controls.
var visible = func() (t [256]uint8) {
	for b := range 256 {
		if !invisible[b] {
			t[b] = 1
		}
	}
	return t
}()

// pushHist1 appends one visible byte to the keyword history.
func (s *Stream) pushHist1(b byte) {
	if s.histN == len(s.hist) {
		s.histN = copy(s.hist[:], s.hist[len(s.hist)-histKeep+1:])
	}
	s.hist[s.histN] = b
	s.histN++
}

// plainDigits reports whether a digit would only feed the chain: no escape
// or UTF-8 sequence pending and no track or rule candidate open.
func (s *Stream) plainDigits() bool {
	return s.esc == escNone && s.utfN == 0 && s.t1.state == 0 && s.t2.state == 0 &&
		!s.seg.open && len(s.e.rules) == 0
}

// inCandidate reports whether some detector has a candidate open, which is
// when zero-width characters must be looked through.
func (s *Stream) inCandidate() bool {
	return s.ch.open || s.t1.state != 0 || s.t2.state != 0 || s.seg.open
}

// step runs the lexer on one byte at offset s.off and hands visible bytes
// to the detectors. It returns the byte's flag: fEsc if transparent.
func (s *Stream) step(b byte) byte {
	if s.esc != escNone {
		var transparent bool
		if s.esc, s.escLen, transparent = lexEsc(s.esc, s.escLen, b); transparent {
			return fEsc
		}
	}
	return s.text(b, s.off)
}

// lexEsc is the escape lexer: it takes b in state esc (not escNone) after
// n bytes of the sequence and returns the state after b and the length so
// far. transparent is false when b is not part of the sequence: the
// sequence has ended (state escNone) and b is text. Both the byte-by-byte
// path (step) and the fast path's skipping of whole sequences
// (escapeLen) run on it, so that they cannot disagree.
func lexEsc(esc uint8, n int, b byte) (next uint8, length int, transparent bool) {
	switch esc {
	case escEsc, escInter:
		n++
		switch {
		case b == 0x1b:
			return escEsc, 1, true
		case esc == escEsc && b == '[':
			return escCSI, n, true
		case esc == escEsc && (b == ']' || b == 'P' || b == 'X' || b == '^' || b == '_'):
			return escStr, n, true
		case b >= 0x20 && b <= 0x2f:
			return escInter, n, true
		case b >= 0x30 && b <= 0x7e, b == 0x18, b == 0x1a:
			return escNone, n, true
		case b < 0x20 && n <= maxCSI:
			// A terminal executes a C0 control inside a sequence and goes on.
			return esc, n, true
		}
		return escNone, n, false
	case escCSI:
		n++
		switch {
		case b >= 0x20 && b <= 0x3f && n <= maxCSI:
			return escCSI, n, true
		case b >= 0x40 && b <= 0x7e, b == 0x18, b == 0x1a:
			return escNone, n, true
		case b == 0x1b:
			return escEsc, 1, true
		case b < 0x20 && n <= maxCSI:
			return escCSI, n, true
		}
		return escNone, n, false
	case escStr:
		n++
		switch {
		case b == 0x07, b == 0x18, b == 0x1a:
			return escNone, n, true
		case b == 0x1b:
			return escStrST, n, true
		case b < 0x20 || n > maxStr:
			// Terminals differ on controls inside strings; taking the string
			// as ended shows the detectors more, never less.
			return escNone, n, false
		}
		return escStr, n, true
	case escStrST:
		if b == '\\' {
			return escNone, n, true
		}
		// ESC ended the string and starts a new sequence.
		return lexEsc(escEsc, 1, b)
	}
	return escNone, n, false
}

// text handles a byte outside escape sequences.
func (s *Stream) text(b byte, at int64) byte {
	if s.utfN > 0 {
		if s.utfNext(b) {
			return fEsc
		}
	}
	switch {
	case b == 0x1b:
		s.esc, s.escLen = escEsc, 1
		return fEsc
	case invisible[b]:
		return fEsc
	case (b == 0xc2 || b == 0xe2 || b == 0xef) && s.inCandidate():
		s.utf[0], s.utfN, s.utfAt = b, 1, at
		return fEsc
	}
	s.visible(b, at)
	return fClear
}

// utfNext feeds b to a pending zero-width character. It reports whether b
// was taken as part of it; if not, the pending bytes have been handed on as
// visible and b is still to be handled.
func (s *Stream) utfNext(b byte) bool {
	lead := s.utf[0]
	switch {
	case s.utfN == 1 && lead == 0xc2 && b == 0xad,
		s.utfN == 2 && lead == 0xe2 && s.utf[1] == 0x80 && b >= 0x8b && b <= 0x8f,
		s.utfN == 2 && lead == 0xe2 && s.utf[1] == 0x81 && b >= 0xa0 && b <= 0xa4,
		s.utfN == 2 && lead == 0xef && b == 0xbf:
		s.utfN = 0
		return true
	case s.utfN == 1 && lead == 0xe2 && (b == 0x80 || b == 0x81),
		s.utfN == 1 && lead == 0xef && b == 0xbb:
		s.utf[1], s.utfN = b, 2
		return true
	}
	s.flushUTF()
	return false
}

// flushUTF hands the bytes of a pending zero-width character that did not
// complete on to the detectors as visible.
func (s *Stream) flushUTF() {
	n := s.utfN
	s.utfN = 0
	for k := 0; k < n; k++ {
		at := s.utfAt + int64(k)
		if i := at - s.base; i >= 0 && i < int64(len(s.flags)) {
			s.flags[i] = fClear
		}
		s.visible(s.utf[k], at)
	}
}

// visible hands a visible byte to the detectors.
func (s *Stream) visible(b byte, at int64) {
	e := s.e
	if e.digits {
		s.chainByte(b, at)
	}
	if e.track {
		s.t1.byte(s, b, at)
		s.t2.byte(s, b, at)
	}
	if len(e.rules) > 0 {
		s.segByte(b, at)
	}
	s.pushHist1(b)
	if b == '\n' {
		s.line = false
	}
}

// histKeep is how much visible history the keyword check may need: the
// longest keyword, the separators after it and the byte before it, rounded up.
const histKeep = 32

// noHold is what a detector returns from hold when it holds nothing.
const noHold = math.MaxInt64
