package mask

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// blockVariants returns, for o, the engine without the block filter (the
// reference) and engines with it: on the scalar classifier, so that the
// filter's reasoning is tested on any machine, and on the SIMD one where
// this build and CPU have it.
func blockVariants(t testing.TB, o Options) (ref *Engine, with []*Engine) {
	t.Helper()
	ref = mustNew(t, o)
	ref.block, ref.simd = false, false
	if !mustNew(t, o).fastChain {
		return ref, nil
	}
	scalar := mustNew(t, o)
	scalar.block, scalar.simd = true, false
	with = append(with, scalar)
	if haveSIMD {
		v := mustNew(t, o)
		if !v.simd {
			t.Fatalf("SIMD classifier available but not used")
		}
		with = append(with, v)
	}
	return ref, with
}

// blockText builds text dense in what the block filter must get right:
// digit chains of every length with every separator, keywords before
// them, PANs, escape sequences and invisible controls between digits,
// zero-width character leads, track sentinels and line ends.
func blockText(r *rand.Rand, n int) []byte {
	pieces := []string{
		"4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005", "4111111111111111",
		"12/27", "2027-12", "123", "1234", "10.0.0.2", "2026-12-01T09:12:34.567Z", "v1.2.3",
		"exp ", "exp: ", "expiry=", "cvv", "cvv2 ", "CVC2=", "cid ", "security code ", "valid thru ",
		"expiration\t", "duration=", "status=", "x2 ", "2 ", "1 2 3 4 5 6 7 8 9 0 1 2 3",
		"\x1b[31m", "\x1b[0m", "\x00", "\x7f", "\xe2\x80\x8b", "\xc2\xad", "\xef\xbb\xbf", "\xe2\x94\x80",
		// Leads of zero-width characters cut short or followed by
		// something else: visible, so they end a chain.
		"\xc2A", "\xc2\xa0", "\xe2\x80A", "\xe2\x80\x90", "\xe2\x81\xa0", "\xe2\x81\xa5", "\xef\xbbA", "\xef\xbf",
		";", "%B", "%", "=", ":", " ", "  ", "-", "/", ".", "..", "\n", "\r\n", "\t", "'", "\"",
		"abc", "INFO request handled", "é",
	}
	var b bytes.Buffer
	for b.Len() < n {
		switch r.IntN(4) {
		case 0:
			for k := r.IntN(20); k >= 0; k-- {
				b.WriteByte(byte('0' + r.IntN(10)))
			}
		default:
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
	}
	return b.Bytes()
}

// writeAll masks in through a fresh stream of e, split at the given cuts.
func writeAll(t testing.TB, e *Engine, in []byte, cuts []int) string {
	t.Helper()
	var out bytes.Buffer
	s := e.NewStream(&out)
	prev := 0
	for _, c := range append(cuts, len(in)) {
		if _, err := s.Write(in[prev:c]); err != nil {
			t.Fatal(err)
		}
		prev = c
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if s.leaked != 0 {
		t.Fatalf("%d marks came too late on %q", s.leaked, in)
	}
	return out.String()
}

// TestBlockRunMatches holds the block filter to the per-chain path: the
// same output, byte for byte, for the same input and chunking, on engines
// with and without each detector and with custom rules.
func TestBlockRunMatches(t *testing.T) {
	opts := []Options{
		allDetectors,
		{Detectors: []string{DetectorPAN}},
		{Detectors: []string{DetectorPAN, DetectorCVV}},
		{Detectors: []string{DetectorExpiry}},
		{Detectors: allDetectors.Detectors, Rules: []Rule{{Name: "tok", Pattern: `tok=\w+`}}},
	}
	r := rand.New(rand.NewPCG(7, 8))
	for _, o := range opts {
		ref, with := blockVariants(t, o)
		if len(with) == 0 {
			t.Fatalf("%v: no block filter", o.Detectors)
		}
		for n := 0; n < 3000; n++ {
			in := blockText(r, r.IntN(400))
			if n%2 == 1 {
				// Binary noise between the pieces: a stop every few
				// bytes, so that blockRun starts again and again inside
				// the blocks it classified (Stream.blockMasks).
				for k := range in {
					if r.IntN(3) == 0 {
						in[k] = byte(r.Uint32())
					}
				}
			}
			var cuts []int
			for c := 0; c < len(in); c += 1 + r.IntN(150) {
				if c > 0 {
					cuts = append(cuts, c)
				}
			}
			want := writeAll(t, ref, in, cuts)
			for _, e := range with {
				if got := writeAll(t, e, in, cuts); got != want {
					t.Fatalf("simd=%v detectors %v: block filter changed the output\ninput %q\n got %q\nwant %q",
						e.simd, o.Detectors, in, got, want)
				}
			}
		}
	}
}

// TestBlockCacheReusedBuffer: a caller that writes the same buffer again
// with new bytes in it gets them classified afresh, not the masks of what
// the buffer held before.
func TestBlockCacheReusedBuffer(t *testing.T) {
	ref, with := blockVariants(t, allDetectors)
	clear := []byte(strings.Repeat("request handled in 12 ms, id 55 ok. ", 20))
	card := []byte(strings.Repeat("card 4111 1111 1111 1111 ok ........", 20))
	if len(clear) != len(card) {
		t.Fatal("the two texts must be the same length")
	}
	want := writeAll(t, ref, append(append([]byte{}, clear...), card...), []int{len(clear)})
	if !strings.Contains(want, "**** **** **** 1111") {
		t.Fatalf("reference did not mask the card: %q", want)
	}
	for _, e := range with {
		var out bytes.Buffer
		s := e.NewStream(&out)
		buf := append([]byte{}, clear...)
		if _, err := s.Write(buf); err != nil {
			t.Fatal(err)
		}
		copy(buf, card) // the same slice, new bytes
		if _, err := s.Write(buf); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Errorf("simd=%v: second write of a reused buffer:\n got %q\nwant %q", e.simd, out.String(), want)
		}
	}
}

// TestBlockRunCases: inputs where a wrong proof would leak, each across a
// 64-byte block boundary at every offset.
func TestBlockRunCases(t *testing.T) {
	ref, with := blockVariants(t, allDetectors)
	for _, tc := range []string{
		"4111 1111 1111 1111",
		"4111\x1b[0m111111111111",
		"4111\x00111111111111",
		"4111\xe2\x80\x8b111111111111",
		"card=4111-1111-1111-1111 exp 12/27 cvv 123",
		"exp: 12/27",
		"cvv2 123",
		"security code 9876",
		"duration=12 expiration\t12/28",
		";4111111111111111=2712101?",
		"%B4111111111111111^DOE/JOHN^2712101?",
		"1.2.3.4.5.6.7.8.9.0.1.2.3",
		"12..34 56  78",
		"10.0.100.188 4111 1111 1111 1111",
		"2026-12-01 10:00:00.123 4111-1111-1111-1111",
		"1.2.3.4.5.6.7.8.9.10.11.12.13",
		// Invisible controls, which blockRun passes: they join digits and
		// are not in the keyword history.
		"4111\x00\x001111\x7f1111\x011111",
		"4\x001\x001\x001\x00 1111 1111 1111",
		"cv\x00v 123",
		"cvv\x00\x00\x00 123",
		"cvv:\x00" + strings.Repeat("\x00", 40) + "1234",
		"e\x01x\x02p 12/27",
		"exp\x00/\x0012/27",
		"security\x00 code\x7f 9876",
		"cvv2\x00 123",
		"\x00;4111111111111111=2712101?",
		";\x004111111111111111=2712101?",
		"%\x00B4111111111111111^DOE/JOHN^2712101?",
		"12\x00 34",
		strings.Repeat("\x00", 70) + "4111111111111111",
		// A zero-width character joins digits; anything else a lead
		// starts ends them (mayZW).
		"4111\xc2\xad111111111111",
		"4111\xe2\x81\xa4111111111111",
		"4111\xef\xbb\xbf111111111111",
		"4111 \xe2\x80\x8f1111 1111 1111",
		"4111\xc2A111111111111",
		"4111\xc2\xa0111111111111",
		"4111\xe2\x80\x90111111111111",
		"4111\xe2\x81\xa5111111111111",
		"4111\xef\xbbA111111111111",
		"4111 \xe2\x80A1111 1111 1111",
		"cvv \xc2A123",
		"cvv \xc2\xad123",
		"12/\xe2\x80\x8b27",
		// A ';' passes when too few digits for a track follow it.
		";12345678901x4111111111111111",
		";12345678901=2712101?",
		";123456789012=2712101?",
		";4111111111111111=2712101?;41",
		";41111111111\x0011111=2712101?",
		";\x00\x0041111111111111=2712101?",
		";4111\x1b[0m111111111111=2712101?",
		";4111\xc2\xad111111111111=2712101?",
		";4111\xc2A111111111111=2712101?",
		";12;4111111111111111=2712101?",
		"%\xc2AB4111111111111111^DOE/JOHN^2712101?",
		"%\xc2\xadB4111111111111111^DOE/JOHN^2712101?",
	} {
		for pad := 0; pad < 70; pad++ {
			in := []byte(strings.Repeat("a", pad) + tc + " tail\n")
			want := writeAll(t, ref, in, nil)
			for _, e := range with {
				if got := writeAll(t, e, in, nil); got != want {
					t.Fatalf("simd=%v pad %d: got %q want %q", e.simd, pad, got, want)
				}
			}
		}
	}
}

// TestMasksSIMD checks the SIMD classifier against the scalar one on
// every byte value at every position and on random blocks of any length.
func TestMasksSIMD(t *testing.T) {
	if !haveSIMD {
		t.Skip("no SIMD classifier in this build or on this CPU (GOEXPERIMENT=simd, AVX-512 VBMI)")
	}
	e := mustNew(t, allDetectors)
	cl := e.classifier()
	check := func(p []byte) {
		for at := range min(len(p), 4) {
			var got, want [4]blockMasks
			n := cl.masks(p, at, got[:])
			if m := e.masksScalarBatch(p, at, want[:]); n != m || got != want {
				t.Fatalf("masks(%q) from %d: %d blocks, want %d:\n got %+v\nwant %+v", p, at, n, m, got, want)
			}
		}
	}
	for b := range 256 {
		for pos := 0; pos < 64; pos += 7 {
			p := bytes.Repeat([]byte{'a'}, 70)
			p[pos] = byte(b)
			check(p)
			// and every keyword's tail at every position
			for _, w := range append(append([]string{}, cvvWords...), expWords...) {
				q := bytes.Repeat([]byte{'a'}, 72)
				copy(q[2+pos:], strings.ToUpper(w[len(w)-3:]))
				check(q)
			}
		}
	}
	r := rand.New(rand.NewPCG(9, 10))
	for n := 0; n < 5000; n++ {
		p := make([]byte, r.IntN(4*64+1))
		for i := range p {
			p[i] = byte(r.IntN(256))
		}
		check(p)
	}
}

// FuzzBlockRun: on any input and any split, the block filter's output is
// the per-chain path's.
func FuzzBlockRun(f *testing.F) {
	f.Add([]byte("2026-12-01T09:12:34Z status=200 card 4111 1111 1111 1111 exp 12/27\n"), uint16(17))
	f.Add([]byte("cvv2 123 \x1b[1m4111\x1b[0m111111111111"), uint16(5))
	f.Add([]byte("cv\x00v 123 \x01exp\x7f 12/27 4111\x00\x001111\x7f1111\x011111 \xe2\x80\x8b9 \xc2\xad12"), uint16(40))
	ref, with := blockVariants(f, allDetectors)
	f.Fuzz(func(t *testing.T, in []byte, cut uint16) {
		if len(in) > 8192 {
			return
		}
		var cuts []int
		if c := int(cut) % (len(in) + 1); c > 0 && c < len(in) {
			cuts = []int{c}
		}
		want := writeAll(t, ref, in, cuts)
		for _, e := range with {
			if got := writeAll(t, e, in, cuts); got != want {
				t.Fatalf("simd=%v: got %q want %q", e.simd, got, want)
			}
		}
	})
}

// invReachRef is invReachMask by its definition: bit k is set when one of
// the invReach bytes before byte k (in the block before for k < invReach)
// is an invisible control.
func invReachRef(inv, pinv uint64) uint64 {
	var out uint64
	for k := range 64 {
		for d := 1; d <= invReach; d++ {
			at := 64 + k - d // in the two blocks as one, pinv first
			var bit uint64
			if at >= 64 {
				bit = inv >> uint(at-64) & 1
			} else {
				bit = pinv >> uint(at) & 1
			}
			if bit != 0 {
				out |= 1 << uint(k)
				break
			}
		}
	}
	return out
}

// TestInvReachMask holds invReachMask to its definition: single controls
// at every position of either block, pairs, and random masks sparse and
// dense.
func TestInvReachMask(t *testing.T) {
	var cases [][2]uint64
	for a := range 64 {
		cases = append(cases, [2]uint64{1 << a, 0}, [2]uint64{0, 1 << a}, [2]uint64{1 << a, 1 << (63 - a)})
	}
	r := rand.New(rand.NewPCG(7, 8))
	for range 2000 {
		x, y := r.Uint64(), r.Uint64()
		cases = append(cases, [2]uint64{x, y}, [2]uint64{x & r.Uint64() & r.Uint64() & r.Uint64(), y & r.Uint64() & r.Uint64()})
	}
	cases = append(cases, [2]uint64{0, 0}, [2]uint64{^uint64(0), ^uint64(0)})
	for _, c := range cases {
		if got, want := invReachMask(c[0], c[1]), invReachRef(c[0], c[1]); got != want {
			t.Fatalf("invReachMask(%#x, %#x) = %#x, want %#x", c[0], c[1], got, want)
		}
	}
}

// TestBlockRunZeroWidthLead: a run right before the lead of a zero-width
// character sends blockRun's caller to the run, since the character may
// join it to more digits; before a lead that starts anything else, the run
// ends there and blockRun passes on. Binary output has such a lead after a
// run every few hundred bytes.
func TestBlockRunZeroWidthLead(t *testing.T) {
	_, with := blockVariants(t, allDetectors)
	pad := strings.Repeat("z", 40)
	for _, tc := range []struct {
		lead string
		stop bool // blockRun must stop at the run
	}{
		{"\xc2\xad", true},
		{"\xe2\x80\x8b", true},
		{"\xe2\x81\xa0", true},
		{"\xef\xbb\xbf", true},
		{"\xc2A", false},
		{"\xc2\xa0", false},
		{"\xe2\x80\x90", false},
		{"\xe2\x81\xa5", false},
		{"\xe2A", false},
		{"\xefA", false},
		{"\xef\xbb\xbe", false},
	} {
		for _, run := range []string{"12", "1.2", "\x001"} {
			// The run sits inside the first block and across the boundary.
			for _, at := range []int{10, 62, 63} {
				in := []byte(pad + pad)
				in = append(append(append(in[:at:at], run...), tc.lead...), pad...)
				want := len(in)
				if tc.stop {
					want = at
				}
				for _, e := range with {
					s := e.NewStream(nil)
					if got, _ := s.blockRun(in, 0); got != want {
						t.Errorf("simd=%v %q: blockRun = %d, want %d", e.simd, in, got, want)
					}
				}
			}
		}
	}
}

// TestPassSentinel: the track sentinels the fast path passes over, and the
// ones it must leave to the track detectors.
func TestPassSentinel(t *testing.T) {
	e := mustNew(t, allDetectors)
	for _, tc := range []struct {
		in   string
		pass bool
	}{
		{";x", true},
		{";", false}, // the next write decides
		{";1", false},
		{";1x", true},
		{";12345678901x", true},
		{";12345678901=", true}, // '=' after fewer than 12 digits ends it
		{";123456789012x", false},
		{";41111111111\x001x", false}, // invisible controls are looked through
		{";4111\x00x", true},
		{";\x00\x00x", true},
		{";" + strings.Repeat("\x00", sentinelReach+track2MinDigits) + "x", false},
		{";4\x1b[0mx", false},  // an escape sequence may hide more digits
		{";4\xc2\xadx", false}, // so may a zero-width character
		{";4\xc2Ax", true},     // anything else a lead starts ends the track
		{";12;x", true},        // the second ';' is judged on its own
		{"%x", true},
		{"%B", false},
		{"%\x00B", false},
		{"%\xc2\xadB", false},
		{"%\xc2A", true},
		{"%1", true},
	} {
		if got := e.passSentinel([]byte(tc.in), 0); got != tc.pass {
			t.Errorf("passSentinel(%q) = %v, want %v", tc.in, got, tc.pass)
		}
	}
	// A custom rule that starts with the sentinel keeps it for the rule.
	r := mustNew(t, Options{Detectors: []string{"pan", "track"}, Rules: []Rule{{Name: "semi", Pattern: `;[a-z]+`}}})
	if r.passSentinel([]byte(";x"), 0) {
		t.Errorf("passSentinel passes a ';' a custom rule starts with")
	}
}
