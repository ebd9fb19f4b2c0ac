package oidclogin

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidPrincipal(t *testing.T) {
	for _, tc := range []struct {
		s  string
		ok bool
	}{
		{"alice", true}, {"bob.smith", true}, {"a_b-c.d", true}, {"0day", true}, {strings.Repeat("a", 32), true},
		{"", false}, {strings.Repeat("a", 33), false}, {"Alice", false}, {".hidden", false}, {"-rf", false},
		{"_x", false}, {"a b", false}, {"a/b", false}, {"a@b", false}, {"a+b", false}, {"é", false}, {"a\x00", false},
	} {
		if err := ValidPrincipal(tc.s); (err == nil) != tc.ok {
			t.Errorf("ValidPrincipal(%q) = %v, want ok=%v", tc.s, err, tc.ok)
		}
	}
}

func TestIsMFA(t *testing.T) {
	for _, tc := range []struct {
		amr []string
		ok  bool
	}{
		{nil, false}, {[]string{"pwd"}, false}, {[]string{"otp"}, false}, {[]string{"hwk"}, false},
		{[]string{"pwd", "pin"}, false}, {[]string{"hwk", "user"}, false}, {[]string{"mca"}, false},
		{[]string{"mfa"}, true}, {[]string{"pwd", "mfa"}, true}, {[]string{"pwd", "otp"}, true},
		{[]string{"hwk", "pin"}, true}, {[]string{"swk", "fpt"}, true}, {[]string{"pwd", "sms"}, true},
	} {
		if got := IsMFA(tc.amr); got != tc.ok {
			t.Errorf("IsMFA(%q) = %v, want %v", tc.amr, got, tc.ok)
		}
	}
}

func TestMapClaims(t *testing.T) {
	base := Config{UsernameClaim: "preferred_username", GroupsClaim: "groups"}
	for _, tc := range []struct {
		name, claims string
		cfg          func(*Config)
		reason       string
		principal    string
		groups       string
	}{
		{name: "single string group", claims: `{"preferred_username":"a","groups":"ops"}`, principal: "a", groups: "ops"},
		{name: "groups sorted, deduplicated", claims: `{"preferred_username":"a","groups":["z","b","z"]}`, principal: "a", groups: "b,z"},
		{name: "groups of wrong type", claims: `{"preferred_username":"a","groups":[1]}`, reason: ReasonMissingClaim},
		{name: "username not a string", claims: `{"preferred_username":7}`, reason: ReasonMissingClaim},
		{name: "email fallback needs verification", claims: `{"email":"a@x.org"}`, reason: ReasonMissingClaim},
		{name: "email fallback, string true", claims: `{"email":"Ann@x.org","email_verified":"true"}`, principal: "ann"},
		{name: "email claim configured", claims: `{"preferred_username":"zz","email":"Ann@x.org","email_verified":true}`,
			cfg: func(c *Config) { c.UsernameClaim = "email" }, principal: "ann"},
		{name: "unsafe email local part", claims: `{"email":"a+b@x.org","email_verified":true}`, reason: ReasonUnsafePrincipal},
		{name: "unverified email with domains", claims: `{"preferred_username":"a","email":"a@x.org"}`,
			cfg: func(c *Config) { c.AllowedDomains = []string{"x.org"} }, reason: ReasonDomainNotAllowed},
		{name: "subdomain is another domain", claims: `{"preferred_username":"a","email":"a@sub.x.org","email_verified":true}`,
			cfg: func(c *Config) { c.AllowedDomains = []string{"x.org"} }, reason: ReasonDomainNotAllowed},
		{name: "amr single string", claims: `{"preferred_username":"a","amr":"mfa"}`, cfg: func(c *Config) { c.RequireMFA = true }, principal: "a"},
		{name: "amr wrong type", claims: `{"preferred_username":"a","amr":{"x":1}}`, reason: ReasonMissingClaim},
		{name: "custom groups claim", claims: `{"preferred_username":"a","roles":["r1"]}`, cfg: func(c *Config) {
			c.GroupsClaim = "roles"
			c.RequiredGroups = []string{"r1"}
		}, principal: "a", groups: "r1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			var claims map[string]any
			if err := json.Unmarshal([]byte(tc.claims), &claims); err != nil {
				t.Fatal(err)
			}
			id, err := mapClaims(cfg, claims)
			if tc.reason != "" {
				le, ok := errors.AsType[*LoginError](err)
				if !ok || le.Reason != tc.reason {
					t.Fatalf("err = %v, want reason %q", err, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Principal != tc.principal || strings.Join(id.Groups, ",") != tc.groups {
				t.Errorf("identity = %+v", id)
			}
		})
	}
}

func FuzzPrincipalFromClaims(f *testing.F) {
	for _, s := range []string{
		`{"preferred_username":"alice","groups":["a"]}`, `{"email":"A@b.c","email_verified":true}`,
		`{"preferred_username":null,"email":"@","email_verified":"true","groups":"x","amr":["pwd","otp"]}`,
		`{"preferred_username":["x"],"groups":{"a":1}}`, `[]`, `null`,
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, strict bool) {
		var claims map[string]any
		if json.Unmarshal(data, &claims) != nil {
			return
		}
		cfg := Config{UsernameClaim: "preferred_username", GroupsClaim: "groups"}
		if strict {
			cfg.RequireMFA, cfg.AllowedDomains, cfg.RequiredGroups = true, []string{"b.c"}, []string{"a"}
		}
		id, err := mapClaims(cfg, claims)
		if err != nil {
			le, ok := errors.AsType[*LoginError](err)
			if !ok || le.Reason == "" || !utf8.ValidString(le.Reason) {
				t.Fatalf("error %v is not a LoginError with a reason", err)
			}
			return
		}
		if err := ValidPrincipal(id.Principal); err != nil {
			t.Fatalf("accepted principal %q: %v", id.Principal, err)
		}
		for _, g := range id.Groups {
			if !validGroup(g) {
				t.Fatalf("accepted group %q", g)
			}
		}
	})
}

func TestQR(t *testing.T) {
	s, err := QR("http://127.0.0.1:5556/device?user_code=BCDF-GHJK")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) < 10 || !strings.ContainsAny(s, "▀▄█") {
		t.Fatalf("QR output looks wrong:\n%s", s)
	}
	for _, l := range lines {
		if utf8.RuneCountInString(l) != utf8.RuneCountInString(lines[0]) {
			t.Fatalf("ragged QR lines:\n%s", s)
		}
	}
}
