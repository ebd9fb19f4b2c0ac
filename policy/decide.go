package policy

import (
	"slices"
	"strings"
)

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
	d := Decision{Action: ActionAllow}
	command = normalizeSpace(command)
	c.eachRule(groups, target, func(r Rule) bool {
		if r.Access != AccessCommand {
			return false
		}
		for _, g := range r.Commands {
			if globMatch(normalizeSpace(g), command) {
				d = Decision{Action: r.Action, Rule: r.Name}
				return true
			}
		}
		return false
	})
	return d
}

// DecideSession decides opening a session on target at all (rules with
// access: session, e.g. a whole target that needs approval first).
func (c *Config) DecideSession(groups []string, target string) Decision {
	if !c.CanAccess(groups, target) {
		return Decision{Action: ActionDeny}
	}
	d := Decision{Action: ActionAllow}
	c.eachRule(groups, target, func(r Rule) bool {
		if r.Access == AccessSession {
			d = Decision{Action: r.Action, Rule: r.Name}
			return true
		}
		return false
	})
	return d
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

// DecideClass decides a SQL statement of the given class (StatementRead,
// ...) on target: the policy half of DecideStatement, without the parse,
// so that it stays a cheap pure function whatever the classifier costs.
func (c *Config) DecideClass(groups []string, target, class string) Decision {
	if !c.CanAccess(groups, target) {
		return Decision{Action: ActionDeny}
	}
	d := Decision{Action: ActionAllow}
	c.eachRule(groups, target, func(r Rule) bool {
		if r.Access == AccessStatement && slices.Contains(r.Statements, class) {
			d = Decision{Action: r.Action, Rule: r.Name}
			return true
		}
		return false
	})
	return d
}
