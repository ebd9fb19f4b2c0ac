package sqlrepl

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		d    Dialect
		in   string
		want []string
		open string
	}{
		{Postgres, "select 1; select 2", []string{"select 1", " select 2"}, ""},
		{Postgres, "select ';'; x", []string{"select ';'", " x"}, ""},
		{Postgres, "select 'it''s;'", []string{"select 'it''s;'"}, ""},
		{Postgres, `select E'\';'; y`, []string{`select E'\';'`, " y"}, ""},
		{Postgres, `select '\'; z`, []string{`select '\'`, " z"}, ""}, // standard strings: no escapes
		{Postgres, "select $$a;b$$; c", []string{"select $$a;b$$", " c"}, ""},
		{Postgres, "select $fn$ $$;$$ $fn$;", []string{"select $fn$ $$;$$ $fn$", ""}, ""},
		{Postgres, "select $1; q", []string{"select $1", " q"}, ""},
		{Postgres, "select 1 -- c;\n; d", []string{"select 1 -- c;\n", " d"}, ""},
		{Postgres, "select /* a /* b; */ c; */ 1; e", []string{"select /* a /* b; */ c; */ 1", " e"}, ""},
		{Postgres, "select f(1;2); g", []string{"select f(1;2)", " g"}, ""},
		{Postgres, `select "a;b"; h`, []string{`select "a;b"`, " h"}, ""},
		{Postgres, "select 'open", []string{"select 'open"}, "'"},
		{Postgres, "select $x$ open", []string{"select $x$ open"}, "$x$"},
		{Postgres, "select (1", []string{"select (1"}, "("},
		{Postgres, "/* open", []string{"/* open"}, "/*"},
		{MySQL, `select 'a\';b'; c`, []string{`select 'a\';b'`, " c"}, ""},
		{MySQL, `select "a\";b"; c`, []string{`select "a\";b"`, " c"}, ""},
		{MySQL, "select `a;b`; c", []string{"select `a;b`", " c"}, ""},
		{MySQL, "select 1 # x;\n; d", []string{"select 1 # x;\n", " d"}, ""},
		{MySQL, "select 1--1; e", []string{"select 1--1", " e"}, ""}, // not a comment in MySQL
		{MySQL, "select /* ; */ 1; f", []string{"select /* ; */ 1", " f"}, ""},
		{SQLite, "select [a;b]; c", []string{"select [a;b]", " c"}, ""},
		{SQLite, "CREATE TRIGGER t AFTER INSERT ON x BEGIN UPDATE y SET a = 1; DELETE FROM z; END; select 1",
			[]string{"CREATE TRIGGER t AFTER INSERT ON x BEGIN UPDATE y SET a = 1; DELETE FROM z; END", " select 1"}, ""},
		{SQLite, "create temp trigger t before delete on x begin select 1; end;",
			[]string{"create temp trigger t before delete on x begin select 1; end", ""}, ""},
	}
	for _, tc := range tests {
		got := Split(tc.d, tc.in)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Split(%s, %q) = %q; want %q", tc.d, tc.in, got, tc.want)
		}
		if r := scan(tc.d, tc.in); r.open != tc.open {
			t.Errorf("scan(%s, %q).open = %q; want %q", tc.d, tc.in, r.open, tc.open)
		}
	}
}

func TestScanMetaAndBlank(t *testing.T) {
	r := scan(Postgres, "select '\\x'; \\dt")
	if r.meta != len("select '\\x'; ") {
		t.Errorf("meta offset = %d", r.meta)
	}
	r = scan(Postgres, "-- only a comment\n /* and this */ ; select 1")
	if !r.pieces[0].blank || r.pieces[1].blank {
		t.Errorf("blank flags = %v, %v; want true, false", r.pieces[0].blank, r.pieces[1].blank)
	}
	if w := firstWord(MySQL, "/* c */ -- d\n # e\n  rollback to x"); w != "ROLLBACK" {
		t.Errorf("firstWord = %q", w)
	}
	if w := nthWord(SQLite, "rollback to x", 1); w != "TO" {
		t.Errorf("nthWord = %q", w)
	}
}

// FuzzSplit: the splitter never panics, the pieces joined with the
// separator give back the input, and a complete piece re-split alone is
// one piece (the splitter's decisions depend only on what came before).
func FuzzSplit(f *testing.F) {
	for _, s := range []string{
		"select 1; select 2", "select $$;$$;", "select E'\\';'", "/* /* */ ; */;", "a -- ;\n;b",
		"select `x;`; [y;]; 'z''';", "CREATE TRIGGER t BEGIN x; END; y", "select (;);", "$a$;$a$;$b$",
		"select \"a\"\"b\"; 'c\\'", "#;\n;--;\n;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, d := range []Dialect{Postgres, MySQL, SQLite} {
			pieces := Split(d, s)
			if len(pieces) == 0 {
				t.Fatalf("%s: no pieces for %q", d, s)
			}
			if j := strings.Join(pieces, ";"); j != s {
				t.Fatalf("%s: Join(Split(%q)) = %q", d, s, j)
			}
			for _, p := range pieces[:len(pieces)-1] {
				if again := Split(d, p); len(again) != 1 {
					t.Fatalf("%s: piece %q of %q splits again into %q", d, p, s, again)
				}
			}
			r := scan(d, s)
			if r.meta > len(s) || r.meta >= 0 && s[r.meta] != '\\' {
				t.Fatalf("%s: meta offset %d in %q", d, r.meta, s)
			}
			firstWord(d, s)
		}
	})
}
