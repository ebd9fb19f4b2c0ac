package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/bastion/sqlrepl"
	"github.com/bastion-dev/bastion/internal/testharness"
)

// sqlWorld has three database targets: a real PostgreSQL and MariaDB
// started by the harness, and an SQLite file, each loaded with the same
// fake cardholder table.
func sqlWorld(t *testing.T) *world {
	t.Helper()
	pg := testharness.StartPostgres(t)
	my := testharness.StartMariaDB(t)
	dir := t.TempDir()
	fixture := []string{
		"CREATE TABLE cards (id INT PRIMARY KEY, holder VARCHAR(40), card_number VARCHAR(30), note VARCHAR(80))",
		"INSERT INTO cards VALUES (1, 'Ann', '4111111111111111', 'paid with 5555 5555 5555 4444'), (2, 'Bo', '378282246310005', NULL)",
	}
	pg.Exec(t, fixture...)
	my.Exec(t, fixture...)
	lite := filepath.Join(dir, "lite.db")
	if err := sqlrepl.WriteDemoDB(lite); err != nil {
		t.Fatal(err)
	}
	pgPass, myPass := filepath.Join(dir, "pg.pass"), filepath.Join(dir, "my.pass")
	writeFile(t, pgPass, pg.Password+"\n")
	writeFile(t, myPass, my.Password+"\n")
	return newWorld(t, worldOpts{
		extraTargets: fmt.Sprintf(`  - { name: pg, kind: postgres, dsn: %q, password_file: %q }
  - { name: my, kind: mysql, dsn: %q, password_file: %q }
  - { name: lite, kind: sqlite, path: %q }
`, pg.DSN(), pgPass, my.DSN(), myPass, lite),
		roles: `  - { name: dba, groups: [sre], targets: ["pg", "my", "lite"] }
`,
		extra: `rules:
  - { name: no-writes, targets: ["pg", "my", "lite"], statements: [write, ddl, admin, unknown], action: deny }
masking: { columns: ["*card_number*"] }
`,
	})
}

func TestSQLTargetsThroughSSH(t *testing.T) {
	w := sqlWorld(t)
	for _, target := range []string{"pg", "my"} {
		t.Run(target, func(t *testing.T) {
			res := w.client.Run(t, target, "select id, holder, card_number, note from cards order by id;")
			if res.ExitCode != 0 {
				t.Fatalf("%+v", res)
			}
			for _, clear := range []string{"4111111111111111", "378282246310005", "5555 5555 5555 4444"} {
				if strings.Contains(res.Stdout, clear) {
					t.Errorf("clear card data in the result: %q\n%s", clear, res.Stdout)
				}
			}
			if !strings.Contains(res.Stdout, "(2 rows)") || !strings.Contains(res.Stdout, "**** **** **** 4444") || !strings.Contains(res.Stdout, "Ann") {
				t.Errorf("result table:\n%s", res.Stdout)
			}
			// A write is refused by rule, with a non-zero exit, and not run.
			res = w.client.Run(t, target, "delete from cards;")
			if res.ExitCode == 0 || !strings.Contains(res.Stdout+res.Stderr, "no-writes") {
				t.Fatalf("refused write: %+v", res)
			}
			if res := w.client.Run(t, target, "select count(*) from cards;"); !strings.Contains(res.Stdout, "2") {
				t.Fatalf("rows after the refused delete: %+v", res)
			}
			// Errors carry the server's message and fail the exit status.
			res = w.client.Run(t, target, "select nosuchcolumn from cards;")
			if res.ExitCode == 0 || !strings.Contains(strings.ToLower(res.Stdout+res.Stderr), "nosuchcolumn") {
				t.Fatalf("error: %+v", res)
			}
			// Pipelines get CSV.
			res = w.client.Run(t, target, "--csv", "select id, holder from cards order by id;")
			if res.ExitCode != 0 || !strings.Contains(res.Stdout, "1,Ann") {
				t.Fatalf("csv: %+v", res)
			}
		})
	}
	t.Run("sqlite", func(t *testing.T) {
		res := w.client.Run(t, "lite", "select count(*) from customers;")
		if res.ExitCode != 0 || !strings.Contains(res.Stdout, "(1 row)") {
			t.Fatalf("%+v", res)
		}
	})
	// Writes that start like reads, each read by its dialect's parser, are
	// refused by the rule before they reach the database.
	for _, c := range []struct{ name, target, stmt, class string }{
		{"data-modifying CTE", "pg", "with d as (delete from cards returning *) select count(*) from d;", "write"},
		{"for update", "pg", "select id from cards for update;", "write"},
		{"explain analyze", "pg", "explain analyze delete from cards;", "write"},
		{"side-effect function", "pg", "select pg_terminate_backend(pg_backend_pid());", "admin"},
		{"executable comment", "my", "select 1 /*! , sleep(1) */;", "admin"},
		{"into outfile", "my", "select id from cards into outfile '/tmp/bastion-e2e-cards';", "admin"},
		{"load_extension", "lite", "select load_extension('/tmp/none.so');", "admin"},
		{"query_only off", "lite", "pragma query_only = 0;", "admin"},
	} {
		t.Run(c.target+" "+c.name, func(t *testing.T) {
			res := w.client.Run(t, c.target, c.stmt)
			if res.ExitCode == 0 || !strings.Contains(res.Stdout+res.Stderr, "no-writes") || !strings.Contains(res.Stdout+res.Stderr, c.class+" statement") {
				t.Fatalf("%q: %+v", c.stmt, res)
			}
		})
	}
	if res := w.client.Run(t, "pg", "select count(*) from cards;"); !strings.Contains(res.Stdout, "2") {
		t.Fatalf("rows after the refused evasions: %+v", res)
	}
	// The statements are in the audit trail, masked, with class and decision.
	out, errOut, code := w.bastion("audit", "--type", "sql.statement", "--json")
	if code != 0 || !strings.Contains(out, `"decision":"deny"`) || !strings.Contains(out, `"class":"write"`) || strings.Contains(out, "4111111111111111") {
		t.Fatalf("audit of statements: %s %s", out, errOut)
	}
}

func TestSQLCancelWithCtrlC(t *testing.T) {
	w := sqlWorld(t)
	p := w.client.RunPTY(t, 100, 30, "-t", "pg")
	p.Expect(t, `pg=>`, 15*time.Second)
	// pg_sleep is an admin statement here (it holds a backend); a long
	// read is what gets cancelled.
	p.Send("select count(*) from generate_series(1, 2000000000);\r")
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	p.Send("\x03")
	p.Expect(t, `(?i)cancel`, 5*time.Second)
	p.Expect(t, `pg=>`, 5*time.Second)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancel took %v", d)
	}
	p.Send("select 41+1 as answer;\r")
	p.Expect(t, `42`, 5*time.Second)
	p.Send("\\q\r")
	if _, err := p.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}
