package sqlrepl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Column describes one column of a result.
type Column struct {
	Name string
	// Numeric columns are right-aligned in table output, as psql does.
	Numeric bool
}

// Value is one cell as text, the way the server formats it. Null is the SQL
// NULL (S is then empty), kept apart from the empty string.
type Value struct {
	S    string
	Null bool
}

// sink receives the results of one statement. An engine calls Begin, Row
// for each row, then End for each result set it returns, or End alone for a
// statement that returns no rows (tag then says what it did). An error from
// a sink method (the client went away) ends the statement.
type sink interface {
	Begin(cols []Column) error
	Row(vals []Value) error
	End(tag string, affected int64) error
}

// engine is one open connection to a database target. The REPL runs one
// statement at a time on it; interrupt is the only method that may be called
// from another goroutine while run runs.
type engine interface {
	// run sends one statement and streams its results to s. With readOnly
	// the database itself refuses writes by the statement (see
	// Options.ReadOnly); whatever the engine wraps it in is ended (committed,
	// or rolled back when the statement failed) before run returns.
	run(ctx context.Context, stmt string, readOnly bool, s sink) error
	// interrupt asks the server to stop the statement run is running, and
	// returns once the request was delivered (or failed): after it returns,
	// it can no longer hit a later statement.
	interrupt(ctx context.Context) error
	// txMark is "" outside a transaction, "*" inside one and "!" inside a
	// failed one, for the prompt.
	txMark() string
	// meta returns the catalogue statements of a meta-command (\dt, \d NAME,
	// \l), each with a caption (may be empty) printed above its result.
	meta(cmd, arg string) ([]metaQuery, error)
	// errorText renders a server error for the user: message, code and,
	// where the server gives one, the position in stmt.
	errorText(err error, stmt string) string
	close() error
}

// metaQuery is one catalogue statement of a meta-command.
type metaQuery struct {
	caption, sql string
}

// errInterrupted is what run returns when interrupt stopped the statement
// and the driver said so in its own way (SQLite's context cancellation).
var errInterrupted = errors.New("canceling statement due to user request")

// cleanupTimeout bounds the statements that end a read-only wrapper.
const cleanupTimeout = 5 * time.Second

// cleanupContext is for the statements that end a read-only wrapper: they
// must go out even when ctx is cancelled, so that the wrapper does not leak
// into the next statement, but not forever.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

// txControl reports whether stmt starts, ends or structures a transaction
// (or, on MySQL, commits implicitly as its main effect): such a statement is
// never put in a read-only wrapper, since it would end the wrapper or the
// wrapper would end the user's transaction.
func txControl(d Dialect, stmt string) bool {
	switch firstWord(d, stmt) {
	case "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE":
		return true
	case "PREPARE":
		return nthWord(d, stmt, 1) == "TRANSACTION"
	case "XA", "LOCK", "UNLOCK":
		return d == MySQL
	}
	return false
}

// open connects to the target with the driver of its kind.
func open(ctx context.Context, t Target) (engine, error) {
	switch Dialect(t.Kind) {
	case Postgres:
		return openPostgres(ctx, t)
	case MySQL:
		return openMySQL(ctx, t)
	case SQLite:
		return openSQLite(ctx, t)
	}
	return nil, fmt.Errorf("unknown database kind %q (want postgres, mysql or sqlite)", t.Kind)
}

// scrubber removes the credentials of a target from text that may reach
// the user: drivers quote the DSN in parse errors, and a DSN may carry a
// password of its own.
type scrubber struct{ secrets []string }

func newScrubber(t Target) scrubber {
	var s scrubber
	for _, v := range []string{t.DSN, t.Password} {
		if len(v) >= 3 { // shorter values would blank out ordinary text
			s.secrets = append(s.secrets, v)
		}
	}
	if pw := dsnPassword(t.DSN); len(pw) >= 3 {
		s.secrets = append(s.secrets, pw)
	}
	return s
}

func (s scrubber) text(msg string) string {
	for _, v := range s.secrets {
		msg = strings.ReplaceAll(msg, v, "[redacted]")
	}
	return msg
}

// dsnPassword finds a password written into a URL- or MySQL-style DSN
// (user:password@…), so that it is scrubbed too.
func dsnPassword(dsn string) string {
	rest := dsn
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		// key=value style: password=…
		for _, f := range strings.Fields(dsn) {
			if v, ok := strings.CutPrefix(f, "password="); ok {
				return strings.Trim(v, "'")
			}
		}
		return ""
	}
	if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
		return pw
	}
	return ""
}

// kwTracker follows the transaction state from the statements that ran, for
// engines that do not report it (SQLite, MySQL without @@in_transaction).
type kwTracker struct{ inTx bool }

func (k *kwTracker) ran(d Dialect, stmt string) {
	w := firstWord(d, stmt)
	switch w {
	case "BEGIN", "START":
		k.inTx = true
	case "COMMIT", "END":
		k.inTx = false
	case "ROLLBACK":
		if nthWord(d, stmt, 1) != "TO" {
			k.inTx = false
		}
	case "CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "GRANT", "REVOKE":
		if d == MySQL { // implicit commit
			k.inTx = false
		}
	}
}
