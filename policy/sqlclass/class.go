package sqlclass

import (
	"context"
	"time"
)

// The statement classes, as policy rules spell them. They are ordered by
// danger: a statement made of several parts takes the highest class of its
// parts (see Max).
const (
	Read    = "read"    // returns data and changes nothing
	Write   = "write"   // changes rows (or takes row locks, or bumps a sequence)
	DDL     = "ddl"     // changes the schema
	Admin   = "admin"   // changes the server, the session's privileges or settings, or reaches outside the database
	Unknown = "unknown" // not placed: rules for unknown statements apply
)

// The kinds of database a Dialect names; they are the target kinds of the
// bastion's config.
const (
	KindPostgres = "postgres"
	KindMySQL    = "mysql" // MySQL and MariaDB
	KindSQLite   = "sqlite"
)

// Dialect says how to read a statement: the grammar of its database kind,
// and for SQLite the database file whose schema the engine compiles it
// against (SQLite resolves names when it prepares a statement).
type Dialect struct {
	// Kind is KindPostgres, KindMySQL or KindSQLite; anything else
	// classifies every statement as unknown.
	Kind string
	// Path is the SQLite database file; unused by the other kinds.
	Path string
}

// classifyTimeout bounds the work of one classification that touches a
// file (SQLite): a locked database must not hang the session's policy check.
const classifyTimeout = 5 * time.Second

// Classify returns the class of sql, one statement or several, in dialect
// d. It never fails: what it cannot read is Unknown.
func Classify(d Dialect, sql string) string {
	ctx, cancel := context.WithTimeout(context.Background(), classifyTimeout)
	defer cancel()
	return ClassifyContext(ctx, d, sql)
}

// ClassifyContext is Classify with a context that bounds the SQLite
// engine's work (opening the file, waiting for a schema lock); the parsers
// of the other dialects run in memory and do not watch it.
func ClassifyContext(ctx context.Context, d Dialect, sql string) string {
	switch d.Kind {
	case KindPostgres:
		return classifyPostgres(sql)
	case KindMySQL:
		return classifyMySQL(sql)
	case KindSQLite:
		return classifySQLite(ctx, d.Path, sql)
	}
	return Unknown
}

var rank = map[string]int{Read: 0, Write: 1, DDL: 2, Admin: 3, Unknown: 4}

// Max returns the more dangerous of two classes (an unrecognised class
// counts as Unknown): the class of a statement is the highest of its parts.
func Max(a, b string) string {
	ra, ok := rank[a]
	if !ok {
		return Unknown
	}
	rb, ok := rank[b]
	if !ok {
		return Unknown
	}
	if rb > ra {
		return b
	}
	return a
}

// maxBytes caps what is parsed: a statement larger than this is unknown
// rather than a way to make the policy check slow.
const maxBytes = 1 << 20
