package policy

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
)

// validator checks decoded values and cross references. It reports each
// problem at the line of the key it is about, or of the nearest enclosing
// key when that key is missing. It changes the config only to fill in
// values derived from others (Target.Auth, Rule.Access).
type validator struct {
	file  string
	lines map[string]int
	bad   map[string]bool
	errs  ConfigErrors
	warns ConfigErrors
}

// parent strips the last element of a key path: "targets[1].user" →
// "targets[1]" → "targets" → "".
func parent(p string) string {
	if i := strings.LastIndexAny(p, ".["); i >= 0 {
		return p[:i]
	}
	return ""
}

func (v *validator) line(p string) int {
	for {
		if l, ok := v.lines[p]; ok {
			return l
		}
		if p == "" {
			return 0
		}
		p = parent(p)
	}
}

// suppressed reports whether p or an enclosing key already failed to
// decode; checking it again would only repeat the same problem.
func (v *validator) suppressed(p string) bool {
	for {
		if v.bad[p] {
			return true
		}
		if p == "" {
			return false
		}
		p = parent(p)
	}
}

func (v *validator) errf(p, format string, args ...any) {
	if !v.suppressed(p) {
		v.errs = append(v.errs, &ConfigError{File: v.file, Line: v.line(p), Key: p, Msg: fmt.Sprintf(format, args...)})
	}
}

func (v *validator) warnf(p, format string, args ...any) {
	if !v.suppressed(p) {
		v.warns = append(v.warns, &ConfigError{File: v.file, Line: v.line(p), Key: p, Msg: fmt.Sprintf(format, args...)})
	}
}

func (v *validator) config(c *Config) {
	v.listen(c.Listen)
	if c.DataDir == "" {
		v.errf("data_dir", "required: the directory for bastion.db and the CA and host keys, e.g. /var/lib/bastion")
	}
	v.certificates(c.Certificates)
	v.oidc(c.OIDC)
	v.session(c.Session)
	v.recording(c.Recording)
	v.targets(c.Targets)
	roles := v.roles(c.Roles, c.Targets)
	v.rules(c.Rules, c.Targets, roles)
	v.approvals(c.Approvals)
	v.masking(c.Masking, roles)
	v.audit(c.Audit)
	v.metrics(c.Metrics)
}

func validPort(s string) bool {
	if s == "" || len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return false
	}
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n >= 1 && n <= 65535
}

func (v *validator) listen(s string) {
	if s == "" {
		v.errf("listen", `required: the address to serve SSH on, e.g. ":2222"`)
		return
	}
	if _, port, err := net.SplitHostPort(s); err != nil || !validPort(port) {
		v.errf("listen", `want host:port like ":2222" or "10.0.0.1:22", got %q`, s)
	}
}

// positive checks a duration that must be above zero; example shows a sane value.
func (v *validator) positive(p string, d Duration, example string) bool {
	if d <= 0 {
		v.errf(p, "must be longer than 0s, e.g. %s", example)
		return false
	}
	return true
}

func (v *validator) certificates(c Certificates) {
	ok := v.positive("certificates.ttl", c.TTL, "8h")
	ok = v.positive("certificates.max_ttl", c.MaxTTL, "24h") && ok
	if ok && c.TTL > c.MaxTTL {
		v.errf("certificates.ttl", "%s is longer than certificates.max_ttl (%s); lower ttl or raise max_ttl", c.TTL, c.MaxTTL)
	}
}

func (v *validator) oidc(o OIDC) {
	configured := o.Issuer != "" || o.ClientID != "" || o.ClientSecretFile != "" || o.ClientSecretEnv != "" ||
		o.RequireMFA || len(o.AllowedDomains) > 0 || len(o.RequiredGroups) > 0
	if !configured {
		return
	}
	switch u, err := url.Parse(o.Issuer); {
	case o.Issuer == "":
		v.errf("oidc.issuer", "required when oidc is set: the identity provider's URL, e.g. https://idp.example.com (remove the oidc section to turn login off)")
	case err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))):
		v.errf("oidc.issuer", "want an https URL like https://idp.example.com, got %q: tokens travel over it (plain http only for localhost)", o.Issuer)
	}
	if o.ClientID == "" {
		v.errf("oidc.client_id", "required when oidc is set: the client id registered for bastion at the identity provider")
	}
	if o.ClientSecretFile != "" && o.ClientSecretEnv != "" {
		v.errf("oidc.client_secret_env", "set client_secret_file or client_secret_env, not both")
	}
	if o.ClientSecretEnv != "" && !validEnvName(o.ClientSecretEnv) {
		v.errf("oidc.client_secret_env", "want an environment variable name like OIDC_CLIENT_SECRET, got %q", o.ClientSecretEnv)
	}
	if o.UsernameClaim == "" {
		v.errf("oidc.username_claim", "must not be empty; leave it out for the default preferred_username")
	}
	if o.GroupsClaim == "" {
		v.errf("oidc.groups_claim", "must not be empty; leave it out for the default groups")
	}
	for i, dom := range o.AllowedDomains {
		if dom == "" || strings.ContainsAny(dom, "@/: \t") {
			v.errf(fmt.Sprintf("oidc.allowed_domains[%d]", i), "want an email domain like example.com, got %q", dom)
		}
	}
	for i, g := range o.RequiredGroups {
		if g == "" {
			v.errf(fmt.Sprintf("oidc.required_groups[%d]", i), "group names must not be empty")
		}
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (v *validator) session(s Session) {
	if v.positive("session.idle_timeout", s.IdleTimeout, "15m") && s.IdleTimeout.Std() > 15*time.Minute {
		v.warnf("session.idle_timeout", "%s is longer than the 15m after which PCI DSS 8.2.8 wants idle sessions to re-authenticate", s.IdleTimeout)
	}
	v.positive("session.max_duration", s.MaxDuration, "12h")
}

func (v *validator) recording(r Recording) {
	if v.positive("recording.flush_interval", r.FlushInterval, "1s") && r.FlushInterval.Std() > time.Minute {
		v.errf("recording.flush_interval", "%s is longer than 1m; a crash loses up to one interval of every recording", r.FlushInterval)
	}
	if r.Retention.Std() < 365*day {
		v.errf("recording.retention", "%s is shorter than 365d: PCI DSS 10.5.1 keeps audit history for at least a year (the default is 400d)", r.Retention)
	}
	switch r.OnFailure {
	case OnFailureTerminate:
	case OnFailureContinue:
		v.warnf("recording.on_failure", "continue lets sessions run unrecorded when the store fails; PCI DSS 10.2 expects every session logged")
	default:
		v.errf("recording.on_failure", "want terminate or continue, got %q", r.OnFailure)
	}
}

// isReserved reports whether name is a built-in command a target would shadow.
func isReserved(name string) bool {
	switch name {
	case "login", "whoami", "targets", "sessions", "replay", "approvals", "approve", "deny", "help":
		return true
	}
	return false
}

// safeWord reports whether s is [a-z0-9][a-z0-9._-]*: safe as an SSH user
// name, in a shell, in a log line and in a file name.
func safeWord(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func (v *validator) name(p, what, name string) bool {
	if name == "" {
		v.errf(p, "required: every %s needs a name", what)
		return false
	}
	if !safeWord(name) {
		v.errf(p, "%s names are up to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit; got %q", what, name)
		return false
	}
	return true
}

// unique reports a second use of a name in the same list.
func (v *validator) unique(seen map[string]string, p, what, name string) {
	if name == "" {
		return
	}
	if first, dup := seen[name]; dup {
		v.errf(p, "duplicate %s name %s (also %s, line %d); names must be unique", what, name, first, v.line(first))
		return
	}
	seen[name] = parent(p)
}

// kindField is a target key that only some kinds use.
type kindField struct {
	key, value string
	kinds      []string
}

// kindFields lists t's kind-specific keys, so that a key set on the wrong
// kind (a dsn on a sqlite target) is reported instead of silently ignored.
func kindFields(t Target) []kindField {
	sql := []string{KindPostgres, KindMySQL}
	return []kindField{
		{"address", t.Address, []string{KindSSH}},
		{"user", t.User, []string{KindSSH}},
		{"identity_file", t.IdentityFile, []string{KindSSH}},
		{"known_hosts", t.KnownHosts, []string{KindSSH}},
		{"auth", t.Auth, []string{KindSSH}},
		{"dsn", t.DSN, sql},
		{"password_file", t.PasswordFile, sql},
		{"password_env", t.PasswordEnv, sql},
		{"path", t.Path, []string{KindSQLite}},
		{"argv", strings.Join(t.Argv, " "), []string{KindCommand}},
	}
}

func (v *validator) targets(ts []Target) {
	seen := map[string]string{}
	for i := range ts {
		t := &ts[i]
		p := fmt.Sprintf("targets[%d]", i)
		if v.name(p+".name", "target", t.Name) {
			if isReserved(t.Name) {
				v.errf(p+".name", "%s is a built-in command (login, whoami, targets, sessions, replay, approvals, approve, deny, help); pick another name", t.Name)
			}
			v.unique(seen, p+".name", "target", t.Name)
		}
		if strings.ContainsFunc(t.Description, unicode.IsControl) {
			v.errf(p+".description", "must be one line of plain text: control characters would reach users' terminals from the menu")
		}
		switch t.Kind {
		case KindSSH:
			v.sshTarget(p, t)
		case KindPostgres, KindMySQL:
			v.sqlTarget(p, t)
		case KindSQLite:
			if t.Path == "" {
				v.errf(p+".path", "sqlite target needs path, the database file, e.g. ./testdata/demo.db")
			}
		case KindCommand:
			v.commandTarget(p, t)
		case "":
			v.errf(p+".kind", "required: one of ssh, postgres, mysql, sqlite, command")
			continue
		default:
			v.errf(p+".kind", "unknown kind %q; want one of ssh, postgres, mysql, sqlite, command", t.Kind)
			continue
		}
		for _, f := range kindFields(*t) {
			if f.value != "" && !slices.Contains(f.kinds, t.Kind) {
				v.errf(p+"."+f.key, "%s targets do not use %s (it is for %s targets); remove it", t.Kind, f.key, strings.Join(f.kinds, " and "))
			}
		}
		if t.Kind != KindCommand && t.Env != nil {
			v.errf(p+".env", "%s targets do not use env (it is for command targets); remove it", t.Kind)
		}
	}
}

func (v *validator) sshTarget(p string, t *Target) {
	if t.Address == "" {
		v.errf(p+".address", "ssh target needs an address like 10.0.0.5:22")
	} else if host, port, err := net.SplitHostPort(t.Address); err != nil || host == "" || !validPort(port) {
		v.errf(p+".address", "want host:port like 10.0.0.5:22, got %q", t.Address)
	}
	if t.User == "" {
		v.errf(p+".user", "ssh target needs the user to log in as, e.g. deploy")
	}
	switch t.Auth {
	case "":
		if t.IdentityFile == "" {
			v.errf(p+".identity_file", "ssh target needs identity_file (a private key only the bastion can read) or auth: ca (a one-minute certificate from the bastion's target CA)")
		} else {
			t.Auth = AuthKey
		}
	case AuthKey:
		if t.IdentityFile == "" {
			v.errf(p+".identity_file", "auth: key needs identity_file, the private key the bastion logs in with")
		}
	case AuthCA:
		if t.IdentityFile != "" {
			v.errf(p+".identity_file", "auth: ca signs a fresh certificate per session, so identity_file is not used; remove it or set auth: key")
		}
	default:
		v.errf(p+".auth", "want key or ca, got %q", t.Auth)
	}
	if t.KnownHosts == "" {
		v.errf(p+".known_hosts", "ssh target needs known_hosts, the file with the target's host key or a @cert-authority line for its host CA; without it the bastion cannot tell the target from an impostor")
	}
}

func (v *validator) sqlTarget(p string, t *Target) {
	switch {
	case t.DSN == "" && t.Kind == KindPostgres:
		v.errf(p+".dsn", "postgres target needs a dsn like postgres://bastion@10.0.0.9:5432/payments")
	case t.DSN == "":
		v.errf(p+".dsn", "mysql target needs a dsn like bastion@tcp(10.0.0.10:3306)/ledger")
	case dsnHasPassword(t.DSN):
		v.errf(p+".dsn", "the dsn carries a password; remove it and set password_file (or password_env) instead, so the secret stays out of the config")
	}
	if t.PasswordFile != "" && t.PasswordEnv != "" {
		v.errf(p+".password_env", "set password_file or password_env, not both")
	}
	if t.PasswordEnv != "" && !validEnvName(t.PasswordEnv) {
		v.errf(p+".password_env", "want an environment variable name like PAYMENTS_DB_PASSWORD, got %q", t.PasswordEnv)
	}
}

// dsnHasPassword spots a password written into a DSN in any of the forms
// the drivers take: URL userinfo or query, libpq key=value, and the
// go-sql-driver/mysql "user:password@tcp(host)/db" form.
func dsnHasPassword(dsn string) bool {
	if strings.Contains(dsn, "://") {
		if u, err := url.Parse(dsn); err == nil {
			if _, set := u.User.Password(); set {
				return true
			}
			return u.Query().Has("password")
		}
	}
	for _, f := range strings.Fields(dsn) {
		if strings.HasPrefix(strings.ToLower(f), "password=") {
			return true
		}
	}
	if at := strings.Index(dsn, "@"); at >= 0 && !strings.Contains(dsn, "://") {
		return strings.Contains(dsn[:at], ":")
	}
	return false
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case i > 0 && c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return true
}

// secretEnvName reports whether an environment variable name says it holds
// a secret (AWS_SECRET_ACCESS_KEY, DB_PASSWORD), unless it names a file
// holding one (VAULT_TOKEN_FILE).
func secretEnvName(s string) bool {
	words := strings.Split(strings.ToUpper(s), "_")
	if last := words[len(words)-1]; last == "FILE" || last == "PATH" {
		return false
	}
	for _, w := range words {
		switch w {
		case "PASSWORD", "PASSWD", "SECRET", "TOKEN", "APIKEY", "PASSPHRASE":
			return true
		}
	}
	return false
}

func (v *validator) commandTarget(p string, t *Target) {
	if len(t.Argv) == 0 || t.Argv[0] == "" {
		v.errf(p+".argv", "command target needs argv, the program and its arguments, e.g. [kubectl, --context, prod, exec, -it, deploy/api, --, sh]")
	}
	keys := make([]string, 0, len(t.Env))
	for k := range t.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch {
		case !validEnvName(k):
			v.errf(p+".env."+k, "want an environment variable name like KUBECONFIG, got %q", k)
		case secretEnvName(k):
			v.errf(p+".env."+k, "secrets do not go in env: the config lands in backups and the environment is readable by anyone who can inspect the process; point the program at a file holding it (e.g. %s_FILE)", k)
		}
	}
}

// glob checks one path.Match pattern at key path p.
func (v *validator) glob(p, g string) bool {
	if g == "" {
		v.errf(p, "must not be empty")
		return false
	}
	if _, err := path.Match(g, ""); err != nil {
		v.errf(p, "bad glob %q: %v (use *, ? and [a-z]; escape with \\)", g, err)
		return false
	}
	return true
}

// globs checks a list of path.Match patterns at key path p.
func (v *validator) globs(p string, gs []string) {
	for i, g := range gs {
		v.glob(fmt.Sprintf("%s[%d]", p, i), g)
	}
}

func matchesAnyTarget(g string, ts []Target) bool {
	for _, t := range ts {
		if m, _ := path.Match(g, t.Name); m {
			return true
		}
	}
	return false
}

// roles checks roles and returns the set of role names. A role glob that
// matches no target is only a warning: roles are often written ahead of the
// targets they will cover, and an unmatched grant grants nothing.
func (v *validator) roles(rs []Role, ts []Target) map[string]bool {
	names := map[string]bool{}
	seen := map[string]string{}
	for i, r := range rs {
		p := fmt.Sprintf("roles[%d]", i)
		if v.name(p+".name", "role", r.Name) {
			v.unique(seen, p+".name", "role", r.Name)
			names[r.Name] = true
		}
		if len(r.Groups) == 0 {
			v.warnf(p+".groups", "role %s has no groups, so nobody holds it", r.Name)
		}
		for j, g := range r.Groups {
			if g == "" {
				v.errf(fmt.Sprintf("%s.groups[%d]", p, j), "group names must not be empty")
			}
		}
		for _, key := range []string{"targets", "approve"} {
			gs := r.Targets
			if key == "approve" {
				gs = r.Approve
			}
			for j, g := range gs {
				gp := fmt.Sprintf("%s.%s[%d]", p, key, j)
				if v.glob(gp, g) && !matchesAnyTarget(g, ts) {
					v.warnf(gp, "%q matches no target yet", g)
				}
			}
		}
	}
	return names
}

func known(set map[string]bool) string {
	list := make([]string, 0, len(set))
	for k := range set {
		list = append(list, k)
	}
	slices.Sort(list)
	if len(list) == 0 {
		return "none are configured"
	}
	return "known: " + strings.Join(list, ", ")
}

// rules checks rules. Unlike roles, a rule target glob that matches no
// target is an error: a typo there silently switches the rule off.
func (v *validator) rules(rs []Rule, ts []Target, roles map[string]bool) {
	seen := map[string]string{}
	for i := range rs {
		r := &rs[i]
		p := fmt.Sprintf("rules[%d]", i)
		if v.name(p+".name", "rule", r.Name) {
			v.unique(seen, p+".name", "rule", r.Name)
		}
		if len(r.Targets) == 0 {
			v.errf(p+".targets", `rule needs targets, globs of the targets it applies to ("*" for all)`)
		}
		for j, g := range r.Targets {
			gp := fmt.Sprintf("%s.targets[%d]", p, j)
			if v.glob(gp, g) && !matchesAnyTarget(g, ts) {
				v.errf(gp, "%q matches no target; a rule must name configured targets, or a typo would switch it off", g)
			}
		}
		for j, name := range r.Roles {
			if !roles[name] {
				v.errf(fmt.Sprintf("%s.roles[%d]", p, j), "unknown role %q (%s)", name, known(roles))
			}
		}
		for j, s := range r.Statements {
			switch s {
			case StatementRead, StatementWrite, StatementDDL, StatementAdmin, StatementUnknown:
			default:
				v.errf(fmt.Sprintf("%s.statements[%d]", p, j), "unknown statement class %q; want read, write, ddl, admin or unknown", s)
			}
		}
		v.globs(p+".commands", r.Commands)
		derived := AccessSession
		switch {
		case len(r.Statements) > 0 && len(r.Commands) > 0:
			v.errf(p+".commands", "a rule decides statements or commands, not both; split it into two rules")
		case len(r.Statements) > 0:
			derived = AccessStatement
		case len(r.Commands) > 0:
			derived = AccessCommand
		}
		switch r.Access {
		case "":
			r.Access = derived
		case AccessSession, AccessStatement, AccessCommand:
			if r.Access != derived {
				v.errf(p+".access", "access: %s does not fit this rule: a rule with %s decides access: %s (statements → statement, commands → command, neither → session); fix or remove access", r.Access, ruleHas(r), derived)
			}
		default:
			v.errf(p+".access", "want session, statement or command, got %q", r.Access)
		}
		switch r.Action {
		case ActionAllow, ActionDeny, ActionApprove:
		case "":
			v.errf(p+".action", "required: allow, deny or approve")
		default:
			v.errf(p+".action", "want allow, deny or approve, got %q", r.Action)
		}
	}
}

func ruleHas(r *Rule) string {
	switch {
	case len(r.Statements) > 0:
		return "statements"
	case len(r.Commands) > 0:
		return "commands"
	}
	return "neither statements nor commands"
}

func (v *validator) approvals(a Approvals) {
	v.positive("approvals.ttl", a.TTL, "15m")
	if a.Required < 1 {
		v.errf("approvals.required", "must be at least 1: an approval nobody grants is no approval")
	}
	v.positive("approvals.window", a.Window, "1h")
	if w := a.Webhook; w != nil {
		set := 0
		for _, s := range []string{w.URL, w.URLFile, w.URLEnv} {
			if s != "" {
				set++
			}
		}
		switch {
		case set == 0:
			v.errf("approvals.webhook.url", "required: the endpoint to POST to, e.g. https://hooks.slack.com/services/..., or url_file / url_env holding it (remove webhook to send none)")
		case set > 1:
			v.errf("approvals.webhook.url", "set one of url, url_file and url_env, not several")
		case w.URL != "":
			if err := CheckWebhookURL(w.URL); err != nil {
				v.errf("approvals.webhook.url", "%v", err)
			}
		}
		v.positive("approvals.webhook.timeout", w.Timeout, "5s")
		if w.Retries < 0 || w.Retries > 10 {
			v.errf("approvals.webhook.retries", "want 0 to 10 retries, got %d", w.Retries)
		}
	}
}

// CheckWebhookURL checks an approvals.webhook URL, at load and, for
// url_file and url_env, at each use. Its message never echoes the URL:
// webhook URLs carry their token.
func CheckWebhookURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
		return fmt.Errorf("want an https URL like https://hooks.slack.com/services/...: requests, statements and reasons travel in it (plain http only for localhost)")
	}
	return nil
}

func (v *validator) masking(m Masking, roles map[string]bool) {
	seenDet := map[string]bool{}
	for i, d := range m.Detectors {
		p := fmt.Sprintf("masking.detectors[%d]", i)
		switch d {
		case DetectorPAN, DetectorTrack, DetectorExpiry, DetectorCVV:
			if seenDet[d] {
				v.errf(p, "detector %s is listed twice", d)
			}
			seenDet[d] = true
		default:
			v.errf(p, "unknown detector %q; want pan, track, expiry or cvv", d)
		}
	}
	v.globs("masking.columns", m.Columns)
	seen := map[string]string{}
	for i, r := range m.Rules {
		p := fmt.Sprintf("masking.rules[%d]", i)
		if v.name(p+".name", "masking rule", r.Name) {
			v.unique(seen, p+".name", "masking rule", r.Name)
		}
		if r.Pattern == "" {
			v.errf(p+".pattern", `required: a regular expression (RE2 syntax), e.g. '\b\d{3}-\d{2}-\d{4}\b'`)
			continue
		}
		re, err := regexp.Compile(r.Pattern)
		if err != nil {
			v.errf(p+".pattern", "invalid regular expression: %v", err)
			continue
		}
		if re.MatchString("") {
			v.errf(p+".pattern", "%q matches the empty string, so it would mask between every character; use + instead of * or anchor it", r.Pattern)
		}
	}
	for i, name := range m.UnmaskRoles {
		if !roles[name] {
			v.errf(fmt.Sprintf("masking.unmask_roles[%d]", i), "unknown role %q (%s)", name, known(roles))
		}
	}
}

// audit checks audit.syslog.
func (v *validator) audit(a Audit) {
	sl := a.Syslog
	if sl == nil {
		return
	}
	const p = "audit.syslog"
	switch sl.Network {
	case "udp", "tcp":
		if sl.Address == "" {
			v.errf(p+".address", "required: the collector's host:port, e.g. 127.0.0.1:514")
		} else if _, port, err := net.SplitHostPort(sl.Address); err != nil || !validPort(port) {
			v.errf(p+".address", "want host:port like siem.example.com:6514, got %q", sl.Address)
		}
	case "unix":
		if sl.Address == "" || !strings.HasPrefix(sl.Address, "/") {
			v.errf(p+".address", "want the absolute path of a local syslog socket, e.g. /dev/log, got %q", sl.Address)
		}
	case "":
		v.errf(p+".network", "required: udp, tcp or unix")
	default:
		v.errf(p+".network", "want udp, tcp or unix, got %q", sl.Network)
	}
	if sl.AppName != "" {
		if len(sl.AppName) > 48 || strings.IndexFunc(sl.AppName, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
			v.errf(p+".app_name", "want at most 48 printable ASCII characters without spaces (RFC 5424 APP-NAME), got %q", sl.AppName)
		}
	}
	if sl.Facility != "" && !slices.Contains(SyslogFacilities, sl.Facility) {
		v.errf(p+".facility", "unknown facility %q; want one of %s", sl.Facility, strings.Join(SyslogFacilities, ", "))
	}
	if sl.Queue < 0 {
		v.errf(p+".queue", "must be 0 (the default, 4096) or more")
	}
}

// metrics checks metrics.listen. The endpoint has no authentication, so
// an address beyond loopback is allowed but warned about.
func (v *validator) metrics(m Metrics) {
	if m.Listen == "" {
		return
	}
	host, port, err := net.SplitHostPort(m.Listen)
	if err != nil || !validPort(port) {
		v.errf("metrics.listen", "want host:port like 127.0.0.1:9102, got %q", m.Listen)
		return
	}
	if !isLoopback(host) {
		v.warnf("metrics.listen", "%s is reachable beyond this host and /metrics has no authentication; bind to 127.0.0.1 or firewall the port", m.Listen)
	}
}
