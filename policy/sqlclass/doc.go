// Package sqlclass sorts SQL statements into the statement classes that
// policy rules name: read, write, ddl, admin and unknown.
//
// Each dialect is read by a real parser for it, because a rule that lets
// reads through is only as good as the reading of what a statement does:
//
//   - PostgreSQL: libpg_query (github.com/pganalyze/pg_query_go), the
//     server's own grammar. The whole parse tree is walked, so a write hidden
//     in a CTE, a SELECT ... INTO, a locking clause or a function with side
//     effects (nextval, pg_terminate_backend, dblink_exec, ...) raises the
//     class of the statement it sits in.
//   - MySQL and MariaDB: TiDB's MySQL grammar (github.com/pingcap/tidb/pkg/parser),
//     whose lexer runs the text of executable comments (/*! ... */) as the
//     server does. MariaDB's own /*M! ... */ comments, which TiDB reads as
//     plain comments, make a statement unknown.
//   - SQLite: the engine itself. The statement is prepared (never run) on a
//     read-only connection to the target's file; SQLite's authorizer reports
//     every table read or written, every function called and every pragma,
//     and the compiled program says whether it writes, as
//     sqlite3_stmt_readonly does.
//
// Whatever a parser cannot place is unknown, and the class of a string with
// several statements is that of its most dangerous part: rules for unknown
// statements then apply (fail closed). Classification is advice for policy,
// not a sandbox: the bastion also runs statements classed read where the
// database refuses writes (read-only transactions, query_only), for the
// user-defined functions and the server-side effects no parser can see.
package sqlclass
