package policy

import "testing"

func TestMatchCommand(t *testing.T) {
	for _, c := range []struct {
		pattern, command string
		want             bool
	}{
		{"rm -rf *", "rm -rf /var/lib/x", true},
		{"rm -rf *", "rm   -rf    /", true},
		{"rm -rf *", "  rm -rf tmp  ", true},
		{"rm -rf *", "rm -r tmp", false},
		{"systemctl restart *", "systemctl restart api", true},
		{"systemctl restart *", "systemctl status api", false},
		{"*reboot*", "sudo reboot now", true},
		{"ls ?", "ls a", true},
		{"ls ?", "ls ab", false},
		{"*", "", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
	} {
		if got := MatchCommand(c.pattern, c.command); got != c.want {
			t.Errorf("MatchCommand(%q, %q) = %v", c.pattern, c.command, got)
		}
	}
}

func TestDecideCommand(t *testing.T) {
	cfg, err := Parse([]byte(`listen: ":2222"
data_dir: /tmp/x
targets:
  - { name: web-1, kind: command, argv: [/bin/true] }
  - { name: db-1, kind: command, argv: [/bin/true] }
roles:
  - { name: sre, groups: [sre], targets: ["web-*"], approve: ["web-*"] }
  - { name: dev, groups: [dev], targets: ["web-*"] }
rules:
  - { name: no-rm, targets: ["web-*"], commands: ["rm -rf *"], action: deny }
  - { name: restarts, targets: ["web-*"], roles: [dev], commands: ["systemctl restart *"], action: approve }
`), "t.yaml", "/tmp")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		groups           []string
		target, command  string
		action, ruleName string
	}{
		{[]string{"sre"}, "web-1", "rm -rf /", ActionDeny, "no-rm"},
		{[]string{"sre"}, "web-1", "systemctl restart api", ActionAllow, ""},
		{[]string{"dev"}, "web-1", "systemctl restart api", ActionApprove, "restarts"},
		{[]string{"dev"}, "web-1", "uptime", ActionAllow, ""},
		{[]string{"dev"}, "db-1", "uptime", ActionDeny, ""},
		{nil, "web-1", "uptime", ActionDeny, ""},
	} {
		d := cfg.DecideCommand(c.groups, c.target, c.command)
		if d.Action != c.action || d.Rule != c.ruleName {
			t.Errorf("DecideCommand(%v, %s, %q) = %+v, want %s/%s", c.groups, c.target, c.command, d, c.action, c.ruleName)
		}
	}
}

func FuzzMatchCommand(f *testing.F) {
	f.Add("rm -rf *", "rm -rf /")
	f.Add("a*b?c", "aXXbYc")
	f.Fuzz(func(t *testing.T, p, s string) {
		_ = MatchCommand(p, s)
		if !MatchCommand("*", s) {
			t.Fatal("* must match everything")
		}
		if !MatchCommand(s, s) && !containsWild(s) {
			t.Fatalf("%q does not match itself", s)
		}
	})
}

func containsWild(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '*' || s[i] == '?' {
			return true
		}
	}
	return false
}
