package policy

import (
	"strings"
	"unicode"
)

// ClassifyStatement sorts one SQL statement into a statement class for
// rules: read, write, ddl, admin or unknown. It looks at the statement's
// leading keyword after comments (and, for WITH, at the verb of the main
// query), which is what a rule needs to tell `SELECT` from `DELETE`. It
// fails closed: anything it does not recognise is unknown, and a statement
// with more than one part (a `;` outside quotes and comments) is unknown
// too, so `SELECT 1; DROP TABLE t` cannot pass as a read.
//
// A full SQL parser for three dialects (pg_query needs cgo, vitess's is
// MySQL only) would classify more precisely; the leading keyword is the
// part of the statement the server itself dispatches on, so the classes
// agree with what runs.
func ClassifyStatement(stmt string) string {
	// MySQL runs the text of /*! ... */ comments: what hides there is
	// not a comment, so we do not guess.
	if strings.Contains(stmt, "/*!") || strings.Contains(stmt, "/*M!") {
		return StatementUnknown
	}
	words, inner, calls, multi := sqlWords(stmt, 64)
	if multi || len(words) == 0 {
		return StatementUnknown
	}
	class := escalate(leadingClass(words), inner)
	if class == StatementRead {
		class = escalate(class, readsThatWrite(words, inner, calls))
	}
	return class
}

// readsThatWrite returns the class words of the clauses and functions that
// make a statement that starts like a read do more than read: SELECT ...
// INTO (a new table, or a file), FOR UPDATE/SHARE (locks), INTO OUTFILE
// and DUMPFILE, and functions with side effects.
func readsThatWrite(words, inner, calls []string) []string {
	var out []string
	all := append(append([]string(nil), words...), inner...)
	for i, w := range all {
		switch w {
		case "INTO":
			if i+1 < len(all) && (all[i+1] == "OUTFILE" || all[i+1] == "DUMPFILE") {
				out = append(out, "GRANT") // admin: writes a file on the server
			} else {
				out = append(out, "INSERT")
			}
		case "FOR":
			if i+1 < len(all) && (all[i+1] == "UPDATE" || all[i+1] == "SHARE" || all[i+1] == "NO") {
				out = append(out, "UPDATE")
			}
		}
	}
	for _, f := range calls {
		if c := sideEffectFunctions[f]; c != "" {
			out = append(out, c)
		}
	}
	return out
}

// sideEffectFunctions are functions that change state when a SELECT calls
// them, with the statement word of the class they raise a read to.
var sideEffectFunctions = map[string]string{
	// PostgreSQL
	"NEXTVAL": "INSERT", "SETVAL": "INSERT", "SET_CONFIG": "GRANT", "PG_TERMINATE_BACKEND": "GRANT",
	"PG_CANCEL_BACKEND": "GRANT", "PG_RELOAD_CONF": "GRANT", "PG_ROTATE_LOGFILE": "GRANT", "LO_EXPORT": "GRANT",
	"LO_IMPORT": "GRANT", "LO_UNLINK": "INSERT", "DBLINK_EXEC": "GRANT", "DBLINK": "GRANT", "PG_SLEEP": "GRANT",
	"PG_ADVISORY_LOCK": "UPDATE", "PG_READ_FILE": "GRANT", "PG_READ_BINARY_FILE": "GRANT", "PG_LS_DIR": "GRANT",
	"PG_WRITE_FILE": "GRANT", "PG_FILE_WRITE": "GRANT", "TXID_CURRENT": "INSERT",
	// MySQL / MariaDB
	"SLEEP": "GRANT", "BENCHMARK": "GRANT", "GET_LOCK": "UPDATE", "RELEASE_LOCK": "UPDATE", "LOAD_FILE": "GRANT",
	"SYS_EXEC": "GRANT", "SYS_EVAL": "GRANT",
	// SQLite
	"LOAD_EXTENSION": "GRANT", "WRITEFILE": "GRANT", "READFILE": "GRANT", "EDIT": "GRANT",
}

// escalate raises class when a nested part of the statement modifies data
// (`WITH d AS (DELETE ... RETURNING *) SELECT ...`, a subquery in a
// function call): what runs decides, not the outermost verb.
func escalate(class string, inner []string) string {
	rank := map[string]int{StatementRead: 0, StatementWrite: 1, StatementDDL: 2, StatementAdmin: 3, StatementUnknown: 4}
	for _, w := range inner {
		var c string
		switch w {
		case "INSERT", "UPDATE", "DELETE", "MERGE", "COPY":
			c = StatementWrite
		case "CREATE", "ALTER", "DROP", "TRUNCATE":
			c = StatementDDL
		case "GRANT", "REVOKE":
			c = StatementAdmin
		default:
			continue
		}
		if rank[c] > rank[class] {
			class = c
		}
	}
	return class
}

func leadingClass(words []string) string {
	if len(words) == 0 {
		return StatementUnknown
	}
	verb := words[0]
	if verb == "WITH" {
		// WITH name AS (...) [, ...] VERB: the first verb at depth 0 after
		// the CTEs; sqlWords drops what is inside parentheses.
		verb = ""
		for _, w := range words[1:] {
			if c := keywordClass(w); c != "" && w != "AS" {
				verb = w
				break
			}
		}
	}
	if c := keywordClass(verb); c != "" {
		if verb == "EXPLAIN" && len(words) > 1 && (words[1] == "ANALYZE" || words[1] == "ANALYSE") {
			// EXPLAIN ANALYZE runs the statement it explains.
			return leadingClass(words[2:])
		}
		return c
	}
	return StatementUnknown
}

func keywordClass(w string) string {
	switch w {
	case "SELECT", "SHOW", "EXPLAIN", "DESCRIBE", "DESC", "VALUES", "TABLE":
		return StatementRead
	case "INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE", "UPSERT", "LOAD":
		return StatementWrite
	case "COPY":
		// COPY ... TO PROGRAM and FROM PROGRAM run commands on the server;
		// COPY moves data in or out wholesale: never a read.
		return StatementAdmin
	case "CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "COMMENT", "REINDEX", "CLUSTER", "VACUUM", "ANALYZE":
		return StatementDDL
	case "GRANT", "REVOKE", "SET", "RESET", "KILL", "SHUTDOWN", "FLUSH", "INSTALL", "UNINSTALL", "PRAGMA", "ATTACH", "DETACH", "CALL", "DO", "EXECUTE", "PREPARE", "LOCK":
		return StatementAdmin
	}
	return ""
}

// sqlWords returns up to n upper-cased words of stmt at parenthesis depth
// 0 and the words inside parentheses, skipping comments, quoted strings
// and identifiers, and dollar-quoted bodies; multi reports a statement
// separator followed by more text (or something it cannot read safely).
//
// calls lists the words directly followed by '(' (function calls), at any
// depth.
func sqlWords(stmt string, n int) (words, inner, calls []string, multi bool) {
	depth := 0
	ended := false
	for i := 0; i < len(stmt); {
		c := stmt[i]
		switch {
		case c == '-' && i+1 < len(stmt) && stmt[i+1] == '-', c == '#':
			for i < len(stmt) && stmt[i] != '\n' {
				i++
			}
			continue
		case c == '/' && i+1 < len(stmt) && stmt[i+1] == '*':
			end := strings.Index(stmt[i+2:], "*/")
			if end < 0 {
				return words, inner, calls, true // unterminated: do not guess
			}
			i += end + 4
			continue
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for j < len(stmt) && stmt[j] != c {
				if stmt[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(stmt) {
				return words, inner, calls, true
			}
			i = j + 1
			if ended {
				return words, inner, calls, true
			}
			continue
		case c == '$':
			if tag, ok := dollarTag(stmt[i:]); ok {
				end := strings.Index(stmt[i+len(tag):], tag)
				if end < 0 {
					return words, inner, calls, true
				}
				i += len(tag) + end + len(tag)
				continue
			}
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ';':
			ended = true
			i++
			continue
		}
		if unicode.IsSpace(rune(c)) || c == '(' || c == ')' || c == ',' {
			i++
			continue
		}
		if ended {
			return words, inner, calls, true
		}
		j := i
		for j < len(stmt) && (stmt[j] == '_' || stmt[j] >= 'A' && stmt[j] <= 'Z' || stmt[j] >= 'a' && stmt[j] <= 'z' || stmt[j] >= '0' && stmt[j] <= '9') {
			j++
		}
		if j > i {
			k := j
			for k < len(stmt) && (stmt[k] == ' ' || stmt[k] == '\t' || stmt[k] == '\n' || stmt[k] == '\r') {
				k++
			}
			if k < len(stmt) && stmt[k] == '(' {
				calls = append(calls, strings.ToUpper(stmt[i:j]))
			}
		}
		if j == i {
			j = i + 1
		} else if depth == 0 && len(words) < n {
			words = append(words, strings.ToUpper(stmt[i:j]))
		} else if depth > 0 {
			inner = append(inner, strings.ToUpper(stmt[i:j]))
		}
		i = j
	}
	return words, inner, calls, false
}

// dollarTag recognises a PostgreSQL dollar-quote opener ($$ or $tag$).
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		if s[j] == '$' {
			return s[:j+1], true
		}
		if !(s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || j > 1 && s[j] >= '0' && s[j] <= '9') {
			return "", false
		}
	}
	return "", false
}

// DecideStatement decides one SQL statement on target by its class.
func (c *Config) DecideStatement(groups []string, target, stmt string) Decision {
	if !c.CanAccess(groups, target) {
		return Decision{Action: ActionDeny}
	}
	class := ClassifyStatement(stmt)
	for _, r := range c.RulesFor(groups, target) {
		if r.Access != AccessStatement {
			continue
		}
		for _, s := range r.Statements {
			if s == class {
				return Decision{Action: r.Action, Rule: r.Name}
			}
		}
	}
	return Decision{Action: ActionAllow}
}
