package recorder

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	simdbase64 "github.com/segmentio/asm/base64"
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
	// Room for the worst case, a control byte in six, and for the last
	// eight-byte store, so that the loop below writes by index, a word at
	// a time, instead of appending byte by byte.
	w := len(dst)
	if need := w + 6*len(p) + 8; need > cap(dst) {
		dst = append(dst[:cap(dst)], make([]byte, need-cap(dst))...)
	}
	buf := dst[:cap(dst)]
	i := 0
	if plainBlock > 0 && len(p) >= plainBlock {
		defer endPlain()
	}
	for i < len(p) {
		if plainBlock > 0 {
			// Text that stands for itself, a vector at a time: the
			// block is stored whole, and w moves past its plain bytes
			// only. buf has room: w is at most 6*i past its start, and
			// 6*(len(p)-i) >= 32 bytes are left for the rest.
			for i+plainBlock <= len(p) {
				n := copyPlain((*[32]byte)(buf[w:]), (*[32]byte)(p[i:]))
				w += n
				i += n
				if n == plainBlock {
					continue
				}
				// A lone escape (the \r\n of each line) is written
				// here; a byte that may start a character, or the
				// start of a run (NUL padding), goes to the paths
				// below.
				c := p[i]
				e := byteSpelling[c]
				if e&spellStartsChar != 0 || i+1 == len(p) || p[i+1] == c {
					break
				}
				binary.LittleEndian.PutUint64(buf[w:], e)
				w += spellLen(e)
				i++
			}
			if i == len(p) {
				break
			}
		}
		if i+8 <= len(p) {
			// Text that stands for itself, eight bytes at a time.
			x := binary.LittleEndian.Uint64(p[i:])
			if plain8(x) {
				binary.LittleEndian.PutUint64(buf[w:], x)
				w += 8
				i += 8
				continue
			}
			// A run of one escaped byte (NUL padding, a stream of
			// zeros) is written once and then doubled.
			if c := byte(x); x == uint64(c)*0x0101010101010101 && byteSpelling[c]&spellStartsChar == 0 {
				j := i + 8
				for j+8 <= len(p) && binary.LittleEndian.Uint64(p[j:]) == x {
					j += 8
				}
				for j < len(p) && p[j] == c {
					j++
				}
				e := byteSpelling[c]
				one := spellLen(e)
				binary.LittleEndian.PutUint64(buf[w:], e)
				for end, n := w+(j-i)*one, w+one; n < end; {
					n += copy(buf[n:end], buf[w:n])
				}
				w += (j - i) * one
				i = j
				continue
			}
		}
		// Then up to eight bytes one at a time. Every byte but the start
		// of a multi-byte character has a fixed spelling: itself, its
		// escape, or U+FFFD (continuation bytes, C0, C1 and F5..FF never
		// start a character, and a lead not followed by a continuation
		// byte is invalid: three in four leads of binary output). One
		// store writes it, and one branch, which binary output takes for
		// one byte in twenty, finds the leads that classify must see. The
		// last byte of p, which may start a character the next event
		// completes, is left to classify too.
		end := min(i+8, len(p)-1)
		for i < end {
			e := byteSpelling[p[i]]
			if e>>63&continuation[p[i+1]] != 0 {
				break
			}
			binary.LittleEndian.PutUint64(buf[w:], e)
			w += spellLen(e)
			i++
		}
		if i == end && i < len(p)-1 {
			continue
		}
		c := p[i]
		if e := byteSpelling[c]; e&spellStartsChar == 0 {
			// The last byte, and it starts no character.
			binary.LittleEndian.PutUint64(buf[w:], e)
			w += spellLen(e)
			i++
			continue
		}
		n, st := classify(p[i:])
		switch {
		case st == seqComplete && !(n == 3 && c == 0xE2 && p[i+1] == 0x80 && p[i+2]&0xFE == 0xA8):
			w += copy(buf[w:], p[i:i+n]) // valid, and it stands for itself
		case st == seqComplete: // U+2028, U+2029: encoding/json escapes them
			w += copy(buf[w:], `\u202`)
			buf[w] = hexDigits[p[i+2]&0xF]
			w++
		case st == seqIncomplete, st == seqInvalid && !final && truncatedSurrogate(p[i:]):
			d.n = copy(d.pend[:], p[i:])
			n = len(p) - i
		default:
			buf[w], buf[w+1], buf[w+2] = 0xEF, 0xBF, 0xBD // U+FFFD
			w += 3
		}
		i += n
	}
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

// byteSpelling holds, for each byte value, how it is spelt in an event
// line when it does not start a multi-byte character: up to six bytes in
// the low bytes of the word (little-endian), their count at spellLenShift.
// The leads C2..F4 are spelt U+FFFD, what they stand for when no
// continuation byte follows, and marked spellStartsChar: followed by one,
// classify must look at them.
var byteSpelling = func() (t [256]uint64) {
	for c := range 256 {
		var b []byte
		var starts uint64
		switch {
		case c < utf8.RuneSelf && jsonPlain[c]:
			b = []byte{byte(c)}
		case c < utf8.RuneSelf:
			b = appendEscape(nil, byte(c))
		case c >= 0xC2 && c <= 0xF4:
			b, starts = []byte(replacement), spellStartsChar
		default:
			b = []byte(replacement)
		}
		var word [8]byte
		copy(word[:], b)
		t[c] = binary.LittleEndian.Uint64(word[:]) | uint64(len(b))<<spellLenShift | starts
	}
	return t
}()

const (
	spellLenShift   = 56
	spellStartsChar = 1 << 63
)

// spellLen is the number of bytes the spelling e writes.
func spellLen(e uint64) int { return int(e >> spellLenShift & 7) }

// continuation is 1 for the UTF-8 continuation bytes 0x80..0xBF, as a word
// so that appendText's lead test is one AND and one branch.
var continuation = func() (t [256]uint64) {
	for c := 0x80; c < 0xC0; c++ {
		t[c] = 1
	}
	return t
}()

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

// appendOutputLine appends the event line of output bytes p: an "o" event
// when the bytes d holds and p are text, else a "b" event that keeps them
// all. Terminal output is text; binary output is cat of an archive, a
// Latin-1 log, noise on a serial console.
func appendOutputLine(dst []byte, at time.Duration, p []byte, d *utf8Decoder) []byte {
	if d.isText(p) {
		return appendEventLine(dst, at, 'o', p, d, false)
	}
	return appendBinaryLine(dst, at, p, d)
}

// textLine reports whether line, what appendOutputLine appended (nothing,
// or one event line), is an "o" event: after the time, which holds no
// comma, comes `,"o"`.
func textLine(line []byte) bool {
	k := bytes.IndexByte(line, ',')
	return k >= 0 && k+2 < len(line) && line[k+2] == EventOutput[0]
}

// appendBinaryLine appends the "b" event line of output bytes that are not
// UTF-8 text: the bytes d holds (the start of a character the previous "o"
// event left incomplete) and then p, as standard base64, so that every
// byte the session printed is in the recording as it was. d is left empty.
// Base64 is 4/3 of the bytes where an "o" event would spell binary output
// at about 2.6 (U+FFFD for every invalid byte, \u00XX for every control).
// segmentio/asm's encoder (AVX2 on amd64, NEON on arm64, the standard
// library's elsewhere; the same output) writes it at 10 GB/s on the bench
// machine where encoding/base64 managed 1: with it, base64 fell from a
// tenth of the bastion's CPU on binary output to a hundredth.
func appendBinaryLine(dst []byte, at time.Duration, p []byte, d *utf8Decoder) []byte {
	if d.n > 0 {
		p = append(append(make([]byte, 0, d.n+len(p)), d.pend[:d.n]...), p...)
		d.n = 0
	}
	if len(p) == 0 {
		return dst
	}
	dst = append(dst, '[')
	dst = strconv.AppendFloat(dst, roundMicro(at.Seconds()), 'f', -1, 64)
	dst = append(dst, ',', '"', EventBinary[0], '"', ',', '"')
	n, m := len(dst), simdbase64.StdEncoding.EncodedLen(len(p))
	dst = slices.Grow(dst, m+3)[:n+m] // and room for the closing `"]\n`
	simdbase64.StdEncoding.Encode(dst[n:], p)
	return append(dst, '"', ']', '\n')
}

// isText reports whether the bytes d holds followed by p are UTF-8 text,
// allowing p to end in the start of a character (which d then holds for
// the next event): an "o" event then carries them exactly. Anything else
// is recorded as a "b" event. utf8.Valid stops at the first invalid byte,
// which binary output has within a few bytes, and checks text at several
// bytes a nanosecond.
func (d *utf8Decoder) isText(p []byte) bool {
	if d.n > 0 {
		var seq [2 * utf8.UTFMax]byte
		k := copy(seq[:], d.pend[:d.n])
		used := copy(seq[k:], p[:min(len(p), utf8.UTFMax-1)])
		n, st := classify(seq[:k+used])
		switch {
		case st == seqIncomplete:
			return used == len(p) // p is all of it, and still only a start
		case st == seqInvalid:
			return false
		}
		p = p[n-k:]
	}
	if utf8.Valid(p) {
		return true
	}
	// A character cut short at the end: its lead is one of the last three
	// bytes, and everything before it must be valid.
	for k := len(p) - 1; k >= max(len(p)-(utf8.UTFMax-1), 0); k-- {
		if p[k] >= 0xC0 {
			_, st := classify(p[k:])
			return st == seqIncomplete && utf8.Valid(p[:k])
		}
		if p[k] < 0x80 {
			return false
		}
	}
	return false
}
