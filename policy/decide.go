package policy

import "strings"

// Decision is what policy says about one action of a session.
type Decision struct {
	// Action is ActionAllow, ActionDeny or ActionApprove.
	Action string
	// Rule names the rule that decided; empty when no rule matched and the
	// role's reach of the target allowed it.
	Rule string
}

// DecideCommand decides a command line run on target (an exec on an ssh
// or command target). The first matching rule of the user's roles decides,
// in config order; with no matching rule, a target the user may reach
// allows it. It fails closed: no access to the target means deny.
func (c *Config) DecideCommand(groups []string, target, command string) Decision {
	if !c.CanAccess(groups, target) {
		return Decision{Action: ActionDeny}
	}
	for _, r := range c.RulesFor(groups, target) {
		if r.Access != AccessCommand {
			continue
		}
		for _, g := range r.Commands {
			if MatchCommand(g, command) {
				return Decision{Action: r.Action, Rule: r.Name}
			}
		}
	}
	return Decision{Action: ActionAllow}
}

// DecideSession decides opening a session on target at all (rules with
// access: session, e.g. a whole target that needs approval first).
func (c *Config) DecideSession(groups []string, target string) Decision {
	if !c.CanAccess(groups, target) {
		return Decision{Action: ActionDeny}
	}
	for _, r := range c.RulesFor(groups, target) {
		if r.Access == AccessSession {
			return Decision{Action: r.Action, Rule: r.Name}
		}
	}
	return Decision{Action: ActionAllow}
}

// MatchCommand matches a command line against a rule's pattern: '*'
// matches any run of characters (slashes and spaces included, unlike
// path.Match, so "rm -rf *" holds "rm -rf /var/lib"), '?' one character.
// Runs of white space in both compare as one space, and leading and
// trailing space is ignored, so extra spaces do not slip past a rule.
func MatchCommand(pattern, command string) bool {
	return globMatch(normalizeSpace(pattern), normalizeSpace(command))
}

func normalizeSpace(s string) string { return strings.Join(strings.Fields(s), " ") }

// globMatch is the classic iterative wildcard match with backtracking to
// the last '*': linear in practice, no recursion on hostile input.
func globMatch(p, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			// Before the literal case: a '*' in the pattern is always a
			// wildcard, even facing a '*' in the command.
			star, mark = pi, si
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
