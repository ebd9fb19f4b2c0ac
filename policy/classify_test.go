package policy

import "testing"

func TestClassifyStatement(t *testing.T) {
	for _, c := range []struct{ stmt, want string }{
		{"select * from t", StatementRead},
		{"  -- note\n SELECT 1", StatementRead},
		{"/* x */ show tables", StatementRead},
		{"explain select 1", StatementRead},
		{"explain analyze delete from t", StatementWrite},
		{"insert into t values (1)", StatementWrite},
		{"UPDATE t SET a=1", StatementWrite},
		{"delete from t where id=1;", StatementWrite},
		{"with x as (select 1) delete from t", StatementWrite},
		{"with x as (select 1), y as (delete from t returning *) select * from y", StatementWrite},
		{"select * from t where id in (select id from u)", StatementRead},
		{"select replace(name, 'a', 'b') from t", StatementRead},
		{"create table t (a int)", StatementDDL},
		{"DROP TABLE t", StatementDDL},
		{"truncate t", StatementDDL},
		{"grant all on t to bob", StatementAdmin},
		{"set role admin", StatementAdmin},
		{"select 1; drop table t", StatementUnknown},
		{"select ';' ; ", StatementRead},
		{"select $$;$$", StatementRead},
		{"select 'unterminated", StatementUnknown},
		{"", StatementUnknown},
		// Evasions of issue 5: none of these is a read.
		{"select * into newtable from t", StatementWrite},
		{"select * from t for update", StatementWrite},
		{"select a from t into outfile '/tmp/x'", StatementAdmin},
		{"copy t to program 'sh -c id'", StatementAdmin},
		{"do $$ begin delete from t; end $$", StatementAdmin},
		{"call purge()", StatementAdmin},
		{"load data infile 'x' into table t", StatementWrite},
		{"select 1 /*! ; drop table t */", StatementUnknown},
		{"select nextval('s')", StatementWrite},
		{"select setval('s', 1)", StatementWrite},
		{"select pg_terminate_backend(42)", StatementAdmin},
		{"select set_config('x', 'y', false)", StatementAdmin},
		{"select lo_export(1, '/tmp/x')", StatementAdmin},
		{"select dblink_exec('drop table t')", StatementAdmin},
		{"select pg_sleep(10)", StatementAdmin},
		{"select get_lock('x', 1)", StatementWrite},
		{"select sleep(10)", StatementAdmin},
		{"select load_file('/etc/passwd')", StatementAdmin},
		{"select count(*) from t where sleep = 1", StatementRead},
		{"explain analyze", StatementUnknown},
		{"frobnicate", StatementUnknown},
	} {
		if got := ClassifyStatement(c.stmt); got != c.want {
			t.Errorf("ClassifyStatement(%q) = %s, want %s", c.stmt, got, c.want)
		}
	}
}

func FuzzClassifyStatement(f *testing.F) {
	for _, s := range []string{"select 1", "with a as (x) delete", "select $t$;$t$", "/* */--\n'", "select 1; drop"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		switch c := ClassifyStatement(s); c {
		case StatementRead, StatementWrite, StatementDDL, StatementAdmin, StatementUnknown:
		default:
			t.Fatalf("class %q", c)
		}
	})
}
