package sqlrepl

import "strings"

// The statement splitter. It only has to find the ';' that end statements,
// so it is a lexer, not a parser: it knows each dialect's quotes and comments
// well enough never to split inside them, and nothing else. The policy layer
// classifies statements with a real parser (issue 6); this splitter decides
// only what is sent to the server as one statement, which is why a ';' it
// misses can at worst join two statements into one that the server rejects.
//
// Rules by dialect:
//
//	all       'single-quoted strings' with '' doubling, "quoted identifiers"
//	          with "" doubling, /* block comments */, -- line comments
//	postgres  E'…' strings with backslash escapes, $tag$ dollar quoting $tag$,
//	          nested block comments, and no split inside parentheses (psql's
//	          rule, so that a ';' in a function call's argument is kept)
//	mysql     backslash escapes in '…' and "…" strings, `backtick` identifiers,
//	          # line comments, and "--" is a comment only before whitespace
//	sqlite    `backtick` and [bracket] identifiers; inside CREATE TRIGGER a
//	          ';' ends the statement only after END (sqlite3_complete's rule)

// Dialect names the SQL dialect a statement is lexed in; it is the target
// kind.
type Dialect string

// The dialects, equal to the target kinds of the config.
const (
	Postgres Dialect = "postgres"
	MySQL    Dialect = "mysql"
	SQLite   Dialect = "sqlite"
)

// piece is the text between two statement separators.
type piece struct {
	text  string
	blank bool // only whitespace and comments: nothing to send
}

// scanResult is a scanned buffer: the complete statements and what is left.
type scanResult struct {
	pieces []piece // every piece but the last ended at a separator
	// open is what the last piece ends inside, for the continuation prompt:
	// "" at top level, or one of ' " ` [ ( /* or a $tag$.
	open string
	// meta is the offset of the first backslash outside quotes and
	// comments, where a psql-style meta-command starts; -1 when none.
	meta int
}

// Split splits src into statements at each ';' that is outside quotes,
// comments, dollar quotes, parentheses (postgres) and trigger bodies
// (sqlite). It returns every piece between separators, the text after the
// last separator included (it may be empty or only whitespace), so that
// strings.Join(pieces, ";") == src. Pieces keep their whitespace and
// comments; trimming is the caller's choice.
func Split(d Dialect, src string) []string {
	r := scan(d, src)
	out := make([]string, len(r.pieces))
	for i, p := range r.pieces {
		out[i] = p.text
	}
	return out
}

// scan does the work of Split, also reporting which pieces are blank and
// what the end of src lies inside.
func scan(d Dialect, src string) scanResult {
	res := scanResult{meta: -1}
	start := 0
	tokens := false // the current piece has something besides blanks
	depth := 0      // parentheses (postgres)
	words := 0      // words seen in the current piece (sqlite triggers)
	trigger := false
	lastWord := ""
	cut := func(end int) {
		res.pieces = append(res.pieces, piece{text: src[start:end], blank: !tokens})
		start = end + 1
		tokens, depth, words, trigger, lastWord = false, 0, 0, false, ""
	}

	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\'':
			tokens, lastWord = true, ""
			esc := d == MySQL || d == Postgres && i > 0 && (src[i-1] == 'E' || src[i-1] == 'e') && (i < 2 || !identByte(src[i-2]))
			j, ok := skipQuoted(src, i+1, '\'', esc)
			if !ok {
				res.open = "'"
			}
			i = j
		case c == '"':
			tokens, lastWord = true, ""
			j, ok := skipQuoted(src, i+1, '"', d == MySQL)
			if !ok {
				res.open = `"`
			}
			i = j
		case c == '`' && d != Postgres:
			tokens, lastWord = true, ""
			j, ok := skipQuoted(src, i+1, '`', false)
			if !ok {
				res.open = "`"
			}
			i = j
		case c == '[' && d == SQLite:
			tokens, lastWord = true, ""
			j := strings.IndexByte(src[i+1:], ']')
			if j < 0 {
				res.open = "["
				i = len(src)
			} else {
				i += j + 2
			}
		case c == '-' && i+1 < len(src) && src[i+1] == '-' && (d != MySQL || i+2 >= len(src) || src[i+2] <= ' '),
			c == '#' && d == MySQL:
			j := strings.IndexByte(src[i:], '\n')
			if j < 0 {
				i = len(src)
			} else {
				i += j + 1
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			j, ok := skipBlockComment(src, i+2, d == Postgres)
			if !ok {
				res.open = "/*"
			}
			i = j
		case c == '$' && d == Postgres && (i == 0 || !identByte(src[i-1])):
			tokens, lastWord = true, ""
			tag, ok := dollarTag(src[i:])
			if !ok {
				i++ // a parameter ($1) or a lone '$'
				break
			}
			j := strings.Index(src[i+len(tag):], tag)
			if j < 0 {
				res.open = tag
				i = len(src)
			} else {
				i += len(tag) + j + len(tag)
			}
		case c == '(':
			tokens, lastWord = true, ""
			if d == Postgres {
				depth++
			}
			i++
		case c == ')':
			tokens, lastWord = true, ""
			if depth > 0 {
				depth--
			}
			i++
		case c == ';':
			if depth > 0 || trigger && lastWord != "END" {
				tokens, lastWord = true, ""
				i++
				break
			}
			cut(i)
			i++
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case identByte(c) && !(c >= '0' && c <= '9'):
			j := i + 1
			for j < len(src) && identByte(src[j]) {
				j++
			}
			tokens = true
			w := strings.ToUpper(src[i:j])
			words++
			if d == SQLite {
				// CREATE [TEMP|TEMPORARY] TRIGGER
				switch {
				case words == 2 && w == "TRIGGER" && lastWord == "CREATE",
					words == 3 && w == "TRIGGER" && (lastWord == "TEMP" || lastWord == "TEMPORARY"):
					trigger = true
				}
			}
			lastWord = w
			i = j
		default:
			if c == '\\' && res.meta < 0 {
				res.meta = i
			}
			tokens, lastWord = true, ""
			i++
		}
	}
	res.pieces = append(res.pieces, piece{text: src[start:], blank: !tokens})
	if res.open == "" && depth > 0 {
		res.open = "("
	}
	return res
}

// skipQuoted returns the index just past the quote q that closes a quoted
// run starting at i (just after the opening quote). A doubled quote stands
// for itself; with esc, a backslash escapes the next byte. ok is false when
// src ends inside the run (then the index is len(src)).
func skipQuoted(src string, i int, q byte, esc bool) (int, bool) {
	for i < len(src) {
		switch src[i] {
		case '\\':
			if esc {
				i += 2
				continue
			}
		case q:
			if i+1 < len(src) && src[i+1] == q {
				i += 2
				continue
			}
			return i + 1, true
		}
		i++
	}
	return len(src), false
}

// skipBlockComment returns the index just past the "*/" that closes a block
// comment whose body starts at i; with nested (postgres), "/*" inside opens
// a further level.
func skipBlockComment(src string, i int, nested bool) (int, bool) {
	level := 1
	for i < len(src) {
		switch {
		case src[i] == '*' && i+1 < len(src) && src[i+1] == '/':
			level--
			i += 2
			if level == 0 {
				return i, true
			}
		case nested && src[i] == '/' && i+1 < len(src) && src[i+1] == '*':
			level++
			i += 2
		default:
			i++
		}
	}
	return len(src), false
}

// dollarTag returns the $tag$ that s starts with, if it does: an empty tag
// or an identifier that does not start with a digit.
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		c := s[j]
		if c == '$' {
			return s[:j+1], true
		}
		if !identByte(c) || c == '$' || j == 1 && c >= '0' && c <= '9' {
			return "", false
		}
	}
	return "", false
}

// identByte reports whether c may be part of an unquoted identifier or
// keyword. Bytes of multi-byte UTF-8 characters count, as every dialect
// accepts letters beyond ASCII.
func identByte(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// firstWord returns the first keyword of a statement, upper-cased, skipping
// blanks and comments ("" when it starts with something else, e.g. '(').
func firstWord(d Dialect, stmt string) string {
	return nthWord(d, stmt, 0)
}

// nthWord returns the n-th (from 0) leading keyword of stmt, upper-cased, as
// long as only words, blanks and comments come before it.
func nthWord(d Dialect, stmt string, n int) string {
	i := 0
	for i < len(stmt) {
		c := stmt[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(stmt) && stmt[i+1] == '-', c == '#' && d == MySQL:
			j := strings.IndexByte(stmt[i:], '\n')
			if j < 0 {
				return ""
			}
			i += j + 1
		case c == '/' && i+1 < len(stmt) && stmt[i+1] == '*':
			j, ok := skipBlockComment(stmt, i+2, d == Postgres)
			if !ok {
				return ""
			}
			i = j
		case identByte(c) && !(c >= '0' && c <= '9') && c != '$':
			j := i + 1
			for j < len(stmt) && identByte(stmt[j]) {
				j++
			}
			if n == 0 {
				return strings.ToUpper(stmt[i:j])
			}
			n--
			i = j
		default:
			return ""
		}
	}
	return ""
}
