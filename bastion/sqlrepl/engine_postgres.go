package sqlrepl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// pgEngine talks to PostgreSQL with pgconn, the layer under pgx: it gives the
// server's error position, the transaction status of every ReadyForQuery,
// column type OIDs and NULLs as nil, and the protocol's cancel request.
// Statements go out in the simple query protocol, so that every statement a
// user may type (COPY excepted, refused by the server) runs as psql runs it,
// and every value comes back in the server's own text format.
type pgEngine struct {
	conn *pgconn.PgConn
}

func openPostgres(ctx context.Context, t Target) (*pgEngine, error) {
	cfg, err := pgconn.ParseConfig(t.DSN)
	if err != nil {
		return nil, fmt.Errorf("parse the target's dsn: %w", err)
	}
	if t.Password != "" {
		cfg.Password = t.Password
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "bastion"
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	// When the session's context ends mid-statement, stop the statement on
	// the server too (the default handler would only cut the socket and
	// leave the query running), then fall back to the deadline.
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: 5 * time.Second}
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &pgEngine{conn: conn}, nil
}

// Type OIDs whose values are numbers (right-aligned).
var pgNumeric = map[uint32]bool{
	20: true, 21: true, 23: true, 26: true, // int8 int2 int4 oid
	700: true, 701: true, 790: true, 1700: true, // float4 float8 money numeric
}

// run wraps a read-only statement, outside a transaction of the user's, in
// BEGIN READ ONLY … COMMIT (ROLLBACK when it failed). Inside the user's
// transaction it runs as is: SET TRANSACTION READ ONLY there would stay in
// force for the rest of the user's transaction.
func (e *pgEngine) run(ctx context.Context, stmt string, readOnly bool, s sink) error {
	if !readOnly || e.conn.TxStatus() != 'I' {
		return e.runStmt(ctx, stmt, s)
	}
	if _, err := e.conn.Exec(ctx, "BEGIN READ ONLY").ReadAll(); err != nil {
		e.endWrapper(ctx, false)
		return err
	}
	err := e.runStmt(ctx, stmt, s)
	if cerr := e.endWrapper(ctx, err == nil); err == nil {
		err = cerr
	}
	return err
}

// endWrapper ends the read-only transaction run opened: COMMIT when commit
// (the statement succeeded), else, or when COMMIT failed, ROLLBACK. Nothing
// is sent when the statement itself left the transaction.
func (e *pgEngine) endWrapper(ctx context.Context, commit bool) error {
	if e.conn.IsClosed() || e.conn.TxStatus() == 'I' {
		return nil
	}
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	var err error
	if commit && e.conn.TxStatus() == 'T' {
		if _, err = e.conn.Exec(cctx, "COMMIT").ReadAll(); err == nil || e.conn.TxStatus() == 'I' {
			return err
		}
	}
	if _, rerr := e.conn.Exec(cctx, "ROLLBACK").ReadAll(); err == nil {
		err = rerr
	}
	if commit {
		return err
	}
	return nil // the statement's error is what the user needs to see
}

func (e *pgEngine) runStmt(ctx context.Context, stmt string, s sink) error {
	mrr := e.conn.Exec(ctx, stmt)
	var sinkErr error
	for mrr.NextResult() {
		rr := mrr.ResultReader()
		fds := rr.FieldDescriptions()
		began := false
		if len(fds) > 0 && sinkErr == nil {
			cols := make([]Column, len(fds))
			for i, fd := range fds {
				cols[i] = Column{Name: fd.Name, Numeric: pgNumeric[fd.DataTypeOID]}
			}
			sinkErr = s.Begin(cols)
			began = sinkErr == nil
		}
		vals := make([]Value, len(fds))
		for rr.NextRow() {
			if sinkErr != nil {
				continue // drain: the protocol has no way to stop a result but a cancel
			}
			for i, v := range rr.Values() {
				vals[i] = Value{S: string(v), Null: v == nil}
			}
			sinkErr = s.Row(vals)
		}
		tag, err := rr.Close()
		if err != nil {
			break // reported by mrr.Close
		}
		if sinkErr == nil {
			if began {
				sinkErr = s.End("", tag.RowsAffected())
			} else {
				sinkErr = s.End(tag.String(), tag.RowsAffected())
			}
		}
	}
	if err := mrr.Close(); err != nil {
		return err
	}
	return sinkErr
}

func (e *pgEngine) interrupt(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := e.conn.CancelRequest(ctx); err != nil {
		return fmt.Errorf("send cancel request: %w", err)
	}
	return nil
}

func (e *pgEngine) txMark() string {
	switch e.conn.TxStatus() {
	case 'T':
		return "*"
	case 'E':
		return "!"
	}
	return ""
}

func (e *pgEngine) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return e.conn.Close(ctx)
}

// pgLiteral quotes s as a string literal that means s whatever
// standard_conforming_strings says.
func pgLiteral(s string) string {
	if strings.ContainsRune(s, '\\') {
		return "E'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func (e *pgEngine) meta(cmd, arg string) ([]metaQuery, error) {
	const visible = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast' AND pg_catalog.pg_table_is_visible(c.oid)`
	switch cmd {
	case "dt", "d":
		if cmd == "d" && arg != "" {
			rel := pgLiteral(arg) + "::pg_catalog.regclass"
			return []metaQuery{
				{caption: fmt.Sprintf("Table %q", arg), sql: `SELECT a.attname AS "Column", pg_catalog.format_type(a.atttypid, a.atttypmod) AS "Type", ` +
					`CASE WHEN a.attnotnull THEN 'not null' ELSE '' END AS "Nullable", ` +
					`COALESCE(pg_catalog.pg_get_expr(d.adbin, d.adrelid), '') AS "Default" ` +
					`FROM pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum ` +
					`WHERE a.attrelid = ` + rel + ` AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`},
				{caption: "Indexes", sql: `SELECT i.relname AS "Index", pg_catalog.pg_get_indexdef(i.oid) AS "Definition" ` +
					`FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid ` +
					`WHERE x.indrelid = ` + rel + ` ORDER BY 1`},
			}, nil
		}
		kinds := `'r','p'`
		if cmd == "d" {
			kinds = `'r','p','v','m','S','f'`
		}
		return []metaQuery{{caption: "List of relations", sql: `SELECT n.nspname AS "Schema", c.relname AS "Name", ` +
			`CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' ` +
			`WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' END AS "Type", pg_catalog.pg_get_userbyid(c.relowner) AS "Owner" ` +
			`FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace ` +
			`WHERE c.relkind IN (` + kinds + `) AND ` + visible + ` ORDER BY 1, 2`}}, nil
	case "l":
		return []metaQuery{{caption: "List of databases", sql: `SELECT datname AS "Name", pg_catalog.pg_get_userbyid(datdba) AS "Owner", ` +
			`pg_catalog.pg_encoding_to_char(encoding) AS "Encoding" FROM pg_catalog.pg_database WHERE NOT datistemplate ORDER BY 1`}}, nil
	}
	return nil, fmt.Errorf("\\%s is not supported on postgres", cmd)
}

// errorText renders a PostgreSQL error as psql does: severity and message,
// the position, the statement's line with a caret under the character the
// server points at, then DETAIL and HINT.
func (e *pgEngine) errorText(err error, stmt string) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return "ERROR:  " + err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s:  %s (SQLSTATE %s)", pe.Severity, pe.Message, pe.Code)
	if pe.Position > 0 {
		fmt.Fprintf(&b, " at character %d\n", pe.Position)
		b.WriteString(caretLines(stmt, int(pe.Position)))
	}
	if pe.Detail != "" {
		fmt.Fprintf(&b, "\nDETAIL:  %s", pe.Detail)
	}
	if pe.Hint != "" {
		fmt.Fprintf(&b, "\nHINT:  %s", pe.Hint)
	}
	return b.String()
}

// caretLines shows the line of stmt that holds character pos (1-based, in
// characters as PostgreSQL counts them) and a caret under that character.
func caretLines(stmt string, pos int) string {
	runes := []rune(stmt)
	idx := min(max(pos-1, 0), len(runes))
	start := idx
	for start > 0 && runes[start-1] != '\n' {
		start--
	}
	end := idx
	for end < len(runes) && runes[end] != '\n' {
		end++
	}
	lineNo := 1
	for _, r := range runes[:start] {
		if r == '\n' {
			lineNo++
		}
	}
	prefix := fmt.Sprintf("LINE %d: ", lineNo)
	return prefix + sanitize(string(runes[start:end])) + "\n" +
		strings.Repeat(" ", len(prefix)+displayWidth(sanitize(string(runes[start:idx])))) + "^"
}
