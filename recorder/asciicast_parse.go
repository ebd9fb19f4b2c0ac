package recorder

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// ParseEventLine decodes one event line ([time, type, data], no newline).
// A seek decodes every line between a keyframe and its target, and
// encoding/json's generic path (an array of raw messages, then each
// element) is most of that cost, so lines in the form encodeEvent writes
// are decoded here directly; anything else (other spacing, a number in
// exponent form, an escape this parser does not know) goes to
// Event.UnmarshalJSON, which also words the errors. The result is the same
// either way (FuzzParseEventLine holds it to that).
func ParseEventLine(line []byte) (Event, error) {
	if ev, ok := parseEventFast(line); ok {
		if err := ev.decodeBinary(); err != nil {
			return Event{}, err
		}
		return ev, nil
	}
	var ev Event
	if err := json.Unmarshal(line, &ev); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// parseEventFast decodes [NUMBER,"TYPE","DATA"] with no spaces; ok is
// false for anything else.
func parseEventFast(line []byte) (Event, bool) {
	if len(line) < 8 || line[0] != '[' || line[len(line)-1] != ']' {
		return Event{}, false
	}
	c := bytes.IndexByte(line, ',')
	if c < 2 {
		return Event{}, false
	}
	num := line[1:c]
	for _, b := range num {
		if (b < '0' || b > '9') && b != '.' {
			return Event{}, false // signs and exponents: leave to encoding/json
		}
	}
	if num[0] == '.' || num[len(num)-1] == '.' || (len(num) > 1 && num[0] == '0' && num[1] != '.') {
		return Event{}, false
	}
	t, err := strconv.ParseFloat(string(num), 64)
	if err != nil || math.IsInf(t, 0) {
		return Event{}, false
	}
	rest := line[c+1 : len(line)-1]
	typ, rest, ok := parseJSONString(rest)
	if !ok || typ == "" || len(rest) == 0 || rest[0] != ',' {
		return Event{}, false
	}
	data, rest, ok := parseJSONString(rest[1:])
	if !ok || len(rest) != 0 {
		return Event{}, false
	}
	return Event{Time: t, Type: typ, Data: data}, true
}

// parseJSONString decodes the JSON string at the start of b and returns it
// and what follows; ok is false for anything encoding/json would decode
// differently or refuse.
func parseJSONString(b []byte) (s string, rest []byte, ok bool) {
	if len(b) < 2 || b[0] != '"' {
		return "", nil, false
	}
	// Most data has no escape: find the end quote and check it is plain.
	i := 1
	for i < len(b) && b[i] != '"' && b[i] != '\\' && b[i] >= 0x20 {
		i++
	}
	if i < len(b) && b[i] == '"' {
		if !utf8.Valid(b[1:i]) {
			return "", nil, false
		}
		return string(b[1:i]), b[i+1:], true
	}
	out, rest, ok := AppendJSONString(make([]byte, 0, len(b)), b)
	if !ok {
		return "", nil, false
	}
	return string(out), rest, true
}

// AppendJSONString decodes the JSON string at the start of b (its opening
// quote first), appends it to dst, and returns dst and what follows the
// string; ok is false for anything encoding/json would decode differently
// or refuse. It allocates nothing but dst's growth, for readers that scan
// whole recordings (sessions --grep) as for the player's seek.
func AppendJSONString(dst, b []byte) (out, rest []byte, ok bool) {
	if len(b) < 2 || b[0] != '"' {
		return dst, nil, false
	}
	b = b[1:]
	start := len(dst)
	i := 0
	for i < len(b) {
		ch := b[i]
		switch {
		case ch == '"':
			if !utf8.Valid(dst[start:]) {
				return dst, nil, false
			}
			return dst, b[i+1:], true
		case ch < 0x20:
			return dst, nil, false
		case ch != '\\':
			j := i + 1
			for j < len(b) && b[j] != '"' && b[j] != '\\' && b[j] >= 0x20 {
				j++
			}
			dst = append(dst, b[i:j]...)
			i = j
			continue
		}
		if i+1 >= len(b) {
			return dst, nil, false
		}
		switch e := b[i+1]; e {
		case '"', '\\', '/':
			dst = append(dst, e)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(b[i+2:])
			if !ok {
				return dst, nil, false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				// A pair makes one character; a lone half is left to
				// encoding/json's rules.
				if i+1 < len(b) && b[i] == '\\' && b[i+1] == 'u' {
					if r2, ok := hex4(b[i+2:]); ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							dst = utf8.AppendRune(dst, dec)
							i += 6
							continue
						}
					}
				}
				return dst, nil, false
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return dst, nil, false
		}
		i += 2
	}
	return dst, nil, false
}

// hex4 reads four hex digits.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
