package policy

import (
	"os"
	"path"
	"strings"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary bytes to Parse. It must never panic; every
// failure must be ConfigErrors with messages; every success must satisfy
// the invariants the rest of bastion relies on.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("../bastion.example.yaml"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{
		head,
		accessConfig,
		head + "targets:\n" + sshT,
		head + "targets:\n  - &t { name: a, kind: sqlite, path: a.db }\n  - { <<: *t, name: b }\n",
		head + "session: { idle_timeout: 1d12h }\n",
		"listen: [\n",
		"- a\n- b\n",
		"---\n---\n",
		"\t",
		"a: &a [*a]\n",
		head + "targets: { x: 1 }\n",
		head + "masking: { rules: [ { name: x, pattern: '(' } ] }\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "f.yaml", "/base")
		if err != nil {
			es := Errors(err)
			if len(es) == 0 {
				t.Fatalf("error without ConfigErrors: %v", err)
			}
			for _, e := range es {
				if e.Msg == "" || e.File != "f.yaml" || e.Line < 0 {
					t.Fatalf("malformed ConfigError %#v", e)
				}
				if strings.HasPrefix(e.Msg, "invalid YAML") && e.Key != "" {
					t.Fatalf("syntax error with a key: %v", e)
				}
			}
			if c != nil {
				t.Fatal("config returned along with an error")
			}
			return
		}
		checkInvariants(t, c)
	})
}

func checkInvariants(t *testing.T, c *Config) {
	t.Helper()
	if c.Listen == "" || c.DataDir == "" {
		t.Fatalf("accepted without listen or data_dir: %+v", c)
	}
	if c.Certificates.TTL <= 0 || c.Certificates.TTL > c.Certificates.MaxTTL {
		t.Fatalf("accepted certificates %+v", c.Certificates)
	}
	if c.Recording.Retention.Std() < 365*24*time.Hour || c.Recording.FlushInterval <= 0 || c.Recording.FlushInterval.Std() > time.Minute {
		t.Fatalf("accepted recording %+v", c.Recording)
	}
	if c.Approvals.Required < 1 {
		t.Fatalf("accepted approvals %+v", c.Approvals)
	}
	seen := map[string]bool{}
	for _, tg := range c.Targets {
		if !safeWord(tg.Name) || isReserved(tg.Name) || seen[tg.Name] {
			t.Fatalf("accepted target name %q", tg.Name)
		}
		seen[tg.Name] = true
		if tg.Kind == KindSSH && tg.Auth != AuthKey && tg.Auth != AuthCA {
			t.Fatalf("ssh target %s has auth %q", tg.Name, tg.Auth)
		}
		for _, p := range []string{tg.IdentityFile, tg.KnownHosts, tg.PasswordFile} {
			if p != "" && !strings.HasPrefix(p, "/") {
				t.Fatalf("relative path %q left unresolved", p)
			}
		}
		if tg.IsSQL() && tg.DSN != "" && dsnHasPassword(tg.DSN) {
			t.Fatalf("accepted a dsn with a password: %q", tg.DSN)
		}
	}
	for _, r := range c.Rules {
		if r.Access == "" || r.Action == "" || len(r.Targets) == 0 {
			t.Fatalf("accepted rule %+v", r)
		}
		for _, g := range r.Targets {
			if !matchesAnyTarget(g, c.Targets) {
				t.Fatalf("rule %s glob %q matches nothing", r.Name, g)
			}
		}
	}
	for _, r := range c.Roles {
		for _, g := range append(append([]string{}, r.Targets...), r.Approve...) {
			if _, err := path.Match(g, ""); err != nil {
				t.Fatalf("accepted bad glob %q", g)
			}
		}
	}
	// Decisions never grant a target that does not exist.
	for _, r := range c.Roles {
		for _, tg := range c.TargetsFor(r.Groups) {
			if !c.CanAccess(r.Groups, tg.Name) {
				t.Fatalf("TargetsFor lists %s but CanAccess denies it", tg.Name)
			}
		}
	}
}

// FuzzParseDuration checks that ParseDuration never panics, never returns a
// negative duration, and that String prints what it parses back.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"400d", "1d12h", "90m", "-1h", "", "1.5s", "0", "106751d", "1d-1h", "d", "1e3h", ".5h", "1d.5h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if !strings.Contains(err.Error(), "duration") {
				t.Fatalf("error %q does not say it is about a duration", err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, negative", s, d)
		}
		back, err := ParseDuration(Duration(d).String())
		if err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %v prints %q, which parses to %v, %v", s, d, Duration(d).String(), back, err)
		}
	})
}
