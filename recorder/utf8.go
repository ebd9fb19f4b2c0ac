package recorder

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// utf8Decoder turns a byte stream into valid UTF-8 text the way asciinema's
// recorder does (Python's incremental "utf-8" decoder with errors="replace"):
//
//   - a character split across two reads is held back and emitted whole with
//     the later read, so no event ever carries half a character;
//   - each maximal invalid subsequence (a valid start of a sequence cut short,
//     or a single byte that cannot start one) becomes one U+FFFD, the
//     Unicode-recommended practice Python follows.
//
// Go's utf8.DecodeRune replaces byte by byte instead, so "\xe2\x82A" would
// give two U+FFFD where asciinema gives one; this type exists to match.
// The zero value is ready to use. It is not safe for concurrent use.
type utf8Decoder struct {
	pend [utf8.UTFMax]byte // an incomplete but so far valid sequence
	n    int
}

const replacement = "\uFFFD"

type seqStatus int

const (
	seqComplete   seqStatus = iota // b[:n] is one valid character
	seqInvalid                     // b[:n] is a maximal invalid subpart
	seqIncomplete                  // b is a valid prefix that needs more bytes
)

// classify examines the sequence that starts at b[0] (len(b) > 0).
func classify(b []byte) (int, seqStatus) {
	c := b[0]
	if c < utf8.RuneSelf {
		return 1, seqComplete
	}
	var need int
	lo, hi := byte(0x80), byte(0xBF) // allowed range of the second byte
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0 // no overlong forms
	case c == 0xED:
		need, hi = 2, 0x9F // no surrogates
	case c >= 0xE1 && c <= 0xEF:
		need = 2
	case c == 0xF0:
		need, lo = 3, 0x90 // no overlong forms
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F // nothing above U+10FFFF
	default: // continuation bytes, C0, C1, F5..FF can never start a character
		return 1, seqInvalid
	}
	for j := 1; j <= need; j++ {
		if j >= len(b) {
			return j, seqIncomplete
		}
		l, h := byte(0x80), byte(0xBF)
		if j == 1 {
			l, h = lo, hi
		}
		if b[j] < l || b[j] > h {
			return j, seqInvalid
		}
	}
	return need + 1, seqComplete
}

// truncatedSurrogate reports whether b is ED A0..BF: the start of an
// encoded surrogate, which is invalid UTF-8. CPython's stateful decoder
// holds these two bytes back when they end a read instead of replacing them
// at once (so that its surrogatepass handler can work); asciinema's events
// therefore carry their U+FFFD one read later, and so do ours.
func truncatedSurrogate(b []byte) bool {
	return len(b) == 2 && b[0] == 0xED && b[1] >= 0xA0 && b[1] <= 0xBF
}

// decode appends the text of p to dst and returns it. With final set, held
// bytes are flushed as U+FFFD: the stream has ended mid-character.
func (d *utf8Decoder) decode(dst, p []byte, final bool) []byte {
	// Complete, or give up on, the sequence held from the previous call.
	dst, i := d.resume(dst, p, final)
	start := i // start of the current run of valid text
	for i < len(p) {
		if p[i] < utf8.RuneSelf {
			i++
			continue
		}
		if r, size := utf8.DecodeRune(p[i:]); r != utf8.RuneError || size > 1 {
			i += size
			continue
		}
		dst = append(dst, p[start:i]...)
		n, st := classify(p[i:])
		switch {
		case st == seqIncomplete, st == seqInvalid && !final && truncatedSurrogate(p[i:]):
			d.n = copy(d.pend[:], p[i:])
			i = len(p)
		case st == seqInvalid:
			dst = append(dst, replacement...)
			i += n
		default:
			// DecodeRune and classify agree on validity; keep the bytes
			// rather than lose them should they ever disagree.
			dst = append(dst, p[i:i+n]...)
			i += n
		}
		start = i
	}
	dst = append(dst, p[start:i]...)
	if final && d.n > 0 {
		dst = d.flushHeld(dst)
	}
	return dst
}

// validUTF8 is utf8.Valid, quicker on the event lines of binary output:
// those are mostly U+FFFD (EF BF BD) between short runs of ASCII, which
// utf8.Valid decodes rune by rune at about 200 MB/s on the bench machine;
// this passes a U+FFFD with three compares and skips to the next non-ASCII
// byte of a word at once (about 480 MB/s). FuzzValidUTF8 holds it to
// utf8.Valid.
func validUTF8(p []byte) bool {
	const highs = 0x8080808080808080
	i := 0
	for i < len(p) {
		// ASCII (text, escapes, zeros) 32 bytes at a time.
		for i+32 <= len(p) && (binary.LittleEndian.Uint64(p[i:])|binary.LittleEndian.Uint64(p[i+8:])|
			binary.LittleEndian.Uint64(p[i+16:])|binary.LittleEndian.Uint64(p[i+24:]))&highs == 0 {
			i += 32
		}
		if i == len(p) {
			break
		}
		if i+8 <= len(p) {
			x := binary.LittleEndian.Uint64(p[i:]) & highs
			if x == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(x) / 8 // the first byte with the high bit
		}
		c := p[i]
		switch {
		case c < utf8.RuneSelf:
			i++
		case c == 0xEF && i+2 < len(p) && p[i+1] == 0xBF && p[i+2] == 0xBD:
			i += 3
		default:
			r, n := utf8.DecodeRune(p[i:])
			if r == utf8.RuneError && n == 1 {
				return false
			}
			i += n
		}
	}
	return true
}
