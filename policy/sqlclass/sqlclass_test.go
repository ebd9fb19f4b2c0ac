package sqlclass

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "modernc.org/sqlite"
)

// corpus is the table of statements with the class each dialect must give
// them: ordinary statements of every class, and every evasion of issue 5
// (a write hidden where a keyword classifier sees a read).
var corpus = []struct {
	dialect, class, stmt string
}{
	// PostgreSQL: reads.
	{KindPostgres, Read, "select * from cards"},
	{KindPostgres, Read, "  -- note\n SELECT 1"},
	{KindPostgres, Read, "select * from cards where id in (select id from cards where holder = 'x')"},
	{KindPostgres, Read, "select replace(holder, 'a', 'b'), count(*) from cards group by 1"},
	{KindPostgres, Read, "with x as (select 1 as a) select * from x"},
	{KindPostgres, Read, "select ';' ;"},
	{KindPostgres, Read, "select $$;delete from cards$$"},
	{KindPostgres, Read, "select 'nextval(1)' as s"},
	{KindPostgres, Read, "values (1), (2)"},
	{KindPostgres, Read, "table cards"},
	{KindPostgres, Read, "show search_path"},
	{KindPostgres, Read, "explain select * from cards"},
	{KindPostgres, Read, "explain delete from cards"},
	{KindPostgres, Read, "explain (analyze false) delete from cards"},
	{KindPostgres, Read, "begin"},
	{KindPostgres, Read, "commit"},
	{KindPostgres, Read, "rollback to savepoint a"},
	{KindPostgres, Read, "select 1; select 2"},
	{KindPostgres, Read, "copy (select 1) to stdout"},
	{KindPostgres, Read, "select count(*) from cards where sleep = 1"},
	// PostgreSQL: writes, DDL, admin.
	{KindPostgres, Write, "insert into cards values (1)"},
	{KindPostgres, Write, "UPDATE cards SET holder='x'"},
	{KindPostgres, Write, "delete from cards where id=1;"},
	{KindPostgres, Write, "merge into cards c using cards d on c.id = d.id when matched then delete"},
	{KindPostgres, Write, "copy cards from stdin"},
	{KindPostgres, DDL, "create table t (a int)"},
	{KindPostgres, DDL, "DROP TABLE cards"},
	{KindPostgres, DDL, "truncate cards"},
	{KindPostgres, DDL, "alter table cards add column x int"},
	{KindPostgres, DDL, "create index on cards (holder)"},
	{KindPostgres, Admin, "grant all on cards to bob"},
	{KindPostgres, Admin, "set role admin"},
	{KindPostgres, Admin, "alter system set work_mem = '1GB'"},
	{KindPostgres, Admin, "create extension dblink"},
	{KindPostgres, Admin, "prepare transaction 'x'"},
	// PostgreSQL: evasions.
	{KindPostgres, Write, "with x as (select 1) delete from cards"},
	{KindPostgres, Write, "with x as (select 1), y as (delete from cards returning *) select * from y"},
	{KindPostgres, Write, "with y as (update cards set holder = 'x' returning *) select count(*) from y"},
	{KindPostgres, Write, "select * from (select 1) s, lateral (select 1) l where exists (with d as (insert into t values (1) returning 1) select * from d)"},
	{KindPostgres, DDL, "select * into newtable from cards"},
	{KindPostgres, DDL, "create table n as select * from cards"},
	{KindPostgres, Write, "select * from cards for update"},
	{KindPostgres, Write, "select * from cards for share skip locked"},
	{KindPostgres, Write, "select * from (select * from cards for no key update) s"},
	{KindPostgres, Admin, "copy cards to program 'sh -c id'"},
	{KindPostgres, Admin, "copy cards from program 'curl x'"},
	{KindPostgres, Admin, "copy cards to '/tmp/cards.csv'"},
	{KindPostgres, Write, "copy (delete from cards returning *) to stdout"},
	{KindPostgres, Admin, "do $$ begin delete from cards; end $$"},
	{KindPostgres, Admin, "DO language plpgsql $x$ begin perform 1; end $x$"},
	{KindPostgres, Admin, "call purge()"},
	{KindPostgres, Write, "explain analyze delete from cards"},
	{KindPostgres, Write, "explain (analyze, buffers) update cards set holder = 'x'"},
	{KindPostgres, Write, "explain (analyze true) insert into cards values (3)"},
	{KindPostgres, Read, "explain analyze select 1"},
	{KindPostgres, Write, "select nextval('s')"},
	{KindPostgres, Write, "select pg_catalog.setval('s', 1)"},
	{KindPostgres, Write, "select * from nextval('s')"},
	{KindPostgres, Write, "select id from cards where id = nextval('s')"},
	{KindPostgres, Write, "select pg_advisory_lock(1)"},
	{KindPostgres, Write, "select pg_try_advisory_xact_lock(1)"},
	{KindPostgres, Admin, "select pg_terminate_backend(42)"},
	{KindPostgres, Admin, "select pg_cancel_backend(pid) from pg_stat_activity"},
	{KindPostgres, Admin, "select set_config('transaction_read_only', 'off', false)"},
	{KindPostgres, Admin, "SELECT \"set_config\"('x', 'y', false)"},
	{KindPostgres, Admin, "select lo_export(1, '/tmp/x')"},
	{KindPostgres, Admin, "select lo_import('/etc/passwd')"},
	{KindPostgres, Admin, "select dblink_exec('dbname=x', 'drop table t')"},
	{KindPostgres, Admin, "select * from dblink('dbname=x', 'delete from t returning 1') as t(a int)"},
	{KindPostgres, Admin, "select pg_sleep(10)"},
	{KindPostgres, Admin, "select case when true then pg_sleep(1) end"},
	{KindPostgres, Admin, "select query_to_xml('delete from cards returning *', true, true, '')"},
	{KindPostgres, Admin, "select pg_read_file('/etc/passwd')"},
	{KindPostgres, Admin, "select 1; drop table t; grant all on t to bob"},
	{KindPostgres, DDL, "select 1; drop table t"},
	{KindPostgres, Admin, "declare c cursor for select pg_sleep(1)"},
	{KindPostgres, Write, "prepare p as delete from cards"},
	// PostgreSQL: not placed.
	{KindPostgres, Unknown, "execute p"},
	{KindPostgres, Unknown, "select 'unterminated"},
	{KindPostgres, Unknown, ""},
	{KindPostgres, Unknown, "-- only a comment"},
	{KindPostgres, Unknown, "frobnicate"},
	{KindPostgres, Unknown, "explain analyze"},
	{KindPostgres, Unknown, "select 1; frobnicate"},
	// PostgreSQL has no executable comments: this one is a comment there.
	{KindPostgres, Read, "select 1 /*! ; drop table t */"},

	// MySQL / MariaDB: reads.
	{KindMySQL, Read, "select * from cards"},
	{KindMySQL, Read, "SELECT `holder` FROM `cards` WHERE id = 1 -- trailing"},
	{KindMySQL, Read, "# hash comment\nselect 1"},
	{KindMySQL, Read, "show tables"},
	{KindMySQL, Read, "show tables like \"card%\""},
	{KindMySQL, Read, "describe cards"},
	{KindMySQL, Read, "explain select * from cards"},
	{KindMySQL, Read, "select 1 union select 2"},
	{KindMySQL, Read, "with x as (select 1) select * from x"},
	{KindMySQL, Read, "select 'sleep(10)' as s"},
	{KindMySQL, Read, "start transaction"},
	{KindMySQL, Read, "begin"},
	{KindMySQL, Read, "rollback"},
	{KindMySQL, Read, "select 1; select 2"},
	{KindMySQL, Read, "select 1 /* plain ; comment */"},
	{KindMySQL, Read, "select is_free_lock('x')"},
	// MySQL: writes, DDL, admin.
	{KindMySQL, Write, "insert into cards values (1)"},
	{KindMySQL, Write, "replace into cards values (1)"},
	{KindMySQL, Write, "update cards set holder = 'x'"},
	{KindMySQL, Write, "delete from cards"},
	{KindMySQL, DDL, "create table t (a int)"},
	{KindMySQL, DDL, "drop table cards"},
	{KindMySQL, DDL, "truncate table cards"},
	{KindMySQL, DDL, "rename table cards to c2"},
	{KindMySQL, Admin, "grant all on *.* to bob"},
	{KindMySQL, Admin, "set global max_connections = 1"},
	{KindMySQL, Admin, "set @x = 1"},
	{KindMySQL, Admin, "kill 42"},
	{KindMySQL, Admin, "flush privileges"},
	{KindMySQL, Admin, "call db.purge(1)"},
	{KindMySQL, Admin, "prepare s from 'delete from cards'"},
	{KindMySQL, Admin, "lock tables cards write"},
	// MySQL: evasions.
	{KindMySQL, Admin, "select * from cards into outfile '/tmp/x'"},
	{KindMySQL, Admin, "load data infile '/etc/passwd' into table cards"},
	{KindMySQL, Admin, "load data local infile 'x' into table cards"},
	{KindMySQL, Write, "select * from cards for update"},
	{KindMySQL, Write, "select * from cards lock in share mode"},
	{KindMySQL, Write, "select * from cards for share"},
	{KindMySQL, Write, "select get_lock('x', 1)"},
	{KindMySQL, Write, "select release_lock('x')"},
	{KindMySQL, Admin, "select sleep(10)"},
	{KindMySQL, Admin, "select * from cards where id = 1 and sleep(5)"},
	{KindMySQL, Admin, "do sleep(5)"},
	{KindMySQL, Admin, "select load_file('/etc/passwd')"},
	{KindMySQL, Admin, "select benchmark(100000000, md5('x'))"},
	{KindMySQL, Admin, "select (select sleep(1)) as s"},
	{KindMySQL, DDL, "select 1 /*! ; drop table t */"},
	{KindMySQL, DDL, "select 1; /*!50000 drop table t */"},
	{KindMySQL, Admin, "select 1 /*! , sleep(10) */"},
	{KindMySQL, Admin, "select 1 /*!50000 , sleep(10) */"},
	{KindMySQL, Write, "/*! delete from cards */"},
	{KindMySQL, Admin, "select 'a\\' , sleep(5) -- '"},    // with NO_BACKSLASH_ESCAPES the string ends early
	{KindMySQL, Admin, "select \"a\\\" , sleep(5) -- \""}, // the same boundary as an ANSI_QUOTES identifier
	{KindMySQL, DDL, "select 1; drop table t"},
	// MySQL: not placed. TiDB's grammar lacks some MySQL forms (INTO
	// before FROM, DUMPFILE, INTO @var, CALL without a schema): unknown,
	// never read.
	{KindMySQL, Unknown, "select * into outfile '/tmp/x' from cards"},
	{KindMySQL, Unknown, "select holder from cards limit 1 into dumpfile '/tmp/x'"},
	{KindMySQL, Unknown, "select count(*) into @n from cards"},
	{KindMySQL, Unknown, "call purge()"},
	{KindMySQL, Unknown, "select 1 /*M! , sleep(10) */"},
	{KindMySQL, Unknown, "select 1 /*M!100100 , sleep(10) */"},
	{KindMySQL, Unknown, "execute s"},
	{KindMySQL, Unknown, "select 'unterminated"},
	{KindMySQL, Unknown, ""},
	{KindMySQL, Unknown, "frobnicate"},
	{KindMySQL, Unknown, "select 1; frobnicate"},

	// SQLite (prepared against the fixture in liteFixture).
	{KindSQLite, Read, "select * from cards"},
	{KindSQLite, Read, "select count(*) from cards;"},
	{KindSQLite, Read, "  -- note\n select holder from cards where id in (select id from cards)"},
	{KindSQLite, Read, "select * from v_cards"},
	{KindSQLite, Read, "with recursive c(x) as (select 1 union all select x+1 from c where x < 5) select * from c"},
	{KindSQLite, Read, "select ';' ; -- trailing"},
	{KindSQLite, Read, "select 1; select 2"},
	{KindSQLite, Read, "select * from pragma_table_info('cards')"},
	{KindSQLite, Read, "pragma table_info(cards)"},
	{KindSQLite, Read, "pragma query_only"},
	{KindSQLite, Read, "pragma user_version"},
	{KindSQLite, Read, "begin"},
	{KindSQLite, Read, "begin immediate"},
	{KindSQLite, Read, "commit"},
	{KindSQLite, Read, "savepoint a"},
	{KindSQLite, Read, "select random(), lower(holder) from cards"},
	{KindSQLite, Write, "insert into cards values (9, 'x', 'y', 'z')"},
	{KindSQLite, Write, "update cards set holder = 'x'"},
	{KindSQLite, Write, "delete from cards"},
	{KindSQLite, Write, "with x as (select 1) insert into cards(id) select * from x"},
	{KindSQLite, Write, "insert into cards(id) values (10) returning *"},
	{KindSQLite, DDL, "create table t (a int)"},
	{KindSQLite, DDL, "create temp table t (a int)"},
	{KindSQLite, DDL, "drop table cards"},
	{KindSQLite, DDL, "alter table cards add column x int"},
	{KindSQLite, DDL, "create trigger tr after insert on cards begin delete from cards; end;"},
	{KindSQLite, DDL, "analyze"},
	{KindSQLite, DDL, "select 1; drop table cards"},
	{KindSQLite, Admin, "attach '/tmp/evil.db' as evil"},
	{KindSQLite, Admin, "detach evil"},
	{KindSQLite, Admin, "pragma query_only = 0"},
	{KindSQLite, Admin, "pragma query_only(false)"},
	{KindSQLite, Admin, "pragma journal_mode = delete"},
	{KindSQLite, Admin, "pragma optimize"},
	{KindSQLite, Admin, "pragma wal_checkpoint"},
	{KindSQLite, Admin, "select load_extension('/tmp/evil.so')"},
	{KindSQLite, Admin, "select \"load_extension\"('/tmp/evil.so')"},
	{KindSQLite, Admin, "select holder from cards where load_extension('x') is null"},
	{KindSQLite, Unknown, "vacuum"},
	{KindSQLite, Unknown, "vacuum into '/tmp/copy.db'"},
	{KindSQLite, Unknown, "select writefile('/tmp/x', 'y')"}, // not in this build: does not compile
	{KindSQLite, Unknown, "select * from nosuchtable"},
	{KindSQLite, Unknown, "explain select 1"},
	{KindSQLite, Unknown, "select 'unterminated"},
	{KindSQLite, Unknown, "create trigger tr after insert on cards begin delete from cards;"},
	{KindSQLite, Unknown, ""},
	{KindSQLite, Unknown, "-- only a comment"},
	{KindSQLite, Unknown, "frobnicate"},
	{KindSQLite, Unknown, "select 1; frobnicate"},

	// No dialect.
	{"oracle", Unknown, "select 1 from dual"},
}

// liteFixture writes the SQLite database the corpus compiles against.
func liteFixture(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cards.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range []string{
		"CREATE TABLE cards (id INTEGER PRIMARY KEY, holder TEXT, card_number TEXT, note TEXT)",
		"CREATE VIEW v_cards AS SELECT id, holder FROM cards",
		"INSERT INTO cards VALUES (1, 'Ann', '4111111111111111', NULL)",
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return path
}

func TestClassifyCorpus(t *testing.T) {
	lite := liteFixture(t)
	for _, c := range corpus {
		d := Dialect{Kind: c.dialect, Path: lite}
		if got := Classify(d, c.stmt); got != c.class {
			t.Errorf("%s: Classify(%q) = %s, want %s", c.dialect, c.stmt, got, c.class)
		}
	}
}

// isReadOnlyRefusal reports SQLite's answer to a write under query_only.
func isReadOnlyRefusal(err error) bool {
	return err != nil && strings.Contains(err.Error(), "readonly")
}

// TestSQLiteSchemaChanges: the classifier's connection stays open across
// sessions; a table created after it opened is seen, and the verdict
// follows the file's schema, not a copy.
func TestSQLiteSchemaChanges(t *testing.T) {
	lite := liteFixture(t)
	d := Dialect{Kind: KindSQLite, Path: lite}
	if got := Classify(d, "select * from later"); got != Unknown {
		t.Fatalf("a table that does not exist yet: %s, want unknown", got)
	}
	db, err := sql.Open("sqlite", lite)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE later (a INT)"); err != nil {
		t.Fatal(err)
	}
	if got := Classify(d, "select * from later"); got != Read {
		t.Fatalf("after CREATE TABLE on another connection: %s, want read", got)
	}
	if got := Classify(d, "insert into later values (1)"); got != Write {
		t.Fatalf("insert: %s, want write", got)
	}
	// The classifier never changed the file.
	var n int
	if err := db.QueryRow("SELECT count(*) FROM later").Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows in later: %d, %v", n, err)
	}
}

// TestSQLiteFileReplaced: a database file replaced under the same path
// (a restore, a new demo database) is judged by its own schema, not by the
// old file's that the classifier's connection had open.
func TestSQLiteFileReplaced(t *testing.T) {
	lite := liteFixture(t)
	d := Dialect{Kind: KindSQLite, Path: lite}
	if got := Classify(d, "select * from cards"); got != Read {
		t.Fatalf("before: %s", got)
	}
	next := filepath.Join(t.TempDir(), "next.db")
	db, err := sql.Open("sqlite", next)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE replaced (a INT)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := os.Rename(next, lite); err != nil {
		t.Fatal(err)
	}
	if got := Classify(d, "select * from replaced"); got != Read {
		t.Errorf("a table of the new file: %s, want read", got)
	}
	if got := Classify(d, "select * from cards"); got != Unknown {
		t.Errorf("a table only the old file had: %s, want unknown", got)
	}
}

// TestSQLiteMissingFile: a target whose file is missing classifies
// everything as unknown, and the classifier does not create the file.
func TestSQLiteMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.db")
	if got := Classify(Dialect{Kind: KindSQLite, Path: path}, "select 1"); got != Unknown {
		t.Fatalf("missing file: %s, want unknown", got)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the classifier created %s: %v", path, err)
	}
}

// TestClassifyConcurrently: sessions classify at once; the parsers and the
// SQLite judge are shared.
func TestClassifyConcurrently(t *testing.T) {
	lite := liteFixture(t)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, c := range corpus {
				if got := Classify(Dialect{Kind: c.dialect, Path: lite}, c.stmt); got != c.class {
					t.Errorf("%s: Classify(%q) = %s, want %s", c.dialect, c.stmt, got, c.class)
				}
			}
		}()
	}
	wg.Wait()
}

func TestMax(t *testing.T) {
	for _, c := range []struct{ a, b, want string }{
		{Read, Read, Read}, {Read, Write, Write}, {DDL, Write, DDL}, {Admin, DDL, Admin},
		{Admin, Unknown, Unknown}, {Read, "bogus", Unknown}, {"", Read, Unknown},
	} {
		if got := Max(c.a, c.b); got != c.want {
			t.Errorf("Max(%q, %q) = %q, want %q", c.a, c.b, got, c.want)
		}
	}
}
