package sqlrepl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/bastion-dev/bastion/policy/mask"
)

// Target is the database a REPL connects to: a config target of kind
// postgres, mysql or sqlite.
type Target struct {
	Name string // shown in the prompt
	Kind string // postgres | mysql | sqlite
	// DSN is the driver's connection string (postgres URL or key=value;
	// go-sql-driver/mysql DSN). It never reaches the user: errors are
	// scrubbed of it and of Password.
	DSN string
	// Password, read by the bastion from password_file, overrides any in
	// the DSN.
	Password string
	// Path is the SQLite database file; it must exist.
	Path string
}

// Options configure one REPL run. Out, Err and In are the session's
// streams; the bastion masks and records Out and Err downstream as well.
type Options struct {
	Target Target
	// In is the client's input. With PTY it carries raw keystrokes (Ctrl-C
	// arrives as 0x03); without, it is read as a script when command is "".
	// A read from In may still be outstanding when Run returns: give Run an
	// In that ends (returns an error) with the session.
	In       io.Reader
	Out, Err io.Writer
	// PTY: the client has a terminal in raw mode. Lines are edited with
	// history, output gets CRLF line ends, tables are cut to the width, and
	// Ctrl-C in the input cancels a running statement.
	PTY bool
	// Size reports the terminal size; nil means 80x24.
	Size func() (cols, rows int)
	// Resized, when set, signals a resize: the line editor takes the new
	// width at once, and the next result is drawn for it (every result
	// reads Size when it is drawn).
	Resized <-chan struct{}
	// Interrupt, when set, cancels the running statement as Ctrl-C does:
	// the bastion sends on it when the client sends an SSH "signal" INT
	// request (no PTY). Sends should not block; one between statements is
	// ignored.
	Interrupt <-chan struct{}
	// Masker masks every cell (MaskCell) before a table is laid out, and
	// error messages (MaskText). Nil masks nothing.
	Masker *mask.Engine
	// QueryTimeout cancels a statement on the server after this long; 0
	// means none.
	QueryTimeout time.Duration
	// RowLimit is how many rows of a result the table output shows: 0
	// means 1000, negative means no limit. Rows past the limit are read and
	// counted but neither kept nor shown: stopping the statement on the
	// server instead would roll back a write (UPDATE … RETURNING) or abort
	// the open transaction. The limit bounds what a table keeps in memory
	// to align it; CSV and TSV keep nothing and stream every row, since a
	// pipeline cut short at an arbitrary row is wrong data, not a notice.
	RowLimit int
	// Format is "table" (default, psql's aligned format), "csv" or "tsv".
	// CSV and TSV write a header line and rows to Out and everything else
	// (command tags, notices) to Err, so that Out can feed a pipeline.
	Format string
	// Check is asked before every statement is sent, those of
	// meta-commands (\dt, \d, \l) included: nil runs it, an error refuses
	// it (printed; the run's status becomes 1).
	Check func(ctx context.Context, stmt string) error
	// ReadOnly, when set, is asked of every statement that Check let
	// through (meta-commands' included). When it returns true, the statement
	// runs so that the database itself refuses a write the caller's
	// classifier missed:
	//   - PostgreSQL: BEGIN READ ONLY, the statement, then COMMIT, or
	//     ROLLBACK when it failed;
	//   - MySQL/MariaDB: START TRANSACTION READ ONLY, the statement, then
	//     COMMIT or ROLLBACK likewise, with the session's access mode set to
	//     READ ONLY meanwhile (SET SESSION TRANSACTION), since DDL commits
	//     the wrapper implicitly and runs in a transaction of its own;
	//   - SQLite: PRAGMA query_only = ON for the statement, OFF again after
	//     (left alone when it was already on).
	// The wrapper is always ended before the next statement, cancelled or
	// failed ones included, and the connection stays usable; the server's
	// own read-only error is what the user sees for a refused write.
	//
	// The guarantee covers statements outside a transaction the user opened.
	// Inside one, on PostgreSQL and MySQL, the statement runs as is (the
	// caller's verdict alone decided): a transaction cannot be made read-only
	// for one statement and read-write again, and on MySQL a nested START
	// TRANSACTION would commit the user's work. SQLite's pragma applies
	// inside a transaction too. Transaction control (BEGIN, START, COMMIT,
	// END, ROLLBACK, ABORT, SAVEPOINT, RELEASE, PREPARE TRANSACTION; on
	// MySQL also XA, LOCK, UNLOCK) is never wrapped: ReadOnly is not asked.
	ReadOnly func(stmt string) bool
	// Statement is told of every statement after it ran or was refused,
	// for the audit trail: rows is the rows returned, or affected when it
	// returned none (-1 when unknown).
	Statement func(stmt string, dur time.Duration, rows int64, err error)
	// Masked, when set, is told per statement how many values each
	// detector (and "column") masked, for the audit trail.
	Masked func(stmt string, counts mask.Counts)
	// Slash, when set, is offered every line that starts with '/' outside
	// a statement (the bastion's in-session commands: /approvals, /grant,
	// /deny). It writes its own output and returns true when it handled
	// the line; false lets the line through as SQL.
	Slash func(ctx context.Context, line string) bool
	// Queued, when set, is asked after each line Slash handled: a
	// statement it returns runs at once, through Check like any other
	// (the bastion's /approve hands back a held statement once granted).
	Queued func() string
	// Notice, when set, is asked before each interactive prompt is drawn:
	// a line it returns is written to Out above the prompt (approvers are
	// told of requests waiting for them).
	Notice func() string
	// Now is the clock for timing; nil means time.Now.
	Now func() time.Time
}

const defaultRowLimit = 1000

// Run opens the REPL (interactive when command == "") or runs the
// statements in command (non-interactive: `ssh bastion db 'select 1; select
// 2'`), and returns the exit status: 0, or 1 when any statement failed or was
// refused, or the connection could not be made.
//
// Input is processed line by line in every mode: a line starting with a
// backslash is a meta-command, anything else is SQL that runs each time a
// ';' completes a statement. Non-interactive input (command, or In without
// a PTY) stops at the first statement that fails or is refused, as
// psql -v ON_ERROR_STOP=1 does: later statements may depend on it, and a
// pipeline must not see partial output as a success. A final statement
// without ';' runs at the end of non-interactive input. Interactively, an
// error is reported and the REPL goes on.
func Run(ctx context.Context, o Options, command string) int {
	r, err := newREPL(o)
	if err != nil {
		fmt.Fprintf(o.Err, "bastion: %v\n", err)
		return 1
	}
	defer r.flush()
	eng, err := open(ctx, o.Target)
	if err != nil {
		r.errorf("bastion: cannot connect to %s: %s", o.Target.Name, r.safe(err.Error()))
		return 1
	}
	r.eng = eng
	defer func() {
		if err := eng.close(); err != nil && ctx.Err() == nil {
			r.errorf("bastion: closing the connection to %s: %s", o.Target.Name, r.safe(err.Error()))
		}
	}()
	switch {
	case command != "":
		if o.PTY {
			r.kb = newKeyboard(o.In)
		}
		r.script(ctx, strings.NewReader(command))
	case o.PTY:
		r.interactive(ctx)
	default:
		r.script(ctx, o.In)
	}
	if r.failed {
		return 1
	}
	return 0
}

// repl is one run's state; it lives on Run's goroutine, except the engine
// goroutine of a running statement, which owns out until it is done.
type repl struct {
	o         Options
	d         Dialect
	eng       engine
	out       *bufio.Writer // Out, buffered (CRLF-converted with a PTY)
	termOut   io.Writer     // Out unbuffered, for the line editor
	errw      io.Writer     // Err (CRLF-converted with a PTY)
	kb        *keyboard     // PTY: the client's keystrokes
	scrub     scrubber
	limit     int
	expanded  string // off | on | auto
	timing    bool
	failed    bool // some statement failed or was refused
	stopOnErr bool
}

func newREPL(o Options) (*repl, error) {
	switch Dialect(o.Target.Kind) {
	case Postgres, MySQL, SQLite:
	default:
		return nil, fmt.Errorf("target %s: unknown database kind %q (want postgres, mysql or sqlite)", o.Target.Name, o.Target.Kind)
	}
	switch o.Format {
	case "":
		o.Format = "table"
	case "table", "csv", "tsv":
	default:
		return nil, fmt.Errorf("unknown output format %q (want table, csv or tsv)", o.Format)
	}
	if o.Out == nil || o.Err == nil {
		return nil, errors.New("sqlrepl: Options.Out and Options.Err are required")
	}
	if o.In == nil {
		o.In = strings.NewReader("")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &repl{o: o, d: Dialect(o.Target.Kind), scrub: newScrubber(o.Target), expanded: "off", timing: true}
	r.limit = o.RowLimit
	if r.limit == 0 {
		r.limit = defaultRowLimit
	}
	out, errw := o.Out, o.Err
	if o.PTY {
		// The line editor (its own goroutine on resize) and the REPL share
		// the terminal: one lock for both streams keeps their bytes apart.
		mu := &sync.Mutex{}
		out = &crlfWriter{mu: mu, w: o.Out}
		errw = &crlfWriter{mu: mu, w: o.Err}
	}
	r.out = bufio.NewWriterSize(out, 64<<10)
	r.termOut = out
	r.errw = errw
	return r, nil
}

// safe scrubs credentials from text and masks card data in it, for
// messages (errors quote values: "duplicate key (pan)=(4111…)").
func (r *repl) safe(s string) string {
	s = r.scrub.text(s)
	if r.o.Masker != nil {
		s, _ = r.o.Masker.MaskText(s)
	}
	return s
}

// flush writes buffered output; false when the client is gone.
func (r *repl) flush() bool { return r.out.Flush() == nil }

// errorf writes one message line to Err, after the output before it.
func (r *repl) errorf(format string, args ...any) {
	r.flush()
	fmt.Fprintf(r.errw, format+"\n", args...)
}

// infof writes an informational line: to Out in table mode, to Err in CSV
// and TSV modes so that Out stays data only.
func (r *repl) infof(format string, args ...any) {
	if r.o.Format == "table" {
		fmt.Fprintf(r.out, format+"\n", args...)
		return
	}
	r.errorf(format, args...)
}

func (r *repl) size() (int, int) {
	if r.o.Size != nil {
		if c, h := r.o.Size(); c > 0 && h > 0 {
			return c, h
		}
	}
	return 80, 24
}

// interactive runs the line editor until \q, Ctrl-D or the end of input.
func (r *repl) interactive(ctx context.Context) {
	r.kb = newKeyboard(r.o.In)
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{lineReader{ctx: ctx, k: r.kb}, r.termOut}, "")
	t.History = &history{kb: r.kb}
	cols, rows := r.size()
	_ = t.SetSize(cols, rows) // writes nothing: no prompt is up yet
	if r.o.Resized != nil {
		done := make(chan struct{})
		defer close(done)
		go func() {
			for {
				select {
				case _, ok := <-r.o.Resized:
					if !ok {
						return
					}
					_ = t.SetSize(r.size()) // a write error shows at the next flush
				case <-done:
					return
				}
			}
		}()
	}
	fmt.Fprintf(r.out, "Connected to %s (%s). Type \\? for help, \\q to quit.\n", r.o.Target.Name, r.o.Target.Kind)
	buf := ""
	for {
		if r.o.Notice != nil && buf == "" {
			if n := r.o.Notice(); n != "" {
				fmt.Fprintf(r.out, "%s\n", n) // on Out: in order with the prompt
			}
		}
		t.SetPrompt(r.prompt(buf))
		if !r.flush() {
			return
		}
		line, err := t.ReadLine()
		if r.kb.intr {
			// Ctrl-C at the prompt: drop the line and the statement so far.
			r.kb.intr = false
			buf = ""
			continue
		}
		if err != nil && !errors.Is(err, term.ErrPasteIndicator) {
			fmt.Fprintln(r.out) // leave the prompt's line
			return
		}
		if !r.feed(ctx, &buf, line) {
			return
		}
	}
}

// script runs the lines of src (a command, or piped input).
func (r *repl) script(ctx context.Context, src io.Reader) {
	r.stopOnErr = true
	br := bufio.NewReader(src)
	buf := ""
	for ctx.Err() == nil {
		line, err := br.ReadString('\n')
		if line != "" || err == nil {
			line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
			if !r.feed(ctx, &buf, line) {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				r.errorf("bastion: reading input: %v", err)
				r.failed = true
				return
			}
			break
		}
	}
	if ctx.Err() != nil {
		return
	}
	// A last statement without ';'.
	if rest := scan(r.d, buf); !rest.pieces[0].blank {
		r.statement(ctx, strings.TrimSpace(buf), "")
	}
	r.flush()
}

// prompt is psql's: the target's name, * inside a transaction (! in a
// failed one), then => for a new statement or a continuation mark: - for
// more of the statement, or the quote, parenthesis or comment it is inside.
func (r *repl) prompt(buf string) string {
	p := r.o.Target.Name + r.eng.txMark()
	if strings.TrimSpace(buf) == "" {
		return p + "=> "
	}
	cont := "-"
	switch open := scan(r.d, buf).open; {
	case open == "":
	case strings.HasPrefix(open, "$"):
		cont = "$"
	case open == "/*":
		cont = "*"
	default:
		cont = open
	}
	return p + cont + "> "
}

// feed handles one line of input; it returns false when the run should end
// (\q, the client gone, or an error in non-interactive mode). A backslash
// outside quotes and comments starts a meta-command that takes the rest of
// the line; the SQL before it is handled first, as psql does.
func (r *repl) feed(ctx context.Context, buf *string, line string) bool {
	if *buf == "" && r.o.Slash != nil && strings.HasPrefix(strings.TrimSpace(line), "/") {
		// A bastion command (/approvals, /grant ...), not SQL: flush what
		// the REPL has written so far, so the output stays in order.
		if !r.flush() {
			return false
		}
		if r.o.Slash(ctx, strings.TrimSpace(line)) {
			if r.o.Queued != nil {
				if stmt := r.o.Queued(); stmt != "" && !r.statement(ctx, stmt, "") && r.stopOnErr {
					return false
				}
				return r.flush() && ctx.Err() == nil
			}
			return true
		}
	}
	text := *buf + line + "\n"
	res := scan(r.d, text)
	meta := ""
	if res.meta >= 0 {
		meta = strings.TrimSpace(text[res.meta:])
		text = text[:res.meta]
		res = scan(r.d, text)
	}
	last := res.pieces[len(res.pieces)-1]
	for _, p := range res.pieces[:len(res.pieces)-1] {
		if p.blank {
			continue
		}
		if !r.statement(ctx, strings.TrimSpace(p.text), "") && r.stopOnErr {
			*buf = ""
			return false
		}
		if !r.flush() || ctx.Err() != nil {
			return false
		}
	}
	if last.blank && res.open == "" {
		*buf = ""
	} else {
		*buf = last.text
	}
	if meta != "" {
		ok := r.metaCommand(ctx, meta)
		return r.flush() && ok
	}
	return true
}

const helpText = `General
  \q                quit (or Ctrl-D)
  \?                this help
  \conninfo         the target you are connected to
Query
  ;                 ends a statement and runs it; Ctrl-C cancels it on the server
  Ctrl-C            at the prompt: discard the statement typed so far
Informational
  \dt               list tables
  \d [NAME]         list relations, or describe table NAME (columns and indexes)
  \l                list databases
Formatting
  \x [on|off|auto]  expanded display (auto: when a table is wider than the terminal)
  \timing [on|off]  show how long each statement took
NULL is shown as ` + nullMark + `; cells are masked per the bastion's masking policy.
`

// metaCommand runs a backslash command; false ends the run (\q, or a
// failure in non-interactive mode).
func (r *repl) metaCommand(ctx context.Context, line string) bool {
	cmd, arg, _ := strings.Cut(strings.TrimPrefix(line, `\`), " ")
	arg = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(arg), ";"))
	cmd = strings.TrimSuffix(cmd, ";")
	switch cmd {
	case "q", "quit":
		return false
	case "?", "h", "help":
		fmt.Fprint(r.out, helpText)
	case "conninfo":
		fmt.Fprintf(r.out, "You are connected to %s (%s) through the bastion.\n", r.o.Target.Name, r.o.Target.Kind)
	case "x":
		switch arg {
		case "":
			if r.expanded == "on" {
				r.expanded = "off"
			} else {
				r.expanded = "on"
			}
		case "on", "off", "auto":
			r.expanded = arg
		default:
			return r.fail(`\x: unrecognized value %q: expected on, off or auto`, arg)
		}
		if r.expanded == "auto" {
			fmt.Fprintln(r.out, "Expanded display is used automatically.")
		} else {
			fmt.Fprintf(r.out, "Expanded display is %s.\n", r.expanded)
		}
	case "timing":
		switch arg {
		case "":
			r.timing = !r.timing
		case "on", "off":
			r.timing = arg == "on"
		default:
			return r.fail(`\timing: unrecognized value %q: expected on or off`, arg)
		}
		fmt.Fprintf(r.out, "Timing is %s.\n", onOff(r.timing))
	case "dt", "d", "l":
		qs, err := r.eng.meta(cmd, arg)
		if err != nil {
			return r.fail("%v", err)
		}
		for i, q := range qs {
			n, ok := r.statementRows(ctx, q.sql, q.caption)
			if !ok {
				return !r.stopOnErr
			}
			if i == 0 && n == 0 && cmd == "d" && arg != "" {
				r.errorf("Did not find any relation named %q.", arg)
				r.failed = true
				return !r.stopOnErr
			}
		}
	default:
		return r.fail(`invalid command \%s; try \? for help`, cmd)
	}
	return true
}

// fail reports a usage error of a meta-command.
func (r *repl) fail(format string, args ...any) bool {
	r.errorf(format, args...)
	r.failed = true
	return !r.stopOnErr
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// statement checks, runs and reports one statement; false when it failed
// or was refused.
func (r *repl) statement(ctx context.Context, stmt, caption string) bool {
	_, ok := r.statementRows(ctx, stmt, caption)
	return ok
}

func (r *repl) statementRows(ctx context.Context, stmt, caption string) (int64, bool) {
	if r.o.Check != nil {
		if err := r.o.Check(ctx, stmt); err != nil {
			r.errorf("ERROR:  statement refused: %s", r.safe(err.Error()))
			r.failed = true
			if r.o.Statement != nil {
				r.o.Statement(stmt, 0, 0, err)
			}
			return 0, false
		}
	}
	s := &resultSink{r: r, caption: caption, counts: mask.Counts{}, affected: -1}
	start := r.o.Now()
	err := r.execute(ctx, stmt, s)
	dur := r.o.Now().Sub(start)
	for _, n := range s.notices {
		r.errorf("%s", n)
	}
	n := s.returned
	if !s.anyRows {
		n = s.affected
	}
	if r.o.Statement != nil {
		r.o.Statement(stmt, dur, n, err)
	}
	if r.o.Masked != nil && len(s.counts) > 0 {
		r.o.Masked(stmt, s.counts)
	}
	if err != nil {
		var te timeoutError
		if errors.As(err, &te) {
			r.errorf("ERROR:  canceling statement due to statement timeout (%s)", te.after)
		} else if errors.Is(err, errInterrupted) {
			r.errorf("ERROR:  %s", errInterrupted)
		} else {
			r.errorf("%s", r.safe(r.eng.errorText(err, stmt)))
		}
		r.failed = true
	}
	if r.timing && r.o.Format == "table" {
		fmt.Fprintf(r.out, "Time: %.3f ms\n", float64(dur.Microseconds())/1000)
	}
	return s.returned, err == nil
}

// timeoutError is a statement stopped by Options.QueryTimeout.
type timeoutError struct{ after time.Duration }

func (e timeoutError) Error() string {
	return fmt.Sprintf("statement timeout after %s", e.after)
}

// execute runs stmt on the engine in a goroutine and, meanwhile, watches
// for the things that stop it: Ctrl-C in the input (the line editor is not
// reading then), an Interrupt, the timeout. Each sends the server the
// engine's cancel and then keeps waiting: the statement ends by itself, with
// the server's error, and the connection stays usable.
func (r *repl) execute(ctx context.Context, stmt string, s *resultSink) error {
	done := make(chan error, 1)
	ro := r.o.ReadOnly != nil && !txControl(r.d, stmt) && r.o.ReadOnly(stmt)
	go func() { done <- r.eng.run(ctx, stmt, ro, s) }()

	var timeout <-chan time.Time
	if r.o.QueryTimeout > 0 {
		t := time.NewTimer(r.o.QueryTimeout)
		defer t.Stop()
		timeout = t.C
	}
	var keys <-chan chunk
	if r.kb != nil {
		r.kb.ask()
		keys = r.kb.got
	}
	var intrDone chan struct{}
	timedOut := false
	ended := ctx.Done() // the session ended: stop the statement on the server too
	interrupt := func(user bool) {
		if intrDone != nil {
			return
		}
		if user {
			// Straight to Err: the statement goroutine owns r.out.
			fmt.Fprintln(r.errw, "Cancel request sent")
		}
		intrDone = make(chan struct{})
		go func() {
			defer close(intrDone)
			// The cancel must go out even when ctx is why: the session
			// ending must not leave the statement running.
			if err := r.eng.interrupt(context.WithoutCancel(ctx)); err != nil {
				fmt.Fprintf(r.errw, "bastion: could not cancel the statement: %s\n", r.safe(err.Error()))
			}
		}()
	}
	for {
		select {
		case err := <-done:
			if intrDone != nil {
				<-intrDone
			}
			if timedOut && err != nil {
				return timeoutError{after: r.o.QueryTimeout}
			}
			return err
		case c := <-keys:
			r.kb.take(c)
			if r.kb.takeInterrupt() {
				interrupt(true)
			}
			r.kb.ask()
		case <-r.o.Interrupt:
			interrupt(true)
		case <-timeout:
			timedOut = true
			interrupt(false)
		case <-ended:
			ended = nil
			interrupt(false)
		}
	}
}

// resultSink collects (table) or streams (CSV, TSV) a statement's results.
// It runs on the statement's goroutine and writes only to r.out; notices for
// Err wait in notices until the statement is over.
type resultSink struct {
	r        *repl
	caption  string
	cols     []Column
	rows     [][]cell
	seen     int64 // rows of the current result, shown or not
	returned int64 // rows of all results
	anyRows  bool  // some result had columns
	affected int64
	counts   mask.Counts
	notices  []string
	masker   rowMasker // of the current result
	scratch  []cell    // CSV and TSV: the row being written
}

func (s *resultSink) Begin(cols []Column) error {
	s.cols, s.rows, s.seen, s.anyRows = cols, nil, 0, true
	s.masker = newRowMasker(s.r.o.Masker, cols)
	switch s.r.o.Format {
	case "csv", "tsv":
		hdr := make([]cell, len(cols))
		for i, c := range cols {
			hdr[i] = cell{s: c.Name}
		}
		s.writeDelimited(hdr)
	}
	return s.r.out.Flush()
}

func (s *resultSink) Row(vals []Value) error {
	s.seen++
	s.returned++
	if s.r.o.Format == "table" {
		if s.r.limit >= 0 && s.seen > int64(s.r.limit) {
			return nil // counted, not kept: see Options.RowLimit
		}
		s.rows = append(s.rows, s.masker.row(nil, vals, s.counts))
		return nil
	}
	// Written at once: the row's cells can be reused for the next.
	s.scratch = s.masker.row(s.scratch, vals, s.counts)
	s.writeDelimited(s.scratch)
	if s.r.out.Available() < 4096 {
		return s.r.out.Flush()
	}
	return nil
}

// writeDelimited writes one CSV or TSV line. With a PTY the fields are
// sanitized too: a terminal must not receive raw control sequences.
func (s *resultSink) writeDelimited(row []cell) {
	sep, field := ",", csvField
	if s.r.o.Format == "tsv" {
		sep, field = "\t", tsvField
	}
	for i, c := range row {
		if i > 0 {
			s.r.out.WriteString(sep)
		}
		if s.r.o.PTY && !c.null {
			c.s = sanitize(c.s)
		}
		s.r.out.WriteString(field(c))
	}
	s.r.out.WriteString("\n")
}

func (s *resultSink) End(tag string, affected int64) error {
	if s.cols == nil {
		if affected >= 0 {
			s.affected = affected
		}
		if tag != "" {
			if s.r.o.Format == "table" {
				fmt.Fprintln(s.r.out, tag)
			} else {
				s.notices = append(s.notices, tag)
			}
		}
		return s.r.out.Flush()
	}
	if s.r.o.Format == "table" {
		shown := s.seen
		if s.r.limit >= 0 && shown > int64(s.r.limit) {
			shown = int64(s.r.limit)
		}
		limited := shown < s.seen
		l := layout{}
		if s.r.o.PTY {
			l.width, _ = s.r.size()
			l.color = true
		}
		l.expanded = s.r.expanded == "on" || s.r.expanded == "auto" && l.width > 0 && tableWidth(s.cols, s.rows) > l.width
		if s.caption != "" {
			fmt.Fprintln(s.r.out, sanitize(s.caption))
		}
		renderTable(s.r.out, s.cols, s.rows, l)
		if limited {
			fmt.Fprintf(s.r.out, "(%d of %d rows shown: row limit %d)\n", shown, s.seen, s.r.limit)
		} else if !l.expanded || s.seen == 0 {
			fmt.Fprintf(s.r.out, "(%d %s)\n", s.seen, plural(s.seen, "row", "rows"))
		}
		if s.caption != "" {
			fmt.Fprintln(s.r.out)
		}
	}
	s.cols, s.rows = nil, nil
	return s.r.out.Flush()
}

// history is the line editor's history, minus empty lines, repeats of the
// previous line and lines cut short by Ctrl-C.
type history struct {
	kb      *keyboard
	entries []string // newest last
}

const historyMax = 500

func (h *history) Add(line string) {
	if h.kb.intr || strings.TrimSpace(line) == "" || len(h.entries) > 0 && h.entries[len(h.entries)-1] == line {
		return
	}
	h.entries = append(h.entries, line)
	if len(h.entries) > historyMax {
		h.entries = h.entries[len(h.entries)-historyMax:]
	}
}

func (h *history) Len() int { return len(h.entries) }

// At returns the idx-th newest entry (0 is the newest).
func (h *history) At(idx int) string { return h.entries[len(h.entries)-1-idx] }

// crlfWriter turns each lone \n into \r\n for a terminal in raw mode, under
// a lock shared with the other stream to the same terminal.
type crlfWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	lastCR bool
}

func (c *crlfWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]byte, 0, len(p)+len(p)/16)
	for _, b := range p {
		if b == '\n' && !c.lastCR {
			out = append(out, '\r')
		}
		out = append(out, b)
		c.lastCR = b == '\r'
	}
	if _, err := c.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
