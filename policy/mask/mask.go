package mask

import (
	"bytes"
	"fmt"
	"path"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Detector names, as written in masking.detectors. They double as keys of
// Counts.
const (
	DetectorPAN    = "pan"
	DetectorTrack  = "track"
	DetectorExpiry = "expiry"
	DetectorCVV    = "cvv"
	// CountColumn is the Counts key of cells masked whole by a column glob.
	CountColumn = "column"
)

// Indexes of the built-in detectors in a Stream's counters; custom rules
// follow from nBuiltin on.
const (
	idxPAN = iota
	idxTrack
	idxExpiry
	idxCVV
	nBuiltin
)

var builtinNames = [nBuiltin]string{DetectorPAN, DetectorTrack, DetectorExpiry, DetectorCVV}

// Options come from the config's masking section.
type Options struct {
	// Detectors are built-in detectors to turn on: any of "pan", "track",
	// "expiry", "cvv". An unknown name is an error.
	Detectors []string
	// Rules are custom regular expressions to mask.
	Rules []Rule
	// Columns are globs (path.Match syntax, matched case-insensitively) on
	// SQL column names whose cells are masked whole.
	Columns []string
}

// Rule is a custom masking rule. Pattern is Go regexp (RE2) syntax. An empty
// Replacement masks each byte of a match with '*' (newlines and terminal
// escape sequences kept, so the screen layout does not move); otherwise the
// match is replaced by Replacement, expanded as by regexp.Expand ($1, ${name}).
type Rule struct {
	Name, Pattern, Replacement string
}

// rule is a compiled Rule.
type rule struct {
	name string
	re   *regexp.Regexp
	repl []byte // nil: star masking
}

// segMax bounds the bytes a custom rule looks at in one piece (see segment):
// it bounds what a stream holds for rules whose pattern can span much text.
const segMax = 4096

// Engine is a compiled masking configuration. It is immutable and safe for
// concurrent use; build one per config and a Stream per output stream.
type Engine struct {
	pan, track, expiry, cvv bool
	digits                  bool // some detector looks at digit runs
	rules                   []rule
	// first holds the bytes a custom rule's match can start with, alpha
	// those it can contain: a match lies inside a run of alpha bytes and
	// starts at a first byte, which is what lets a stream hold only such runs.
	first, alpha [256]bool
	// stop holds the bytes the stream's fast path must not skip over: they
	// may start a candidate or change the escape-sequence state. stopNL adds
	// '\n', which ends a line's "PAN seen" context.
	stop, stopNL [256]bool
	columns      []string
	noop         bool // nothing to mask: streams forward bytes untouched
	swar         bool // the stop set is the fixed one skip tests in words
}

// New compiles o. It fails on an unknown detector, a custom rule with no
// name, a duplicate or reserved name or a bad pattern, and a bad column
// glob; each error names the offending entry.
func New(o Options) (*Engine, error) {
	e := &Engine{}
	for _, d := range o.Detectors {
		switch d {
		case DetectorPAN:
			e.pan = true
		case DetectorTrack:
			e.track = true
		case DetectorExpiry:
			e.expiry = true
		case DetectorCVV:
			e.cvv = true
		default:
			return nil, fmt.Errorf("mask: unknown detector %q; want pan, track, expiry or cvv", d)
		}
	}
	e.digits = e.pan || e.expiry || e.cvv
	seen := map[string]bool{}
	for _, n := range builtinNames {
		seen[n] = true
	}
	seen[CountColumn] = true
	for i, r := range o.Rules {
		if r.Name == "" {
			return nil, fmt.Errorf("mask: rule %d has no name", i)
		}
		if seen[r.Name] {
			return nil, fmt.Errorf("mask: rule name %q is used twice or is reserved (%s, %s, %s, %s, %s)",
				r.Name, DetectorPAN, DetectorTrack, DetectorExpiry, DetectorCVV, CountColumn)
		}
		seen[r.Name] = true
		re, err := regexp.Compile(r.Pattern)
		if err != nil {
			return nil, fmt.Errorf("mask: rule %q: bad pattern: %w", r.Name, err)
		}
		st, err := syntax.Parse(r.Pattern, syntax.Perl)
		if err != nil {
			return nil, fmt.Errorf("mask: rule %q: bad pattern: %w", r.Name, err)
		}
		byteSets(st.Simplify(), &e.first, &e.alpha)
		cr := rule{name: r.Name, re: re}
		if r.Replacement != "" {
			cr.repl = []byte(r.Replacement)
		}
		e.rules = append(e.rules, cr)
	}
	for _, c := range o.Columns {
		c = strings.ToLower(c)
		if _, err := path.Match(c, ""); err != nil {
			return nil, fmt.Errorf("mask: column glob %q: %w", c, err)
		}
		e.columns = append(e.columns, c)
	}
	e.noop = !e.digits && !e.track && len(e.rules) == 0
	for _, t := range []*[256]bool{&e.stop, &e.stopNL} {
		t[0x1b] = true
		if e.digits {
			for c := '0'; c <= '9'; c++ {
				t[c] = true
			}
		}
		if e.track {
			t['%'], t[';'] = true, true
		}
		for b, f := range e.first {
			if f {
				t[b] = true
			}
		}
	}
	e.stopNL['\n'] = true
	// The fast path hands history to the keyword check in bulk, which it
	// can only do for runs free of invisible controls.
	for b, inv := range invisible {
		if inv {
			e.stop[b], e.stopNL[b] = true, true
		}
	}
	e.swar = len(e.rules) == 0
	return e, nil
}

// SWAR constants: every byte 0x01, every byte 0x80.
const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// hasByte reports whether some byte of x equals c.
func hasByte(x uint64, c byte) bool {
	y := x ^ (lo8 * uint64(c))
	return (y-lo8)&^y&hi8 != 0
}

// skip returns the index of the first byte of p[i:] the slow path must see.
// Without custom rules the stop set is fixed (digits, ESC, '%', ';', the
// invisible controls, and '\n' when nl), so eight bytes are tested at once:
// a word with no byte below 0x20, none in 0x25–0x3B and no '\n' is skipped
// whole. Such a word may still hold no stop ('-', ':' or '/' are in the
// range); the table decides then.
func (e *Engine) skip(p []byte, i int, nl bool) int {
	stop := &e.stop
	if nl {
		stop = &e.stopNL
	}
	if e.swar {
		for ; i+8 <= len(p); i += 8 {
			x := uint64(p[i]) | uint64(p[i+1])<<8 | uint64(p[i+2])<<16 | uint64(p[i+3])<<24 |
				uint64(p[i+4])<<32 | uint64(p[i+5])<<40 | uint64(p[i+6])<<48 | uint64(p[i+7])<<56
			// Bytes below 0x20 (controls, ESC) or 0x7F: any byte b with
			// b < 0x20 has (b - 0x20) borrow into its high bit when b < 0x80.
			low := (x - lo8*0x20) &^ x & hi8
			// Bytes 0x25..0x3B: (b + (0x80-0x25)) has its high bit set and
			// (b + (0x80-0x3C)) not, for b < 0x80.
			m := x &^ hi8
			mid := (m + lo8*(0x80-0x25)) &^ (m + lo8*(0x80-0x3c)) &^ x & hi8
			if low|mid != 0 || hasByte(x, 0x7f) {
				break
			}
		}
	}
	for i < len(p) && !stop[p[i]] {
		i++
	}
	return i
}

// byteSets adds to first the bytes a match of re can start with and to
// alpha the bytes it can contain, and reports whether re can match empty.
// Any rune above ASCII marks every non-ASCII byte: exact UTF-8 sets would
// save little.
func byteSets(re *syntax.Regexp, first, alpha *[256]bool) (nullable bool) {
	addRune := func(r rune, f bool) {
		if r < utf8.RuneSelf {
			alpha[r] = true
			if f {
				first[r] = true
			}
			return
		}
		for b := 0x80; b < 0x100; b++ {
			alpha[b] = true
			if f {
				first[b] = true
			}
		}
	}
	addRange := func(lo, hi rune, f bool) {
		for r := lo; r <= hi && r < utf8.RuneSelf; r++ {
			addRune(r, f)
		}
		if hi >= utf8.RuneSelf {
			addRune(utf8.RuneSelf, f)
		}
	}
	switch re.Op {
	case syntax.OpNoMatch:
		return false
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return true
	case syntax.OpLiteral:
		for i, r := range re.Rune {
			addRune(r, i == 0)
			if re.Flags&syntax.FoldCase != 0 {
				for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
					addRune(f, i == 0)
				}
			}
		}
		return len(re.Rune) == 0
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			addRange(re.Rune[i], re.Rune[i+1], true)
		}
		return false
	case syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		for b := 0; b < 256; b++ {
			if b != '\n' || re.Op == syntax.OpAnyChar {
				alpha[b], first[b] = true, true
			}
		}
		return false
	case syntax.OpCapture:
		return byteSets(re.Sub[0], first, alpha)
	case syntax.OpStar, syntax.OpQuest:
		byteSets(re.Sub[0], first, alpha)
		return true
	case syntax.OpPlus:
		return byteSets(re.Sub[0], first, alpha)
	case syntax.OpRepeat:
		n := byteSets(re.Sub[0], first, alpha)
		return n || re.Min == 0
	case syntax.OpConcat:
		nullable = true
		for _, sub := range re.Sub {
			if nullable {
				nullable = byteSets(sub, first, alpha)
			} else {
				var ignore [256]bool
				byteSets(sub, &ignore, alpha)
			}
		}
		return nullable
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if byteSets(sub, first, alpha) {
				nullable = true
			}
		}
		return nullable
	}
	// An operator this walk does not know: assume it can match anything, so
	// that the stream holds too much rather than misses a match.
	for b := 0; b < 256; b++ {
		alpha[b], first[b] = true, true
	}
	return true
}

// MaskColumn reports whether a SQL column of this name is masked whole, by
// the masking.columns globs (case-insensitive).
func (e *Engine) MaskColumn(name string) bool {
	name = strings.ToLower(name)
	for _, g := range e.columns {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// MaskText masks a whole value known at once, such as a SQL cell, with the
// same detectors and rules as a Stream. It returns exactly what a Stream
// writes for the same bytes followed by Flush, whatever the chunking.
func (e *Engine) MaskText(s string) (string, Counts) {
	if e.noop {
		return s, Counts{}
	}
	var b bytes.Buffer
	b.Grow(len(s))
	st := e.NewStream(&b)
	// A bytes.Buffer never fails, so neither can the stream.
	_, _ = st.Write([]byte(s))
	_ = st.Flush()
	return b.String(), st.Counts()
}

// MaskCell masks one SQL cell: whole (one '*' per character, newlines kept)
// if the column matches masking.columns, counted as "column"; otherwise
// through MaskText.
func (e *Engine) MaskCell(column, value string) (string, Counts) {
	if !e.MaskColumn(column) {
		return e.MaskText(value)
	}
	var b strings.Builder
	for _, r := range value {
		if r == '\n' || r == '\r' {
			b.WriteRune(r)
		} else {
			b.WriteByte('*')
		}
	}
	return b.String(), Counts{CountColumn: 1}
}

// Counts is how many values each detector or rule masked. Keys are the
// detector names ("pan", "track", "expiry", "cvv"), custom rule names and
// "column"; a key that counted nothing is absent.
type Counts map[string]int64

// Add adds o into c, for a session summing its streams and cells.
func (c Counts) Add(o Counts) {
	for k, v := range o {
		c[k] += v
	}
}
