package mask

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// slowEngine is e's configuration with the fast paths off: every byte goes
// through the lexer and the detectors one at a time.
func slowEngine(t testing.TB, o Options) *Engine {
	e := mustNew(t, o)
	e.slowOnly = true
	return e
}

// binaryNoise is what the fast paths must get right on binary output:
// random bytes with escape sequences, track sentinels, digits, keywords
// and zero-width characters strewn in.
func binaryNoise(r *rand.Rand, n int) []byte {
	pieces := []string{"\x1b", "\x1b[", "\x1b[0m", "\x1b]0;", "\x1b\\", "\x07", "\x1bP", "\x1b(", ";", "%", "%B", "=", "^",
		"4111", " ", "-", "cvv ", "exp ", "12/27", "\xe2\x80\x8b", "\xc2\xad", "\x00", "\n", "\r",
		";\x004111111111111111=2712101?", "%\x01\x02B4111111111111111^DOE/JOHN^2712101?", "\x1b[1m;4111111111111111=27121?"}
	var b []byte
	for len(b) < n {
		if r.IntN(3) == 0 {
			b = append(b, pieces[r.IntN(len(pieces))]...)
		} else {
			b = append(b, byte(r.Uint32()))
		}
	}
	return b
}

// TestFastPathsMatchSlowPath: on binary noise with planted card numbers,
// written in pieces of every size, the stream's output is byte for byte
// what the byte-at-a-time path makes of it.
func TestFastPathsMatchSlowPath(t *testing.T) {
	fast, slow := mustNew(t, allDetectors), slowEngine(t, allDetectors)
	r := rand.New(rand.NewPCG(21, 22))
	for round := range 300 {
		in, _ := buildInput(r, binaryNoise(r, 64+r.IntN(4096)), r.IntN(4))
		want, _ := slow.MaskText(string(in))
		got, _ := chunked(fast, r, in, false)
		if string(got) != want {
			t.Fatalf("round %d: fast paths differ from the slow path\ninput %q\nfast  %q\nslow  %q", round, in, got, want)
		}
	}
}

// FuzzFastPathsMatchSlowPath is TestFastPathsMatchSlowPath on fuzzed
// bytes, cut into fuzzed pieces.
func FuzzFastPathsMatchSlowPath(f *testing.F) {
	f.Add([]byte("\x1b\xff4111 1111 1111 1111\x1b[0m;4111111111111111=2712?"), uint64(1))
	f.Add([]byte("cvv\x1b\x80123 exp\x1b]0;x\x0712/27"), uint64(2))
	f.Add(binaryNoise(rand.New(rand.NewPCG(1, 2)), 512), uint64(3))
	fast, slow := mustNew(f, allDetectors), slowEngine(f, allDetectors)
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		if len(in) > 8192 {
			return
		}
		want, _ := slow.MaskText(string(in))
		got, _ := chunked(fast, rand.New(rand.NewPCG(seed, 0)), in, false)
		if !bytes.Equal(got, []byte(want)) {
			t.Fatalf("fast paths differ from the slow path\ninput %q\nfast  %q\nslow  %q", in, got, want)
		}
	})
}

// TestKeywordAcrossEscapes: a keyword and its value with escape sequences
// and invisible controls between every byte (more of them than idleRun
// keeps spans for before it updates the history: histSpans), so that the
// keyword history is built from many spans at once. The value must be
// masked as the byte-at-a-time path masks it, and differently from what
// the same bytes give without the keyword.
func TestKeywordAcrossEscapes(t *testing.T) {
	fast, slow := mustNew(t, allDetectors), slowEngine(t, allDetectors)
	spread := func(s string, sep []string) string {
		var b bytes.Buffer
		for i, c := range []byte(s) {
			b.WriteByte(c)
			b.WriteString(sep[i%len(sep)])
		}
		return b.String()
	}
	r := rand.New(rand.NewPCG(5, 6))
	for _, seps := range [][]string{{"\x1b[0m"}, {"\x1b[1m", "\x00", "\x1b]0;t\x07"}, {"\x01\x02", "\x1b[32m"}, {""}} {
		for _, pre := range []string{"", "x ", strings.Repeat("ab\x1b[0m ", 20), "\xff\xfe\x1b[0m\n"} {
			for _, kv := range [][2]string{{"cvv: ", "123"}, {"exp ", "12/27"}, {"CVC2=", "456"}, {"security code: ", "789"}, {"expiry date ", "11/28"}} {
				word, value := kv[0], kv[1]
				with := pre + spread(word, seps) + value + " \r\n" + pre + spread("exp", seps) + " 12/27\n"
				without := pre + spread("xyz: ", seps) + value + " \r\n"
				for _, in := range []string{with, without} {
					want, _ := slow.MaskText(in)
					got, _ := chunked(fast, r, []byte(in), false)
					if string(got) != want {
						t.Fatalf("input %q\nfast %q\nslow %q", in, got, want)
					}
				}
				if m, _ := slow.MaskText(with); strings.Contains(m, value) {
					t.Errorf("the value after %q spread by %q stays clear: %q", word, seps, m)
				}
			}
		}
	}
}
