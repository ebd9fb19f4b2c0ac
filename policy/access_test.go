package policy

import (
	"slices"
	"testing"
)

const accessConfig = head + `targets:
  - { name: web-1, kind: ssh, address: "10.0.0.5:22", user: d, identity_file: k, known_hosts: kh }
  - { name: web-2, kind: ssh, address: "10.0.0.6:22", user: d, auth: ca, known_hosts: kh }
  - { name: payments-db, kind: postgres, dsn: "postgres://b@h/p", password_file: pw }
  - { name: ledger, kind: mysql, dsn: "b@tcp(h:3306)/l" }
  - { name: demo, kind: sqlite, path: demo.db }
roles:
  - { name: sre, groups: [sre, oncall], targets: ["web-*", "payments-db"], approve: ["payments-db"] }
  - { name: dba, groups: [dba, oncall], targets: ["*-db", "ledger"] }
  - { name: web-2-only, groups: [contractors], targets: ["web-[2-9]"] }
  - { name: auditor, groups: [audit], audit: true }
rules:
  - { name: writes, targets: ["payments-db"], statements: [write], action: approve }
  - { name: dba-ddl, targets: ["*-db", "ledger"], roles: [dba], statements: [ddl], action: deny }
  - { name: rm, targets: ["web-*"], roles: [sre], commands: ["rm -rf *"], action: deny }
`

func names[T any](items []T, name func(T) string) []string {
	var out []string
	for _, it := range items {
		out = append(out, name(it))
	}
	return out
}

func TestAccessDecisions(t *testing.T) {
	c, err := Parse([]byte(accessConfig), "bastion.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		groups    []string
		roles     []string
		targets   []string
		auditor   bool
		approvers []string // targets CanApprove allows
	}{
		{name: "no groups", groups: nil},
		{name: "unknown group", groups: []string{"marketing"}},
		{name: "empty group name", groups: []string{""}},
		{name: "sre", groups: []string{"sre"}, roles: []string{"sre"},
			targets: []string{"web-1", "web-2", "payments-db"}, approvers: []string{"payments-db"}},
		{name: "dba", groups: []string{"dba"}, roles: []string{"dba"},
			targets: []string{"payments-db", "ledger"}},
		{name: "overlapping roles, each target once, config order", groups: []string{"dba", "sre"}, roles: []string{"sre", "dba"},
			targets: []string{"web-1", "web-2", "payments-db", "ledger"}, approvers: []string{"payments-db"}},
		{name: "one group holding two roles", groups: []string{"oncall"}, roles: []string{"sre", "dba"},
			targets: []string{"web-1", "web-2", "payments-db", "ledger"}, approvers: []string{"payments-db"}},
		{name: "character class glob", groups: []string{"contractors"}, roles: []string{"web-2-only"},
			targets: []string{"web-2"}},
		{name: "auditor reaches no target", groups: []string{"audit"}, roles: []string{"auditor"}, auditor: true},
		{name: "group names are case-sensitive", groups: []string{"SRE"}},
	}
	all := []string{"web-1", "web-2", "payments-db", "ledger", "demo", "nope"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := names(c.RolesFor(tt.groups), func(r Role) string { return r.Name }); !slices.Equal(got, tt.roles) {
				t.Errorf("RolesFor = %v; want %v", got, tt.roles)
			}
			if got := names(c.TargetsFor(tt.groups), func(t Target) string { return t.Name }); !slices.Equal(got, tt.targets) {
				t.Errorf("TargetsFor = %v; want %v", got, tt.targets)
			}
			for _, name := range all {
				if got, want := c.CanAccess(tt.groups, name), slices.Contains(tt.targets, name); got != want {
					t.Errorf("CanAccess(%s) = %v; want %v", name, got, want)
				}
				if got, want := c.CanApprove(tt.groups, name), slices.Contains(tt.approvers, name); got != want {
					t.Errorf("CanApprove(%s) = %v; want %v", name, got, want)
				}
			}
			if got := c.IsAuditor(tt.groups); got != tt.auditor {
				t.Errorf("IsAuditor = %v; want %v", got, tt.auditor)
			}
		})
	}
}

func TestRulesFor(t *testing.T) {
	c, err := Parse([]byte(accessConfig), "bastion.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		groups []string
		target string
		want   []string
	}{
		{[]string{"sre"}, "payments-db", []string{"writes"}},
		{[]string{"dba"}, "payments-db", []string{"writes", "dba-ddl"}},
		{[]string{"oncall"}, "web-1", []string{"rm"}},
		{[]string{"dba"}, "web-1", nil},
		{nil, "payments-db", []string{"writes"}}, // rules without roles bind everyone
		{[]string{"sre"}, "demo", nil},
		{[]string{"sre"}, "nope", nil},
	}
	for _, tt := range tests {
		if got := names(c.RulesFor(tt.groups, tt.target), func(r Rule) string { return r.Name }); !slices.Equal(got, tt.want) {
			t.Errorf("RulesFor(%v, %s) = %v; want %v", tt.groups, tt.target, got, tt.want)
		}
	}
}

func TestTargetLookup(t *testing.T) {
	c, err := Parse([]byte(accessConfig), "bastion.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ok   bool
		kind string
	}{
		{"web-1", true, KindSSH},
		{"demo", true, KindSQLite},
		{"web-*", false, ""}, // a glob is not a name
		{"WEB-1", false, ""},
		{"", false, ""},
	}
	for _, tt := range tests {
		got, ok := c.Target(tt.name)
		if ok != tt.ok || got.Kind != tt.kind {
			t.Errorf("Target(%q) = %+v, %v; want kind %q, %v", tt.name, got, ok, tt.kind, tt.ok)
		}
	}
}

// A nil config allows nothing rather than panicking.
func TestNilConfigFailsClosed(t *testing.T) {
	var c *Config
	groups := []string{"sre"}
	if c.RolesFor(groups) != nil || c.TargetsFor(groups) != nil || c.RulesFor(groups, "x") != nil ||
		c.CanAccess(groups, "x") || c.CanApprove(groups, "x") || c.IsAuditor(groups) {
		t.Error("nil config granted something")
	}
	if _, ok := c.Target("x"); ok {
		t.Error("nil config found a target")
	}
}
