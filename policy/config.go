package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Target kinds: how the bastion reaches a target.
const (
	KindSSH      = "ssh"      // x/crypto/ssh client to Address
	KindPostgres = "postgres" // built-in SQL REPL over DSN
	KindMySQL    = "mysql"    // built-in SQL REPL over DSN (MySQL and MariaDB)
	KindSQLite   = "sqlite"   // built-in SQL REPL over the file at Path
	KindCommand  = "command"  // Argv run on the bastion in a PTY
)

// Credentials an ssh target is reached with.
const (
	// AuthKey logs in with the private key at IdentityFile.
	AuthKey = "key"
	// AuthCA logs in with a one-minute certificate the bastion signs with its
	// target CA, so no long-lived key to the target exists at all.
	AuthCA = "ca"
)

// What the bastion does when a recording cannot be written.
const (
	// OnFailureTerminate ends the session: an unrecorded session is an
	// unaudited session (the default).
	OnFailureTerminate = "terminate"
	// OnFailureContinue keeps the session running and logs the failure.
	OnFailureContinue = "continue"
)

// Rule actions.
const (
	ActionAllow   = "allow"
	ActionDeny    = "deny"
	ActionApprove = "approve" // needs Approvals.Required approvals first
)

// What a rule decides: opening a session, a SQL statement or a command.
// Access is derived from the rule when not written: statements → statement,
// commands → command, neither → session.
const (
	AccessSession   = "session"
	AccessStatement = "statement"
	AccessCommand   = "command"
)

// Statement classes a rule's statements may name. The SQL classifier sorts
// every statement into exactly one; "unknown" is what it cannot parse, so a
// rule can treat the unparseable as dangerous.
const (
	StatementRead    = "read"
	StatementWrite   = "write"
	StatementDDL     = "ddl"
	StatementAdmin   = "admin"
	StatementUnknown = "unknown"
)

// Masking detectors for card data (PCI DSS 3.4).
const (
	DetectorPAN    = "pan"    // primary account numbers passing the Luhn check
	DetectorTrack  = "track"  // magnetic-stripe track 1/2 data
	DetectorExpiry = "expiry" // expiry dates next to a PAN
	DetectorCVV    = "cvv"    // card verification values next to a PAN
)

// maxConfigSize bounds what Parse reads: a bastion config is a few KiB, and
// a runaway file should fail fast instead of eating memory.
const maxConfigSize = 4 << 20

// Config is the whole of bastion.yaml, with defaults applied and relative
// paths resolved. Treat it as read-only once loaded.
type Config struct {
	// Listen is the SSH listen address, host:port (":2222"). Required.
	Listen string `yaml:"listen"`
	// DataDir holds bastion.db and the CA and host keys. Required.
	DataDir string `yaml:"data_dir"`
	// Motd is a short message of the day shown at the start of interactive
	// sessions (a legal notice, a maintenance window).
	Motd         string       `yaml:"motd,omitempty"`
	Certificates Certificates `yaml:"certificates"`
	OIDC         OIDC         `yaml:"oidc,omitempty"`
	Session      Session      `yaml:"session"`
	Recording    Recording    `yaml:"recording"`
	Targets      []Target     `yaml:"targets,omitempty"`
	Roles        []Role       `yaml:"roles,omitempty"`
	Rules        []Rule       `yaml:"rules,omitempty"`
	Approvals    Approvals    `yaml:"approvals"`
	Masking      Masking      `yaml:"masking"`
	// Audit configures copies of the audit trail outside the store.
	Audit Audit `yaml:"audit,omitempty"`
	// Metrics configures the Prometheus endpoint; off unless Listen is set.
	Metrics Metrics `yaml:"metrics,omitempty"`

	// Path is the file the config came from, for messages. Relative paths in
	// the file (data_dir, identity_file, known_hosts, path, password_file,
	// client_secret_file) are resolved against its directory at load.
	Path string `yaml:"-"`
	// Warnings are problems that do not stop the bastion from starting, such
	// as a role glob that matches no target yet. check-config prints them.
	Warnings ConfigErrors `yaml:"-"`

	// ix is the decision index Parse builds (access_index.go).
	ix *index
}

// Certificates sets the lifetime of user certificates the bastion issues.
type Certificates struct {
	// TTL is the lifetime given when none is asked for. Default 8h: one
	// working day, so a lost laptop's certificate dies overnight.
	TTL Duration `yaml:"ttl"`
	// MaxTTL caps any requested lifetime, including `keys sign --ttl`.
	// Default 24h. TTL must not exceed it.
	MaxTTL Duration `yaml:"max_ttl"`
}

// OIDC configures `ssh login@bastion`: the device flow against an identity
// provider that turns a login into a certificate. Leave Issuer empty to
// turn login off (certificates then come only from `bastion keys sign`).
type OIDC struct {
	Issuer   string `yaml:"issuer,omitempty"` // https URL of the provider
	ClientID string `yaml:"client_id,omitempty"`
	// ClientSecretFile holds the client secret; public clients need none.
	ClientSecretFile string `yaml:"client_secret_file,omitempty"`
	// ClientSecretEnv names an environment variable holding the secret,
	// instead of ClientSecretFile.
	ClientSecretEnv string `yaml:"client_secret_env,omitempty"`
	// UsernameClaim is the ID-token claim that becomes the user name.
	// Default preferred_username.
	UsernameClaim string `yaml:"username_claim,omitempty"`
	// GroupsClaim is the ID-token claim listing groups. Default groups.
	GroupsClaim string `yaml:"groups_claim,omitempty"`
	// RequireMFA rejects ID tokens whose amr claim shows no second factor
	// (PCI DSS 8.4.2 wants MFA for access to the cardholder environment).
	RequireMFA bool `yaml:"require_mfa,omitempty"`
	// AllowedDomains, if set, admits only users whose email domain is listed.
	AllowedDomains []string `yaml:"allowed_domains,omitempty"`
	// RequiredGroups, if set, admits only users in at least one of them.
	RequiredGroups []string `yaml:"required_groups,omitempty"`
}

// Enabled reports whether OIDC login is configured.
func (o OIDC) Enabled() bool { return o.Issuer != "" }

// Session limits how long a session may live.
type Session struct {
	// IdleTimeout ends a session with no input for this long. Default 15m,
	// the PCI DSS 8.2.8 maximum.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxDuration ends any session after this long. Default 12h.
	MaxDuration Duration `yaml:"max_duration"`
	// QueryTimeout cancels a SQL statement on the server after this long;
	// 0 (the default) means none.
	QueryTimeout Duration `yaml:"query_timeout,omitempty"`
}

// Recording configures session recording.
type Recording struct {
	// Input also records keystrokes. Off by default: typed passwords would
	// land in the recording.
	Input bool `yaml:"input"`
	// FlushInterval is how often buffered output reaches the store, so the
	// most a crash loses. Default 1s, at most 1m.
	FlushInterval Duration `yaml:"flush_interval"`
	// Retention is how long recordings and audit records are kept. Default
	// 400d; at least 365d because PCI DSS 10.5.1 keeps audit history a year.
	Retention Duration `yaml:"retention"`
	// OnFailure is OnFailureTerminate (default) or OnFailureContinue.
	OnFailure string `yaml:"on_failure"`
}

// Target is one place users reach through the bastion.
type Target struct {
	// Name is what users type (`ssh NAME@bastion`): [a-z0-9][a-z0-9._-]*,
	// not a built-in word such as whoami.
	Name        string `yaml:"name"`
	Kind        string `yaml:"kind"` // KindSSH, KindPostgres, KindMySQL, KindSQLite, KindCommand
	Description string `yaml:"description,omitempty"`

	// ssh
	Address      string `yaml:"address,omitempty"` // host:port
	User         string `yaml:"user,omitempty"`
	IdentityFile string `yaml:"identity_file,omitempty"`
	KnownHosts   string `yaml:"known_hosts,omitempty"` // host keys or @cert-authority lines
	// Auth is AuthKey or AuthCA; after load it is never empty for ssh
	// targets (AuthKey when identity_file is set and auth is not).
	Auth string `yaml:"auth,omitempty"`

	// postgres, mysql, sqlite
	DSN          string `yaml:"dsn,omitempty"`           // without a password
	PasswordFile string `yaml:"password_file,omitempty"` // password read at connect time
	PasswordEnv  string `yaml:"password_env,omitempty"`  // or an environment variable holding it
	Path         string `yaml:"path,omitempty"`          // sqlite database file

	// command
	Argv []string          `yaml:"argv,omitempty"`
	Env  map[string]string `yaml:"env,omitempty"` // added to the bastion's environment; no secrets

	// Line is where the target starts in the file, for later messages.
	Line int `yaml:"-"`
}

// IsSQL reports whether the target is reached through the built-in SQL REPL,
// where statement rules and column masking apply.
func (t Target) IsSQL() bool {
	return t.Kind == KindPostgres || t.Kind == KindMySQL || t.Kind == KindSQLite
}

// Role grants what members of some groups may do.
type Role struct {
	Name string `yaml:"name"`
	// Groups are the certificate groups that hold this role (any one is enough).
	Groups []string `yaml:"groups,omitempty"`
	// Targets are globs (path.Match syntax) of target names the role may reach.
	Targets []string `yaml:"targets,omitempty"`
	// Approve are globs of targets whose approval requests the role may grant.
	Approve []string `yaml:"approve,omitempty"`
	// Audit lets the role list and replay every session and read the audit log.
	Audit bool `yaml:"audit,omitempty"`
	// Line is where the role starts in the file.
	Line int `yaml:"-"`
}

// Rule decides a session, statement or command on some targets, for some
// roles, before it runs. The bastion applies the first rule that matches.
type Rule struct {
	Name string `yaml:"name"`
	// Targets are globs of target names; each must match a configured target.
	Targets []string `yaml:"targets"`
	// Roles are role names the rule applies to; empty means every role.
	Roles []string `yaml:"roles,omitempty"`
	// Statements are statement classes (StatementRead, ...) for SQL targets.
	Statements []string `yaml:"statements,omitempty"`
	// Commands are globs (path.Match syntax) of command lines.
	Commands []string `yaml:"commands,omitempty"`
	// Access is AccessSession, AccessStatement or AccessCommand; derived from
	// Statements and Commands when not written, never empty after load.
	Access string `yaml:"access,omitempty"`
	// Action is ActionAllow, ActionDeny or ActionApprove. Required.
	Action string `yaml:"action"`
	// Line is where the rule starts in the file.
	Line int `yaml:"-"`
}

// Approvals configures the approval broker for ActionApprove rules.
type Approvals struct {
	// TTL is how long a request waits for its approvers before it expires;
	// an expired request cannot be granted. Default 15m.
	TTL Duration `yaml:"ttl"`
	// Required is how many distinct approvers must grant it. Default 1;
	// requesters never approve themselves.
	Required int `yaml:"required"`
	// Window is how long a granted request for a whole target (a rule with
	// access: session) keeps that target open to its requester: sessions
	// may open until it ends, and those still open then are ended. Default 1h.
	Window Duration `yaml:"window"`
	// Webhook, when set, is told of every request filed and decided.
	Webhook *Webhook `yaml:"webhook,omitempty"`
}

// ResolveURL returns the webhook's URL, from the config, its file or its
// environment variable, checked as at load (CheckWebhookURL).
func (w *Webhook) ResolveURL() (string, error) {
	u := w.URL
	switch {
	case w.URLFile != "":
		b, err := os.ReadFile(w.URLFile)
		if err != nil {
			return "", fmt.Errorf("approvals.webhook.url_file: %w", err)
		}
		u = strings.TrimSpace(string(b))
	case w.URLEnv != "":
		v, ok := os.LookupEnv(w.URLEnv)
		if !ok {
			return "", fmt.Errorf("approvals.webhook.url_env: $%s is not set", w.URLEnv)
		}
		u = strings.TrimSpace(v)
	}
	if err := CheckWebhookURL(u); err != nil {
		return "", fmt.Errorf("approvals.webhook: %w", err)
	}
	return u, nil
}

// Webhook is an HTTP endpoint (a Slack incoming webhook, or anything that
// takes a JSON POST) told of approval requests. It is a notification only:
// a slow or failing endpoint never blocks, grants or denies anything.
type Webhook struct {
	// URL receives the POST: https, or http to a loopback address only
	// (requests, statements and reasons travel in it). A URL with a token
	// in it (Slack's) is a credential: prefer URLFile or URLEnv, which the
	// bastion reads at each event. Exactly one of the three is required.
	URL string `yaml:"url,omitempty"`
	// URLFile holds the URL (one line); relative to the config's directory.
	URLFile string `yaml:"url_file,omitempty"`
	// URLEnv names an environment variable holding the URL.
	URLEnv string `yaml:"url_env,omitempty"`
	// Timeout bounds one attempt. Default 5s.
	Timeout Duration `yaml:"timeout"`
	// Retries is how many more attempts follow a failed one, with
	// backoff (1s, 2s, 4s, ...). Default 3.
	Retries int `yaml:"retries"`
}

// Masking configures what the masker hides from screens and recordings.
type Masking struct {
	// Detectors are built-in card-data detectors (DetectorPAN, ...). Default:
	// all of them; write an empty list to turn them off.
	Detectors []string `yaml:"detectors"`
	// Columns are globs of SQL column names whose values are always masked.
	Columns []string `yaml:"columns,omitempty"`
	// Rules are extra regular expressions to mask.
	Rules []MaskRule `yaml:"rules,omitempty"`
	// UnmaskRoles may see clear values on screen; recordings stay masked.
	UnmaskRoles []string `yaml:"unmask_roles,omitempty"`
}

// Audit configures copies of the audit trail; the trail itself always
// lives in the store.
type Audit struct {
	// Syslog, when set, sends every audit record to a syslog collector or
	// SIEM as an RFC 5424 message.
	Syslog *Syslog `yaml:"syslog,omitempty"`
}

// Syslog facilities audit.syslog.facility accepts.
var SyslogFacilities = []string{"auth", "authpriv", "daemon", "user", "syslog", "kern",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}

// Syslog is where audit records are copied to.
type Syslog struct {
	// Network is udp, tcp (octet-counted, RFC 6587) or unix (a local
	// socket such as /dev/log). Required.
	Network string `yaml:"network"`
	// Address is host:port for udp and tcp, a socket path for unix. Required.
	Address string `yaml:"address"`
	// AppName is the RFC 5424 APP-NAME; default bastion.
	AppName string `yaml:"app_name,omitempty"`
	// Facility is one of SyslogFacilities; default auth.
	Facility string `yaml:"facility,omitempty"`
	// Queue bounds the records waiting for a slow or absent collector;
	// beyond it records are dropped from the copy (never from the store)
	// and counted. Default 4096.
	Queue int `yaml:"queue,omitempty"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Listen is host:port for GET /metrics, e.g. 127.0.0.1:9102; empty
	// (the default) serves no metrics.
	Listen string `yaml:"listen,omitempty"`
}

// MaskRule masks every match of a regular expression (RE2 syntax).
type MaskRule struct {
	Name    string `yaml:"name"`
	Pattern string `yaml:"pattern"`
	// Replacement replaces each match; empty leaves the masker's default.
	Replacement string `yaml:"replacement,omitempty"`
}

// Defaults returns a Config holding every default and nothing else: no
// listen address, data directory, targets, roles or rules.
func Defaults() *Config {
	return &Config{
		Certificates: Certificates{TTL: Duration(8 * time.Hour), MaxTTL: Duration(24 * time.Hour)},
		OIDC:         OIDC{UsernameClaim: "preferred_username", GroupsClaim: "groups"},
		Session:      Session{IdleTimeout: Duration(15 * time.Minute), MaxDuration: Duration(12 * time.Hour)},
		Recording: Recording{
			FlushInterval: Duration(time.Second),
			Retention:     Duration(400 * day),
			OnFailure:     OnFailureTerminate,
		},
		Approvals: Approvals{TTL: Duration(15 * time.Minute), Required: 1, Window: Duration(time.Hour)},
		Masking:   Masking{Detectors: []string{DetectorPAN, DetectorTrack, DetectorExpiry, DetectorCVV}},
	}
}

// Load reads and validates the config file at path. Files the config names
// (keys, known_hosts, secrets) need not exist yet: checking them is the
// server's job at start.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w (point --config or BASTION_CONFIG at your file; bastion.example.yaml is a commented starting point)", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("resolve directory of config %s: %w", path, err)
	}
	return Parse(data, path, dir)
}

// Parse does what Load does from bytes: name is used in messages and as
// Config.Path, baseDir resolves relative paths (empty leaves them relative).
// The error, if any, is ConfigErrors holding every problem found.
func Parse(data []byte, name, baseDir string) (*Config, error) {
	if len(data) > maxConfigSize {
		return nil, ConfigErrors{{File: name, Msg: fmt.Sprintf("file is larger than %d bytes; a bastion config is a few KiB", maxConfigSize)}}
	}
	root, errs := parseYAML(data, name)
	if len(errs) > 0 {
		return nil, errs
	}
	if root == nil {
		return nil, ConfigErrors{{File: name, Msg: "the file is empty; copy bastion.example.yaml and edit it"}}
	}
	c := Defaults()
	c.Path = name
	d := newDecoder(name)
	d.config(root, c)
	v := &validator{file: name, lines: d.lines, bad: d.bad}
	v.config(c)
	all := append(d.errs, v.errs...)
	if len(all) > 0 {
		slices.SortStableFunc(all, func(a, b *ConfigError) int { return a.Line - b.Line })
		return nil, ConfigErrors(all)
	}
	slices.SortStableFunc(v.warns, func(a, b *ConfigError) int { return a.Line - b.Line })
	c.Warnings = v.warns
	c.resolvePaths(baseDir)
	c.ix = newIndex(c)
	return c, nil
}

// parseYAML reads exactly one YAML document. It returns a nil root for an
// empty document. The parser is third-party code fed untrusted bytes, so a
// panic in it becomes a config error rather than a crash.
func parseYAML(data []byte, name string) (root *yaml.Node, errs ConfigErrors) {
	defer func() {
		if r := recover(); r != nil {
			root, errs = nil, ConfigErrors{{File: name, Msg: fmt.Sprintf("invalid YAML: the parser failed (%v)", r)}}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, ConfigErrors{syntaxError(name, err)}
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, ConfigErrors{syntaxError(name, err)}
	default:
		return nil, ConfigErrors{{File: name, Line: next.Line, Msg: "a second YAML document starts here; bastion reads one document per file, so remove the extra ---"}}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root = doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, nil
	}
	return root, nil
}

// syntaxError turns a yaml.v3 error ("yaml: line 3: did not find expected
// key") into a ConfigError with the line split out.
func syntaxError(name string, err error) *ConfigError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil && n > 0 {
				line, msg = n, tail
			}
		}
	}
	return &ConfigError{File: name, Line: line, Msg: "invalid YAML: " + msg}
}

// resolvePaths makes relative file paths relative to baseDir, so that the
// config means the same thing whatever directory bastion starts in.
func (c *Config) resolvePaths(baseDir string) {
	if baseDir == "" {
		return
	}
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(baseDir, *p)
		}
	}
	abs(&c.DataDir)
	abs(&c.OIDC.ClientSecretFile)
	if c.Approvals.Webhook != nil {
		abs(&c.Approvals.Webhook.URLFile)
	}
	for i := range c.Targets {
		t := &c.Targets[i]
		abs(&t.IdentityFile)
		abs(&t.KnownHosts)
		abs(&t.PasswordFile)
		// SQLite also takes ":memory:" and "file:" URIs, which are not paths.
		if t.Path != ":memory:" && !strings.HasPrefix(t.Path, "file:") {
			abs(&t.Path)
		}
	}
}
