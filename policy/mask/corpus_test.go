package mask

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/masking/pans/*.expected")

const corpus = "../../testdata/masking"

// knownPANs are the well-known test card numbers the pans corpus plants.
var knownPANs = []string{
	"4111111111111111", "4012888888881881", "4222222222222", "5555555555554444",
	"5105105105105100", "2223003122003222", "378282246310005", "6011000990139424",
	"3566002020360505", "3530111333300000", "6200000000000005", "36227206271667",
	"30569309025904", "6759649826438453", "6799990100000000019", "3589000000000000009",
}

func TestKnownPANsValid(t *testing.T) {
	for _, p := range knownPANs {
		if !validPAN([]byte(p)) {
			t.Errorf("%s is not a valid PAN", p)
		}
	}
}

// visibleText strips escape sequences and NULs, as a terminal shows text.
func visibleText(b []byte) string {
	return strings.ReplaceAll(string(escRE.ReplaceAll(b, nil)), "\x00", "")
}

// panRE matches p written plain or with a space or dash anywhere between digits.
func panRE(p string) *regexp.Regexp {
	var b strings.Builder
	for i, c := range p {
		if i > 0 {
			b.WriteString("[ -]?")
		}
		b.WriteRune(c)
	}
	return regexp.MustCompile(b.String())
}

// maskBoth masks in whole and in random chunks, and fails if they differ.
func maskBoth(t *testing.T, e *Engine, in []byte) (string, Counts) {
	t.Helper()
	whole, c := e.MaskText(string(in))
	for seed := uint64(0); seed < 8; seed++ {
		out, _ := chunked(e, rand.New(rand.NewPCG(seed, 1)), in, seed == 0)
		if string(out) != whole {
			t.Fatalf("chunking (seed %d) changed the output:\n%q\n%q", seed, whole, out)
		}
	}
	return whole, c
}

// TestCorpusClear: every file of testdata/masking/clear, and seq 1 100000,
// passes byte for byte.
func TestCorpusClear(t *testing.T) {
	e := mustNew(t, allDetectors)
	files, err := filepath.Glob(filepath.Join(corpus, "clear", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no clear corpus: %v", err)
	}
	for _, f := range files {
		in, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out, c := maskBoth(t, e, in)
		if out != string(in) {
			t.Errorf("%s changed (%v):\n%s", f, c, diffLines(string(in), out))
		}
	}
	var seq bytes.Buffer
	for i := 1; i <= 100000; i++ {
		fmt.Fprintf(&seq, "%d\n", i)
	}
	if out, c := e.MaskText(seq.String()); out != seq.String() {
		t.Errorf("seq 1 100000 changed: %v\n%s", c, diffLines(seq.String(), out))
	}
}

// TestCorpusPANs: in every file of testdata/masking/pans, each known PAN
// present in the input is gone from the output, the length is kept, and
// the output matches the reviewed NAME.expected (go test -update rewrites).
func TestCorpusPANs(t *testing.T) {
	e := mustNew(t, allDetectors)
	files, err := filepath.Glob(filepath.Join(corpus, "pans", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no pans corpus: %v", err)
	}
	for _, f := range files {
		in, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out, c := maskBoth(t, e, in)
		if len(out) != len(in) {
			t.Errorf("%s: length %d -> %d", f, len(in), len(out))
		}
		planted := 0
		for _, p := range knownPANs {
			re := panRE(p)
			n := len(re.FindAllString(visibleText(in), -1))
			planted += n
			if n > 0 && re.MatchString(visibleText([]byte(out))) {
				t.Errorf("%s: %s in clear in output", f, p)
			}
		}
		if planted == 0 {
			t.Errorf("%s plants no known PAN", f)
		}
		if c[DetectorPAN] < int64(planted) {
			t.Errorf("%s: %d PANs planted, %d counted (%v)", f, planted, c[DetectorPAN], c)
		}
		exp := strings.TrimSuffix(f, ".txt") + ".expected"
		if *update {
			if err := os.WriteFile(exp, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(exp)
		if err != nil {
			t.Fatalf("%v (run go test -update and review the file)", err)
		}
		if out != string(want) {
			t.Errorf("%s: output differs from %s:\n%s", f, exp, diffLines(string(want), out))
		}
	}
}

// diffLines shows the lines of a and b that differ.
func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var d strings.Builder
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			fmt.Fprintf(&d, "line %d:\n- %q\n+ %q\n", i+1, x, y)
			if d.Len() > 4000 {
				break
			}
		}
	}
	return d.String()
}
