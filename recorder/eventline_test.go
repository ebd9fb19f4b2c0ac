package recorder

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// referenceLines encodes events the way the recorder did before
// appendEventLine: decode, then encodeEvent. The fused path must match it
// byte for byte.
func referenceLines(t testing.TB, events [][]byte, final bool) []byte {
	t.Helper()
	var d utf8Decoder
	var buf bytes.Buffer
	for i, p := range events {
		text := d.decode(nil, p, false)
		if len(text) == 0 {
			continue
		}
		if err := encodeEvent(&buf, Event{Time: float64(i) * 0.25, Type: EventOutput, Data: string(text)}); err != nil {
			t.Fatal(err)
		}
	}
	if tail := d.decode(nil, nil, true); final && len(tail) > 0 {
		if err := encodeEvent(&buf, Event{Time: float64(len(events)) * 0.25, Type: EventOutput, Data: string(tail)}); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func fusedLines(events [][]byte, final bool) []byte {
	var d utf8Decoder
	var line []byte
	for i, p := range events {
		line = appendEventLine(line, time.Duration(i)*250*time.Millisecond, 'o', p, &d, false)
	}
	if final {
		line = appendEventLine(line, time.Duration(len(events))*250*time.Millisecond, 'o', nil, &d, true)
	}
	return line
}

func TestAppendEventLineMatchesDecodeAndEncode(t *testing.T) {
	long := strings.Repeat("the quick brown fox, 12 jumps; ", 40)
	tests := []struct {
		name   string
		events []string
	}{
		{"plain text", []string{"hello, world\r\n"}},
		{"long text", []string{long}},
		{"quotes and backslashes", []string{`say "hi" \ bye` + "\t\b\f\n\r"}},
		{"a run of NUL", []string{strings.Repeat("\x00", 1000)}},
		{"runs of escapes", []string{"a\x00\x00b\x1b\x1b\x1b[0m\"\"\"\\\\\n\n\n"}},
		{"zeros across events", []string{strings.Repeat("\x00", 7), strings.Repeat("\x00", 9)}},
		{"valid multibyte", []string{"héllo wörld €100 😀 中文"}},
		{"line and paragraph separators", []string{"a\u2028b\u2029c\u2027d"}},
		{"invalid bytes", []string{"a\xffb\xc0\xafc\xe2\x82Ad\xf5e"}},
		{"character split across events", []string{"price \xe2", "\x82", "\xac5"}},
		{"emoji split in four", []string{"\xf0", "\x9f", "\x98", "\x80!"}},
		{"split then invalid", []string{"x\xe2\x82", "A"}},
		{"truncated surrogate at the end", []string{"a\xed\xa0", "\x80b"}},
		{"incomplete at the very end", []string{"end \xf0\x9f\x98"}},
		{"only part of a character", []string{"\xe2", "\x82\xac"}},
		{"random binary", []string{"\x00\x01\x7f\x80\xfe\xff\x1b]52;c;\x07\x9b"}},
		{"DEL and high ASCII edges", []string{"\x1f\x20\x7e\x7f"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := make([][]byte, len(tt.events))
			for i, e := range tt.events {
				events[i] = []byte(e)
			}
			for _, final := range []bool{false, true} {
				want := referenceLines(t, events, final)
				got := fusedLines(events, final)
				if !bytes.Equal(got, want) {
					t.Fatalf("final=%v:\n got %q\nwant %q", final, got, want)
				}
				if !utf8.Valid(got) {
					t.Fatalf("final=%v: output is not valid UTF-8: %q", final, got)
				}
			}
		})
	}
}

func TestAppendEventLineIsValidAsciicast(t *testing.T) {
	in := []byte("a\x00\"\\\xff\u2028z\xe2")
	line := fusedLines([][]byte{in}, true)
	for _, l := range bytes.Split(bytes.TrimSuffix(line, []byte("\n")), []byte("\n")) {
		var ev []any
		if err := json.Unmarshal(l, &ev); err != nil {
			t.Fatalf("line %q does not parse: %v", l, err)
		}
		if len(ev) != 3 || ev[1] != "o" {
			t.Fatalf("line %q is not an output event", l)
		}
	}
}

func TestPlain8(t *testing.T) {
	for c := range 256 {
		x := uint64(c) | uint64('a')*0x0101010101010100 // c in the lowest byte, 'a' elsewhere
		for shift := 0; shift < 64; shift += 8 {
			y := x<<shift | x>>(64-shift)
			if shift == 0 {
				y = x
			}
			if got, want := plain8(y), jsonPlain[c]; got != want {
				t.Fatalf("byte %#02x at bit %d: plain8 = %v, want %v", c, shift, got, want)
			}
		}
	}
}

// FuzzAppendEventLine cuts arbitrary bytes into events at fuzzed points
// and holds the fused encoder to decode followed by encodeEvent.
func FuzzAppendEventLine(f *testing.F) {
	f.Add([]byte("hello \xe2\x82\xac \x00\x00\x00 \xff"), uint8(3), uint8(7))
	f.Add([]byte("\xed\xa0\x80\xf0\x9f\x98\x80\u2028"), uint8(1), uint8(2))
	f.Add(bytes.Repeat([]byte{0}, 100), uint8(50), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, cut1, cut2 uint8) {
		a := min(int(cut1), len(data))
		b := min(a+int(cut2), len(data))
		events := [][]byte{data[:a], data[a:b], data[b:]}
		for _, final := range []bool{false, true} {
			want := referenceLines(t, events, final)
			got := fusedLines(events, final)
			if !bytes.Equal(got, want) {
				t.Fatalf("final=%v:\n got %q\nwant %q", final, got, want)
			}
			// The store takes the encoder's lines without a UTF-8 check
			// (PrepareEncoded): this is what makes that safe.
			if !utf8.Valid(got) {
				t.Fatalf("final=%v: the encoder wrote invalid UTF-8: %q", final, got)
			}
		}
	})
}

// BenchmarkAppendEventLine encodes 32 KiB events (a read of the target's
// channel) of text, zeros and random bytes as "o" events; "recorded" as
// the recorder does (random bytes become a "b" event); "reference" is the
// earlier path, decode and encodeEvent.
func BenchmarkAppendEventLine(b *testing.B) {
	random := make([]byte, 32<<10)
	_, _ = rand.Read(random)
	inputs := []struct {
		name string
		data []byte
	}{
		{"text", []byte(strings.Repeat("2026-12-01T14:16:30Z INFO served /api/v1/items status=200 bytes=5123\r\n", 500)[:32<<10])},
		{"zeros", make([]byte, 32<<10)},
		{"random", random},
	}
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			var d utf8Decoder
			var line []byte
			for b.Loop() {
				line = appendEventLine(line[:0], time.Second, 'o', in.data, &d, false)
			}
		})
		// What the recorder does: "o" for text, "b" (base64) otherwise.
		b.Run(in.name+"-recorded", func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			var d utf8Decoder
			var line []byte
			for b.Loop() {
				line = appendOutputLine(line[:0], time.Second, in.data, &d)
			}
		})
		b.Run(in.name+"-reference", func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			var d utf8Decoder
			var buf bytes.Buffer
			for b.Loop() {
				buf.Reset()
				text := d.decode(nil, in.data, false)
				_ = encodeEvent(&buf, Event{Time: 1, Type: EventOutput, Data: string(text)})
			}
		})
	}
}

// TestAppendTextMixedBytes holds the encoder to the reference on long
// stretches of mixed bytes, where its word paths and its per-byte path
// take turns: random bytes, and bytes drawn from what the per-byte path
// must get right (controls, quotes, leads with and without their
// continuation bytes, U+2028, surrogates, characters cut at the edge of a
// word or of an event).
func TestAppendTextMixedBytes(t *testing.T) {
	pieces := []string{"\x00", "\x01", "\x1f", "\x7f", "\x80", "\xbf", "\xc0", "\xc1", "\xc2", "\xc2\x80", "\xdf\xbf",
		"\xe0\xa0\x80", "\xe0\x80\x80", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xe2\x82\xac", "\xed\xa0\x80", "\xef\xbf\xbd",
		"\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5", "\xff", "\"", "\\", "\t", "\n", "\r", "\b", "\f",
		"\x1b[0m", "a", "Z", " ", "0", "é", "中"}
	r := mrand.New(mrand.NewPCG(3, 4))
	for n := range 400 {
		var b []byte
		size := 65 + r.IntN(600)
		for len(b) < size {
			if n%3 == 0 {
				b = append(b, byte(r.Uint32()))
			} else {
				b = append(b, pieces[r.IntN(len(pieces))]...)
			}
		}
		cut := r.IntN(len(b) + 1)
		events := [][]byte{b[:cut], b[cut:]}
		for _, final := range []bool{false, true} {
			want := referenceLines(t, events, final)
			if got := fusedLines(events, final); !bytes.Equal(got, want) {
				t.Fatalf("input %q (cut at %d), final=%v:\n got %q\nwant %q", b, cut, final, got, want)
			}
		}
	}
}

// TestAppendTextPlainRuns holds the encoder to the reference where its
// vector step (plain_simd.go) stops: a byte that is not plain at every
// offset of a block and past it (the last byte of the event too), lone
// escapes between runs, runs of one escaped byte, and a character cut at
// the end of the event.
func TestAppendTextPlainRuns(t *testing.T) {
	stops := []string{"\"", "\\", "\x00", "\x1f", "\x7f", "\x80", "\xff", "\r\n", "\x1b[0m", "é", "\xe2\x80\xa8",
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00", "\t\t", "\xe2\x82"}
	for _, stop := range stops {
		for run := range 70 {
			text := strings.Repeat("a", run) + stop + strings.Repeat("b", 33) + stop + stop + strings.Repeat("c", run%7)
			for _, events := range [][][]byte{{[]byte(text)}, {[]byte(text + stop)}, {[]byte(text[:len(text)/2]), []byte(text[len(text)/2:])},
				{[]byte(strings.Repeat("a", run) + stop)}, {[]byte(strings.Repeat("a", run) + stop[:1])}} {
				for _, final := range []bool{false, true} {
					want := referenceLines(t, events, final)
					if got := fusedLines(events, final); !bytes.Equal(got, want) {
						t.Fatalf("events %q, final=%v:\n got %q\nwant %q", events, final, got, want)
					}
				}
			}
		}
	}
}

// referenceIsText is isText's contract in the standard library's terms:
// the held bytes and p are valid UTF-8, or are up to a last character
// that has only begun (utf8.FullRune counts an invalid start as full).
func referenceIsText(held, p []byte) bool {
	all := append(append([]byte(nil), held...), p...)
	if utf8.Valid(all) {
		return true
	}
	for k := max(len(all)-(utf8.UTFMax-1), 0); k < len(all); k++ {
		if utf8.RuneStart(all[k]) && utf8.Valid(all[:k]) && !utf8.FullRune(all[k:]) {
			return true
		}
	}
	return false
}

// FuzzAppendOutputLine cuts arbitrary bytes into reads at fuzzed points and
// encodes them as the recorder does: every line is valid UTF-8 (the store
// takes them unchecked), "o" and "b" are chosen as isText's contract says,
// and the recording's output events hold exactly the bytes read.
func FuzzAppendOutputLine(f *testing.F) {
	f.Add([]byte("hello \xe2\x82\xac \x00 \xff"), uint8(3), uint8(7))
	f.Add([]byte("x\xe2\x82\xacy\xf0\x9f\x98"), uint8(2), uint8(2))
	f.Add([]byte("\xed\xa0\x80\xf0\x9f\x98\x80\u2028"), uint8(1), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, cut1, cut2 uint8) {
		a := min(int(cut1), len(data))
		b := min(a+int(cut2), len(data))
		var d utf8Decoder
		var lines []byte
		for i, p := range [][]byte{data[:a], data[a:b], data[b:]} {
			text := referenceIsText(d.pend[:d.n], p)
			mark := len(lines)
			lines = appendOutputLine(lines, time.Duration(i)*time.Second, p, &d)
			if typ := bytes.HasPrefix(lines[mark:], fmt.Appendf(nil, `[%d,"o"`, i)); mark != len(lines) && typ != text {
				t.Fatalf("read %d (%q): line %q, want text=%v", i, p, lines[mark:], text)
			}
		}
		lines = appendBinaryLine(lines, 3*time.Second, nil, &d)
		if !utf8.Valid(lines) {
			t.Fatalf("the encoder wrote invalid UTF-8: %q", lines)
		}
		var got []byte
		for line := range bytes.Lines(lines) {
			ev, err := ParseEventLine(bytes.TrimSuffix(line, []byte("\n")))
			if err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			got = append(got, ev.Data...)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("recorded %q, want %q", got, data)
		}
	})
}

// TestCopyPlain holds copyPlain, the vector step of this build or its
// plain-Go contract, to jsonPlain: the whole block is copied, and the count
// is of the plain bytes before the first that is not.
func TestCopyPlain(t *testing.T) {
	r := mrand.New(mrand.NewPCG(9, 10))
	for n := range 2000 {
		var src, dst [32]byte
		for i := range src {
			src[i] = byte(0x20 + r.IntN(0x5f)) // printable ASCII
		}
		if n%33 < 32 {
			src[n%33] = byte(r.Uint32()) // one byte anywhere, plain or not
		}
		want := 32
		for i, c := range src {
			if !jsonPlain[c] {
				want = i
				break
			}
		}
		if got := copyPlain(&dst, &src); got != want || dst != src {
			t.Fatalf("copyPlain(%q) = %d (copied %v), want %d", src, got, dst == src, want)
		}
	}
}

// TestTextLine: the flusher searches only "o" lines for keyframes, and
// tells them by the type after the time, whatever the time looks like.
func TestTextLine(t *testing.T) {
	var d utf8Decoder
	for _, tc := range []struct {
		out  []byte
		at   time.Duration
		text bool
	}{
		{[]byte("\x1b[2Jhello"), 0, true},
		{[]byte("plain"), 1234567 * time.Microsecond, true},
		{[]byte("\xff\xfe\x1b[0m"), 0, false}, // binary: a "b" line
		{[]byte{0x80, 0x1b}, 3 * time.Second, false},
		{[]byte("\xe2\x82"), time.Second, false}, // only a character's start so far: no line
	} {
		line := appendOutputLine(nil, tc.at, tc.out, &d)
		d = utf8Decoder{}
		if got := textLine(line); got != tc.text {
			t.Errorf("%q as %q: textLine = %v, want %v", tc.out, line, got, tc.text)
		}
	}
	if textLine(nil) {
		t.Errorf("textLine(nil) = true")
	}
}
