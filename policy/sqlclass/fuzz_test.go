package sqlclass

import (
	"database/sql"
	"path/filepath"
	"testing"

	pg "github.com/pganalyze/pg_query_go/v6"
	"github.com/pingcap/tidb/pkg/parser"
)

var fuzzSeeds = []string{
	"select 1", "with a as (delete from t returning *) select * from a", "select $t$;$t$", "/* */--\n'",
	"select 1; drop table t", "select 1 /*! , sleep(1) */", "select 'a\\' , sleep(5) -- '", "explain analyze",
	"copy t to program 'id'", "create trigger x after insert on cards begin select 1; end;", "pragma query_only=0",
	"select * from cards for update", "\x00", "select \"load_extension\"('x')",
}

// validClass fails the test for anything but the five classes.
func validClass(t *testing.T, c string) {
	t.Helper()
	switch c {
	case Read, Write, DDL, Admin, Unknown:
	default:
		t.Fatalf("class %q", c)
	}
}

func FuzzClassifyPostgres(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := Classify(Dialect{Kind: KindPostgres}, s)
		validClass(t, c)
		if _, err := pg.Parse(s); err != nil && c != Unknown {
			t.Fatalf("%q does not parse (%v) but is %s", s, err, c)
		}
	})
}

func FuzzClassifyMySQL(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := Classify(Dialect{Kind: KindMySQL}, s)
		validClass(t, c)
		if _, _, err := parser.New().Parse(s, "", ""); err != nil && c != Unknown {
			t.Fatalf("%q does not parse (%v) but is %s", s, err, c)
		}
	})
}

func FuzzClassifySQLite(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	lite := liteFixture(f)
	f.Fuzz(func(t *testing.T, s string) {
		c := Classify(Dialect{Kind: KindSQLite, Path: lite}, s)
		validClass(t, c)
		if _, ok := liteSplit(s); !ok && c != Unknown {
			t.Fatalf("%q does not split but is %s", s, c)
		}
		if c == Read {
			// What the engine's verdict calls a read must really be one:
			// run it on a copy under query_only, which refuses writes.
			assertReadOnlyRuns(t, lite, s)
		}
	})
}

// assertReadOnlyRuns runs s with query_only on; a statement classed read
// must not fail with SQLite's read-only refusal.
func assertReadOnlyRuns(t *testing.T, path, s string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(s)
	if err != nil {
		if isReadOnlyRefusal(err) {
			t.Fatalf("%q is read but the engine refused it as a write: %v", s, err)
		}
		return
	}
	for rows.Next() {
	}
	if err := rows.Err(); err != nil && isReadOnlyRefusal(err) {
		t.Fatalf("%q is read but the engine refused it as a write: %v", s, err)
	}
	rows.Close()
}
