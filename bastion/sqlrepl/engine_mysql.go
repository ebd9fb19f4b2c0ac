package sqlrepl

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// myEngine talks to MySQL and MariaDB with go-sql-driver/mysql. Statements
// go out as text-protocol queries (no arguments, so no prepared statements),
// which every statement a user types supports. The session runs on one
// dedicated connection; a second connection from the same pool sends KILL
// QUERY to cancel, because the driver's own reaction to a cancelled context
// is to drop the connection and with it the user's transaction.
type myEngine struct {
	db     *sql.DB
	conn   *sql.Conn
	id     int64 // CONNECTION_ID() of conn, for KILL QUERY
	hasVar bool  // the server has @@in_transaction (MariaDB, MySQL 8.0.?+ lacks it)
	inTx   bool
	kw     kwTracker
}

// nopLogger silences the driver's connection-level log lines, which would
// otherwise go to the bastion's stderr; the user sees the resulting error.
type nopLogger struct{}

func (nopLogger) Print(...any) {}

func openMySQL(ctx context.Context, t Target) (*myEngine, error) {
	cfg, err := mysql.ParseDSN(t.DSN)
	if err != nil {
		return nil, fmt.Errorf("parse the target's dsn: %w", err)
	}
	if t.Password != "" {
		cfg.Passwd = t.Password
	}
	cfg.MultiStatements = false // the REPL splits; one statement per query
	cfg.InterpolateParams = false
	cfg.ParseTime = false // dates as the server writes them
	cfg.Logger = nopLogger{}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("configure the mysql driver: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(2) // the session's connection and one for KILL QUERY
	db.SetMaxIdleConns(2)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	e := &myEngine{db: db, conn: conn}
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&e.id); err != nil {
		e.close()
		return nil, fmt.Errorf("read the connection id: %w", err)
	}
	var v sql.NullInt64
	e.hasVar = conn.QueryRowContext(ctx, "SELECT @@in_transaction").Scan(&v) == nil
	return e, nil
}

// run wraps a read-only statement, outside a transaction of the user's, in
// START TRANSACTION READ ONLY … COMMIT (ROLLBACK when it failed), with the
// session's access mode set to READ ONLY meanwhile: a statement that
// commits implicitly (DDL) ends the wrapper first, and then runs in a
// transaction of its own that only the session mode keeps read-only. Inside
// the user's transaction it runs as is: START TRANSACTION would commit the
// user's work, and SET TRANSACTION cannot change a running transaction.
func (e *myEngine) run(ctx context.Context, stmt string, readOnly bool, s sink) (err error) {
	defer e.trackTx(ctx, stmt)
	if !readOnly || !e.canWrap(ctx) {
		return e.runStmt(ctx, stmt, s)
	}
	wasRO, err := e.sessionReadOnly(ctx)
	if err != nil {
		return err
	}
	if !wasRO {
		if _, err := e.conn.ExecContext(ctx, "SET SESSION TRANSACTION READ ONLY"); err != nil {
			return err
		}
		defer func() {
			// Restored whatever ctx says: left on, it would refuse the
			// user's later writes.
			cctx, cancel := cleanupContext(ctx)
			defer cancel()
			if _, rerr := e.conn.ExecContext(cctx, "SET SESSION TRANSACTION READ WRITE"); rerr != nil && err == nil {
				err = fmt.Errorf("restore the session's read-write mode: %w", rerr)
			}
		}()
	}
	if _, err := e.conn.ExecContext(ctx, "START TRANSACTION READ ONLY"); err != nil {
		e.endWrapper(ctx, false)
		return err
	}
	err = e.runStmt(ctx, stmt, s)
	if cerr := e.endWrapper(ctx, err == nil); err == nil {
		err = cerr
	}
	return err
}

// sessionReadOnly reads the session's default access mode
// (transaction_read_only on MySQL 8 and MariaDB 11.1+, tx_read_only before).
func (e *myEngine) sessionReadOnly(ctx context.Context) (bool, error) {
	var v sql.NullInt64
	err := e.conn.QueryRowContext(ctx, "SELECT @@session.transaction_read_only").Scan(&v)
	if err != nil {
		err = e.conn.QueryRowContext(ctx, "SELECT @@session.tx_read_only").Scan(&v)
	}
	if err != nil {
		return false, fmt.Errorf("read the session's access mode: %w", err)
	}
	return v.Int64 != 0, nil
}

// canWrap reports whether no transaction of the user's is open. Without
// @@in_transaction the tracker cannot see the implicit transaction of
// autocommit=0, so the server's autocommit setting is asked then.
func (e *myEngine) canWrap(ctx context.Context) bool {
	if e.inTx {
		return false
	}
	if e.hasVar {
		return true
	}
	var ac sql.NullInt64
	return e.conn.QueryRowContext(ctx, "SELECT @@autocommit").Scan(&ac) == nil && ac.Int64 == 1
}

// endWrapper ends the read-only transaction run opened: COMMIT when commit
// (the statement succeeded), else, or when COMMIT failed, ROLLBACK. A
// statement that committed implicitly has ended it already; COMMIT is then
// a no-op.
func (e *myEngine) endWrapper(ctx context.Context, commit bool) error {
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	var err error
	if commit {
		if _, err = e.conn.ExecContext(cctx, "COMMIT"); err == nil {
			return nil
		}
	}
	if _, rerr := e.conn.ExecContext(cctx, "ROLLBACK"); err == nil {
		err = rerr
	}
	if commit {
		return err
	}
	return nil // the statement's error is what the user needs to see
}

func (e *myEngine) runStmt(ctx context.Context, stmt string, s sink) error {
	rows, err := e.conn.QueryContext(ctx, stmt)
	if err != nil {
		return err
	}
	cols, err := runRows(rows, s)
	if err != nil || cols > 0 {
		return err
	}
	// No result set: ROW_COUNT() is what the statement changed (-1 when
	// that does not apply).
	var n int64
	if err := e.conn.QueryRowContext(ctx, "SELECT ROW_COUNT()").Scan(&n); err != nil || n < 0 {
		return s.End("Query OK", -1)
	}
	return s.End(fmt.Sprintf("Query OK, %d %s affected", n, plural(n, "row", "rows")), n)
}

func (e *myEngine) trackTx(ctx context.Context, stmt string) {
	if !e.hasVar {
		e.kw.ran(MySQL, stmt)
		e.inTx = e.kw.inTx
		return
	}
	var v sql.NullInt64
	if err := e.conn.QueryRowContext(ctx, "SELECT @@in_transaction").Scan(&v); err == nil {
		e.inTx = v.Int64 != 0
	}
}

func (e *myEngine) interrupt(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := e.db.ExecContext(ctx, fmt.Sprintf("KILL QUERY %d", e.id)); err != nil {
		return fmt.Errorf("send KILL QUERY: %w", err)
	}
	return nil
}

func (e *myEngine) txMark() string {
	if e.inTx {
		return "*"
	}
	return ""
}

func (e *myEngine) close() error {
	err := e.conn.Close()
	if cerr := e.db.Close(); err == nil {
		err = cerr
	}
	return err
}

// myIdent quotes a possibly qualified name (db.table) with backticks.
func myIdent(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		parts[i] = "`" + strings.ReplaceAll(strings.Trim(p, "`"), "`", "``") + "`"
	}
	return strings.Join(parts, ".")
}

func (e *myEngine) meta(cmd, arg string) ([]metaQuery, error) {
	switch {
	case cmd == "dt" || cmd == "d" && arg == "":
		return []metaQuery{{caption: "List of tables", sql: "SHOW FULL TABLES"}}, nil
	case cmd == "d":
		return []metaQuery{
			{caption: fmt.Sprintf("Table %q", arg), sql: "DESCRIBE " + myIdent(arg)},
			{caption: "Indexes", sql: "SHOW INDEX FROM " + myIdent(arg)},
		}, nil
	case cmd == "l":
		return []metaQuery{{caption: "List of databases", sql: "SHOW DATABASES"}}, nil
	}
	return nil, fmt.Errorf("\\%s is not supported on mysql", cmd)
}

// errorText renders a server error as the mysql client does:
// "ERROR 1064 (42000): message". MySQL reports no character position; its
// message names the text "near" which it stopped and the line.
func (e *myEngine) errorText(err error, stmt string) string {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		state := ""
		if me.SQLState != [5]byte{} {
			state = " (" + string(me.SQLState[:]) + ")"
		}
		return fmt.Sprintf("ERROR %d%s: %s", me.Number, state, me.Message)
	}
	return "ERROR:  " + err.Error()
}
