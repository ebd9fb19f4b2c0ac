package recorder

import (
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// The expected strings below were produced by CPython 3
// (bytes.decode("utf-8", "replace") and
// codecs.getincrementaldecoder("utf-8")("replace")), the decoder asciinema
// records with.

func TestUTF8DecodeWhole(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain ascii", "plain ascii"},
		{"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", "h\u00e9llo \u20ac \U0001f600"},
		{"\xe2\x82\x41", "\ufffdA"},
		{"\xed\xa0\x80", "\ufffd\ufffd\ufffd"},
		{"\xf0\x9f", "\ufffd"},
		{"\xc0\xaf", "\ufffd\ufffd"},
		{"\xe0\x80\xaf", "\ufffd\ufffd\ufffd"},
		{"\xf4\x90\x80\x80", "\ufffd\ufffd\ufffd\ufffd"},
		{"\xff\xfe\x41", "\ufffd\ufffdA"},
		{"\x80\x80", "\ufffd\ufffd"},
		{"\xf0\x9f\x98", "\ufffd"},
		{"\x61\xf0\x9f\x98\x80\xe2\x82", "a\U0001f600\ufffd"},
		{"\xc3", "\ufffd"},
		{"\xf1\x80\x80\xe1\x80\xc2", "\ufffd\ufffd\ufffd"},
		{"\xef\xbf\xbd", "\ufffd"},
	}
	for _, tt := range tests {
		var d utf8Decoder
		if got := string(d.decode(nil, []byte(tt.in), true)); got != tt.want {
			t.Errorf("decode(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := referenceDecode([]byte(tt.in)); got != tt.want {
			t.Errorf("referenceDecode(%q) = %q, want %q (the test oracle is wrong)", tt.in, got, tt.want)
		}
	}
}

// TestUTF8DecodeIncremental checks what each read yields, not only the sum:
// asciinema puts a split character into the event of the later read.
func TestUTF8DecodeIncremental(t *testing.T) {
	tests := []struct {
		reads []string
		want  []string // one per read, then the final flush
	}{
		{[]string{"\xe2", "\x82\xac"}, []string{"", "\u20ac", ""}},
		{[]string{"\xe2", "\x82\x41"}, []string{"", "\ufffdA", ""}},
		{[]string{"\x61\xf0", "\x9f", "\x98", "\x80\x62"}, []string{"a", "", "", "\U0001f600b", ""}},
		{[]string{"\xf0\x9f", "\x41"}, []string{"", "\ufffdA", ""}},
		{[]string{"\xed", "\xa0"}, []string{"", "", "\ufffd\ufffd"}},
		{[]string{"\xed\xa0", "\x80x"}, []string{"", "\ufffd\ufffd\ufffdx", ""}},
		{[]string{"\xc3", ""}, []string{"", "", "\ufffd"}},
		{[]string{"\x78\xe2\x82"}, []string{"x", "\ufffd"}},
	}
	for _, tt := range tests {
		var d utf8Decoder
		var got []string
		for _, r := range tt.reads {
			got = append(got, string(d.decode(nil, []byte(r), false)))
		}
		got = append(got, string(d.decode(nil, nil, true)))
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("reads %q: got %q, want %q", tt.reads, got, tt.want)
		}
	}
}

// TestUTF8SplitEveryOffset splits a text of 1- to 4-byte characters at
// every offset, and into every pair of offsets, and expects the same text.
func TestUTF8SplitEveryOffset(t *testing.T) {
	text := "a\u00e9b\u20acc\U0001F600d\u00df\u4e16\U00010348e"
	b := []byte(text)
	for i := 0; i <= len(b); i++ {
		for j := i; j <= len(b); j++ {
			var d utf8Decoder
			var out []byte
			for _, part := range [][]byte{b[:i], b[i:j], b[j:]} {
				chunk := d.decode(nil, part, false)
				if !utf8.Valid(chunk) {
					t.Fatalf("split %d,%d: chunk %q is not valid UTF-8", i, j, chunk)
				}
				out = append(out, chunk...)
			}
			out = d.decode(out, nil, true)
			if string(out) != text {
				t.Fatalf("split %d,%d: got %q, want %q", i, j, out, text)
			}
		}
	}
}

var (
	validPrefixesOnce sync.Once
	validPrefixes     map[string]bool
)

// referenceDecode is an independent, slow oracle of the replace decoding:
// at each position it takes a valid character if there is one, otherwise
// the longest prefix of any valid encoding (found by encoding every rune)
// is one U+FFFD, and a byte that starts no encoding is one U+FFFD.
func referenceDecode(b []byte) string {
	validPrefixesOnce.Do(func() {
		validPrefixes = make(map[string]bool)
		var buf [utf8.UTFMax]byte
		for r := rune(0x80); r <= utf8.MaxRune; r++ {
			if !utf8.ValidRune(r) {
				continue
			}
			n := utf8.EncodeRune(buf[:], r)
			for k := 1; k < n; k++ {
				validPrefixes[string(buf[:k])] = true
			}
		}
	})
	var sb strings.Builder
	for len(b) > 0 {
		if r, size := utf8.DecodeRune(b); r != utf8.RuneError || size > 1 {
			sb.Write(b[:size])
			b = b[size:]
			continue
		}
		skip := 1
		for k := min(3, len(b)); k >= 1; k-- {
			if validPrefixes[string(b[:k])] {
				skip = k
				break
			}
		}
		sb.WriteString("\uFFFD")
		b = b[skip:]
	}
	return sb.String()
}

// FuzzUTF8 feeds the input in splits chosen by the fuzzer: every piece must
// be valid UTF-8 and the whole must equal the replace-decoding of the input.
func FuzzUTF8(f *testing.F) {
	f.Add([]byte("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"), []byte{1, 2, 3})
	f.Add([]byte("\xe2\x82A\xed\xa0\x80\xf0\x9f"), []byte{1, 1, 1, 1})
	f.Add([]byte("\xed\xa0\xed\xbf\xbf\xf4\x90"), []byte{2, 2, 1})
	f.Add([]byte("\xff\xc0\x80\xf8\x88\x80\x80\x80"), []byte{0, 5})
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, in, splits []byte) {
		var d utf8Decoder
		var out []byte
		rest := in
		for _, s := range splits {
			n := min(int(s)%8, len(rest))
			chunk := d.decode(nil, rest[:n], false)
			if !utf8.Valid(chunk) {
				t.Fatalf("chunk %q of %q is not valid UTF-8", chunk, in)
			}
			out = append(out, chunk...)
			rest = rest[n:]
		}
		tail := d.decode(nil, rest, true)
		if !utf8.Valid(tail) {
			t.Fatalf("tail %q of %q is not valid UTF-8", tail, in)
		}
		out = append(out, tail...)
		if want := referenceDecode(in); string(out) != want {
			t.Fatalf("decode %q split by %v = %q, want %q", in, splits, out, want)
		}
	})
}

// FuzzValidUTF8 holds validUTF8 to utf8.Valid, on the input as it is and as
// the event line the recorder makes of it (mostly U+FFFD and escapes).
func FuzzValidUTF8(f *testing.F) {
	f.Add([]byte("plain ascii text, longer than a word"))
	f.Add([]byte("\xef\xbf\xbd\xef\xbf\xbdA\xef\xbf"))
	f.Add([]byte("\xed\xa0\x80 \xf4\x90\x80\x80 \xc0\x80 \xe0\x80\xaf"))
	f.Add([]byte("12345678\xef\xbf\xbd\xff"))
	f.Add([]byte(strings.Repeat("32 bytes of ASCII, a whole word ", 2)))
	f.Fuzz(func(t *testing.T, in []byte) {
		if got, want := validUTF8(in), utf8.Valid(in); got != want {
			t.Fatalf("validUTF8(%q) = %v, utf8.Valid says %v", in, got, want)
		}
		var d utf8Decoder
		line := appendEventLine(nil, time.Second, 'o', in, &d, true)
		if !validUTF8(line) || !utf8.Valid(line) {
			t.Fatalf("event line %q of %q: validUTF8 %v, utf8.Valid %v", line, in, validUTF8(line), utf8.Valid(line))
		}
	})
}
