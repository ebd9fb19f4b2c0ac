package sqlrepl

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// liteEngine opens a SQLite file with modernc.org/sqlite, a pure-Go
// translation of SQLite: no cgo, no child process. Cancelling a statement's
// context makes the driver call sqlite3_interrupt, which stops the running
// statement at its next VM step and leaves the connection usable.
type liteEngine struct {
	db   *sql.DB
	conn *sql.Conn
	kw   kwTracker

	mu     sync.Mutex
	cancel context.CancelFunc // of the running statement; nil between statements
	intr   bool               // interrupt was called for the running statement
}

func openSQLite(ctx context.Context, t Target) (*liteEngine, error) {
	if t.Path == "" {
		return nil, errors.New("sqlite target has no path")
	}
	// SQLite creates a missing file; a typo in the config must not produce
	// an empty database that looks like a broken one.
	if _, err := os.Stat(t.Path); err != nil {
		return nil, fmt.Errorf("open database file: %w", err)
	}
	db, err := sql.Open("sqlite", t.Path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", t.Path, err)
	}
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout = 5000"); err != nil {
		conn.Close()
		db.Close()
		return nil, fmt.Errorf("set busy timeout: %w", err)
	}
	return &liteEngine{db: db, conn: conn}, nil
}

// run sets PRAGMA query_only for a read-only statement and clears it
// afterwards, unless it was on already (the user's own setting is kept).
// The pragma works inside a transaction too, so the user's transaction
// needs no exception here.
func (e *liteEngine) run(ctx context.Context, stmt string, readOnly bool, s sink) (err error) {
	if readOnly {
		var on bool
		if err := e.conn.QueryRowContext(ctx, "PRAGMA query_only").Scan(&on); err != nil {
			return err
		}
		if !on {
			if _, err := e.conn.ExecContext(ctx, "PRAGMA query_only = ON"); err != nil {
				return err
			}
			defer func() {
				// Cleared whatever ctx says: left on, it would refuse the
				// user's later writes.
				cctx, cancel := cleanupContext(ctx)
				defer cancel()
				if _, cerr := e.conn.ExecContext(cctx, "PRAGMA query_only = OFF"); cerr != nil && err == nil {
					err = fmt.Errorf("clear query_only after the statement: %w", cerr)
				}
			}()
		}
	}
	return e.runInterruptible(ctx, stmt, s)
}

// runInterruptible runs stmt under a context that interrupt cancels.
func (e *liteEngine) runInterruptible(ctx context.Context, stmt string, s sink) error {
	qctx, cancel := context.WithCancel(ctx)
	e.mu.Lock()
	e.cancel, e.intr = cancel, false
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.cancel = nil
		e.mu.Unlock()
		cancel()
	}()
	err := e.runStmt(qctx, stmt, s)
	e.mu.Lock()
	intr := e.intr
	e.mu.Unlock()
	if err != nil && intr && ctx.Err() == nil {
		return errInterrupted
	}
	if err == nil {
		e.kw.ran(SQLite, stmt)
	}
	return err
}

func (e *liteEngine) runStmt(ctx context.Context, stmt string, s sink) error {
	rows, err := e.conn.QueryContext(ctx, stmt)
	if err != nil {
		return err
	}
	cols, err := runRows(rows, s)
	if err != nil || cols > 0 {
		return err
	}
	switch firstWord(SQLite, stmt) {
	case "INSERT", "UPDATE", "DELETE", "REPLACE":
		var n int64
		if err := e.conn.QueryRowContext(ctx, "SELECT changes()").Scan(&n); err == nil {
			return s.End(fmt.Sprintf("OK, %d %s affected", n, plural(n, "row", "rows")), n)
		}
	}
	return s.End("OK", -1)
}

func (e *liteEngine) interrupt(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cancel != nil {
		e.intr = true
		e.cancel()
	}
	return nil
}

func (e *liteEngine) txMark() string {
	if e.kw.inTx {
		return "*"
	}
	return ""
}

func (e *liteEngine) close() error {
	err := e.conn.Close()
	if cerr := e.db.Close(); err == nil {
		err = cerr
	}
	return err
}

// liteLiteral quotes s as an SQLite string literal.
func liteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (e *liteEngine) meta(cmd, arg string) ([]metaQuery, error) {
	switch {
	case cmd == "dt" || cmd == "d" && arg == "":
		kinds := "'table'"
		if cmd == "d" {
			kinds = "'table', 'view', 'index', 'trigger'"
		}
		return []metaQuery{{caption: "List of relations", sql: `SELECT name AS "Name", type AS "Type" FROM sqlite_master ` +
			`WHERE type IN (` + kinds + `) AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`}}, nil
	case cmd == "d":
		lit := liteLiteral(arg)
		return []metaQuery{
			{caption: fmt.Sprintf("Table %q", arg), sql: `SELECT name AS "Column", type AS "Type", ` +
				`CASE WHEN "notnull" THEN 'not null' ELSE '' END AS "Nullable", COALESCE(dflt_value, '') AS "Default", ` +
				`CASE WHEN pk > 0 THEN 'pk' ELSE '' END AS "Key" FROM pragma_table_info(` + lit + `) ORDER BY cid`},
			{caption: "Indexes", sql: `SELECT name AS "Index", CASE WHEN "unique" THEN 'unique' ELSE '' END AS "Unique", ` +
				`origin AS "Origin" FROM pragma_index_list(` + lit + `) ORDER BY name`},
		}, nil
	case cmd == "l":
		return []metaQuery{{caption: "List of databases", sql: `SELECT name AS "Name", file AS "File" FROM pragma_database_list ORDER BY seq`}}, nil
	}
	return nil, fmt.Errorf("\\%s is not supported on sqlite", cmd)
}

func (e *liteEngine) errorText(err error, stmt string) string {
	var le *sqlite.Error
	if errors.As(err, &le) {
		msg := le.Error()
		if le.Code()&0xff == sqlite3.SQLITE_INTERRUPT {
			msg = errInterrupted.Error()
		}
		return "ERROR:  " + msg
	}
	return "ERROR:  " + err.Error()
}
