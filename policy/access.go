package policy

import "slices"

// The decisions below fail closed: no groups, no matching role, an unknown
// target or a nil *Config all mean no. Groups come from the user's
// certificate, which the keys package has already verified.

// RolesFor returns the roles held by an identity with these groups, in
// config order. A role is held when any of its groups is among them.
func (c *Config) RolesFor(groups []string) []Role {
	if c == nil || len(groups) == 0 {
		return nil
	}
	var out []Role
	for _, r := range c.Roles {
		for _, g := range r.Groups {
			if slices.Contains(groups, g) {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// TargetsFor returns the targets an identity with these groups may reach,
// in config order, each once even when several roles grant it.
func (c *Config) TargetsFor(groups []string) []Target {
	ix := c.index()
	if ix == nil || len(groups) == 0 {
		return nil
	}
	roles := ix.held(groups)
	var out []Target
	for i, t := range c.Targets {
		if roles.intersects(ix.perTarget[i].reach) {
			out = append(out, t)
		}
	}
	return out
}

// Target returns the configured target with this exact name.
func (c *Config) Target(name string) (Target, bool) {
	ix := c.index()
	if ix == nil {
		return Target{}, false
	}
	if pos, ok := ix.target[name]; ok {
		return c.Targets[pos], true
	}
	return Target{}, false
}

// CanAccess reports whether an identity with these groups may open a
// session to the named target. Rules may still deny or hold what it opens.
func (c *Config) CanAccess(groups []string, target string) bool {
	ix, ti, ok := c.lookup(target)
	return ok && ix.held(groups).intersects(ti.reach)
}

// CanApprove reports whether an identity with these groups may grant
// approval requests for the named target (a role's approve globs).
// Whoever asked for an approval never grants it; that is the broker's check.
func (c *Config) CanApprove(groups []string, target string) bool {
	ix, ti, ok := c.lookup(target)
	return ok && ix.held(groups).intersects(ti.approve)
}

// IsAuditor reports whether an identity with these groups holds a role with
// audit: true, which lists and replays every session and reads the audit log.
func (c *Config) IsAuditor(groups []string) bool {
	for _, r := range c.RolesFor(groups) {
		if r.Audit {
			return true
		}
	}
	return false
}

// RulesFor returns the rules that apply to an identity with these groups on
// the named target, in config order (the bastion applies the first whose
// statements or commands match). A rule without roles applies to everyone.
// A name that is not a configured target has no rules.
func (c *Config) RulesFor(groups []string, target string) []Rule {
	var out []Rule
	c.eachRule(groups, target, func(r Rule) bool {
		out = append(out, r)
		return false
	})
	return out
}

// Unmasked reports whether a user with these groups may see clear values
// on screen (a role of theirs is in masking.unmask_roles). Recordings are
// masked for everyone regardless.
func (c *Config) Unmasked(groups []string) bool {
	if c == nil || len(c.Masking.UnmaskRoles) == 0 {
		return false
	}
	for _, r := range c.RolesFor(groups) {
		if slices.Contains(c.Masking.UnmaskRoles, r.Name) {
			return true
		}
	}
	return false
}
