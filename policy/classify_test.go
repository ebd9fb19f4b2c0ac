package policy

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/bastion-dev/bastion/policy/sqlclass"
)

// TestDecideStatementByDialect: the same text is decided by the class its
// target's dialect gives it; the classifier's own corpus is in
// policy/sqlclass. Here: the policy wiring (rule order, class per dialect,
// fail closed on unknown and on targets the user cannot reach).
func TestDecideStatementByDialect(t *testing.T) {
	dir := t.TempDir()
	lite := filepath.Join(dir, "lite.db")
	db, err := sql.Open("sqlite", lite)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE cards (id INTEGER PRIMARY KEY, pan TEXT)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	cfg, err := Parse([]byte(head+fmt.Sprintf(`targets:
  - { name: pg, kind: postgres, dsn: "postgres://u@127.0.0.1:1/db" }
  - { name: my, kind: mysql, dsn: "u@tcp(127.0.0.1:1)/db" }
  - { name: lite, kind: sqlite, path: %q }
roles:
  - { name: dba, groups: [dba], targets: ["*"] }
rules:
  - { name: no-ddl, targets: ["*"], statements: [ddl, admin], action: deny }
  - { name: writes-held, targets: ["*"], statements: [write, unknown], action: approve }
`, lite)), "t.yaml", dir)
	if err != nil {
		t.Fatal(err)
	}
	dialect := map[string]Dialect{}
	for _, name := range []string{"pg", "my", "lite"} {
		tgt, ok := cfg.Target(name)
		if !ok {
			t.Fatalf("no target %s", name)
		}
		dialect[name] = DialectOf(tgt)
	}
	dba := []string{"dba"}
	for _, c := range []struct {
		target, stmt, action, rule, class string
	}{
		{"pg", "select * from cards", ActionAllow, "", StatementRead},
		{"pg", "with d as (delete from cards returning *) select * from d", ActionApprove, "writes-held", StatementWrite},
		{"pg", "select pg_terminate_backend(1)", ActionDeny, "no-ddl", StatementAdmin},
		{"pg", "select 1 /*! , sleep(1) */", ActionAllow, "", StatementRead}, // a comment in PostgreSQL
		{"my", "select 1 /*! , sleep(1) */", ActionDeny, "no-ddl", StatementAdmin},
		{"my", "select * from cards for update", ActionApprove, "writes-held", StatementWrite},
		{"my", "select * from cards", ActionAllow, "", StatementRead},
		{"lite", "select * from cards", ActionAllow, "", StatementRead},
		{"lite", "select load_extension('x')", ActionDeny, "no-ddl", StatementAdmin},
		{"lite", "select * from nosuch", ActionApprove, "writes-held", StatementUnknown},
		{"pg", "frobnicate", ActionApprove, "writes-held", StatementUnknown},
	} {
		if got := ClassifyStatement(dialect[c.target], c.stmt); got != c.class {
			t.Errorf("%s: ClassifyStatement(%q) = %s, want %s", c.target, c.stmt, got, c.class)
		}
		d := cfg.DecideStatement(dialect[c.target], dba, c.target, c.stmt)
		if d.Action != c.action || d.Rule != c.rule {
			t.Errorf("%s: DecideStatement(%q) = %+v, want %s by %q", c.target, c.stmt, d, c.action, c.rule)
		}
	}
	// No access to the target: deny, whatever the statement.
	if d := cfg.DecideStatement(dialect["pg"], []string{"nobody"}, "pg", "select 1"); d.Action != ActionDeny {
		t.Errorf("no access: %+v", d)
	}
	// A target of another kind has no SQL dialect: unknown.
	if got := ClassifyStatement(DialectOf(Target{Kind: KindSSH}), "select 1"); got != StatementUnknown {
		t.Errorf("ssh target: %s", got)
	}
}

// TestStatementClassesAgree: policy's class names are the classifier's.
func TestStatementClassesAgree(t *testing.T) {
	for policyName, classifierName := range map[string]string{
		StatementRead: sqlclass.Read, StatementWrite: sqlclass.Write, StatementDDL: sqlclass.DDL,
		StatementAdmin: sqlclass.Admin, StatementUnknown: sqlclass.Unknown,
	} {
		if policyName != classifierName {
			t.Errorf("policy %q, classifier %q", policyName, classifierName)
		}
	}
}
