package sqlrepl

import (
	"path/filepath"
	"testing"

	"github.com/bastion-dev/bastion/policy/sqlclass"
)

// TestMetaCommandsAreReads: the catalogue statements of \dt, \d, \d NAME
// and \l go through the same policy check as typed SQL; a target whose
// rules refuse everything but reads must still answer them.
func TestMetaCommandsAreReads(t *testing.T) {
	lite := filepath.Join(t.TempDir(), "demo.db")
	if err := WriteDemoDB(lite); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		d   sqlclass.Dialect
		eng engine
	}{
		{sqlclass.Dialect{Kind: sqlclass.KindPostgres}, &pgEngine{}},
		{sqlclass.Dialect{Kind: sqlclass.KindMySQL}, &myEngine{}},
		{sqlclass.Dialect{Kind: sqlclass.KindSQLite, Path: lite}, &liteEngine{}},
	} {
		for _, m := range []struct{ cmd, arg string }{{"dt", ""}, {"d", ""}, {"d", "customers"}, {"l", ""}} {
			qs, err := c.eng.meta(m.cmd, m.arg)
			if err != nil {
				t.Fatalf("%s \\%s %s: %v", c.d.Kind, m.cmd, m.arg, err)
			}
			for _, q := range qs {
				if got := sqlclass.Classify(c.d, q.sql); got != sqlclass.Read {
					t.Errorf("%s \\%s %s: %q is %s, want read", c.d.Kind, m.cmd, m.arg, q.sql, got)
				}
			}
		}
	}
}
