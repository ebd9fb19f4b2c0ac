package sqlrepl

import (
	"bufio"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mattn/go-runewidth"

	"github.com/bastion-dev/bastion/policy/mask"
)

// How results look. Tables are psql's aligned format; every cell is masked
// (mask.Engine.MaskCell) before any width is measured, so masked columns
// stay aligned, and then made safe to print (sanitize).
//
// NULL is drawn as ∅ (dimmed on a terminal) in table and expanded output:
// psql's blank cannot be told from an empty string, and the word NULL cannot
// be told from the string 'NULL'. CSV writes NULL as an empty unquoted field
// and the empty string as "" (the convention of PostgreSQL's COPY CSV); TSV
// writes \N, with backslash, tab, newline and CR escaped (COPY's text
// format), so that both round-trip through a loader.
const (
	nullMark   = "∅"
	dimOn      = "\x1b[2m"
	dimOff     = "\x1b[0m"
	truncMark  = "…"
	minColumn  = 3 // a truncated column keeps at least this many cells of width
	recordHead = "-[ RECORD %d ]"
)

// sanitize makes a value safe to draw inside a table: a cell must not move
// the cursor, change colours or retitle the window, and must stay on its
// line. Newlines become ↵; other control characters and invalid UTF-8
// bytes become \xHH escapes.
func sanitize(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c >= 0x80 {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString("↵")
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.Is(unicode.Cf, r) && r != 0x200d:
			// Format characters (bidi overrides, zero-width…) reorder or
			// hide text: show them.
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += n
	}
	return b.String()
}

// displayWidth is the number of terminal cells s occupies.
func displayWidth(s string) int { return runewidth.StringWidth(s) }

// truncate cuts s to at most w cells, ending in the truncation mark when it
// cut anything.
func truncate(s string, w int) string {
	if displayWidth(s) <= w {
		return s
	}
	if w <= 0 {
		return ""
	}
	return runewidth.Truncate(s, w, truncMark)
}

// cell is a masked, sanitized value ready to draw.
type cell struct {
	s    string
	null bool
}

// rowMasker masks the cells of one result before anything measures or
// writes them. Column masking applies to the column name as the server
// reports it (an alias renames the column, so the masking.columns globs are
// a convenience, and the detectors still read every cell's text). Whether a
// column is masked whole is decided once per result, not once per cell: a
// glob match per cell was the largest cost of streaming a big result.
type rowMasker struct {
	m     *mask.Engine
	cols  []Column
	whole []bool // masked whole by masking.columns
}

func newRowMasker(m *mask.Engine, cols []Column) rowMasker {
	rm := rowMasker{m: m, cols: cols}
	if m != nil {
		rm.whole = make([]bool, len(cols))
		for i, c := range cols {
			rm.whole[i] = m.MaskColumn(c.Name)
		}
	}
	return rm
}

// row masks vals into dst (reused when it has room) and adds what was
// masked to counts.
func (rm rowMasker) row(dst []cell, vals []Value, counts mask.Counts) []cell {
	if cap(dst) < len(vals) {
		dst = make([]cell, len(vals))
	}
	dst = dst[:len(vals)]
	for i, v := range vals {
		if v.Null {
			dst[i] = cell{null: true}
			continue
		}
		s := v.S
		if rm.m != nil {
			var c mask.Counts
			if i < len(rm.whole) && rm.whole[i] {
				s, c = rm.m.MaskCell(rm.cols[i].Name, s)
			} else {
				s, c = rm.m.MaskText(s) // what MaskCell does for such a column
			}
			if len(c) > 0 {
				counts.Add(c)
			}
		}
		dst[i] = cell{s: s}
	}
	return dst
}

// layout is how a table is drawn.
type layout struct {
	width    int  // terminal columns; 0 means unlimited (not a terminal)
	color    bool // a terminal: NULL may be dimmed
	expanded bool
}

// renderTable writes cols and rows in psql's aligned format, or in expanded
// format when l.expanded. Cells wider than the terminal allows are cut with
// a mark; in expanded format only values are cut.
func renderTable(w *bufio.Writer, cols []Column, rows [][]cell, l layout) {
	if l.expanded {
		renderExpanded(w, cols, rows, l)
		return
	}
	names := make([]string, len(cols))
	widths := make([]int, len(cols))
	for i, c := range cols {
		names[i] = sanitize(c.Name)
		widths[i] = displayWidth(names[i])
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], cellWidth(c))
		}
	}
	if l.width > 0 {
		fitWidths(widths, l.width)
	}
	// Header, centred as psql does.
	for i, n := range names {
		if i > 0 {
			w.WriteString("|")
		}
		n = truncate(n, widths[i])
		pad := widths[i] - displayWidth(n)
		w.WriteString(" " + strings.Repeat(" ", pad/2) + n + strings.Repeat(" ", pad-pad/2) + " ")
	}
	w.WriteString("\n")
	for i := range names {
		if i > 0 {
			w.WriteString("+")
		}
		w.WriteString(strings.Repeat("-", widths[i]+2))
	}
	w.WriteString("\n")
	for _, r := range rows {
		for i, c := range r {
			if i > 0 {
				w.WriteString("|")
			}
			w.WriteString(" ")
			drawCell(w, c, widths[i], cols[i].Numeric, i == len(r)-1, l.color)
			if i < len(r)-1 {
				w.WriteString(" ")
			}
		}
		w.WriteString("\n")
	}
}

// cellWidth is the width a cell wants.
func cellWidth(c cell) int {
	if c.null {
		return displayWidth(nullMark)
	}
	return displayWidth(sanitize(c.s))
}

// drawCell writes one cell padded (or cut) to width. The last column of a
// row is not padded on the right, as in psql, unless it is right-aligned.
func drawCell(w *bufio.Writer, c cell, width int, right, last, color bool) {
	text := nullMark
	if !c.null {
		text = truncate(sanitize(c.s), width)
	}
	pad := strings.Repeat(" ", max(width-displayWidth(text), 0))
	if right {
		w.WriteString(pad)
	}
	if c.null && color {
		w.WriteString(dimOn + text + dimOff)
	} else {
		w.WriteString(text)
	}
	if !right && !last {
		w.WriteString(pad)
	}
}

// fitWidths narrows the widest columns until a row fits in total cells
// (" a | b " is width(a)+width(b)+3 per extra column +2), as far as
// minColumn allows.
func fitWidths(widths []int, total int) {
	need := func() int {
		n := 0
		for _, w := range widths {
			n += w + 3
		}
		return n - 1
	}
	for need() > total {
		widest := 0
		for i, w := range widths {
			if w > widths[widest] {
				widest = i
			}
		}
		if widths[widest] <= minColumn {
			return
		}
		widths[widest]--
	}
}

// tableWidth is the width the table would take untruncated.
func tableWidth(cols []Column, rows [][]cell) int {
	n := 0
	for i, c := range cols {
		w := displayWidth(sanitize(c.Name))
		for _, r := range rows {
			w = max(w, cellWidth(r[i]))
		}
		n += w + 3
	}
	return n - 1
}

// renderExpanded writes one block per row, one line per column (\x).
func renderExpanded(w *bufio.Writer, cols []Column, rows [][]cell, l layout) {
	labelW := 0
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = sanitize(c.Name)
		labelW = max(labelW, displayWidth(names[i]))
	}
	valueW := 0
	if l.width > 0 {
		valueW = max(l.width-labelW-3, minColumn)
	}
	for n, r := range rows {
		head := fmt.Sprintf(recordHead, n+1)
		w.WriteString(head)
		if rest := labelW + 1 - displayWidth(head); rest > 0 {
			w.WriteString(strings.Repeat("-", rest))
		}
		w.WriteString("+")
		dash := 10
		if l.width > 0 {
			dash = max(l.width-max(labelW+1, displayWidth(head))-1, 1)
		}
		w.WriteString(strings.Repeat("-", dash) + "\n")
		for i, c := range r {
			w.WriteString(names[i] + strings.Repeat(" ", labelW-displayWidth(names[i])) + " | ")
			text := nullMark
			if !c.null {
				text = sanitize(c.s)
				if valueW > 0 {
					text = truncate(text, valueW)
				}
			}
			if c.null && l.color {
				text = dimOn + text + dimOff
			}
			w.WriteString(text + "\n")
		}
	}
}

// csvField renders one CSV field (RFC 4180): quoted when it holds the
// separator, a quote, CR or LF, surrounding space, or is empty (so that an
// empty string differs from NULL, which is written as nothing at all).
func csvField(c cell) string {
	if c.null {
		return ""
	}
	s := c.s
	if csvQuoted(s) {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

// csvQuoted reports whether a CSV field must be quoted: empty (so that it
// differs from NULL), holding a separator, quote or line break, or with
// white space at either end (which loaders trim). One pass over the bytes:
// this runs for every cell of a streamed result.
func csvQuoted(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ',', '"', '\r', '\n':
			return true
		}
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	return unicode.IsSpace(first) || unicode.IsSpace(last)
}

// tsvField renders one TSV field in COPY text style: \N for NULL and
// backslash escapes for backslash, tab, newline and CR.
func tsvField(c cell) string {
	if c.null {
		return `\N`
	}
	if !strings.ContainsAny(c.s, "\\\t\n\r") {
		return c.s
	}
	r := strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`)
	return r.Replace(c.s)
}

// plural picks the word for n.
func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
