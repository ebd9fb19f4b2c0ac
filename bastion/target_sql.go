package bastion

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"charm.land/ssh"

	"github.com/bastion-dev/bastion/bastion/sqlrepl"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/policy/mask"
	"github.com/bastion-dev/bastion/recorder"
)

// sqlFlags takes the options of a database exec off its command:
// `ssh bastion db --csv 'select ...'`, `--tsv`, `--reason 'why'`.
func sqlFlags(command string) (format, reason, rest string) {
	format = "table"
	for {
		word, after := splitFirstWord(command)
		switch {
		case word == "--csv" || word == "--tsv":
			format, command = strings.TrimPrefix(word, "--"), after
		case word == "--reason" || strings.HasPrefix(word, "--reason="):
			reason, command = splitReason(command)
		default:
			return format, reason, command
		}
	}
}

// readSecret reads a target's password from its file or environment
// variable; it is handed to the driver and never printed.
func readSecret(t policy.Target) (string, error) {
	switch {
	case t.PasswordFile != "":
		b, err := os.ReadFile(t.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("password_file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case t.PasswordEnv != "":
		v, ok := os.LookupEnv(t.PasswordEnv)
		if !ok {
			return "", fmt.Errorf("password_env: $%s is not set", t.PasswordEnv)
		}
		return v, nil
	}
	return "", nil
}

// runSQL opens the built-in SQL REPL on a database target in this channel,
// or runs the statements of command. Every statement is decided by policy
// first, held for approval when a rule says so, and audited.
func (st *session) runSQL(t policy.Target, command string) exitResult {
	password, err := readSecret(t)
	if err != nil {
		st.srv.log.Error("database credential", "target", t.Name, "err", err)
		st.errorf("cannot connect to %s: the bastion's credential for it is misconfigured; tell the operator", t.Name)
		return exitResult{code: 1, reason: "credential unavailable"}
	}
	format, reason, command := sqlFlags(command)
	ctx, cancel := context.WithCancel(st.ctx)
	defer cancel()

	resized := make(chan struct{}, 1)
	if st.hasPty {
		st.attachResize(func(ssh.Window) {
			select {
			case resized <- struct{}{}:
			default:
			}
		})
		defer st.detachResize()
	}
	interrupt := make(chan struct{}, 1)
	sigs := make(chan ssh.Signal, 4)
	st.sess.Signals(sigs)
	defer st.sess.Signals(nil)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sigs:
				if s == ssh.SIGINT {
					select {
					case interrupt <- struct{}{}:
					default:
					}
				}
			}
		}
	}()

	// A statement is classified and decided once; the audit record of it
	// needs the verdict, so the two callbacks share it.
	var mu sync.Mutex
	verdicts := map[string]policy.Decision{}
	masked := map[string]mask.Counts{}
	// The approval of statements (approvals_session.go). In the interactive
	// REPL a held statement is not run; `/approve <reason>` then asks for
	// it, and once granted it is queued to run once, exactly as approved.
	// All three live on the REPL's goroutine (Check, Slash and Queued).
	interactive := st.hasPty && command == ""
	var held, granted *heldStatement
	queued := ""
	check := func(ctx context.Context, stmt string) error {
		d := st.srv.config().DecideStatement(policy.DialectOf(t), st.id.Groups, t.Name, stmt)
		mu.Lock()
		verdicts[stmt] = d
		mu.Unlock()
		if g := granted; g != nil && g.stmt == stmt && d.Action != policy.ActionDeny {
			granted = nil
			if _, err := st.srv.approvals.consume(ctx, g.id, st.id.User, stmt); err != nil {
				st.srv.log.Error("use approval", "user", st.id.User, "request", g.id, "err", err)
				return fmt.Errorf("request %d could not be used (%v); nothing was run", g.id, err)
			}
			return nil
		}
		switch d.Action {
		case policy.ActionDeny:
			return fmt.Errorf("refused by rule %q (%s statement)", d.Rule, policy.ClassifyStatement(policy.DialectOf(t), stmt))
		case policy.ActionApprove:
			if interactive && reason == "" {
				held = &heldStatement{stmt: stmt, rule: d.Rule}
				st.heldMessage(t, stmt, d.Rule, true)
				return fmt.Errorf("not run: held by rule %q until approved", d.Rule)
			}
			if !st.hold(t, kindStatement, stmt, reason, d.Rule) {
				return fmt.Errorf("not run: held by rule %q until approved", d.Rule)
			}
			reason = "" // one --reason covers one statement
		}
		return nil
	}
	statement := func(stmt string, dur time.Duration, rows int64, err error) {
		mu.Lock()
		d := verdicts[stmt]
		counts := masked[stmt]
		delete(verdicts, stmt)
		delete(masked, stmt)
		mu.Unlock()
		shown, _ := st.srv.maskEngine().MaskText(stmt)
		outcome, why := recorder.OutcomeSuccess, ""
		if err != nil {
			outcome, why = recorder.OutcomeFailure, err.Error()
		}
		detail := map[string]string{"statement": shown, "class": policy.ClassifyStatement(policy.DialectOf(t), stmt), "decision": d.Action,
			"rule": d.Rule, "rows": fmt.Sprint(rows), "duration": dur.String(), "kind": t.Kind}
		for k, v := range counts {
			detail["masked."+k] = fmt.Sprint(v)
		}
		st.srv.audit(recorder.AuditRecord{Type: "sql.statement", Outcome: outcome, Reason: why, User: st.id.User,
			Serial: st.id.Serial, Client: st.sess.RemoteAddr().String(), Target: t.Name, Session: st.rec.ID(), Detail: detail})
	}
	onMasked := func(stmt string, c mask.Counts) {
		mu.Lock()
		masked[stmt] = c
		mu.Unlock()
	}

	var noticeSeen uint64
	code := sqlrepl.Run(ctx, sqlrepl.Options{
		Target: sqlrepl.Target{Name: t.Name, Kind: t.Kind, DSN: t.DSN, Password: password, Path: t.Path},
		In:     st.input.reader(ctx), Out: st.stdout, Err: st.stderr, PTY: st.hasPty,
		Size: func() (int, int) {
			w := st.window()
			if w.Width == 0 {
				return 80, 24
			}
			return w.Width, w.Height
		},
		Resized: resized, Interrupt: interrupt, Masker: st.srv.maskEngine(),
		QueryTimeout: time.Duration(st.srv.config().Session.QueryTimeout), Format: format,
		Check: check, Statement: statement, Masked: onMasked, Now: st.srv.now,
		Slash: func(ctx context.Context, line string) bool {
			return st.approvalSlash(ctx, t, line, &held, &granted, &queued)
		},
		Queued: func() string { q := queued; queued = ""; return q },
		Notice: func() string {
			if n := st.approvalNotice(&noticeSeen, false, "/approvals"); n != "" {
				return "bastion: " + n
			}
			return ""
		},
		// Defence in depth: what the classifier calls a read runs where
		// the database itself refuses writes.
		ReadOnly: func(stmt string) bool {
			return policy.ClassifyStatement(policy.DialectOf(t), stmt) == policy.StatementRead
		},
	}, command)
	res := exitResult{code: code}
	if code != 0 && errors.Is(st.ctx.Err(), context.Canceled) {
		res.reason = "session ended"
	}
	return res
}

// slashCommand runs the bastion's in-session commands inside the SQL REPL:
// /approvals lists the requests this user may decide, /grant ID [comment]
// and /deny ID reason decide one, /help lists them.
func (st *session) slashCommand(_ context.Context, line string) bool {
	word, rest := splitFirstWord(line)
	switch word {
	case "/approvals":
		st.builtinApprovals(rest)
	case "/grant":
		st.builtinDecide(rest, true)
	case "/deny":
		id, reason := splitFirstWord(rest)
		st.builtinDecide(id+" --reason "+strconvQuote(reason), false)
	case "/help":
		fmt.Fprintf(st.stdout, "/approve REASON  ask for approval of the statement a rule held%s/approvals  pending requests you may decide%s/grant ID [comment]  grant one%s/deny ID reason  refuse one%s",
			st.newline(), st.newline(), st.newline(), st.newline())
	default:
		return false
	}
	return true
}

// strconvQuote quotes a reason for splitReason (single quotes, as a shell
// would), so that a reason with spaces stays one word.
func strconvQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "") + "'"
}
