package sqlclass

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"modernc.org/libc"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// classifySQLite asks the SQLite engine: each statement of sql is compiled
// (prepared, never run) on a read-only connection to the database file at
// path, with an authorizer that records what the compiled statement would
// touch, and its program is read (EXPLAIN) for the engine's own read-only
// verdict. A statement that does not compile against the file's schema is
// unknown: this covers tables the session created in a transaction not yet
// committed, and its TEMP objects, which the classifier's connection cannot
// see.
func classifySQLite(ctx context.Context, path, sql string) string {
	if len(sql) > maxBytes || path == "" {
		return Unknown
	}
	stmts, ok := liteSplit(sql)
	if !ok || len(stmts) == 0 {
		return Unknown
	}
	j, err := judgeFor(ctx, path)
	if err != nil {
		warnJudge(path, err)
		return Unknown
	}
	class := Read
	for _, s := range stmts {
		class = Max(class, j.classify(ctx, s))
		if class == Unknown {
			break
		}
	}
	return class
}

// liteSplit cuts sql into statements where SQLite's own tokenizer says one
// ends (sqlite3_complete: the ';' is outside strings, comments and trigger
// bodies). Pieces that are only comments are dropped; ok is false when the
// text ends inside a string or a trigger body.
func liteSplit(sql string) (stmts []string, ok bool) {
	tls := libc.NewTLS()
	defer tls.Close()
	complete := func(s string) bool {
		p, err := libc.CString(s)
		if err != nil {
			return false
		}
		defer libc.Xfree(tls, p)
		return sqlite3.Xsqlite3_complete(tls, p) != 0
	}
	start := 0
	for i := 0; i < len(sql); i++ {
		if sql[i] == ';' && complete(sql[start:i+1]) {
			if piece := sql[start : i+1]; !liteBlank(piece) {
				stmts = append(stmts, piece)
			}
			start = i + 1
		}
	}
	if rest := sql[start:]; !liteBlank(rest) {
		// A last statement without ';': the newline ends a trailing
		// -- comment first.
		if !complete(rest + "\n;") {
			return nil, false
		}
		stmts = append(stmts, rest)
	}
	return stmts, true
}

// liteBlank reports whether s holds nothing but white space, comments and
// semicolons, by SQLite's rules (an unterminated /* comment runs to the end).
func liteBlank(s string) bool {
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == ';':
			i++
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return true
			}
			i += end + 4
		default:
			return false
		}
	}
	return true
}

// judge is a read-only connection to one SQLite file, used only to compile
// statements; one statement at a time, since the authorizer's record is
// per connection.
type judge struct {
	mu   sync.Mutex
	fi   os.FileInfo // the file the connection has open
	db   *sql.DB
	conn *sql.Conn
	acts []liteAction // filled by the authorizer while a statement compiles
}

type liteAction struct {
	code       sqlite.AuthorizerActionCode
	arg1, arg2 string
}

// judges holds one judge per database file for the life of the process:
// a target's file is compiled against by every session that uses it.
var judges = struct {
	sync.Mutex
	m      map[string]*judge
	warned map[string]string // path → the last error logged for it
}{m: map[string]*judge{}, warned: map[string]string{}}

// warnJudge tells the operator why every statement on a SQLite target is
// unknown (a missing or unreadable file), once per path and error rather
// than once per statement.
func warnJudge(path string, err error) {
	judges.Lock()
	defer judges.Unlock()
	if judges.warned[path] == err.Error() {
		return
	}
	judges.warned[path] = err.Error()
	slog.Warn("sqlite statements cannot be classified: every statement is unknown until the database file can be opened",
		"path", path, "err", err)
}

func judgeFor(ctx context.Context, path string) (*judge, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite classifier: %w", err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("sqlite classifier: %w", err) // never created: see openJudge
	}
	judges.Lock()
	defer judges.Unlock()
	if j := judges.m[abs]; j != nil {
		if os.SameFile(j.fi, fi) {
			return j, nil
		}
		// The file was replaced: the old connection still reads the old
		// one. A statement being judged on it finishes first.
		delete(judges.m, abs)
		j.close()
	}
	j, err := openJudge(ctx, abs)
	if err != nil {
		return nil, err
	}
	j.fi = fi
	judges.m[abs] = j
	delete(judges.warned, path)
	return j, nil
}

// close ends the judge's connection once no statement is being judged.
func (j *judge) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.conn.Close()
	j.db.Close()
}

func openJudge(ctx context.Context, abs string) (*judge, error) {
	// mode=ro: SQLite opens the file read-only and never creates it;
	// query_only is a second lock on the same door.
	u := url.URL{Scheme: "file", Path: abs, RawQuery: "mode=ro&_pragma=query_only(1)&_pragma=busy_timeout(2000)"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("sqlite classifier: open %s: %w", abs, err)
	}
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite classifier: connect to %s: %w", abs, err)
	}
	j := &judge{db: db, conn: conn}
	err = conn.Raw(func(dc any) error {
		r, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return fmt.Errorf("driver connection %T has no authorizer", dc)
		}
		return r.RegisterAuthorizer(func(code sqlite.AuthorizerActionCode, arg1, arg2, _, _ string) sqlite.AuthorizerReturnCode {
			j.acts = append(j.acts, liteAction{code: code, arg1: arg1, arg2: arg2})
			return sqlite.AuthorizerOK
		})
	})
	if err != nil {
		conn.Close()
		db.Close()
		return nil, fmt.Errorf("sqlite classifier: %s: %w", abs, err)
	}
	return j, nil
}

// classify compiles one statement as EXPLAIN, which SQLite never runs: it
// returns the program instead. The authorizer's record gives the class;
// the program gives the engine's verdict (a write transaction, VACUUM,
// a journal mode change or a checkpoint make it not read-only, exactly the
// opcodes that clear sqlite3_stmt_readonly).
func (j *judge) classify(ctx context.Context, stmt string) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.acts = nil
	rows, err := j.conn.QueryContext(ctx, "EXPLAIN "+stmt)
	if err != nil {
		// Does not compile (a syntax error, a missing table) or is an
		// EXPLAIN itself: not placed.
		return Unknown
	}
	readOnly := true
	for rows.Next() {
		var addr, p1, p2, p3 int64
		var opcode string
		var p4, p5, comment sql.NullString
		if err := rows.Scan(&addr, &opcode, &p1, &p2, &p3, &p4, &p5, &comment); err != nil {
			rows.Close()
			return Unknown
		}
		switch opcode {
		case "Transaction":
			if p2 != 0 {
				readOnly = false
			}
		case "Vacuum", "JournalMode", "Checkpoint":
			readOnly = false
		}
	}
	if err := rows.Close(); err != nil || rows.Err() != nil {
		return Unknown
	}
	acts := j.acts
	j.acts = nil
	return liteClass(acts, readOnly)
}

// liteClass turns the authorizer's record of one statement into its class.
func liteClass(acts []liteAction, readOnly bool) string {
	if len(acts) == 0 {
		return Unknown // VACUUM, REINDEX: nothing the authorizer names
	}
	class, txOnly := Read, true
	for _, a := range acts {
		if a.code != sqlite.AuthTransaction && a.code != sqlite.AuthSavepoint {
			txOnly = false
		}
		class = Max(class, liteActionClass(a))
	}
	if txOnly {
		// BEGIN [IMMEDIATE], COMMIT, SAVEPOINT: no data changes by itself.
		return Read
	}
	if class == Read && !readOnly {
		return Unknown // the engine says it writes; the record does not say how
	}
	return class
}

func liteActionClass(a liteAction) string {
	switch a.code {
	case sqlite.AuthSelect, sqlite.AuthRead, sqlite.AuthRecursive, sqlite.AuthTransaction, sqlite.AuthSavepoint:
		return Read
	case sqlite.AuthInsert, sqlite.AuthUpdate, sqlite.AuthDelete:
		return Write
	case sqlite.AuthCreateIndex, sqlite.AuthCreateTable, sqlite.AuthCreateTempIndex, sqlite.AuthCreateTempTable,
		sqlite.AuthCreateTempTrigger, sqlite.AuthCreateTempView, sqlite.AuthCreateTrigger, sqlite.AuthCreateView,
		sqlite.AuthDropIndex, sqlite.AuthDropTable, sqlite.AuthDropTempIndex, sqlite.AuthDropTempTable,
		sqlite.AuthDropTempTrigger, sqlite.AuthDropTempView, sqlite.AuthDropTrigger, sqlite.AuthDropView,
		sqlite.AuthAlterTable, sqlite.AuthReindex, sqlite.AuthAnalyze, sqlite.AuthCreateVTable, sqlite.AuthDropVTable:
		return DDL
	case sqlite.AuthAttach, sqlite.AuthDetach:
		return Admin // ATTACH opens, and can create, any file the bastion may write
	case sqlite.AuthFunction:
		if c := functionClass(a.arg2, sqliteFunctions, nil); c != "" {
			return c
		}
		return Read
	case sqlite.AuthPragma:
		return litePragmaClass(strings.ToLower(a.arg1), a.arg2)
	}
	return Unknown
}

// litePragmaClass: pragmas that only report are reads (their argument, if
// any, names a table or index); settings are reads when queried and admin
// when set (query_only among them: turning it off would undo the REPL's
// read-only wrapper); every other pragma (optimize, wal_checkpoint,
// incremental_vacuum, ...) is admin.
func litePragmaClass(name, value string) string {
	switch name {
	case "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
		"foreign_key_check", "database_list", "collation_list", "function_list", "module_list", "pragma_list",
		"compile_options", "integrity_check", "quick_check":
		return Read
	case "application_id", "auto_vacuum", "automatic_index", "busy_timeout", "cache_size", "cache_spill",
		"cell_size_check", "checkpoint_fullfsync", "data_version", "defer_foreign_keys", "encoding", "foreign_keys",
		"freelist_count", "fullfsync", "hard_heap_limit", "ignore_check_constraints", "journal_mode",
		"journal_size_limit", "legacy_alter_table", "locking_mode", "max_page_count", "mmap_size", "page_count",
		"page_size", "query_only", "read_uncommitted", "recursive_triggers", "reverse_unordered_selects",
		"schema_version", "secure_delete", "soft_heap_limit", "synchronous", "temp_store", "threads",
		"trusted_schema", "user_version", "wal_autocheckpoint":
		if value == "" {
			return Read
		}
	}
	return Admin
}
