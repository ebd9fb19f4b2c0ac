package sqlrepl

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/internal/testharness"
	"github.com/bastion-dev/bastion/policy/mask"
	"github.com/bastion-dev/bastion/policy/sqlclass"
)

// fixture is the same small schema on every engine: NULLs, an empty
// string, a card number column and a PAN inside free text.
const fixture = `CREATE TABLE payments (id INT PRIMARY KEY, customer VARCHAR(50) NOT NULL, card_number VARCHAR(19), note VARCHAR(200), amount DECIMAL(10,2));
INSERT INTO payments VALUES (1, 'Alice', '4111111111111111', NULL, 49.90);
INSERT INTO payments VALUES (2, 'Bob', '5555555555554444', 'paid with 4242 4242 4242 4242', 250.00);
INSERT INTO payments VALUES (3, 'Chloé', NULL, '', 0);
CREATE INDEX payments_customer ON payments(customer)`

// testEngine is one database under test.
type testEngine struct {
	name     string
	target   Target
	sleep    string // a statement that runs for a long time
	dbName   string // what \l lists
	password string
}

// startEngines starts a PostgreSQL and a MariaDB server and writes a SQLite
// file, each with the fixture. The servers are stopped when t ends.
func startEngines(t *testing.T) []testEngine {
	t.Helper()
	var engines []testEngine
	add := func(e testEngine) { engines = append(engines, e) }
	pg := testharness.StartPostgres(t)
	my := testharness.StartMariaDB(t)
	for _, stmt := range strings.Split(fixture, ";\n") {
		pg.Exec(t, stmt)
		my.Exec(t, stmt)
	}
	add(testEngine{name: "postgres", target: Target{Name: "payments-db", Kind: "postgres", DSN: pg.DSN(), Password: pg.Password},
		sleep: "SELECT pg_sleep(30);", dbName: pg.Database, password: pg.Password})
	add(testEngine{name: "mariadb", target: Target{Name: "ledger", Kind: "mysql", DSN: my.DSN(), Password: my.Password},
		sleep: "SELECT SLEEP(30);", dbName: my.Database, password: my.Password})

	path := filepath.Join(t.TempDir(), "test.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil { // an empty file is an empty database
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if st := Run(context.Background(), Options{Target: Target{Name: "lite", Kind: "sqlite", Path: path}, Out: &out, Err: &errb},
		fixture+";"); st != 0 {
		t.Fatalf("load sqlite fixture: status %d: %s", st, errb.String())
	}
	add(testEngine{name: "sqlite", target: Target{Name: "lite", Kind: "sqlite", Path: path},
		sleep:  "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;",
		dbName: "main"})
	return engines
}

// run runs a non-interactive command and returns its output.
func run(t *testing.T, o Options, command string) (stdout, stderr string, status int) {
	t.Helper()
	var out, errb bytes.Buffer
	o.Out, o.Err = &out, &errb
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	status = Run(ctx, o, command)
	return out.String(), errb.String(), status
}

func TestEngines(t *testing.T) {
	engines := startEngines(t)
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			testEngineBehaviour(t, e)
		})
	}
}

func testEngineBehaviour(t *testing.T, e testEngine) {
	o := Options{Target: e.target}

	t.Run("select with NULLs over several lines", func(t *testing.T) {
		out, errs, st := run(t, o, "SELECT id, customer,\n  note\nFROM payments -- a comment; still the statement\nWHERE id <= 3\nORDER BY id;")
		if st != 0 {
			t.Fatalf("status %d, stderr %s", st, errs)
		}
		for _, want := range []string{" id | customer |", "Alice", "Chloé", nullMark, "(3 rows)", "Time: "} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		// Alice's note is NULL, Chloé's is empty: only one ∅.
		if n := strings.Count(out, nullMark); n != 1 {
			t.Errorf("%d NULL marks; want 1:\n%s", n, out)
		}
	})

	t.Run("error with position", func(t *testing.T) {
		_, errs, st := run(t, o, "SELECT id FRM payments;")
		if st != 1 {
			t.Errorf("status %d; want 1", st)
		}
		var want []string
		switch e.name {
		case "postgres":
			want = []string{"ERROR:  syntax error at or near \"payments\"", "at character 15", "LINE 1: SELECT id FRM payments\n                      ^"}
		case "mariadb":
			want = []string{"ERROR 1064 (42000): You have an error in your SQL syntax", "near 'payments'"}
		case "sqlite":
			want = []string{"ERROR:", "syntax error"}
		}
		for _, w := range want {
			if !strings.Contains(errs, w) {
				t.Errorf("stderr lacks %q:\n%s", w, errs)
			}
		}
	})

	t.Run("meta-commands", func(t *testing.T) {
		out, errs, st := run(t, o, "\\dt\n\\d payments\n\\l")
		if st != 0 {
			t.Fatalf("status %d, stderr %s", st, errs)
		}
		for _, want := range []string{"payments", "card_number", "customer", "payments_customer", e.dbName} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		_, errs, st = run(t, o, "\\d no_such_table")
		if st != 1 || errs == "" {
			t.Errorf("\\d of a missing table: status %d, stderr %q", st, errs)
		}
		_, errs, st = run(t, o, "\\frobnicate")
		if st != 1 || !strings.Contains(errs, "invalid command") {
			t.Errorf("unknown meta-command: status %d, stderr %q", st, errs)
		}
	})

	t.Run("expanded display", func(t *testing.T) {
		out, _, st := run(t, o, "\\x\nSELECT id, customer FROM payments WHERE id = 1;")
		if st != 0 || !strings.Contains(out, "-[ RECORD 1 ]") || !strings.Contains(out, "customer | Alice") {
			t.Errorf("status %d, output:\n%s", st, out)
		}
	})

	t.Run("row limit", func(t *testing.T) {
		o := o
		o.RowLimit = 10
		var rows int64
		o.Statement = func(_ string, _ time.Duration, n int64, _ error) { rows = n }
		out, _, st := run(t, o, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) SELECT i FROM n;")
		if st != 0 || !strings.Contains(out, "(10 of 500 rows shown: row limit 10)") {
			t.Errorf("status %d, output:\n%s", st, out)
		}
		if strings.Contains(out, " 11\n") {
			t.Errorf("row 11 shown:\n%s", out)
		}
		if rows != 500 {
			t.Errorf("Statement told of %d rows; want 500", rows)
		}
	})

	t.Run("csv streams past the row limit", func(t *testing.T) {
		o := o
		o.RowLimit, o.Format = 10, "csv"
		out, errs, st := run(t, o, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) SELECT i FROM n;")
		if lines := strings.Count(out, "\n"); st != 0 || lines != 501 || !strings.HasSuffix(out, "\n500\n") {
			t.Errorf("status %d, %d lines (want a header and 500 rows), stderr %q", st, lines, errs)
		}
	})

	t.Run("csv and tsv", func(t *testing.T) {
		o := o
		o.Format = "csv"
		out, errs, st := run(t, o, "SELECT id, customer, note FROM payments ORDER BY id;")
		want := "id,customer,note\n1,Alice,\n2,Bob,paid with 4242 4242 4242 4242\n3,Chloé,\"\"\n"
		if st != 0 || out != want {
			t.Errorf("csv: status %d, stderr %q, output\n%q\nwant\n%q", st, errs, out, want)
		}
		o.Format = "tsv"
		out, _, st = run(t, o, "SELECT id, customer, note FROM payments ORDER BY id;")
		want = "id\tcustomer\tnote\n1\tAlice\t\\N\n2\tBob\tpaid with 4242 4242 4242 4242\n3\tChloé\t\n"
		if st != 0 || out != want {
			t.Errorf("tsv: status %d, output\n%q\nwant\n%q", st, out, want)
		}
	})

	t.Run("several statements and exit status", func(t *testing.T) {
		out, _, st := run(t, o, "SELECT 1 AS first_col; SELECT 2 AS second_col")
		if st != 0 || !strings.Contains(out, "first_col") || !strings.Contains(out, "second_col") {
			t.Errorf("status %d, output:\n%s", st, out)
		}
		out, _, st = run(t, o, "SELECT 1 AS first_col; SELECT nope FROM nowhere; SELECT 3 AS third_col;")
		if st != 1 || !strings.Contains(out, "first_col") || strings.Contains(out, "third_col") {
			t.Errorf("stop at the first error: status %d, output:\n%s", st, out)
		}
	})

	t.Run("refused statement", func(t *testing.T) {
		o := o
		var mu sync.Mutex
		var audited []string
		var checked []string
		o.Check = func(_ context.Context, stmt string) error {
			checked = append(checked, stmt)
			if strings.HasPrefix(strings.ToUpper(stmt), "DELETE") {
				return errors.New("writes need approval (rule writes-need-approval)")
			}
			return nil
		}
		o.Statement = func(stmt string, _ time.Duration, _ int64, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				audited = append(audited, "refused:"+stmt)
			} else {
				audited = append(audited, "ran:"+stmt)
			}
		}
		_, errs, st := run(t, o, "DELETE FROM payments;")
		if st != 1 || !strings.Contains(errs, "statement refused: writes need approval") {
			t.Errorf("status %d, stderr %q", st, errs)
		}
		out, _, _ := run(t, o, "SELECT count(*) AS n FROM payments;")
		if !strings.Contains(out, " 3\n") {
			t.Errorf("rows were deleted:\n%s", out)
		}
		if len(audited) != 2 || audited[0] != "refused:DELETE FROM payments" || audited[1] != "ran:SELECT count(*) AS n FROM payments" {
			t.Errorf("audited %q", audited)
		}
		if len(checked) != 2 {
			t.Errorf("checked %q", checked)
		}
	})

	t.Run("masking", func(t *testing.T) {
		m, err := mask.New(mask.Options{Detectors: []string{"pan"}, Columns: []string{"*card_number*"}})
		if err != nil {
			t.Fatal(err)
		}
		o := o
		o.Masker = m
		total := mask.Counts{}
		o.Masked = func(_ string, c mask.Counts) { total.Add(c) }
		out, _, st := run(t, o, "SELECT id, card_number, note FROM payments ORDER BY id;")
		if st != 0 {
			t.Fatalf("status %d", st)
		}
		for _, clear := range []string{"4111111111111111", "5555555555554444", "4242 4242 4242 4242"} {
			if strings.Contains(out, clear) {
				t.Errorf("output shows %q:\n%s", clear, out)
			}
		}
		if !strings.Contains(out, "****************") || !strings.Contains(out, "paid with ") {
			t.Errorf("output not masked as expected:\n%s", out)
		}
		if total["column"] != 2 || total["pan"] != 1 {
			t.Errorf("counts %v; want column 2, pan 1", total)
		}
		// Aligned: the column separators of every row line up with the
		// header's, masked cells included.
		lines := strings.Split(out, "\n")
		for _, l := range lines[2:5] {
			if got, want := barColumns(l), barColumns(lines[0]); !reflect.DeepEqual(got, want) {
				t.Errorf("misaligned %q (| at %v) vs header %q (| at %v)", l, got, lines[0], want)
			}
		}
	})

	t.Run("read-only", func(t *testing.T) { testReadOnly(t, e) })

	t.Run("classifier miss refused by the database", func(t *testing.T) { testClassifierMiss(t, e) })

	t.Run("interactive", func(t *testing.T) { testInteractive(t, e) })
}

// testReadOnly checks Options.ReadOnly: the database itself refuses what
// a classifier would have let through.
func testReadOnly(t *testing.T, e testEngine) {
	setup := "CREATE TABLE ro_probe (id INT); CREATE SEQUENCE ro_seq;"
	roErr := map[string]string{
		"postgres": "in a read-only transaction (SQLSTATE 25006)",
		"mariadb":  "ERROR 1792 (25006): Cannot execute statement in a READ ONLY transaction",
		"sqlite":   "attempt to write a readonly database",
	}[e.name]
	// A write hidden in a SELECT, where the engine has one.
	sneaky := map[string]string{
		"postgres": "SELECT nextval('ro_seq');",
		"mariadb":  "SELECT NEXTVAL(ro_seq);",
		"sqlite":   "WITH x AS (SELECT 1) INSERT INTO ro_probe SELECT * FROM x;",
	}[e.name]
	if e.name == "sqlite" {
		setup = "CREATE TABLE ro_probe (id INT);"
	}
	if _, errs, st := run(t, Options{Target: e.target}, setup); st != 0 {
		t.Fatalf("setup: status %d: %s", st, errs)
	}
	all := func(string) bool { return true }
	count := func(t *testing.T, want string) {
		t.Helper()
		out, errs, st := run(t, Options{Target: e.target, Format: "csv"}, "SELECT count(*) AS n FROM ro_probe;")
		if st != 0 || out != "n\n"+want+"\n" {
			t.Errorf("ro_probe count: status %d, stderr %q, output %q; want %s rows", st, errs, out, want)
		}
	}
	for _, tc := range []struct {
		name     string
		readOnly func(string) bool
		command  string
		status   int
		stdout   string // in the CSV output
		stderr   string
		rows     string // in ro_probe afterwards
	}{
		{name: "select runs", readOnly: all, command: "SELECT 1 AS one;", stdout: "one\n1\n", rows: "0"},
		{name: "insert refused", readOnly: all, command: "INSERT INTO ro_probe VALUES (1);", status: 1, stderr: roErr, rows: "0"},
		{name: "write in a select refused", readOnly: all, command: sneaky, status: 1, stderr: roErr, rows: "0"},
		{name: "ddl refused", readOnly: all, command: "CREATE TABLE ro_ddl (a INT);", status: 1, stderr: roErr, rows: "0"},
		{name: "meta-command runs", readOnly: all, command: "\\dt", stdout: "ro_probe", rows: "0"},
		{name: "user transaction", readOnly: all, command: "BEGIN; SELECT count(*) AS n FROM ro_probe; COMMIT;", stdout: "n\n0\n", rows: "0"},
		{name: "nil: insert runs", command: "INSERT INTO ro_probe VALUES (1);", rows: "1"},
		{name: "false: insert runs", readOnly: func(string) bool { return false }, command: "INSERT INTO ro_probe VALUES (2);", rows: "2"},
		{name: "nil: user transaction", command: "BEGIN; INSERT INTO ro_probe VALUES (3); COMMIT;", rows: "3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, st := run(t, Options{Target: e.target, Format: "csv", ReadOnly: tc.readOnly}, tc.command)
			if st != tc.status || !strings.Contains(out, tc.stdout) || !strings.Contains(errs, tc.stderr) {
				t.Errorf("status %d (want %d), stdout %q (want %q in it), stderr %q (want %q in it)", st, tc.status, out, tc.stdout, errs, tc.stderr)
			}
			count(t, tc.rows)
		})
	}

	// Inside the user's own transaction the statement runs as is on
	// PostgreSQL and MySQL (documented); SQLite's pragma still applies.
	t.Run("write inside a user transaction", func(t *testing.T) {
		_, errs, st := run(t, Options{Target: e.target, ReadOnly: all}, "BEGIN; INSERT INTO ro_probe VALUES (9); ROLLBACK;")
		if e.name == "sqlite" {
			if st != 1 || !strings.Contains(errs, roErr) {
				t.Errorf("status %d, stderr %q; want %q", st, errs, roErr)
			}
		} else if st != 0 {
			t.Errorf("status %d, stderr %q", st, errs)
		}
		count(t, "3")
	})

	// On one connection: a refused write, a cancelled statement, then a
	// write let through; the wrapper never outlives its statement.
	t.Run("connection stays usable", func(t *testing.T) {
		o := Options{Target: e.target, ReadOnly: func(stmt string) bool { return !strings.Contains(stmt, "rw_ok") }}
		tm := startTerm(t, o)
		name := e.target.Name
		tm.expect(t, name+"=> ", 10*time.Second)
		tm.send(t, "INSERT INTO ro_probe VALUES (10);\r")
		tm.expect(t, roErr, 5*time.Second)
		tm.expect(t, name+"=> ", 5*time.Second)
		tm.send(t, e.sleep+"\r")
		time.Sleep(300 * time.Millisecond)
		tm.send(t, "\x03")
		tm.expect(t, "Cancel request sent", 3*time.Second)
		tm.expect(t, name+"=> ", 5*time.Second)
		tm.send(t, "INSERT INTO ro_probe VALUES (11) -- rw_ok\r;\r")
		tm.expect(t, name+"=> ", 5*time.Second)
		tm.send(t, "SELECT count(*) AS total FROM ro_probe;\r")
		tm.expect(t, "total", 5*time.Second)
		tm.expect(t, "4", 5*time.Second)
		tm.expect(t, name+"=> ", 5*time.Second)
		if strings.Contains(tm.out.String(), name+"*=> ") || strings.Contains(tm.out.String(), name+"!=> ") {
			t.Errorf("a transaction showed in the prompt:\n%s", tm.out.String())
		}
		tm.send(t, "\\q\r")
	})
	count(t, "4")
}

// fakeTerm drives an interactive REPL through a pipe, as the SSH channel would.
type fakeTerm struct {
	in     *io.PipeWriter
	out    *syncBuffer
	mark   int
	status chan int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startTerm(t *testing.T, o Options) *fakeTerm {
	t.Helper()
	pr, pw := io.Pipe()
	tm := &fakeTerm{in: pw, out: &syncBuffer{}, status: make(chan int, 1)}
	o.In, o.Out, o.Err, o.PTY = pr, tm.out, tm.out, true
	ctx, cancel := context.WithCancel(context.Background())
	go func() { tm.status <- Run(ctx, o, "") }()
	t.Cleanup(func() {
		cancel()
		pr.Close()
		select {
		case <-tm.status:
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after the session ended")
		}
	})
	return tm
}

func (tm *fakeTerm) send(t *testing.T, s string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { _, err := io.WriteString(tm.in, s); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("send %q: %v", s, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("send %q: the REPL does not read its input", s)
	}
}

// expect waits for want in the output after what earlier expects matched.
func (tm *fakeTerm) expect(t *testing.T, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		all := tm.out.String()
		if i := strings.Index(all[tm.mark:], want); i >= 0 {
			tm.mark += i + len(want)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %v; output after the last match:\n%s", want, within, all[tm.mark:])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testInteractive(t *testing.T, e testEngine) {
	var cols atomic.Int32
	cols.Store(200)
	resized := make(chan struct{}, 1)
	o := Options{Target: e.target, Size: func() (int, int) { return int(cols.Load()), 40 }, Resized: resized}
	tm := startTerm(t, o)
	name := e.target.Name
	tm.expect(t, name+"=> ", 10*time.Second)

	// A transaction shows in the prompt.
	tm.send(t, "BEGIN;\r")
	tm.expect(t, name+"*=> ", 5*time.Second)
	tm.send(t, "ROLLBACK;\r")
	tm.expect(t, name+"=> ", 5*time.Second)

	// A statement over two lines, with the continuation prompt; CRLF line
	// ends for the raw terminal.
	tm.send(t, "SELECT 40 + 2\r")
	tm.expect(t, name+"-> ", 5*time.Second)
	tm.send(t, "AS answer;\r")
	tm.expect(t, " answer \r\n", 5*time.Second)
	tm.expect(t, "(1 row)\r\n", 5*time.Second)

	// Ctrl-C at the prompt discards the statement typed so far.
	tm.send(t, "SELECT 'discarded'\r")
	tm.expect(t, name+"-> ", 5*time.Second)
	tm.send(t, "\x03")
	tm.expect(t, name+"=> ", 5*time.Second)
	tm.send(t, "SELECT 7 AS seven;\r")
	tm.expect(t, "seven", 5*time.Second)
	if strings.Contains(tm.out.String()[tm.mark:], "discarded") {
		t.Errorf("the discarded statement ran")
	}
	tm.expect(t, name+"=> ", 5*time.Second)

	// Ctrl-C cancels a running statement on the server.
	tm.send(t, e.sleep+"\r")
	time.Sleep(300 * time.Millisecond) // let it reach the server
	start := time.Now()
	tm.send(t, "\x03")
	tm.expect(t, "Cancel request sent", 3*time.Second)
	tm.expect(t, name+"=> ", 5*time.Second)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cancel took %v", d)
	}
	// The connection is still usable.
	tm.send(t, "SELECT 5 AS still_here;\r")
	tm.expect(t, "still_here", 5*time.Second)
	tm.expect(t, name+"=> ", 5*time.Second)

	// A resize re-flows the next result: cells are cut to the width.
	cols.Store(30)
	resized <- struct{}{}
	tm.send(t, "SELECT 'abcdefghijklmnopqrstuvwxyz0123456789' AS long_text, 'x' AS second;\r")
	tm.expect(t, truncMark, 5*time.Second)
	tm.expect(t, "(1 row)", 5*time.Second)
	for _, l := range strings.Split(tm.out.String(), "\r\n") {
		if strings.Contains(l, "abcdef") && !strings.Contains(l, "SELECT") && displayWidth(l) > 30 {
			t.Errorf("line wider than 30 after resize: %q", l)
		}
	}

	// The password appears nowhere.
	if e.password != "" && strings.Contains(tm.out.String(), e.password) {
		t.Errorf("the password appears in the output")
	}
	tm.send(t, "\\q\r")
	select {
	case st := <-tm.status:
		tm.status <- st // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatalf("\\q did not end the REPL")
	}
}

func TestCtrlDQuits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo.db")
	if err := WriteDemoDB(path); err != nil {
		t.Fatal(err)
	}
	tm := startTerm(t, Options{Target: Target{Name: "demo", Kind: "sqlite", Path: path}})
	tm.expect(t, "demo=> ", 5*time.Second)
	tm.send(t, "\x04")
	select {
	case st := <-tm.status:
		tm.status <- st
		if st != 0 {
			t.Errorf("status %d", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Ctrl-D did not end the REPL")
	}
}

func TestPasswordNeverShown(t *testing.T) {
	// A DSN with a password of its own, to an unreachable port: the
	// connection error must show neither it nor Options' password.
	for _, tg := range []Target{
		{Name: "pg", Kind: "postgres", DSN: "postgres://bastion:dsn-secret-1@127.0.0.1:1/payments?connect_timeout=2", Password: "opt-secret-2"},
		{Name: "my", Kind: "mysql", DSN: "bastion:dsn-secret-1@tcp(127.0.0.1:1)/ledger?timeout=2s", Password: "opt-secret-2"},
		{Name: "bad", Kind: "postgres", DSN: "postgres://bastion:dsn-secret-1@127.0.0.1:notaport/x", Password: "opt-secret-2"},
	} {
		out, errs, st := run(t, Options{Target: tg}, "SELECT 1;")
		if st != 1 || !strings.Contains(errs, "cannot connect to "+tg.Name) {
			t.Errorf("%s: status %d, stderr %q", tg.Name, st, errs)
		}
		for _, secret := range []string{"dsn-secret-1", "opt-secret-2"} {
			if strings.Contains(out+errs, secret) {
				t.Errorf("%s: %q shown: %s", tg.Name, secret, out+errs)
			}
		}
	}
}

func TestQueryTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo.db")
	if err := WriteDemoDB(path); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, errs, st := run(t, Options{Target: Target{Name: "demo", Kind: "sqlite", Path: path}, QueryTimeout: 200 * time.Millisecond},
		"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;")
	if st != 1 || !strings.Contains(errs, "statement timeout") {
		t.Errorf("status %d, stderr %q", st, errs)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("timeout took %v", d)
	}
}

func TestRender(t *testing.T) {
	cols := []Column{{Name: "id", Numeric: true}, {Name: "text"}}
	rows := [][]cell{{{s: "1"}, {s: "line\none\x1b[31mred"}}, {{s: "22"}, {null: true}}}
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	renderTable(w, cols, rows, layout{})
	w.Flush()
	got := b.String()
	for _, s := range []string{"line↵one\\x1b[31mred", "  1 |", " 22 | ∅"} {
		if !strings.Contains(got, s) {
			t.Errorf("table lacks %q:\n%s", s, got)
		}
	}
	if strings.Contains(got, "\x1b") {
		t.Errorf("raw escape in the table: %q", got)
	}
	if f := csvField(cell{s: `a "b", c`}); f != `"a ""b"", c"` {
		t.Errorf("csvField = %s", f)
	}
	if f := tsvField(cell{s: "a\tb\\c\nd"}); f != `a\tb\\c\nd` {
		t.Errorf("tsvField = %s", f)
	}
}

func TestWriteDemoDB(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo.db")
	for range 2 { // replaces an existing file
		if err := WriteDemoDB(path); err != nil {
			t.Fatal(err)
		}
	}
	m, err := mask.New(mask.Options{Detectors: []string{"pan"}, Columns: []string{"*card_number*"}})
	if err != nil {
		t.Fatal(err)
	}
	out, errs, st := run(t, Options{Target: Target{Name: "demo", Kind: "sqlite", Path: path}, Masker: m},
		"SELECT count(*) AS customers FROM customers; SELECT card_number, note FROM payments ORDER BY id;")
	if st != 0 || !strings.Contains(out, " 5\n") || !strings.Contains(out, "(8 rows)") {
		t.Fatalf("status %d, stderr %s, output:\n%s", st, errs, out)
	}
	for _, pan := range []string{"4111111111111111", "4242 4242 4242 4242", "3566-0020-2036-0505"} {
		if strings.Contains(out, pan) {
			t.Errorf("demo output shows %s unmasked:\n%s", pan, out)
		}
	}
}

// barColumns returns the display columns of the '|' in a table line.
func barColumns(l string) []int {
	var at []int
	w := 0
	for _, r := range l {
		if r == '|' {
			at = append(at, w)
		}
		w += displayWidth(string(r))
	}
	return at
}

func TestInterruptAndPipedInput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo.db")
	if err := WriteDemoDB(path); err != nil {
		t.Fatal(err)
	}
	tg := Target{Name: "demo", Kind: "sqlite", Path: path}

	// An SSH "signal" INT (no PTY) cancels the running statement.
	intr := make(chan struct{}, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		intr <- struct{}{}
	}()
	start := time.Now()
	_, errs, st := run(t, Options{Target: tg, Interrupt: intr},
		"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;")
	if st != 1 || !strings.Contains(errs, "canceling statement due to user request") || time.Since(start) > 3*time.Second {
		t.Errorf("status %d after %v, stderr %q", st, time.Since(start), errs)
	}

	// Without a PTY and a command, In is a script; it stops at the first
	// error.
	out, errs, st := run(t, Options{Target: tg, In: strings.NewReader("SELECT 1 AS one;\nSELECT nope;\nSELECT 2 AS two;\n")}, "")
	if st != 1 || !strings.Contains(out, "one") || strings.Contains(out, "two") || !strings.Contains(errs, "nope") {
		t.Errorf("piped: status %d, stdout %q, stderr %q", st, out, errs)
	}
	// A last statement without ';' runs at the end of input.
	out, _, st = run(t, Options{Target: tg, Format: "csv"}, "SELECT 3 AS three")
	if st != 0 || out != "three\n3\n" {
		t.Errorf("unterminated: status %d, stdout %q", st, out)
	}
}

// testClassifierMiss is defence in depth with the real classifier: a
// statement the parser must call a read (a call of a function the user
// defined, whose body writes) runs in the read-only wrapper, and the
// database refuses the write. SQLite has no SQL-defined functions and its
// class is the engine's own verdict, so no miss can be built there: the
// check is that what the classifier calls read runs under query_only.
func testClassifierMiss(t *testing.T, e testEngine) {
	type probe struct{ setup, miss, refused, check, want string }
	p := map[string]probe{
		"postgres": {
			setup:   "CREATE TABLE cm_probe (id INT); CREATE FUNCTION cm_sneaky() RETURNS int LANGUAGE sql AS 'INSERT INTO cm_probe VALUES (7) RETURNING 1';",
			miss:    "SELECT cm_sneaky() AS n;",
			refused: "in a read-only transaction (SQLSTATE 25006)",
			check:   "SELECT count(*) AS n FROM cm_probe;", want: "n\n0\n",
		},
		"mariadb": {
			setup:   "CREATE SEQUENCE cm_seq; CREATE FUNCTION cm_sneaky() RETURNS BIGINT RETURN NEXTVAL(cm_seq);",
			miss:    "SELECT cm_sneaky() AS n;",
			refused: "READ ONLY transaction",
			check:   "SELECT next_not_cached_value AS n FROM cm_seq;", want: "n\n1\n",
		},
		"sqlite": {
			setup: "CREATE TABLE cm_probe (id INT);",
			miss:  "SELECT query_only AS n FROM pragma_query_only;", want: "n\n1\n",
		},
	}[e.name]
	d := sqlclass.Dialect{Kind: e.target.Kind, Path: e.target.Path}
	if got := sqlclass.Classify(d, p.miss); got != sqlclass.Read {
		t.Fatalf("the classifier calls %q %s; the test needs a statement it calls read", p.miss, got)
	}
	if _, errs, st := run(t, Options{Target: e.target}, p.setup); st != 0 {
		t.Fatalf("setup: status %d: %s", st, errs)
	}
	readOnly := func(stmt string) bool { return sqlclass.Classify(d, stmt) == sqlclass.Read }
	out, errs, st := run(t, Options{Target: e.target, Format: "csv", ReadOnly: readOnly}, p.miss)
	if p.refused == "" {
		if st != 0 || out != p.want {
			t.Fatalf("status %d, stderr %q, output %q; want %q", st, errs, out, p.want)
		}
		return
	}
	if st != 1 || !strings.Contains(errs, p.refused) {
		t.Fatalf("the write hidden in %q: status %d, stderr %q; want the database's refusal %q", p.miss, st, errs, p.refused)
	}
	if out, errs, st := run(t, Options{Target: e.target, Format: "csv"}, p.check); st != 0 || out != p.want {
		t.Fatalf("after the refusal: status %d, stderr %q, output %q; want %q", st, errs, out, p.want)
	}
}
