package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// head is the smallest valid config; error cases append to it, so their
// own lines start at 3.
const head = "listen: \":2222\"\ndata_dir: /var/lib/bastion\n"

// sshT is a valid ssh target list item, for cases that need a target.
const sshT = "  - { name: web-1, kind: ssh, address: \"10.0.0.5:22\", user: deploy, identity_file: k, known_hosts: kh }\n"

type wantErr struct {
	line int
	key  string
	msg  string // substring
}

func (w wantErr) String() string { return fmt.Sprintf("%d: %s: …%s…", w.line, w.key, w.msg) }

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []wantErr
	}{
		{"missing listen and data_dir", "certificates: { ttl: 1h }\n", []wantErr{
			{1, "listen", "required"}, {1, "data_dir", "required"}}},
		{"bad listen", "listen: 2222\ndata_dir: /d\n", []wantErr{{1, "listen", `want host:port like ":2222"`}}},
		{"listen bad port", "listen: \":99999\"\ndata_dir: /d\n", []wantErr{{1, "listen", "want host:port"}}},
		{"unknown key with suggestion", head + "recording:\n  retension: 400d\n", []wantErr{
			{4, "recording.retension", "unknown key retension; did you mean retention?"}}},
		{"unknown key without suggestion", head + "frobnicate: yes\n", []wantErr{
			{3, "frobnicate", "unknown key frobnicate; known keys here: approvals, audit, certificates"}}},
		{"typo in target", head + "targets:\n  - name: web-1\n    kind: ssh\n    adress: 10.0.0.5:22\n    user: u\n    identity_file: k\n    known_hosts: kh\n", []wantErr{
			{4, "targets[0].address", "ssh target needs an address like 10.0.0.5:22"},
			{6, "targets[0].adress", "did you mean address?"}}},
		{"ssh bad address", head + "targets:\n  - { name: web-1, kind: ssh, address: 10.0.0.5, user: u, identity_file: k, known_hosts: kh }\n", []wantErr{
			{4, "targets[0].address", `want host:port like 10.0.0.5:22, got "10.0.0.5"`}}},
		{"ssh needs user, credential, known_hosts", head + "targets:\n  - name: web-1\n    kind: ssh\n    address: \"h:22\"\n", []wantErr{
			{4, "targets[0].user", "needs the user"},
			{4, "targets[0].identity_file", "identity_file"},
			{4, "targets[0].known_hosts", "needs known_hosts"}}},
		{"auth key without identity_file", head + "targets:\n  - { name: a, kind: ssh, address: \"h:22\", user: u, auth: key, known_hosts: kh }\n", []wantErr{
			{4, "targets[0].identity_file", "auth: key needs identity_file"}}},
		{"auth ca with identity_file", head + "targets:\n  - { name: a, kind: ssh, address: \"h:22\", user: u, auth: ca, identity_file: k, known_hosts: kh }\n", []wantErr{
			{4, "targets[0].identity_file", "auth: ca"}}},
		{"auth unknown", head + "targets:\n  - { name: a, kind: ssh, address: \"h:22\", user: u, auth: password, identity_file: k, known_hosts: kh }\n", []wantErr{
			{4, "targets[0].auth", `want key or ca, got "password"`}}},
		{"missing name and kind", head + "targets:\n  - description: nothing\n", []wantErr{
			{4, "targets[0].name", "required"}, {4, "targets[0].kind", "required"}}},
		{"unknown kind", head + "targets:\n  - name: x\n    kind: telnet\n", []wantErr{
			{5, "targets[0].kind", `unknown kind "telnet"`}}},
		{"unsafe and reserved names", head + "targets:\n  - { name: Web_1, kind: sqlite, path: a.db }\n  - { name: whoami, kind: sqlite, path: b.db }\n  - { name: -x, kind: sqlite, path: c.db }\n", []wantErr{
			{4, "targets[0].name", `got "Web_1"`},
			{5, "targets[1].name", "whoami is a built-in command"},
			{6, "targets[2].name", `got "-x"`}}},
		{"control characters in description", head + "targets:\n  - { name: a, kind: sqlite, path: a.db, description: \"evil\\e[2J\" }\n", []wantErr{
			{4, "targets[0].description", "control characters"}}},
		{"duplicate target name", head + "targets:\n  - { name: db, kind: sqlite, path: a.db }\n  - { name: db, kind: sqlite, path: b.db }\n", []wantErr{
			{5, "targets[1].name", "duplicate target name db (also targets[0], line 4)"}}},
		{"sql targets need dsn and path", head + "targets:\n  - { name: a, kind: postgres }\n  - { name: b, kind: mysql }\n  - { name: c, kind: sqlite }\n", []wantErr{
			{4, "targets[0].dsn", "postgres target needs a dsn"},
			{5, "targets[1].dsn", "mysql target needs a dsn"},
			{6, "targets[2].path", "sqlite target needs path"}}},
		{"inline passwords in dsn", head + "targets:\n" +
			"  - { name: a, kind: postgres, dsn: \"postgres://u:hunter2@h/db\" }\n" +
			"  - { name: b, kind: mysql, dsn: \"u:hunter2@tcp(h:3306)/db\" }\n" +
			"  - { name: c, kind: postgres, dsn: \"host=h user=u password=hunter2\" }\n" +
			"  - { name: d, kind: postgres, dsn: \"postgres://u@h/db?password=x\" }\n" +
			"  - { name: e, kind: postgres, dsn: \"postgres://u@h/db\", password_file: f, password_env: G }\n", []wantErr{
			{4, "targets[0].dsn", "carries a password"},
			{5, "targets[1].dsn", "carries a password"},
			{6, "targets[2].dsn", "carries a password"},
			{7, "targets[3].dsn", "carries a password"},
			{8, "targets[4].password_env", "not both"}}},
		{"inline secret keys", head + "oidc:\n  issuer: https://idp\n  client_id: b\n  client_secret: s3cret\ntargets:\n  - { name: a, kind: postgres, dsn: \"postgres://u@h/db\", password: hunter2 }\n", []wantErr{
			{6, "oidc.client_secret", "set client_secret_file, or name an environment variable holding it with client_secret_env"},
			{8, "targets[0].password", "set password_file, or name an environment variable holding it with password_env"}}},
		{"fields of another kind", head + "targets:\n  - { name: a, kind: sqlite, path: a.db, dsn: \"x\", argv: [ls], env: { A: b } }\n", []wantErr{
			{4, "targets[0].dsn", "sqlite targets do not use dsn (it is for postgres and mysql targets)"},
			{4, "targets[0].argv", "sqlite targets do not use argv"},
			{4, "targets[0].env", "sqlite targets do not use env"}}},
		{"command target", head + "targets:\n  - name: k\n    kind: command\n    env:\n      KUBECONFIG: /k\n      GITHUB_TOKEN: abc\n      1BAD: x\n", []wantErr{
			{4, "targets[0].argv", "command target needs argv"},
			{8, "targets[0].env.GITHUB_TOKEN", "secrets do not go in env"},
			{9, "targets[0].env.1BAD", "want an environment variable name"}}},
		{"wrong types", head + "recording:\n  input: \"yes\"\n  retention: [400d]\napprovals:\n  required: one\ntargets:\n  - name: a\n    kind: command\n    argv: kubectl\n", []wantErr{
			{4, "recording.input", "want true or false"},
			{5, "recording.retention", "want a duration"},
			{7, "approvals.required", "want a whole number"},
			{11, "targets[0].argv", "want a list like [a, b]"}}},
		{"targets not a list", head + "targets:\n  web-1: { kind: ssh }\n", []wantErr{
			{4, "targets", "want a list of targets"}}},
		{"root not a mapping", "- listen\n", []wantErr{{1, "", "want a mapping of settings"}}},
		{"bool where string", head + "targets:\n  - { name: a, kind: sqlite, path: true }\n", []wantErr{
			{4, "targets[0].path", "quote it"}}},
		{"duplicate key", head + "listen: \":22\"\n", []wantErr{
			{3, "listen", "duplicate key listen (first set on line 1)"}}},
		{"durations", head + "certificates: { ttl: 48h }\nsession:\n  idle_timeout: -1m\n  max_duration: 0s\nrecording: { flush_interval: 2m, retention: 30d }\napprovals: { ttl: soon, required: 0 }\n", []wantErr{
			{3, "certificates.ttl", "2d is longer than certificates.max_ttl (1d)"},
			{5, "session.idle_timeout", "cannot be negative"},
			{6, "session.max_duration", "must be longer than 0s"},
			{7, "recording.flush_interval", "2m is longer than 1m"},
			{7, "recording.retention", "30d is shorter than 365d: PCI DSS 10.5.1"},
			{8, "approvals.ttl", "invalid duration"},
			{8, "approvals.required", "at least 1"}}},
		{"on_failure", head + "recording: { on_failure: ignore }\n", []wantErr{
			{3, "recording.on_failure", `want terminate or continue, got "ignore"`}}},
		{"oidc", head + "oidc:\n  issuer: http://idp.example.com\n  client_secret_file: f\n  client_secret_env: E\n  username_claim: \"\"\n  allowed_domains: [\"@example.com\"]\n", []wantErr{
			{4, "oidc.issuer", "want an https URL"},
			{3, "oidc.client_id", "required when oidc is set"},
			{6, "oidc.client_secret_env", "not both"},
			{7, "oidc.username_claim", "must not be empty"},
			{8, "oidc.allowed_domains[0]", "want an email domain"}}},
		{"roles", head + "targets:\n" + sshT + "roles:\n  - { name: sre, groups: [sre], targets: [\"web-[\"] }\n  - { name: sre, groups: [\"\"], approve: [\"\"] }\n", []wantErr{
			{6, "roles[0].targets[0]", `bad glob "web-["`},
			{7, "roles[1].name", "duplicate role name sre (also roles[0], line 6)"},
			{7, "roles[1].groups[0]", "must not be empty"},
			{7, "roles[1].approve[0]", "must not be empty"}}},
		{"rules", head + "targets:\n" + sshT + "roles:\n  - { name: sre, groups: [sre], targets: [\"*\"] }\nrules:\n" +
			"  - { name: r1, targets: [\"db-*\"], roles: [dba], statements: [write, delete], action: approve }\n" +
			"  - { name: r2, targets: [], action: maybe }\n" +
			"  - { name: r3, targets: [\"web-1\"], statements: [write], commands: [\"rm *\"], action: deny }\n" +
			"  - { name: r4, targets: [\"web-1\"], commands: [\"rm *\"], access: statement, action: deny }\n" +
			"  - { name: r5, targets: [\"web-1\"], access: everything }\n", []wantErr{
			{8, "rules[0].targets[0]", `"db-*" matches no target`},
			{8, "rules[0].roles[0]", `unknown role "dba" (known: sre)`},
			{8, "rules[0].statements[1]", `unknown statement class "delete"`},
			{9, "rules[1].targets", "rule needs targets"},
			{9, "rules[1].action", `want allow, deny or approve, got "maybe"`},
			{10, "rules[2].commands", "not both"},
			{11, "rules[3].access", "a rule with commands decides access: command"},
			{12, "rules[4].access", `want session, statement or command, got "everything"`},
			{12, "rules[4].action", "required"}}},
		{"masking", head + "roles:\n  - { name: sre, groups: [sre] }\nmasking:\n  detectors: [pan, iban, pan]\n  columns: [\"[\"]\n  rules:\n    - { name: ssn, pattern: '(\\d' }\n    - { name: ssn, pattern: 'x*' }\n    - { name: empty }\n  unmask_roles: [sre, dba]\n", []wantErr{
			{6, "masking.detectors[1]", `unknown detector "iban"`},
			{6, "masking.detectors[2]", "listed twice"},
			{7, "masking.columns[0]", "bad glob"},
			{9, "masking.rules[0].pattern", "invalid regular expression: error parsing regexp"},
			{10, "masking.rules[1].name", "duplicate masking rule name ssn"},
			{10, "masking.rules[1].pattern", "matches the empty string"},
			{11, "masking.rules[2].pattern", "required"},
			{12, "masking.unmask_roles[1]", `unknown role "dba" (known: sre)`}}},
		{"yaml syntax", head + "targets:\n  - name: a\n   kind: ssh\n", []wantErr{{3, "", "invalid YAML: did not find expected '-' indicator"}}},
		{"tab indentation", head + "session:\n\tidle_timeout: 5m\n", []wantErr{{4, "", "invalid YAML"}}},
		{"two documents", head + "---\nlisten: \":1\"\n", []wantErr{{3, "", "second YAML document"}}},
		{"empty", "# nothing here\n", []wantErr{{0, "", "the file is empty"}}},
		{"merge key of a scalar", head + "session:\n  <<: 5\n", []wantErr{{4, "session.<<", "a merge key needs a mapping"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), "bastion.yaml", "")
			if err == nil {
				t.Fatalf("Parse: no error; want %v (config %+v)", tt.want, c)
			}
			got := Errors(err)
			if len(got) == 0 {
				t.Fatalf("Parse error %v carries no ConfigErrors", err)
			}
			var unmatched []wantErr
			rest := slices.Clone(got)
			for _, w := range tt.want {
				i := slices.IndexFunc(rest, func(e *ConfigError) bool {
					return e.Line == w.line && e.Key == w.key && strings.Contains(e.Msg, w.msg) && e.File == "bastion.yaml"
				})
				if i < 0 {
					unmatched = append(unmatched, w)
					continue
				}
				rest = slices.Delete(rest, i, i+1)
			}
			if len(unmatched) > 0 || len(rest) > 0 {
				t.Errorf("errors:\n%v\nmissing: %v\nunexpected: %v", err, unmatched, ConfigErrors(rest))
			}
			if !slices.IsSortedFunc(got, func(a, b *ConfigError) int { return a.Line - b.Line }) {
				t.Errorf("errors not in line order:\n%v", err)
			}
		})
	}
}

func TestConfigErrorFormat(t *testing.T) {
	tests := []struct {
		e    ConfigError
		want string
	}{
		{ConfigError{"bastion.yaml", 12, "targets[1].address", "ssh target needs an address like 10.0.0.5:22"},
			"bastion.yaml:12: targets[1].address: ssh target needs an address like 10.0.0.5:22"},
		{ConfigError{"bastion.yaml", 0, "", "the file is empty"}, "bastion.yaml: the file is empty"},
		{ConfigError{"", 3, "listen", "required"}, ":3: listen: required"},
		{ConfigError{"", 0, "", "bad"}, "bad"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q; want %q", got, tt.want)
		}
	}
	_, err := Parse([]byte("listen: x\n"), "b.yaml", "")
	wrapped := fmt.Errorf("start: %w", err)
	if n := len(Errors(wrapped)); n != 2 {
		t.Errorf("Errors(wrapped) has %d problems; want 2 (listen, data_dir)", n)
	}
	var one *ConfigError
	if !errors.As(wrapped, &one) || one.Key != "listen" {
		t.Errorf("errors.As to *ConfigError = %v; want the listen problem", one)
	}
	if got := strings.Count(err.Error(), "\n"); got != 1 {
		t.Errorf("ConfigErrors prints %d newlines; want one problem per line:\n%v", got, err)
	}
	if Errors(errors.New("other")) != nil {
		t.Error("Errors(plain error) is not nil")
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(head), "bastion.yaml", "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"certificates.ttl", c.Certificates.TTL.Std(), 8 * time.Hour},
		{"certificates.max_ttl", c.Certificates.MaxTTL.Std(), 24 * time.Hour},
		{"oidc.username_claim", c.OIDC.UsernameClaim, "preferred_username"},
		{"oidc.groups_claim", c.OIDC.GroupsClaim, "groups"},
		{"oidc enabled", c.OIDC.Enabled(), false},
		{"session.idle_timeout", c.Session.IdleTimeout.Std(), 15 * time.Minute},
		{"session.max_duration", c.Session.MaxDuration.Std(), 12 * time.Hour},
		{"recording.input", c.Recording.Input, false},
		{"recording.flush_interval", c.Recording.FlushInterval.Std(), time.Second},
		{"recording.retention", c.Recording.Retention.Std(), 400 * 24 * time.Hour},
		{"recording.on_failure", c.Recording.OnFailure, OnFailureTerminate},
		{"approvals.ttl", c.Approvals.TTL.Std(), 15 * time.Minute},
		{"approvals.required", c.Approvals.Required, 1},
		{"masking.detectors", c.Masking.Detectors, []string{"pan", "track", "expiry", "cvv"}},
		{"path", c.Path, "bastion.yaml"},
		{"warnings", len(c.Warnings), 0},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %v; want %v", tt.name, tt.got, tt.want)
		}
	}
	// Null values keep defaults; an explicit empty list turns detectors off.
	c, err = Parse([]byte(head+"session:\n  idle_timeout: ~\nmasking:\n  detectors: []\n"), "b", "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Session.IdleTimeout.Std() != 15*time.Minute || c.Masking.Detectors == nil || len(c.Masking.Detectors) != 0 {
		t.Errorf("idle_timeout = %v, detectors = %#v; want 15m and an empty list", c.Session.IdleTimeout, c.Masking.Detectors)
	}
}

func TestDerivedValues(t *testing.T) {
	c, err := Parse([]byte(head+"targets:\n"+sshT+
		"  - { name: web-2, kind: ssh, address: \"h:22\", user: u, auth: ca, known_hosts: kh }\n"+
		"  - { name: db, kind: sqlite, path: \":memory:\" }\n"+
		"rules:\n"+
		"  - { name: a, targets: [db], statements: [write], action: deny }\n"+
		"  - { name: b, targets: [\"web-*\"], commands: [\"reboot\"], action: approve }\n"+
		"  - { name: c, targets: [\"*\"], action: allow }\n"), "b", "/base")
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{c.Targets[0].Auth, c.Targets[1].Auth}; !slices.Equal(got, []string{AuthKey, AuthCA}) {
		t.Errorf("auth = %v; want [key ca]", got)
	}
	if got := []string{c.Rules[0].Access, c.Rules[1].Access, c.Rules[2].Access}; !slices.Equal(got, []string{AccessStatement, AccessCommand, AccessSession}) {
		t.Errorf("access = %v; want [statement command session]", got)
	}
	if got := []string{c.Targets[0].IdentityFile, c.Targets[0].KnownHosts, c.Targets[2].Path}; !slices.Equal(got, []string{"/base/k", "/base/kh", ":memory:"}) {
		t.Errorf("paths = %v; want [/base/k /base/kh :memory:]", got)
	}
	if got := []int{c.Targets[0].Line, c.Targets[1].Line, c.Rules[2].Line}; !slices.Equal(got, []int{4, 5, 10}) {
		t.Errorf("lines = %v; want [4 5 10]", got)
	}
	if !c.Targets[2].IsSQL() || c.Targets[0].IsSQL() {
		t.Error("IsSQL wrong for sqlite or ssh target")
	}
}

func TestWarnings(t *testing.T) {
	c, err := Parse([]byte(head+"session: { idle_timeout: 30m }\nrecording: { on_failure: continue }\ntargets:\n"+sshT+
		"roles:\n  - { name: sre, targets: [\"db-*\"], approve: [\"web-1\"] }\n"), "b", "")
	if err != nil {
		t.Fatal(err)
	}
	want := []wantErr{
		{3, "session.idle_timeout", "PCI DSS 8.2.8"},
		{4, "recording.on_failure", "unrecorded"},
		{8, "roles[0].groups", "nobody holds it"},
		{8, "roles[0].targets[0]", `"db-*" matches no target yet`},
	}
	if len(c.Warnings) != len(want) {
		t.Fatalf("warnings:\n%v\nwant %v", c.Warnings, want)
	}
	for i, w := range want {
		g := c.Warnings[i]
		if g.Line != w.line || g.Key != w.key || !strings.Contains(g.Msg, w.msg) {
			t.Errorf("warning %d = %v; want %v", i, g, w)
		}
	}
}

func TestAliasesAndMergeKeys(t *testing.T) {
	c, err := Parse([]byte(head+"targets:\n"+
		"  - &web { name: web-1, kind: ssh, address: \"10.0.0.5:22\", user: deploy, identity_file: k, known_hosts: kh }\n"+
		"  - <<: *web\n    name: web-2\n    address: \"10.0.0.6:22\"\n"+
		"roles:\n  - { name: sre, groups: &g [sre, ops], targets: [\"*\"] }\n  - { name: ops, groups: *g }\n"), "b", "")
	if err != nil {
		t.Fatal(err)
	}
	w2 := c.Targets[1]
	if w2.Name != "web-2" || w2.Address != "10.0.0.6:22" || w2.User != "deploy" || w2.Auth != AuthKey {
		t.Errorf("merged target = %+v; want web-2 at 10.0.0.6:22 as deploy with key auth", w2)
	}
	if !slices.Equal(c.Roles[1].Groups, []string{"sre", "ops"}) {
		t.Errorf("aliased groups = %v", c.Roles[1].Groups)
	}
	// A merged duplicate name is still caught, at the line of the alias use.
	_, err = Parse([]byte(head+"targets:\n  - &t { name: db, kind: sqlite, path: a.db }\n  - *t\n"), "b", "")
	if es := Errors(err); len(es) != 1 || es[0].Key != "targets[1].name" || !strings.Contains(es[0].Msg, "duplicate target name") {
		t.Errorf("aliased duplicate: %v", err)
	}
}

func TestAliasBomb(t *testing.T) {
	// Each level merges the one below ten times: 10^9 keys if expanded.
	var b strings.Builder
	b.WriteString(head + "a0: &a0 { idle_timeout: 1m }\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "a%d: &a%d { <<: [", i, i)
		for j := 0; j < 10; j++ {
			fmt.Fprintf(&b, "*a%d, ", i-1)
		}
		b.WriteString("] }\n")
	}
	b.WriteString("session: *a9\n")
	start := time.Now()
	_, err := Parse([]byte(b.String()), "b", "")
	if !strings.Contains(fmt.Sprint(err), "expands to more than") {
		t.Errorf("err = %v; want the node budget error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("alias bomb took %v", d)
	}
	// Aliased lists where strings belong are type errors, not expansions.
	_, err = Parse([]byte(head+"roles:\n  - { name: r, groups: &g [a, b] }\n  - { name: s, groups: [*g, *g] }\n"), "b", "")
	if es := Errors(err); len(es) != 2 || es[0].Key != "roles[1].groups[0]" || es[0].Line != 4 {
		t.Errorf("aliased list in a list: %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bastion.yaml")
	data := "listen: \":2222\"\ndata_dir: state\noidc: { issuer: \"https://idp\", client_id: b, client_secret_file: secret }\n" +
		"targets:\n" + sshT + "  - { name: pg, kind: postgres, dsn: \"postgres://u@h/db\", password_file: /abs/pw }\n"
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{c.Path, c.DataDir, c.OIDC.ClientSecretFile, c.Targets[0].IdentityFile, c.Targets[1].PasswordFile}
	want := []string{p, filepath.Join(dir, "state"), filepath.Join(dir, "secret"), filepath.Join(dir, "k"), "/abs/pw"}
	if !slices.Equal(got, want) {
		t.Errorf("paths = %v; want %v", got, want)
	}
	if !c.OIDC.Enabled() {
		t.Error("OIDC.Enabled() = false with an issuer set")
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if err == nil || Errors(err) != nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "--config") {
		t.Errorf("Load(missing) = %v; want a not-exist error that says how to point at a config", err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(head+"targets:\n  - { name: a, kind: ssh }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if es := Errors(err); len(es) == 0 || es[0].File != bad || es[0].Line != 4 {
		t.Errorf("Load(bad) = %v; want errors naming %s line 4", err, bad)
	}

	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte(head+"#"+strings.Repeat("x", maxConfigSize)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load(big) = %v; want a size error", err)
	}
}

// exampleConfig parses the repository's bastion.example.yaml.
func exampleConfig(t testing.TB) (*Config, string) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "bastion.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, "bastion.example.yaml", root)
	if err != nil {
		t.Fatalf("bastion.example.yaml does not parse:\n%v", err)
	}
	return c, root
}

func TestExampleParses(t *testing.T) {
	c, root := exampleConfig(t)
	if len(c.Warnings) > 0 {
		t.Errorf("bastion.example.yaml has warnings:\n%v", c.Warnings)
	}
	var names []string
	for _, tg := range c.Targets {
		names = append(names, tg.Name)
	}
	if want := []string{"web-1", "web-2", "payments-db", "ledger", "demo", "k8s-prod"}; !slices.Equal(names, want) {
		t.Errorf("targets = %v; want %v", names, want)
	}
	demo, _ := c.Target("demo")
	if demo.Path != filepath.Join(root, "testdata", "demo.db") {
		t.Errorf("demo path = %q; want it resolved against the repo root", demo.Path)
	}
	if c.Recording.Retention.String() != "400d" || c.Listen != ":2222" || !c.OIDC.Enabled() {
		t.Errorf("retention %v, listen %q, oidc %v", c.Recording.Retention, c.Listen, c.OIDC.Enabled())
	}
	if c.Masking.Rules[0].Name != "ssn" || c.Masking.Rules[0].Pattern != `\b\d{3}-\d{2}-\d{4}\b` {
		t.Errorf("masking rule = %+v", c.Masking.Rules[0])
	}
}

// TestExampleHasEveryKey keeps the example complete: every key the schema
// knows (the yaml tags, which TestMarshalRoundTrip ties to the decoder)
// appears in bastion.example.yaml, written or commented.
func TestExampleHasEveryKey(t *testing.T) {
	data, err := os.ReadFile("../bastion.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for _, key := range schemaKeys(reflect.TypeFor[Config]()) {
		if !strings.Contains(string(data), key+":") {
			missing = append(missing, key)
		}
	}
	if len(missing) > 0 {
		t.Errorf("bastion.example.yaml lacks keys %v", missing)
	}
}

func schemaKeys(typ reflect.Type) []string {
	var keys []string
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		keys = append(keys, name)
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			keys = append(keys, schemaKeys(ft)...)
		}
	}
	return keys
}

// TestMarshalRoundTrip checks that the yaml tags on the schema types match
// the keys the decoder reads: a config marshalled with yaml.v3 parses back
// to the same config.
func TestMarshalRoundTrip(t *testing.T) {
	c, root := exampleConfig(t)
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out, "marshalled", root)
	if err != nil {
		t.Fatalf("marshalled config does not parse:\n%v\n%s", err, out)
	}
	// Marshalling again compares everything the yaml tags cover, without
	// tripping over nil versus empty slices.
	again, err := yaml.Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(again) {
		t.Errorf("round trip differs:\n%s\n---\n%s", out, again)
	}
	if len(back.Targets) != len(c.Targets) || back.Targets[1].Auth != AuthCA || back.Rules[1].Access != AccessCommand {
		t.Errorf("round trip lost targets or derived values: %+v", back)
	}
}
