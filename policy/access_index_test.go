package policy

import (
	"path"
	"slices"
	"testing"
)

// The index must decide exactly as the plain definition does: a role
// reaches a target when one of its globs matches, a rule applies when one
// of its target globs matches and it binds no roles or one the user holds.
// naive* below are that definition, written without the index.
func naiveMatch(globs []string, name string) bool {
	return slices.ContainsFunc(globs, func(g string) bool { ok, err := path.Match(g, name); return err == nil && ok })
}

func naiveRules(c *Config, groups []string, target string) []string {
	var held []string
	for _, r := range c.RolesFor(groups) {
		held = append(held, r.Name)
	}
	var out []string
	for _, r := range c.Rules {
		if naiveMatch(r.Targets, target) && (len(r.Roles) == 0 || slices.ContainsFunc(r.Roles, func(n string) bool { return slices.Contains(held, n) })) {
			out = append(out, r.Name)
		}
	}
	return out
}

func TestIndexMatchesDefinition(t *testing.T) {
	c, err := Parse([]byte(head+`targets:
  - { name: web-1, kind: command, argv: [/bin/true] }
  - { name: web-10, kind: command, argv: [/bin/true] }
  - { name: web-2, kind: command, argv: [/bin/true] }
  - { name: webby, kind: command, argv: [/bin/true] }
  - { name: db-a, kind: command, argv: [/bin/true] }
  - { name: db-b, kind: command, argv: [/bin/true] }
  - { name: x, kind: command, argv: [/bin/true] }
  - { name: web.1, kind: command, argv: [/bin/true] }
roles:
  - { name: all, groups: [root], targets: ["*"], approve: ["db-?"] }
  - { name: web, groups: [web, ops], targets: ["web-?", "web-1*"], approve: ["web-[0-9]*"] }
  - { name: db, groups: [db, ops], targets: ["db-[ab]", "x"] }
  - { name: odd, groups: [odd], targets: ["web.?", "webb?"] }
rules:
  - { name: r-all, targets: ["*"], commands: ["a *"], action: deny }
  - { name: r-web, targets: ["web-*", "web-1"], roles: [web], commands: ["b *"], action: approve }
  - { name: r-db, targets: ["db-?"], roles: [db, all], statements: [write], action: approve }
  - { name: r-odd, targets: ["web.*"], roles: [odd], access: session, action: approve }
  - { name: r-x, targets: ["x", "?"], action: allow }
`), "t.yaml", "/tmp")
	if err != nil {
		t.Fatal(err)
	}
	groupSets := [][]string{nil, {"root"}, {"web"}, {"ops"}, {"db"}, {"odd"}, {"web", "db"}, {"odd", "root"}, {"nobody"}}
	targetNames := []string{"web-1", "web-10", "web-2", "webby", "db-a", "db-b", "x", "web.1", "web-3", "nope", ""}
	for _, groups := range groupSets {
		roles := c.RolesFor(groups)
		var want []string
		for _, tg := range c.Targets {
			if slices.ContainsFunc(roles, func(r Role) bool { return naiveMatch(r.Targets, tg.Name) }) {
				want = append(want, tg.Name)
			}
		}
		if got := names0(c.TargetsFor(groups)); !slices.Equal(got, want) {
			t.Errorf("TargetsFor(%v) = %v, want %v", groups, got, want)
		}
		for _, name := range targetNames {
			_, known := c.Target(name)
			reach := known && slices.ContainsFunc(roles, func(r Role) bool { return naiveMatch(r.Targets, name) })
			approve := known && slices.ContainsFunc(roles, func(r Role) bool { return naiveMatch(r.Approve, name) })
			if got := c.CanAccess(groups, name); got != reach {
				t.Errorf("CanAccess(%v, %q) = %v, want %v", groups, name, got, reach)
			}
			if got := c.CanApprove(groups, name); got != approve {
				t.Errorf("CanApprove(%v, %q) = %v, want %v", groups, name, got, approve)
			}
			var wantRules []string
			if known {
				wantRules = naiveRules(c, groups, name)
			}
			if got := names(c.RulesFor(groups, name), func(r Rule) string { return r.Name }); !slices.Equal(got, wantRules) {
				t.Errorf("RulesFor(%v, %q) = %v, want %v", groups, name, got, wantRules)
			}
		}
	}
}

func names0(ts []Target) []string { return names(ts, func(t Target) string { return t.Name }) }

func TestDecideClass(t *testing.T) {
	c, err := Parse([]byte(accessConfig), "bastion.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		groups        []string
		target, class string
		action, rule  string
	}{
		{[]string{"sre"}, "payments-db", StatementWrite, ActionApprove, "writes"},
		{[]string{"sre"}, "payments-db", StatementRead, ActionAllow, ""},
		{[]string{"sre"}, "payments-db", StatementDDL, ActionAllow, ""},
		{[]string{"dba"}, "payments-db", StatementDDL, ActionDeny, "dba-ddl"},
		{[]string{"dba"}, "ledger", StatementWrite, ActionAllow, ""},
		{[]string{"sre"}, "ledger", StatementRead, ActionDeny, ""}, // no reach
		{nil, "payments-db", StatementRead, ActionDeny, ""},
		{[]string{"sre"}, "nope", StatementRead, ActionDeny, ""},
	} {
		if d := c.DecideClass(tt.groups, tt.target, tt.class); d.Action != tt.action || d.Rule != tt.rule {
			t.Errorf("DecideClass(%v, %s, %s) = %+v, want %s/%s", tt.groups, tt.target, tt.class, d, tt.action, tt.rule)
		}
	}
}
