// Package sqlrepl is the bastion's built-in SQL client for database targets
// (PostgreSQL, MySQL/MariaDB, SQLite): a psql-like REPL that runs inside the
// user's SSH channel, so that the bastion sees, checks, masks and records
// every statement and every cell, and the credentials never leave it.
//
// # One run, in call order
//
//  1. Run validates Options and connects (pgconn, go-sql-driver/mysql or
//     modernc.org/sqlite: pure Go, no child process that could show a
//     password in a process list). Connection errors are scrubbed of the
//     DSN and password.
//  2. Input is read line by line: from the line editor (PTY), from In
//     (piped, no PTY) or from the command string. A line starting with a
//     backslash is a meta-command; otherwise the text is split into
//     statements at each ';' outside quotes and comments (Split).
//  3. Each statement: Options.Check may refuse it; it runs on the engine in
//     a goroutine while Run watches for Ctrl-C (0x03 in the PTY input),
//     Options.Interrupt and the QueryTimeout, any of which sends the
//     engine's server-side cancel (PostgreSQL cancel request, MySQL KILL
//     QUERY on a second connection, sqlite3_interrupt) and then waits for
//     the statement to end with the server's error. A statement
//     Options.ReadOnly picks runs read-only on the server (a read-only
//     transaction, or SQLite's query_only), ended before the next one.
//  4. Each row's cells are masked (masking.columns decided once per
//     result, then mask.Engine.MaskCell or MaskText per cell), then the
//     result is drawn (table, expanded) for the terminal's width at that
//     moment, or streamed row by row (CSV, TSV); Options.Statement and
//     Options.Masked are told for the audit.
//  5. \q, Ctrl-D, the end of input or the context's end close the
//     connection and Run returns the exit status.
//
// The bastion's own output chain masks and records Out and Err again, so
// masking here is what keeps whole-column masks (masking.columns) and
// table alignment; the stream masker downstream is the safety net.
package sqlrepl
