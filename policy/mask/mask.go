package mask

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"path"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"sync/atomic"
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
	noop         bool      // nothing to mask: streams forward bytes untouched
	texts        sync.Pool // *textStream for MaskText
	swar         bool      // the stop set is within the fixed one skip tests in words
	exact        bool      // and is all of it: a word's hit needs no table check
	// fastChain: the stream may pass over clear digit chains at once
	// (plainChain): a digit detector is on and no custom rule's match can
	// start with a digit.
	fastChain bool
	// block: streams put blockRun in front of idleRun; simd: its classifier
	// runs on vectors (vec). cls holds each byte's block classes.
	block, simd bool
	// passInv, passZW: blockRun passes invisible controls, and the leads
	// of zero-width characters (no custom rule starts with one).
	passInv, passZW bool
	cls             [256]byte
	vec             simdTables
	// slowOnly makes streams take every byte through the slow path, for
	// the tests that hold the fast paths to it.
	slowOnly bool
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
	e.exact = e.swar && e.digits && e.track
	e.fastChain = e.digits
	for c := '0'; c <= '9'; c++ {
		if e.first[c] {
			e.fastChain = false
		}
	}
	e.initBlock()
	return e, nil
}

// SWAR constants: every byte 0x01, every byte 0x80.
const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// stopWord returns, for the eight bytes of x, a word with the high bit of
// each byte set where that byte is in the fixed stop set of an engine
// without custom rules: a digit, '%', ';', ESC, an invisible control or
// DEL, and '\n' when nl. The test is exact per byte (no borrow or carry
// crosses bytes: every sum below is of a 7-bit value and at most 0x80), so
// the first set bit is the first stop. An engine without the digit or
// track detectors has a smaller stop set; its table weeds out the extra.
func stopWord(x uint64, nl bool) uint64 {
	m := x &^ hi8 // low seven bits of each byte
	// (m + lo8*(0x80-n)) & hi8 has the high bit set where m >= n.
	ctl := ^(m + lo8*(0x80-0x20)) // C0 controls
	// BS, HT, LF, VT, FF and CR are not stops.
	moves := (m + lo8*(0x80-0x08)) &^ (m + lo8*(0x80-0x0e))
	if nl {
		// LF is a stop then.
		moves &^= (m + lo8*(0x80-0x0a)) &^ (m + lo8*(0x80-0x0b))
	}
	dig := (m + lo8*(0x80-0x30)) &^ (m + lo8*(0x80-0x3a))
	pct := (m + lo8*(0x80-0x25)) &^ (m + lo8*(0x80-0x26))
	semi := (m + lo8*(0x80-0x3b)) &^ (m + lo8*(0x80-0x3c))
	del := m + lo8*(0x80-0x7f)
	// Bytes >= 0x80 are never stops without custom rules.
	return ((ctl &^ moves) | dig | pct | semi | del) & hi8 &^ x
}

// skip returns the index of the first byte of p[i:] the slow path must see.
// Without custom rules the stop set is the fixed one of stopWord, so eight
// bytes are tested at once and a hit gives the stop's index directly;
// otherwise (and for the last few bytes) the table is read byte by byte.
func (e *Engine) skip(p []byte, i int, nl bool) int {
	stop := &e.stop
	if nl {
		stop = &e.stopNL
	}
	if e.exact {
		for ; i+8 <= len(p); i += 8 {
			if m := stopWord(binary.LittleEndian.Uint64(p[i:]), nl); m != 0 {
				return i + bits.TrailingZeros64(m)>>3
			}
		}
	} else if e.swar {
		for ; i+8 <= len(p); i += 8 {
			m := stopWord(binary.LittleEndian.Uint64(p[i:]), nl)
			for m != 0 {
				k := i + bits.TrailingZeros64(m)>>3
				if stop[p[k]] {
					return k
				}
				m &= m - 1
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
//
// It runs on a pooled Stream and scratch buffers, so a call allocates
// only when something was masked: the result and the Counts, which are nil
// otherwise (a nil Counts reads as empty).
func (e *Engine) MaskText(s string) (string, Counts) {
	if e.noop {
		return s, nil
	}
	t, _ := e.texts.Get().(*textStream)
	if t == nil {
		t = &textStream{}
		t.st.e = e
		t.st.counts = make([]atomic.Int64, nBuiltin+len(e.rules))
	}
	t.out.Reset()
	t.st.reset(&t.out)
	t.in = append(t.in[:0], s...)
	// A bytes.Buffer never fails, so neither can the stream.
	_, _ = t.st.Write(t.in)
	_ = t.st.Flush()
	out := s
	if string(t.out.Bytes()) != s { // compared without a copy
		out = t.out.String()
	}
	var c Counts // nil when nothing was masked: no map per clear cell
	for i := range t.st.counts {
		if t.st.counts[i].Load() > 0 {
			c = t.st.Counts()
			break
		}
	}
	if cap(t.in) <= 64<<10 && t.out.Cap() <= 64<<10 {
		e.texts.Put(t) // keep no huge buffers around
	}
	return out, c
}

// textStream is MaskText's scratch: a stream, its input copy and output.
type textStream struct {
	st  Stream
	in  []byte
	out bytes.Buffer
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
