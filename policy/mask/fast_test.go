package mask

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestStopWord checks the SWAR stop test against the engine's table for
// every byte value at every position of a word, with and without '\n' as
// a stop.
func TestStopWord(t *testing.T) {
	e := mustNew(t, allDetectors)
	for _, nl := range []bool{false, true} {
		stop := &e.stop
		if nl {
			stop = &e.stopNL
		}
		for b := 0; b < 256; b++ {
			for pos := 0; pos < 8; pos++ {
				for _, fill := range []byte{'a', 0xff, ' ', 0x80} {
					w := bytes.Repeat([]byte{fill}, 8)
					w[pos] = byte(b)
					var x uint64
					for k := 7; k >= 0; k-- {
						x = x<<8 | uint64(w[k])
					}
					m := stopWord(x, nl)
					for k := 0; k < 8; k++ {
						got := m>>(8*k+7)&1 == 1
						if got != stop[w[k]] {
							t.Fatalf("nl=%v byte %#x at %d in %q: stopWord says %v", nl, w[k], k, w, got)
						}
					}
				}
			}
		}
	}
}

// TestSkip checks skip against a byte loop on random text, for engines
// with the fixed stop set and with custom rules.
func TestSkip(t *testing.T) {
	engines := []*Engine{
		mustNew(t, allDetectors),
		mustNew(t, Options{Detectors: []string{"pan"}}),
		mustNew(t, Options{Detectors: []string{"track"}}),
		mustNew(t, Options{Detectors: allDetectors.Detectors, Rules: []Rule{{Name: "t", Pattern: `tok=\w+`}}}),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 2000; n++ {
		p := make([]byte, r.IntN(40))
		for i := range p {
			if r.IntN(8) == 0 {
				p[i] = byte(r.IntN(256))
			} else {
				p[i] = "abc XYZ-:/.,=\n\t"[r.IntN(15)]
			}
		}
		for _, e := range engines {
			for _, nl := range []bool{false, true} {
				stop := &e.stop
				if nl {
					stop = &e.stopNL
				}
				for i := 0; i <= len(p); i++ {
					want := i
					for want < len(p) && !stop[p[want]] {
						want++
					}
					if got := e.skip(p, i, nl); got != want {
						t.Fatalf("skip(%q, %d, %v) = %d, want %d", p, i, nl, got, want)
					}
				}
			}
		}
	}
}

func BenchmarkSkip(b *testing.B) {
	e := mustNew(b, allDetectors)
	p := bytes.Repeat([]byte("The quick brown fox jumps over the lazy dog, meanwhile the server keeps serving requests.\n"), 1<<14)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if e.skip(p, 0, false) != len(p) {
			b.Fatal("stop")
		}
	}
}

// TestMaskTextReuse: MaskText runs on pooled streams; whatever an earlier
// call left behind, its output and counts equal a fresh stream's.
func TestMaskTextReuse(t *testing.T) {
	e := mustNew(t, Options{Detectors: allDetectors.Detectors, Rules: []Rule{{Name: "tok", Pattern: `tok=(\w+)`, Replacement: "tok=[$1]"}}})
	r := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < 2000; n++ {
		in, _ := buildInput(r, randJunk(r, r.IntN(100)), r.IntN(3))
		if r.IntN(3) == 0 {
			in = append(in, "tok=abc 4111"...) // ends with candidates open
		}
		got, gc := e.MaskText(string(in))
		var b bytes.Buffer
		s := e.NewStream(&b)
		s.Write(in)
		s.Flush()
		if got != b.String() || len(gc) != len(s.Counts()) {
			t.Fatalf("MaskText(%q)\n got %q %v\nwant %q %v", in, got, gc, b.String(), s.Counts())
		}
		for k, v := range s.Counts() {
			if gc[k] != v {
				t.Fatalf("MaskText(%q) counts %v, want %v", in, gc, s.Counts())
			}
		}
	}
}

// TestFastPathEdges: chains and track sentinels the fast path passes over
// or hands to the slow path, split at every offset.
func TestFastPathEdges(t *testing.T) {
	e := mustNew(t, allDetectors)
	for _, tc := range []struct{ in, want string }{
		{"cvv2 123 x", "cvv2 *** x"},
		{"cvv 2 123 x", "cvv 2 123 x"}, // the keyword is before "2", not "123"
		{"xcvv2 123 x", "xcvv2 123 x"},
		{"2026-12-01 10.0.0.2 5 x", "2026-12-01 10.0.0.2 5 x"},
		{"1234 4111 1111 1111 1111 x", "1234 **** **** **** 1111 x"},
		{"1764579600123 x", "1764579600123 x"},
		{"12-\x1b[0m4111111111111111 x", "12-\x1b[0m************1111 x"},
		{"a;\x1b[0m4111111111111111=2712101? x", "a;\x1b[0m" + "************************? x"},
		{"a;b %x %%B4111111111111111^A^2712? x", "a;b %x %%" + strings.Repeat("*", 24) + "? x"},
		{"4111111111111111\nexp: 12/27 x", "************1111\nexp: **/** x"},
		{"a;12345678901=2712101? x", "a;12345678901=2712101? x"},
		{"a;123456789012=2712101? x", "a;" + strings.Repeat("*", 20) + "? x"},
		{"a;4111\x001111\x0011111111=2712101? x", "a;" + strings.Repeat("*", 4) + "\x00" + strings.Repeat("*", 4) + "\x00" + strings.Repeat("*", 16) + "? x"},
		{"a;12x;4111111111111111=2712101? x", "a;12x;" + strings.Repeat("*", 24) + "? x"},
		{"4111\x001111\x1b[0m1111 1111 x", "****\x00****\x1b[0m**** 1111 x"},
		{"cvv\x00 123\x00x", "cvv\x00 ***\x00x"},
		{"1234\x00x 4111111111111111\x1b[0mx", "1234\x00x ************1111\x1b[0mx"},
		{"4111111111111111 12/27\n12/27 x", "************1111 **/**\n12/27 x"},
	} {
		got, _ := e.MaskText(tc.in)
		if got != tc.want {
			t.Errorf("MaskText(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
		for cut := 0; cut <= len(tc.in); cut++ {
			var b bytes.Buffer
			s := e.NewStream(&b)
			s.Write([]byte(tc.in[:cut]))
			s.Write([]byte(tc.in[cut:]))
			s.Flush()
			if b.String() != got {
				t.Errorf("%q cut at %d: %q, want %q", tc.in, cut, b.String(), got)
			}
		}
	}
}

// TestPlainChainLooksThroughTransparent: a chain before invisible controls
// or escape sequences ends there when the first visible byte after them
// cannot go on with it; otherwise the slow path decides (0).
func TestPlainChainLooksThroughTransparent(t *testing.T) {
	e := mustNew(t, allDetectors)
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"12\x00x", 2},
		{"12\x00\x7f\x01x", 2},
		{"12\x1b[0mx", 2},
		{"12\x1b[0m\x00\x1bcx", 2},
		{"12 \x00x", 3},
		{"12\x00\xc2Ax", 2},
		{"12\x00\n", 2},
		{"12\x003", 0},  // the digits join
		{"12\x00 3", 0}, // a separator may too
		{"12 \x1b[0m3", 0},
		{"12\x00\xc2\xad3", 0}, // so may a zero-width character
		{"12\x00", 0},          // the next write decides
		{"12\x1b[0", 0},
		{"12" + strings.Repeat("\x00", maxTransparentLook) + "x", 0},
	} {
		if got := e.plainChain([]byte(tc.in), 0); got != tc.want {
			t.Errorf("plainChain(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
