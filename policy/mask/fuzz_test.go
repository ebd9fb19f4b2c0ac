package mask

import (
	"math/rand/v2"
	"testing"
)

// FuzzStream plants PANs at random offsets of fuzzed junk, renders them
// plain or grouped with escape sequences between digits, feeds the result
// in random chunks (one byte at a time in a quarter of the runs) and checks
// that no planted PAN comes out clear, that the output equals MaskText of
// the whole input, and that only candidate bytes changed.
func FuzzStream(f *testing.F) {
	f.Add([]byte("plain text\n"), uint64(1), uint8(1))
	f.Add([]byte("2026-12-01T09:00:00Z 1764579600 \x1b[31m12\x1b[0m 4111 1111"), uint64(2), uint8(3))
	f.Add([]byte("\x1b]0;\x1b[;;%B;4111=2712?\xe2\x80"), uint64(3), uint8(2))
	f.Add([]byte("cvv: exp 12/27 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6"), uint64(4), uint8(4))
	e := mustNew(f, allDetectors)
	f.Fuzz(func(t *testing.T, junk []byte, seed uint64, npan uint8) {
		if len(junk) > 4096 {
			return
		}
		r := rand.New(rand.NewPCG(seed, uint64(len(junk))))
		in, ps := buildInput(r, junk, int(npan%6))
		checkStream(t, e, r, in, ps)
	})
}

// FuzzMaskText checks that MaskText never panics, keeps the length for the
// built-in detectors (they mask byte for byte) and is idempotent.
func FuzzMaskText(f *testing.F) {
	for _, s := range []string{
		"", "4111 1111 1111 1111", "card 5555-5555-5555-4444 exp 12/27 cvv 123\n",
		"%B4111111111111111^DOE/JOHN^2712101?", ";4111111111111111=2712101?",
		"\x1b[1m4111\x1b[0m111111111111", "cvc2=1234 valid thru 2027-12",
	} {
		f.Add(s)
	}
	e := mustNew(f, allDetectors)
	f.Fuzz(func(t *testing.T, s string) {
		m, _ := e.MaskText(s)
		if len(m) != len(s) {
			t.Fatalf("length %d -> %d: %q -> %q", len(s), len(m), s, m)
		}
		if m2, c := e.MaskText(m); m2 != m {
			t.Fatalf("not idempotent (%v):\n%q\n%q\n%q", c, s, m, m2)
		}
	})
}
