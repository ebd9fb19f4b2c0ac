package mask

import (
	"bytes"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// allDetectors is the default configuration.
var allDetectors = Options{Detectors: []string{DetectorPAN, DetectorTrack, DetectorExpiry, DetectorCVV}}

func mustNew(t testing.TB, o Options) *Engine {
	t.Helper()
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// testPrefixes are brand prefixes with a length each brand allows.
var testPrefixes = []struct {
	prefix string
	n      int
}{
	{"4", 16}, {"4", 13}, {"4", 19}, {"51", 16}, {"55", 16}, {"2221", 16}, {"2720", 16},
	{"34", 15}, {"37", 15}, {"6011", 16}, {"6011", 19}, {"644", 16}, {"65", 16},
	{"622126", 16}, {"622925", 19}, {"300", 14}, {"305", 19}, {"36", 14}, {"38", 16},
	{"39", 19}, {"3528", 16}, {"3589", 19}, {"62", 17}, {"50", 13}, {"56", 18}, {"69", 19},
}

// luhnComplete appends the Luhn check digit to the digits d.
func luhnComplete(d []byte) []byte {
	d = append(d, '0')
	for c := byte('0'); c <= '9'; c++ {
		d[len(d)-1] = c
		if luhn(d) {
			return d
		}
	}
	panic("no check digit")
}

// randPAN returns a random valid PAN.
func randPAN(r *rand.Rand) string {
	p := testPrefixes[r.IntN(len(testPrefixes))]
	d := []byte(p.prefix)
	for len(d) < p.n-1 {
		d = append(d, byte('0'+r.IntN(10)))
	}
	return string(luhnComplete(d))
}

// randEsc returns a random transparent sequence.
func randEsc(r *rand.Rand) string {
	switch r.IntN(6) {
	case 0:
		return "\x1b[0m"
	case 1:
		return "\x1b[1;3" + string(rune('0'+r.IntN(8))) + "m"
	case 2:
		return "\x1b[38;5;" + string(rune('0'+r.IntN(10))) + "2m"
	case 3:
		return "\x1b[?25h"
	case 4:
		return "\x1b]0;title 4111\x07"
	default:
		return "\x00"
	}
}

// plant renders a PAN the way a target might print it: plain or grouped by
// a single space or dash, with transparent sequences sprinkled between
// digits. It returns the text and, for each digit, its offset in the text.
func plant(r *rand.Rand, pan string) (string, []int) {
	var sep byte
	switch r.IntN(3) {
	case 1:
		sep = ' '
	case 2:
		sep = '-'
	}
	var groups []int
	if r.IntN(2) == 0 {
		for n := len(pan); n > 0; n -= 4 {
			groups = append(groups, min(4, n))
		}
	} else {
		for n := len(pan); n > 0; {
			g := min(1+r.IntN(7), n)
			groups = append(groups, g)
			n -= g
		}
	}
	escRate := r.IntN(4)
	var b strings.Builder
	var pos []int
	k := 0
	for gi, g := range groups {
		if gi > 0 && sep != 0 {
			if escRate > 0 && r.IntN(4) < escRate {
				b.WriteString(randEsc(r))
			}
			b.WriteByte(sep)
		}
		for i := 0; i < g; i++ {
			if escRate > 0 && r.IntN(6) < escRate {
				b.WriteString(randEsc(r))
			}
			pos = append(pos, b.Len())
			b.WriteByte(pan[k])
			k++
		}
	}
	return b.String(), pos
}

// junkAlphabet biases random junk towards bytes that interact with the
// detectors.
const junkAlphabet = "0123456789 -/:.;%^=?Bx\n\r\t\x1b[]m\x07\\\x00\x80\xff\xe2\x80\x8bcvvexp"

func randJunk(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		if r.IntN(4) == 0 {
			b[i] = byte(r.IntN(256))
		} else {
			b[i] = junkAlphabet[r.IntN(len(junkAlphabet))]
		}
	}
	return b
}

// planted is a PAN inside a generated input.
type planted struct {
	pan string
	pos []int // offsets of its digits in the input
}

// buildInput builds junk with PANs planted at random offsets. Each PAN is
// fenced by "\x18x" before (CAN cancels any escape sequence the junk left
// open, the letter ends any digit run) and "x" after, so it must be masked
// whatever the junk holds.
func buildInput(r *rand.Rand, junk []byte, npan int) ([]byte, []planted) {
	var in []byte
	var ps []planted
	cuts := make([]int, npan)
	for i := range cuts {
		cuts[i] = r.IntN(len(junk) + 1)
	}
	prev := 0
	for _, c := range sortInts(cuts) {
		in = append(in, junk[prev:c]...)
		prev = c
		pan := randPAN(r)
		txt, pos := plant(r, pan)
		in = append(in, "\x18x"...)
		for i := range pos {
			pos[i] += len(in)
		}
		in = append(in, txt...)
		in = append(in, 'x')
		ps = append(ps, planted{pan, pos})
	}
	in = append(in, junk[prev:]...)
	return in, ps
}

func sortInts(a []int) []int {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
	return a
}

// chunked runs in through a stream in random chunks (one byte each when
// oneByte) and returns the output and the stream.
func chunked(e *Engine, r *rand.Rand, in []byte, oneByte bool) ([]byte, *Stream) {
	var out bytes.Buffer
	s := e.NewStream(&out)
	for i := 0; i < len(in); {
		n := 1
		if !oneByte {
			n = 1 + r.IntN(1+r.IntN(64))
		}
		n = min(n, len(in)-i)
		if _, err := s.Write(in[i : i+n]); err != nil {
			panic(err)
		}
		i += n
	}
	if err := s.Flush(); err != nil {
		panic(err)
	}
	return out.Bytes(), s
}

// escRE matches the escape sequences the generators write.
var escRE = regexp.MustCompile("\x1b\\[[0-?]*[ -/]*[@-~]|\x1b\\][^\x00-\x1f]*(\x07|\x1b\\\\)")

// checkStream asserts the properties of one generated case.
func checkStream(t *testing.T, e *Engine, r *rand.Rand, in []byte, ps []planted) {
	t.Helper()
	whole, _ := e.MaskText(string(in))
	out, s := chunked(e, r, in, r.IntN(4) == 0)
	if s.leaked != 0 {
		t.Fatalf("%d marks came after their bytes were forwarded; input %q", s.leaked, in)
	}
	if string(out) != whole {
		t.Fatalf("chunking changed the output\ninput %q\nwhole %q\nchunk %q", in, whole, out)
	}
	if len(out) != len(in) {
		t.Fatalf("length changed: %d -> %d", len(in), len(out))
	}
	for _, p := range ps {
		for i, at := range p.pos[:len(p.pos)-4] {
			if out[at] != '*' {
				t.Fatalf("digit %d of planted PAN %s left clear\ninput %q\noutput %q", i, p.pan, in, out)
			}
		}
		if strings.Contains(string(escRE.ReplaceAll(out, nil)), p.pan) {
			t.Fatalf("planted PAN %s in clear in %q", p.pan, out)
		}
	}
	inEsc := make([]bool, len(in))
	for _, m := range escRE.FindAllIndex(in, -1) {
		for k := m[0]; k < m[1]; k++ {
			inEsc[k] = true
		}
	}
	for i := range in {
		if in[i] == out[i] {
			continue
		}
		if out[i] != '*' || in[i] < 0x20 || in[i] > 0x7e || inEsc[i] {
			t.Fatalf("byte %d changed %q -> %q outside a candidate\ninput %q\noutput %q", i, in[i], out[i], in, out)
		}
	}
}
