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

func (e *myEngine) run(ctx context.Context, stmt string, s sink) error {
	defer e.trackTx(ctx, stmt)
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
