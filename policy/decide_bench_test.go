package policy

import (
	"fmt"
	"strings"
	"testing"
)

// benchConfig is a large policy loaded through Parse, as the server loads
// one: 10,000 targets, 100 roles and 1,000 rules. Each role reaches 100
// targets by a prefix glob; each rule covers 10 targets and binds one role,
// and every tenth rule binds every role.
func benchConfig(tb testing.TB) *Config {
	tb.Helper()
	var b strings.Builder
	b.WriteString("listen: \":2222\"\ndata_dir: /tmp/x\ntargets:\n")
	for i := range 10000 {
		fmt.Fprintf(&b, "  - { name: app-%04d, kind: command, argv: [/bin/true] }\n", i)
	}
	b.WriteString("roles:\n")
	for i := range 100 {
		fmt.Fprintf(&b, "  - { name: role-%02d, groups: [g-%02d], targets: [\"app-%02d*\"], approve: [\"app-%02d*\"] }\n", i, i, i, (i+1)%100)
	}
	b.WriteString("rules:\n")
	for j := range 1000 {
		roles := fmt.Sprintf("roles: [role-%02d], ", j/10)
		if j%10 == 0 {
			roles = ""
		}
		fmt.Fprintf(&b, "  - { name: rule-%03d, targets: [\"app-%03d*\"], %scommands: [\"cmd-%d *\"], action: approve }\n", j, j, roles, j)
	}
	c, err := Parse([]byte(b.String()), "bench.yaml", "/tmp")
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// BenchmarkDecide is one decision against the large policy (issue 6: under
// 10 µs). The command matches no rule, so every rule that applies to the
// target is looked at.
func BenchmarkDecide(b *testing.B) {
	c := benchConfig(b)
	groups := []string{"g-51", "other"}
	b.Run("command", func(b *testing.B) {
		for b.Loop() {
			if d := c.DecideCommand(groups, "app-5123", "systemctl restart api"); d.Action != ActionAllow {
				b.Fatalf("decision %+v", d)
			}
		}
	})
	b.Run("command-held", func(b *testing.B) {
		for b.Loop() {
			if d := c.DecideCommand(groups, "app-5123", "cmd-512 now"); d.Action != ActionApprove || d.Rule != "rule-512" {
				b.Fatalf("decision %+v", d)
			}
		}
	})
	b.Run("session", func(b *testing.B) {
		for b.Loop() {
			if d := c.DecideSession(groups, "app-5123"); d.Action != ActionAllow {
				b.Fatalf("decision %+v", d)
			}
		}
	})
	b.Run("statement-class", func(b *testing.B) {
		for b.Loop() {
			if d := c.DecideClass(groups, "app-5123", StatementWrite); d.Action != ActionAllow {
				b.Fatalf("decision %+v", d)
			}
		}
	})
	// With the SQL classifier's parse of the statement included.
	b.Run("statement-parsed", func(b *testing.B) {
		for b.Loop() {
			if d := c.DecideStatement(Dialect{Kind: KindPostgres}, groups, "app-5123", "select 1"); d.Action != ActionAllow {
				b.Fatalf("decision %+v", d)
			}
		}
	})
	b.Run("no-access", func(b *testing.B) {
		for b.Loop() {
			if d := c.DecideCommand(groups, "app-9999", "uptime"); d.Action != ActionDeny {
				b.Fatalf("decision %+v", d)
			}
		}
	})
	b.Run("can-approve", func(b *testing.B) {
		for b.Loop() {
			if !c.CanApprove(groups, "app-5299") {
				b.Fatal("role-51 approves app-52*")
			}
		}
	})
}

// BenchmarkLoad is what building that policy costs at start and reload.
func BenchmarkLoad(b *testing.B) {
	for b.Loop() {
		benchConfig(b)
	}
}

// BenchmarkIndex is the index's share of BenchmarkLoad.
func BenchmarkIndex(b *testing.B) {
	c := benchConfig(b)
	for b.Loop() {
		newIndex(c)
	}
}
