package recorder

import (
	"encoding/binary"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendEventLine appends the asciicast event line of raw session bytes p
// (an "o" or "i" event of type typ at time at) to dst: the recorder's hot
// path, which every recorded byte passes through once.
//
// It is decode (asciinema's UTF-8 repair, d holding a character split
// across events) followed by encodeEvent's JSON escaping, fused into one
// pass over p so that plain text is copied in runs, checked eight bytes at
// a time, instead of being decoded, validated, converted to a string and
// escaped in four passes. FuzzAppendEventLine holds the two to the same
// bytes. If p yields no text (only part of a character so far), dst is
// returned unchanged: the character comes with the next event.
func appendEventLine(dst []byte, at time.Duration, typ byte, p []byte, d *utf8Decoder, final bool) []byte {
	mark := len(dst)
	dst = append(dst, '[')
	dst = strconv.AppendFloat(dst, roundMicro(at.Seconds()), 'f', -1, 64)
	dst = append(dst, ',', '"', typ, '"', ',', '"')
	text := len(dst)
	dst = appendText(dst, p, d, final)
	if len(dst) == text {
		return dst[:mark]
	}
	return append(dst, '"', ']', '\n')
}

// appendText appends the JSON-escaped text of p, without quotes, decoding
// UTF-8 as utf8Decoder.decode does.
func appendText(dst, p []byte, d *utf8Decoder, final bool) []byte {
	if d.n > 0 {
		// A character held from the previous event: the slow path of
		// decode completes (or gives up on) it, a few bytes at most.
		head, used := d.resume(nil, p, final)
		var clean utf8Decoder // head is valid UTF-8: nothing to hold
		dst = appendText(dst, head, &clean, true)
		p = p[used:]
	}
	// Room for the worst case, a control byte in six, so that the loop
	// below writes by index instead of appending byte by byte.
	w := len(dst)
	if need := w + 6*len(p); need > cap(dst) {
		dst = append(dst[:cap(dst)], make([]byte, need-cap(dst))...)
	}
	buf := dst[:cap(dst)]
	i, start := 0, 0
	for i < len(p) {
		// Runs of text that stands for itself, eight bytes at a time.
		for i+8 <= len(p) && plain8(binary.LittleEndian.Uint64(p[i:])) {
			i += 8
		}
		for i < len(p) && jsonPlain[p[i]] {
			i++
		}
		if i == len(p) {
			break
		}
		c := p[i]
		if c >= utf8.RuneSelf {
			if c < 0xC2 || c > 0xF4 {
				// A continuation byte, C0, C1 or F5..FF: never the start
				// of a character, one U+FFFD each. Binary output is full
				// of them; classify need not be asked.
				if start < i {
					w += copy(buf[w:], p[start:i])
				}
				buf[w], buf[w+1], buf[w+2] = 0xEF, 0xBF, 0xBD
				w += 3
				i++
				start = i
				continue
			}
			n, st := classify(p[i:])
			if st == seqComplete && !(n == 3 && c == 0xE2 && p[i+1] == 0x80 && p[i+2]&0xFE == 0xA8) {
				i += n // valid, and it stands for itself: the run goes on
				continue
			}
			if start < i {
				w += copy(buf[w:], p[start:i])
			}
			switch {
			case st == seqComplete: // U+2028, U+2029: encoding/json escapes them
				w += copy(buf[w:], `\u202`)
				buf[w] = hexDigits[p[i+2]&0xF]
				w++
				i += n
			case st == seqIncomplete, st == seqInvalid && !final && truncatedSurrogate(p[i:]):
				d.n = copy(d.pend[:], p[i:])
				i = len(p)
			default:
				buf[w], buf[w+1], buf[w+2] = 0xEF, 0xBF, 0xBD // U+FFFD
				w += 3
				i += n
			}
			start = i
			continue
		}
		if start < i {
			w += copy(buf[w:], p[start:i])
		}
		esc := w
		w += putEscape(buf[w:], c)
		// A run of one escaped byte (NUL padding, a stream of zeros) is
		// written once and then doubled, instead of byte by byte.
		j := i + 1
		for j < len(p) && p[j] == c {
			j++
		}
		if k := j - i; k > 1 {
			one := w - esc
			for w < esc+k*one {
				w += copy(buf[w:esc+k*one], buf[esc:w])
			}
		}
		i = j
		start = i
	}
	w += copy(buf[w:], p[start:])
	dst = dst[:w]
	if final && d.n > 0 {
		dst = appendText(dst, d.flushHeld(nil), &utf8Decoder{}, true)
	}
	return dst
}

// appendEscape appends the JSON escape of the ASCII byte c, which is not
// jsonPlain, as encoding/json spells it.
func appendEscape(dst []byte, c byte) []byte {
	var esc [6]byte
	return append(dst, esc[:putEscape(esc[:], c)]...)
}

// putEscape writes the JSON escape of the ASCII byte c, which is not
// jsonPlain, as encoding/json spells it, to b (room for six bytes) and
// returns its length.
func putEscape(b []byte, c byte) int {
	var short byte
	switch c {
	case '"', '\\':
		short = c
	case '\b':
		short = 'b'
	case '\f':
		short = 'f'
	case '\n':
		short = 'n'
	case '\r':
		short = 'r'
	case '\t':
		short = 't'
	default:
		_ = b[5]
		b[0], b[1], b[2], b[3], b[4], b[5] = '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF]
		return 6
	}
	b[0], b[1] = '\\', short
	return 2
}

const hexDigits = "0123456789abcdef"

// jsonPlain marks the ASCII bytes that stand for themselves in a JSON
// string: printable, not '"' and not '\'.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plain8 reports whether all eight bytes of x are jsonPlain, with the
// usual SWAR tests: no byte below 0x20, none with the high bit, and none
// equal to '"' or '\'.
func plain8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	below := (x - 0x20*ones) & ^x & highs
	quote := x ^ '"'*ones
	slash := x ^ '\\'*ones
	zero := ((quote - ones) & ^quote) | ((slash - ones) & ^slash)
	return (below|zero|x)&highs == 0
}

// resume completes, or gives up on, the character held from the previous
// call with the first bytes of p. It appends the text decided so far to dst
// and returns how many bytes of p it used: the rest is decoded afresh.
func (d *utf8Decoder) resume(dst, p []byte, final bool) ([]byte, int) {
	i := 0
	for d.n > 0 && i < len(p) {
		d.pend[d.n] = p[i]
		d.n++
		i++
		held := d.pend[:d.n]
		n, st := classify(held)
		switch {
		case st == seqIncomplete:
		case st == seqInvalid && !final && i == len(p) && truncatedSurrogate(held):
		case st == seqComplete:
			// Bytes are added one at a time and held only while they
			// form a valid prefix, so a complete sequence is all of held.
			dst = append(dst, held...)
			d.n = 0
		default:
			// held[:n] is the maximal invalid subpart; what follows it
			// is decoded afresh, ahead of the rest of p.
			var rest [utf8.UTFMax]byte
			r := copy(rest[:], held[n:])
			d.n = 0
			dst = append(dst, replacement...)
			dst = d.decode(dst, rest[:r], false)
		}
	}
	return dst, i
}

// flushHeld appends the held bytes as the stream ends mid-character: a
// complete character as itself, anything else as U+FFFD.
func (d *utf8Decoder) flushHeld(dst []byte) []byte {
	held := d.pend[:d.n]
	d.n = 0
	for len(held) > 0 {
		n, st := classify(held)
		if st == seqComplete {
			dst = append(dst, held[:n]...)
		} else {
			dst = append(dst, replacement...)
		}
		if st == seqIncomplete {
			break
		}
		held = held[n:]
	}
	return dst
}
