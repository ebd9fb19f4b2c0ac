package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// nodeBudget bounds how many nodes one decode visits. Aliases share
// subtrees, so a small file could otherwise expand without limit.
const nodeBudget = 1 << 20

// decoder walks a yaml.Node tree into a Config, key by key, so that every
// problem carries its key path and line and decoding goes on after one.
type decoder struct {
	file   string
	errs   ConfigErrors
	lines  map[string]int  // key path → line, for validation messages
	bad    map[string]bool // key paths already reported, to avoid follow-on noise
	budget int
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, lines: map[string]int{}, bad: map[string]bool{}, budget: nodeBudget}
}

// field decodes the value of one key; path is the key's path.
type field func(v *yaml.Node, path string)

type pair struct{ key, val *yaml.Node }

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, &ConfigError{File: d.file, Line: line, Key: path, Msg: fmt.Sprintf(format, args...)})
	d.bad[path] = true
}

// resolve follows an alias to its anchored node and charges the budget. It
// returns nil once the budget is spent, after reporting it once.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	if n == nil || n.Kind == yaml.AliasNode {
		return nil
	}
	d.budget--
	if d.budget == 0 {
		d.fail(n, "", "the document expands to more than %d nodes (aliases?); write it out plainly", nodeBudget)
	}
	if d.budget <= 0 {
		return nil
	}
	return n
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// describe names a node's type for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the text %q", n.Value)
		case "!!bool":
			return "true/false " + n.Value
		case "!!int", "!!float":
			return "the number " + n.Value
		case "!!null":
			return "null"
		default:
			return fmt.Sprintf("%s %q", n.ShortTag(), n.Value)
		}
	}
	return "an unsupported YAML node"
}

func isNull(n *yaml.Node) bool {
	return n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// mapping decodes n as a mapping whose keys are the fields given; want
// describes the expected shape for the type error. It reports unknown and
// duplicate keys and inline secrets. Null values leave the default in place.
func (d *decoder) mapping(n *yaml.Node, path, want string, fields map[string]field) bool {
	n = d.resolve(n)
	if n == nil {
		return false
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want %s, got %s", want, describe(n))
		return false
	}
	seen := map[string]int{}
	for _, kv := range d.pairs(n, path, 0) {
		k := kv.key
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "keys must be plain words, got %s", describe(k))
			continue
		}
		p := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.fail(k, p, "duplicate key %s (first set on line %d); keep one", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		fn, ok := fields[k.Value]
		if !ok {
			d.unknown(k, p, fields)
			continue
		}
		d.lines[p] = k.Line
		if v := d.resolve(kv.val); v != nil && !isNull(v) {
			fn(v, p)
		}
	}
	return true
}

// pairs lists a mapping's key/value pairs with YAML merge keys (<<: *base)
// expanded: explicit keys win over merged ones, earlier merges over later.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []pair {
	var own, merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(k, v, path, depth)...)
			continue
		}
		own = append(own, pair{k, v})
	}
	if len(merged) == 0 {
		return own
	}
	have := map[string]bool{}
	for _, p := range own {
		have[p.key.Value] = true
	}
	for _, p := range merged {
		if !have[p.key.Value] {
			have[p.key.Value] = true
			own = append(own, p)
		}
	}
	return own
}

func (d *decoder) merge(k, v *yaml.Node, path string, depth int) []pair {
	if depth > 8 {
		d.fail(k, join(path, "<<"), "merge keys nest too deep")
		return nil
	}
	v = d.resolve(v)
	if v == nil {
		return nil
	}
	var sources []*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		sources = []*yaml.Node{v}
	case yaml.SequenceNode:
		for _, s := range v.Content {
			if s = d.resolve(s); s != nil {
				sources = append(sources, s)
			}
		}
	default:
		sources = []*yaml.Node{v}
	}
	var out []pair
	for _, s := range sources {
		if s.Kind != yaml.MappingNode {
			d.fail(s, join(path, "<<"), "a merge key needs a mapping (<<: *anchor), got %s", describe(s))
			continue
		}
		out = append(out, d.pairs(s, path, depth+1)...)
	}
	return out
}

// isSecretKey reports whether a key name would put a secret inline.
func isSecretKey(k string) bool {
	switch k {
	case "password", "passwd", "secret", "client_secret", "token", "api_key", "private_key", "passphrase":
		return true
	}
	return false
}

func (d *decoder) unknown(k *yaml.Node, p string, fields map[string]field) {
	known := make([]string, 0, len(fields))
	for name := range fields {
		known = append(known, name)
	}
	slices.Sort(known)
	if isSecretKey(k.Value) {
		var files, envs []string
		for _, name := range known {
			if !strings.Contains(name, "secret") && !strings.Contains(name, "password") {
				continue
			}
			if strings.HasSuffix(name, "_file") {
				files = append(files, name)
			} else if strings.HasSuffix(name, "_env") {
				envs = append(envs, name)
			}
		}
		msg := "secrets are never written inline (the config lands in backups, diffs and tickets); "
		if len(files) > 0 {
			msg += "put it in a file only the bastion can read and set " + strings.Join(files, " or ")
			if len(envs) > 0 {
				msg += ", or name an environment variable holding it with " + strings.Join(envs, " or ")
			}
		} else {
			msg += "keep it in a file only the bastion can read"
		}
		d.fail(k, p, "%s", msg)
		return
	}
	if s := closest(k.Value, known); s != "" {
		d.fail(k, p, "unknown key %s; did you mean %s?", k.Value, s)
		return
	}
	d.fail(k, p, "unknown key %s; known keys here: %s", k.Value, strings.Join(known, ", "))
}

// closest returns the known word within edit distance 2 of s, if any.
func closest(s string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(s, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64 // not worth suggesting, and keeps fuzzed keys cheap
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// text decodes a scalar into a string. Numbers are kept as written, since
// a user "0755" or client_id 12345 is text; true/false are refused because
// they are almost always a missing quote.
func (d *decoder) text(dst *string) field {
	return func(n *yaml.Node, path string) {
		if s, ok := d.scalarText(n, path); ok {
			*dst = s
		}
	}
}

func (d *decoder) scalarText(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "want a string, got %s", describe(n))
		return "", false
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float":
		return n.Value, true
	}
	d.fail(n, path, "want a string, got %s; quote it if you mean the text", describe(n))
	return "", false
}

func (d *decoder) boolean(dst *bool) field {
	return func(n *yaml.Node, path string) {
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.fail(n, path, "want true or false, got %s", describe(n))
			return
		}
		*dst = b
	}
}

func (d *decoder) integer(dst *int) field {
	return func(n *yaml.Node, path string) {
		var i int
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			d.fail(n, path, "want a whole number, got %s", describe(n))
			return
		}
		*dst = i
	}
}

func (d *decoder) duration(dst *Duration) field {
	return func(n *yaml.Node, path string) {
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!str" && n.ShortTag() != "!!int") {
			d.fail(n, path, "want a duration like 15m or 400d, got %s", describe(n))
			return
		}
		v, err := ParseDuration(n.Value)
		if err != nil {
			d.fail(n, path, "%v", err)
			return
		}
		*dst = Duration(v)
	}
}

// list decodes a sequence, calling item for each element with its path.
func (d *decoder) list(n *yaml.Node, path, want string, item func(n *yaml.Node, path string)) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "want %s, got %s", want, describe(n))
		return
	}
	for i, it := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = it.Line
		if it = d.resolve(it); it != nil {
			item(it, p)
		}
	}
}

// strings decodes a list of strings. An explicit empty list gives an empty,
// non-nil slice, so "detectors: []" can turn a default off.
func (d *decoder) strings(dst *[]string) field {
	return func(n *yaml.Node, path string) {
		out := []string{}
		d.list(n, path, "a list like [a, b]", func(n *yaml.Node, p string) {
			if s, ok := d.scalarText(n, p); ok {
				out = append(out, s)
			}
		})
		*dst = out
	}
}

func (d *decoder) stringMap(dst *map[string]string) field {
	return func(n *yaml.Node, path string) {
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "want a mapping like { NAME: value }, got %s", describe(n))
			return
		}
		out := map[string]string{}
		seen := map[string]int{}
		for _, kv := range d.pairs(n, path, 0) {
			k, ok := d.scalarText(kv.key, path)
			if !ok {
				continue
			}
			p := join(path, k)
			if first, dup := seen[k]; dup {
				d.fail(kv.key, p, "duplicate key %s (first set on line %d); keep one", k, first)
				continue
			}
			seen[k] = kv.key.Line
			d.lines[p] = kv.key.Line
			v := d.resolve(kv.val)
			if v == nil {
				continue
			}
			if isNull(v) {
				out[k] = ""
				continue
			}
			if s, ok := d.scalarText(v, p); ok {
				out[k] = s
			}
		}
		*dst = out
	}
}

// config decodes the root mapping into c, which holds the defaults.
func (d *decoder) config(root *yaml.Node, c *Config) {
	d.lines[""] = root.Line
	d.mapping(root, "", "a mapping of settings like listen: \":2222\"", map[string]field{
		"listen":   d.text(&c.Listen),
		"data_dir": d.text(&c.DataDir),
		"motd":     d.text(&c.Motd),
		"certificates": func(n *yaml.Node, p string) {
			d.mapping(n, p, "a mapping like { ttl: 8h, max_ttl: 24h }", map[string]field{
				"ttl":     d.duration(&c.Certificates.TTL),
				"max_ttl": d.duration(&c.Certificates.MaxTTL),
			})
		},
		"oidc": func(n *yaml.Node, p string) {
			o := &c.OIDC
			d.mapping(n, p, "a mapping like { issuer: https://idp.example.com, client_id: bastion }", map[string]field{
				"issuer":             d.text(&o.Issuer),
				"client_id":          d.text(&o.ClientID),
				"client_secret_file": d.text(&o.ClientSecretFile),
				"client_secret_env":  d.text(&o.ClientSecretEnv),
				"username_claim":     d.text(&o.UsernameClaim),
				"groups_claim":       d.text(&o.GroupsClaim),
				"require_mfa":        d.boolean(&o.RequireMFA),
				"allowed_domains":    d.strings(&o.AllowedDomains),
				"required_groups":    d.strings(&o.RequiredGroups),
			})
		},
		"session": func(n *yaml.Node, p string) {
			d.mapping(n, p, "a mapping like { idle_timeout: 15m, max_duration: 12h }", map[string]field{
				"idle_timeout":  d.duration(&c.Session.IdleTimeout),
				"max_duration":  d.duration(&c.Session.MaxDuration),
				"query_timeout": d.duration(&c.Session.QueryTimeout),
			})
		},
		"recording": func(n *yaml.Node, p string) {
			r := &c.Recording
			d.mapping(n, p, "a mapping like { retention: 400d, on_failure: terminate }", map[string]field{
				"input":          d.boolean(&r.Input),
				"flush_interval": d.duration(&r.FlushInterval),
				"retention":      d.duration(&r.Retention),
				"on_failure":     d.text(&r.OnFailure),
			})
		},
		"targets": func(n *yaml.Node, p string) {
			d.list(n, p, "a list of targets like - { name: web-1, kind: ssh, ... }", func(n *yaml.Node, p string) {
				t := Target{Line: n.Line}
				d.mapping(n, p, "a target like { name: web-1, kind: ssh, ... }", map[string]field{
					"name":          d.text(&t.Name),
					"kind":          d.text(&t.Kind),
					"description":   d.text(&t.Description),
					"address":       d.text(&t.Address),
					"user":          d.text(&t.User),
					"identity_file": d.text(&t.IdentityFile),
					"known_hosts":   d.text(&t.KnownHosts),
					"auth":          d.text(&t.Auth),
					"dsn":           d.text(&t.DSN),
					"password_file": d.text(&t.PasswordFile),
					"password_env":  d.text(&t.PasswordEnv),
					"path":          d.text(&t.Path),
					"argv":          d.strings(&t.Argv),
					"env":           d.stringMap(&t.Env),
				})
				c.Targets = append(c.Targets, t)
			})
		},
		"roles": func(n *yaml.Node, p string) {
			d.list(n, p, "a list of roles like - { name: sre, groups: [sre], targets: [\"web-*\"] }", func(n *yaml.Node, p string) {
				r := Role{Line: n.Line}
				d.mapping(n, p, "a role like { name: sre, groups: [sre], targets: [\"web-*\"] }", map[string]field{
					"name":    d.text(&r.Name),
					"groups":  d.strings(&r.Groups),
					"targets": d.strings(&r.Targets),
					"approve": d.strings(&r.Approve),
					"audit":   d.boolean(&r.Audit),
				})
				c.Roles = append(c.Roles, r)
			})
		},
		"rules": func(n *yaml.Node, p string) {
			d.list(n, p, "a list of rules like - { name: x, targets: [\"db\"], statements: [write], action: approve }", func(n *yaml.Node, p string) {
				r := Rule{Line: n.Line}
				d.mapping(n, p, "a rule like { name: x, targets: [\"db\"], statements: [write], action: approve }", map[string]field{
					"name":       d.text(&r.Name),
					"targets":    d.strings(&r.Targets),
					"roles":      d.strings(&r.Roles),
					"statements": d.strings(&r.Statements),
					"commands":   d.strings(&r.Commands),
					"access":     d.text(&r.Access),
					"action":     d.text(&r.Action),
				})
				c.Rules = append(c.Rules, r)
			})
		},
		"approvals": func(n *yaml.Node, p string) {
			d.mapping(n, p, "a mapping like { ttl: 15m, required: 1 }", map[string]field{
				"ttl":      d.duration(&c.Approvals.TTL),
				"required": d.integer(&c.Approvals.Required),
				"window":   d.duration(&c.Approvals.Window),
				"webhook": func(n *yaml.Node, p string) {
					w := &Webhook{Timeout: Duration(5 * time.Second), Retries: 3}
					if d.mapping(n, p, "a mapping like { url: https://hooks.example.com/..., timeout: 5s, retries: 3 }", map[string]field{
						"url":      d.text(&w.URL),
						"url_file": d.text(&w.URLFile),
						"url_env":  d.text(&w.URLEnv),
						"timeout":  d.duration(&w.Timeout),
						"retries":  d.integer(&w.Retries),
					}) {
						c.Approvals.Webhook = w
					}
				},
			})
		},
		"audit": func(n *yaml.Node, p string) {
			d.mapping(n, p, "a mapping like { syslog: { network: udp, address: 127.0.0.1:514 } }", map[string]field{
				"syslog": func(n *yaml.Node, p string) {
					sl := &Syslog{}
					if d.mapping(n, p, "a mapping like { network: tcp, address: siem.example.com:6514, facility: auth }", map[string]field{
						"network":  d.text(&sl.Network),
						"address":  d.text(&sl.Address),
						"app_name": d.text(&sl.AppName),
						"facility": d.text(&sl.Facility),
						"queue":    d.integer(&sl.Queue),
					}) {
						c.Audit.Syslog = sl
					}
				},
			})
		},
		"metrics": func(n *yaml.Node, p string) {
			d.mapping(n, p, "a mapping like { listen: 127.0.0.1:9102 }", map[string]field{
				"listen": d.text(&c.Metrics.Listen),
			})
		},
		"masking": func(n *yaml.Node, p string) {
			m := &c.Masking
			d.mapping(n, p, "a mapping like { detectors: [pan, track, expiry, cvv] }", map[string]field{
				"detectors":    d.strings(&m.Detectors),
				"columns":      d.strings(&m.Columns),
				"unmask_roles": d.strings(&m.UnmaskRoles),
				"rules": func(n *yaml.Node, p string) {
					d.list(n, p, "a list like - { name: ssn, pattern: '\\d{3}-\\d{2}-\\d{4}' }", func(n *yaml.Node, p string) {
						var r MaskRule
						d.mapping(n, p, "a mask rule like { name: ssn, pattern: '\\d{3}-\\d{2}-\\d{4}' }", map[string]field{
							"name":        d.text(&r.Name),
							"pattern":     d.text(&r.Pattern),
							"replacement": d.text(&r.Replacement),
						})
						m.Rules = append(m.Rules, r)
					})
				},
			})
		},
	})
}
