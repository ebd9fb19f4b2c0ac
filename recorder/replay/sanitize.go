package replay

import (
	"io"
	"strconv"
	"unicode/utf8"
)

// Sanitizer neutralises the terminal sequences of a recording that could act
// on the viewer's terminal rather than on its screen: a hostile session must
// not be able to write the auditor's clipboard (OSC 52), retitle the window
// or plant hyperlinks (OSC 0/1/2, OSC 8: the link text stays, the link goes),
// run device-control strings (DCS, SOS, PM, APC), make the terminal answer
// (DA, DSR, DECRQSS, DECRQM, window reports CSI ... t, ENQ), turn on mouse,
// focus or paste reporting, or switch the terminal out of UTF-8. The 8-bit
// C1 forms of all of these (U+0080..U+009F) are handled as their ESC forms.
//
// It works as an allow-list: SGR, cursor movement, erase, scroll regions,
// character sets and screen modes are kept, byte for byte; every other
// sequence is dropped whole, so the terminal never sees its introducer and
// cannot be left inside a string the sanitizer thinks has ended. Sequences
// may be split across calls (one recorded event ends mid-sequence, the next
// finishes it); the zero value is ready to use and Reset starts afresh.
type Sanitizer struct {
	// DropAltScreen also drops the switches to and from the alternate
	// screen (DECSET 47, 1047, 1049) and turns a full reset (ESC c) into a
	// clear screen, for a player that keeps its own screen and must not be
	// taken off it.
	DropAltScreen bool

	state int
	seq   []byte // the ESC or CSI sequence collected so far, passed or dropped whole
	drop  bool   // the sequence in seq is dropped when it ends (refused or overlong)
	utf   []byte // a UTF-8 character begun but not finished
	c2    bool   // in a string, the last byte was 0xC2 (a C1 ST may follow)
}

// States of the sanitizer.
const (
	stGround   = iota
	stEsc      // after ESC
	stEscInter // ESC and intermediates (character set designation)
	stCSI      // control sequence: parameters, intermediates, final
	stOSC      // operating system command: dropped up to BEL or ST
	stString   // DCS, SOS, PM, APC: dropped up to ST
	stStrEsc   // ESC inside OSC or a string: ST if '\' follows
)

// maxSeq bounds a kept sequence; longer ones are no real terminal's and
// are dropped whole.
const maxSeq = 128

// Reset forgets any sequence in progress, as at the start of a stream (a
// player calls it when it seeks).
func (s *Sanitizer) Reset() {
	s.state, s.seq, s.utf, s.c2, s.drop = stGround, s.seq[:0], s.utf[:0], false, false
}

// Append appends the sanitised form of src to dst and returns it.
func (s *Sanitizer) Append(dst, src []byte) []byte {
	for i := 0; i < len(src); i++ {
		b := src[i]
		if s.state == stGround && len(s.utf) == 0 && b >= 0x20 && b < 0x7f {
			// Fast path: a run of printable ASCII.
			j := i + 1
			for j < len(src) && src[j] >= 0x20 && src[j] < 0x7f {
				j++
			}
			dst = append(dst, src[i:j]...)
			i = j - 1
			continue
		}
		dst = s.byte(dst, b)
	}
	return dst
}

// Flush ends the stream: a sequence still in progress is dropped, and an
// unfinished UTF-8 character becomes U+FFFD.
func (s *Sanitizer) Flush(dst []byte) []byte {
	if len(s.utf) > 0 {
		dst = utf8.AppendRune(dst, utf8.RuneError)
	}
	s.Reset()
	return dst
}

// byte runs the state machine on one byte.
func (s *Sanitizer) byte(dst []byte, b byte) []byte {
	if s.state != stGround && s.state != stOSC && s.state != stString && b >= 0x80 {
		// A non-ASCII byte ends an escape or control sequence: drop it
		// and read the byte as text.
		s.state, s.seq = stGround, s.seq[:0]
	}
	switch s.state {
	case stGround:
		return s.ground(dst, b)
	case stEsc:
		return s.esc(dst, b)
	case stEscInter:
		switch {
		case b >= 0x20 && b <= 0x2f:
			s.collect(b)
		case b >= 0x30 && b <= 0x7e:
			s.collect(b)
			if !s.drop {
				dst = append(dst, s.seq...)
			}
			s.state, s.seq = stGround, s.seq[:0]
		default:
			dst = s.control(dst, b)
		}
		return dst
	case stCSI:
		switch {
		case b >= 0x20 && b <= 0x3f:
			s.collect(b)
		case b >= 0x40 && b <= 0x7e:
			s.collect(b)
			if !s.drop {
				dst = appendCSI(dst, s.seq, s.DropAltScreen)
			}
			s.state, s.seq = stGround, s.seq[:0]
		case b == 0x7f:
			// DEL is ignored inside a sequence.
		default:
			dst = s.control(dst, b)
		}
		return dst
	case stOSC, stString:
		switch {
		case b == 0x07 && s.state == stOSC:
			s.state = stGround
		case b == 0x1b:
			s.state = stStrEsc
		case b == 0x18 || b == 0x1a:
			s.state = stGround
		case s.c2 && b == 0x9c: // U+009C, the 8-bit ST
			s.state = stGround
		}
		s.c2 = b == 0xc2
		return dst
	case stStrEsc:
		s.c2 = false
		if b == '\\' {
			s.state = stGround
			return dst
		}
		// ESC and anything else ends the string and starts a sequence.
		s.begin(stEsc, 0x1b)
		return s.esc(dst, b)
	}
	return dst
}

// control handles a C0 control inside an escape or control sequence: ESC
// restarts, CAN and SUB cancel, the rest take effect (as in a terminal)
// and the sequence goes on.
func (s *Sanitizer) control(dst []byte, b byte) []byte {
	switch b {
	case 0x1b:
		s.begin(stEsc, 0x1b)
	case 0x18, 0x1a:
		s.state, s.seq = stGround, s.seq[:0]
	case 0x7f:
	default:
		if b < 0x20 && b != 0x05 {
			dst = append(dst, b)
		}
	}
	return dst
}

// collect adds b to the sequence in progress; one that grows past maxSeq
// is no real terminal's and is dropped whole when it ends.
func (s *Sanitizer) collect(b byte) {
	if len(s.seq) >= maxSeq {
		s.drop = true
		return
	}
	s.seq = append(s.seq, b)
}

// begin starts collecting a sequence with the given introducer.
func (s *Sanitizer) begin(state int, intro ...byte) {
	s.state, s.seq, s.drop = state, append(s.seq[:0], intro...), false
}

// ground handles a byte of text.
func (s *Sanitizer) ground(dst []byte, b byte) []byte {
	if len(s.utf) > 0 {
		if b >= 0x80 && b <= 0xbf {
			s.utf = append(s.utf, b)
			if !utf8.FullRune(s.utf) {
				return dst
			}
			r, n := utf8.DecodeRune(s.utf)
			if r == utf8.RuneError && n <= 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = s.rune(dst, r, s.utf)
			}
			s.utf = s.utf[:0]
			return dst
		}
		// The character was cut short: mark it, then read b afresh.
		dst = utf8.AppendRune(dst, utf8.RuneError)
		s.utf = s.utf[:0]
	}
	switch {
	case b == 0x1b:
		s.begin(stEsc, 0x1b)
	case b == 0x05: // ENQ: the terminal would send its answerback
	case b < 0x80:
		dst = append(dst, b)
	case b >= 0xc2 && b <= 0xf4:
		s.utf = append(s.utf[:0], b)
	default: // a byte that cannot start UTF-8; never sent on as raw 8-bit
		dst = utf8.AppendRune(dst, utf8.RuneError)
	}
	return dst
}

// rune handles a complete non-ASCII character: C1 controls are read as
// their ESC forms, everything else is text.
func (s *Sanitizer) rune(dst []byte, r rune, enc []byte) []byte {
	if r < 0x80 || r > 0x9f {
		return append(dst, enc...)
	}
	switch r {
	case 0x9b: // CSI
		s.begin(stCSI, 0x1b, '[')
	case 0x9d: // OSC
		s.state = stOSC
	case 0x90, 0x98, 0x9e, 0x9f: // DCS, SOS, PM, APC
		s.state = stString
	}
	// Other C1 controls (IND, NEL, ST alone, ...) are dropped: they have
	// 7-bit forms for any program that means them.
	return dst
}

// esc handles the byte after ESC.
func (s *Sanitizer) esc(dst []byte, b byte) []byte {
	switch {
	case b == '[':
		s.state, s.seq = stCSI, append(s.seq, b)
	case b == ']':
		s.state, s.seq = stOSC, s.seq[:0]
	case b == 'P' || b == 'X' || b == '^' || b == '_':
		s.state, s.seq = stString, s.seq[:0]
	case b >= 0x20 && b <= 0x2f:
		// Only character set designations and DEC line attributes: ESC %
		// would take the terminal out of UTF-8, and ESC SP changes the
		// form of its reports.
		s.state, s.seq = stEscInter, append(s.seq, b)
		s.drop = !(b == '(' || b == ')' || b == '*' || b == '+' || b == '-' || b == '.' || b == '/' || b == '#')
	case b == 'Z' || b == '\\': // DECID asks for a report; a lone ST means nothing
		s.state, s.seq = stGround, s.seq[:0]
	case b == 'c' && s.DropAltScreen:
		// A full reset would also take the player off its screen and
		// drop its scroll region: what it shows of it is a clear screen.
		dst = append(dst, "\x1b[0m\x1b[H\x1b[2J"...)
		s.state, s.seq = stGround, s.seq[:0]
	case b >= 0x30 && b <= 0x7e:
		dst = append(dst, 0x1b, b)
		s.state, s.seq = stGround, s.seq[:0]
	default:
		dst = s.control(dst, b)
	}
	return dst
}

// Private modes (DECSET/DECRST) a recording may not set on the viewer's
// terminal: they make it report (mouse, focus, paste brackets), resize it
// (DECCOLM), change what its keys send (DECCKM), or hold its drawing
// (synchronised output).
var droppedModes = map[string]bool{
	"1": true, "3": true, "9": true, "1000": true, "1001": true, "1002": true, "1003": true,
	"1004": true, "1005": true, "1006": true, "1015": true, "1016": true, "2004": true, "2026": true,
}

var altScreenModes = map[string]bool{"47": true, "1047": true, "1049": true}

// appendCSI appends the control sequence seq (ESC [ ... final) if it is one
// that only draws, else nothing; mode lists are filtered.
func appendCSI(dst, seq []byte, dropAlt bool) []byte {
	if len(seq) > maxSeq {
		return dst
	}
	body := seq[2 : len(seq)-1]
	final := seq[len(seq)-1]
	var priv byte
	if len(body) > 0 && body[0] >= 0x3c && body[0] <= 0x3f {
		priv, body = body[0], body[1:]
	}
	n := 0
	for n < len(body) && body[n] >= 0x30 && body[n] <= 0x3b {
		n++
	}
	params, inter := body[:n], body[n:]
	for _, c := range inter {
		if c < 0x20 || c > 0x2f {
			return dst // a parameter byte after an intermediate: malformed
		}
	}
	keep := false
	switch {
	case priv == 0 && len(inter) == 0:
		switch final {
		case 'h', 'l': // ANSI modes: insert (4) and newline (20) only
			return appendModes(dst, seq[:2], 0, params, final, func(m string) bool { return m == "4" || m == "20" })
		case '@', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'P', 'S', 'T', 'X', 'Z',
			'`', 'a', 'b', 'd', 'e', 'f', 'g', 'm', 'r', 's', 'u':
			keep = true
		}
	case priv == '?' && len(inter) == 0:
		switch final {
		case 'h', 'l':
			return appendModes(dst, seq[:2], '?', params, final, func(m string) bool {
				return !droppedModes[m] && !(dropAlt && altScreenModes[m])
			})
		case 'J', 'K': // selective erase
			keep = true
		}
	case priv == 0 && string(inter) == " ":
		keep = final == 'q' || final == '@' || final == 'A' // cursor style, scroll left/right
	case priv == 0 && string(inter) == "!":
		keep = final == 'p' // soft reset
	}
	if keep {
		dst = append(dst, seq...)
	}
	return dst
}

// appendModes appends a set/reset-mode sequence holding only the modes
// allowed; nothing if none is.
func appendModes(dst, intro []byte, priv byte, params []byte, final byte, allowed func(string) bool) []byte {
	var kept []byte
	start := 0
	for i := 0; i <= len(params); i++ {
		if i < len(params) && params[i] != ';' {
			continue
		}
		m := string(params[start:i])
		start = i + 1
		if _, err := strconv.Atoi(m); err != nil || !allowed(m) {
			continue
		}
		if len(kept) > 0 {
			kept = append(kept, ';')
		}
		kept = append(kept, m...)
	}
	if len(kept) == 0 {
		return dst
	}
	dst = append(dst, intro...)
	if priv != 0 {
		dst = append(dst, priv)
	}
	dst = append(dst, kept...)
	return append(dst, final)
}

// Writer sanitises everything written through it, for replay to a pipe or
// a terminal. Close flushes an unfinished sequence (dropping it) without
// closing the underlying writer.
type Writer struct {
	w   io.Writer
	s   Sanitizer
	buf []byte
}

// NewWriter returns a Writer that sanitises into w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write sanitises p and writes the result; it reports len(p) on success
// because every input byte was consumed, even those dropped.
func (w *Writer) Write(p []byte) (int, error) {
	w.buf = w.s.Append(w.buf[:0], p)
	if len(w.buf) > 0 {
		if _, err := w.w.Write(w.buf); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Close ends the stream.
func (w *Writer) Close() error {
	w.buf = w.s.Flush(w.buf[:0])
	if len(w.buf) > 0 {
		_, err := w.w.Write(w.buf)
		return err
	}
	return nil
}
