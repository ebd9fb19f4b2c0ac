package policy

import "github.com/bastion-dev/bastion/policy/sqlclass"

// Dialect is how a database target's statements are read: the SQL grammar
// of its kind and, for SQLite, the file the engine compiles them against
// (see package sqlclass).
type Dialect = sqlclass.Dialect

// DialectOf returns the dialect of a database target. A target that is not
// SQL gets a dialect that classifies everything as unknown.
func DialectOf(t Target) Dialect {
	return Dialect{Kind: t.Kind, Path: t.Path}
}

// ClassifyStatement sorts SQL into a statement class for rules: read,
// write, ddl, admin or unknown, parsed with a real parser for the dialect
// (libpg_query for PostgreSQL, TiDB's MySQL grammar for MySQL and MariaDB,
// the engine itself for SQLite). The whole tree counts, not the leading
// verb: a data-modifying CTE, SELECT ... INTO, FOR UPDATE, EXPLAIN ANALYZE of
// a write or a call of a function with side effects raises a read. A
// string with several statements takes the highest class of its parts.
// It fails closed: whatever the parser cannot place is unknown.
func ClassifyStatement(d Dialect, stmt string) string {
	return sqlclass.Classify(d, stmt)
}

// DecideStatement decides one SQL statement on target, read in dialect d,
// by its class: the first statement rule of the user's roles that names
// the class decides; with none, a target the user may reach allows it. It
// fails closed: no access to the target means deny.
func (c *Config) DecideStatement(d Dialect, groups []string, target, stmt string) Decision {
	if !c.CanAccess(groups, target) {
		return Decision{Action: ActionDeny}
	}
	class := ClassifyStatement(d, stmt)
	for _, r := range c.RulesFor(groups, target) {
		if r.Access != AccessStatement {
			continue
		}
		for _, s := range r.Statements {
			if s == class {
				return Decision{Action: r.Action, Rule: r.Name}
			}
		}
	}
	return Decision{Action: ActionAllow}
}
