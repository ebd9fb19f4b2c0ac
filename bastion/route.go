package bastion

import (
	"encoding/json"
	"fmt"

	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/recorder"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// builtins are the words that never name a target (policy refuses them as
// target names). Words of later issues answer that they are not here yet
// rather than being mistaken for a target.
var builtinHelp = []struct{ word, help string }{
	{"whoami", "who your certificate says you are"},
	{"targets", "the targets you may reach"},
	{"help", "this text"},
	{"sessions", "recorded sessions, newest first (auditors; --json)"},
	{"replay", "replay ID [--speed X] [--idle-limit S] [--from T]: play a recording (auditors; ssh -t for the player)"},
	{"approvals", "pending approval requests you may decide (--json)"},
	{"approve", "approve ID [comment]: grant a request"},
	{"deny", "deny ID --reason TEXT: refuse a request"},
}

// route decides what this session is (ARCHITECTURE.md, step 2): the SSH user
// name or the first word of the command names a target; a built-in word runs
// that; otherwise the menu with a PTY, the target list without.
func (st *session) route() exitResult {
	if motd := st.srv.config().Motd; motd != "" && st.hasPty && st.sess.RawCommand() == "" {
		// Like sshd, only interactive logins see the message of the day.
		fmt.Fprintf(st.stdout, "%s%s", strings.ReplaceAll(strings.TrimRight(motd, "\n"), "\n", "\r\n"), "\r\n")
	}
	if login := st.sess.User(); st.loginIsTarget() {
		return st.runTarget(login, strings.TrimLeft(st.sess.RawCommand(), " \t"))
	}
	word, rest := splitFirstWord(st.sess.RawCommand())
	switch word {
	case "":
		if st.hasPty {
			return st.menu()
		}
		st.printTargets(st.stdout)
		return exitResult{}
	case "whoami":
		st.whoami(st.stdout)
		return exitResult{}
	case "targets":
		st.printTargets(st.stdout)
		return exitResult{}
	case "help":
		st.help(st.stdout)
		return exitResult{}
	case "sessions":
		return st.builtinSessions(rest)
	case "replay":
		return st.builtinReplay(rest)
	case "approvals":
		return st.builtinApprovals(rest)
	case "approve":
		return st.builtinDecide(rest, true)
	case "deny":
		return st.builtinDecide(rest, false)
	}
	if _, ok := st.srv.config().Target(word); ok {
		return st.runTarget(word, rest)
	}
	st.errorf("%q is neither a target you may reach nor a command; `ssh %s help` lists the commands, `ssh %s targets` your targets",
		word, st.srv.hostName, st.srv.hostName)
	return exitResult{code: 2}
}

// runTarget decides (step 3) and connects (step 4).
//
// It waits under the target's session for that session's whole life, so
// the decision has a function of its own (admit): see proxySSH for what
// the frames under a wait cost.
func (st *session) runTarget(name, command string) exitResult {
	t, command, release, res, ok := st.admit(name, command)
	if !ok {
		return res
	}
	defer release()
	st.visit(t.Name)
	if t.Kind == "ssh" {
		res = st.proxySSH(t, command)
	} else {
		res = st.runOther(t, command)
	}
	st.leave(t.Name, res)
	return res
}

// runOther runs a session on a target of a kind other than ssh.
//
//go:noinline
func (st *session) runOther(t *policy.Target, command string) exitResult {
	switch t.Kind {
	case "command":
		return st.runCommand(*t, command)
	case "postgres", "mysql", "sqlite":
		return st.runSQL(*t, command)
	}
	st.errorf("%s is a %s target; database targets are not supported by this version of bastion yet", t.Name, t.Kind)
	return exitResult{code: 1, reason: "unsupported target kind"}
}

// admit decides whether the session may reach target name with command,
// waiting for an approval where a rule asks for one. When ok, it returns
// the target, the command without a leading --reason, and release, which
// ends the access an approval granted (a no-op otherwise). When not, the
// client has been told and res is the session's result.
//
//go:noinline
func (st *session) admit(name, command string) (t *policy.Target, cmd string, release func(), res exitResult, ok bool) {
	target, ok := st.srv.config().Target(name)
	if !ok || !st.srv.config().CanAccess(st.id.Groups, name) {
		// One message for "no such target" and "not yours": target names
		// are not disclosed to those who may not reach them.
		st.srv.log.Warn("target refused", "user", st.id.User, "groups", st.id.Groups, "target", name)
		st.errorf("no target %q that you may reach; `ssh %s targets` lists yours", name, st.srv.hostName)
		return nil, "", nil, exitResult{code: 1, reason: "access denied"}, false
	}
	release = func() {}
	if d := st.srv.config().DecideSession(st.id.Groups, target.Name); d.Action != policy.ActionAllow {
		if d.Action == policy.ActionDeny {
			st.errorf("refused by rule %q", d.Rule)
			return nil, "", nil, exitResult{code: 1, reason: "access denied by rule " + d.Rule}, false
		}
		until, ok := st.accessGrant(target, command, d.Rule)
		if !ok {
			return nil, "", nil, exitResult{code: 1, reason: "access held by rule " + d.Rule}, false
		}
		release = st.timeBox(target.Name, until)
	}
	if command != "" && target.Kind == "ssh" {
		reason, c := splitReason(command)
		switch d := st.srv.config().DecideCommand(st.id.Groups, target.Name, c); d.Action {
		case policy.ActionDeny:
			release()
			st.errorf("refused by rule %q", d.Rule)
			return nil, "", nil, exitResult{code: 1, reason: "command denied by rule " + d.Rule}, false
		case policy.ActionApprove:
			if !st.hold(target, "command", c, reason, d.Rule) {
				release()
				return nil, "", nil, exitResult{code: 1, reason: "command held by rule " + d.Rule}, false
			}
		}
		command = c
	}
	return &target, command, release, exitResult{}, true
}

func (st *session) whoami(w io.Writer) {
	nl := st.newline()
	fmt.Fprintf(w, "user:    %s%s", st.id.User, nl)
	fmt.Fprintf(w, "groups:  %s%s", strings.Join(st.id.Groups, ","), nl)
	fmt.Fprintf(w, "serial:  %d%s", st.id.Serial, nl)
	fmt.Fprintf(w, "key:     %s%s", st.id.KeyFingerprint, nl)
	fmt.Fprintf(w, "expires: %s (in %s)%s", st.id.ValidBefore.UTC().Format(time.RFC3339),
		st.id.ValidBefore.Sub(st.srv.now()).Round(time.Second), nl)
}

func (st *session) printTargets(w io.Writer) {
	ts := st.srv.config().TargetsFor(st.id.Groups)
	if len(ts) == 0 {
		fmt.Fprintf(w, "You may reach no targets. Ask an admin to add one of your groups (%s) to a role.%s",
			strings.Join(st.id.Groups, ","), st.newline())
		return
	}
	tw := tabwriter.NewWriter(newlineWriter{w: w, nl: st.newline()}, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tKIND\tDESCRIPTION")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, t.Kind, t.Description)
	}
	_ = tw.Flush()
}

func (st *session) help(w io.Writer) {
	nl := st.newline()
	fmt.Fprintf(w, "Usage: ssh %s [TARGET [COMMAND] | COMMAND]%s", st.srv.hostName, nl)
	fmt.Fprintf(w, "       ssh TARGET@%s%s%s", st.srv.hostName, nl, nl)
	words := append([]struct{ word, help string }(nil), builtinHelp...)
	sort.Slice(words, func(i, j int) bool { return words[i].word < words[j].word })
	for _, b := range words {
		fmt.Fprintf(w, "  %-10s %s%s", b.word, b.help, nl)
	}
}

// newline is what ends a line on this client: with a PTY the client's
// terminal is in raw mode, so a bare \n would not return the carriage.
func (st *session) newline() string {
	if st.hasPty {
		return "\r\n"
	}
	return "\n"
}

// errorf writes a message for the user to stderr (recorded).
func (st *session) errorf(format string, args ...any) {
	fmt.Fprintf(st.stderr, "bastion: "+format+st.newline(), args...)
}

// internalError logs err for the operator and tells the user only that it
// happened.
func (st *session) internalError(what string, err error) exitResult {
	st.srv.log.Error("session error", "user", st.id.User, "what", what, "err", err)
	st.errorf("internal error (%s); the session was ended", what)
	return exitResult{code: 255, reason: what + ": " + err.Error()}
}

// newlineWriter turns \n into nl, for tabwriter output on a PTY.
type newlineWriter struct {
	w  io.Writer
	nl string
}

func (n newlineWriter) Write(p []byte) (int, error) {
	if n.nl == "\n" {
		return n.w.Write(p)
	}
	if _, err := io.WriteString(n.w, strings.ReplaceAll(string(p), "\n", n.nl)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// loginIsTarget reports whether the SSH login name names a target
// (`ssh web-1@bastion`). Any other login name, the principal or the user's
// local name that a stock client sends, routes by the command.
func (st *session) loginIsTarget() bool {
	login := st.sess.User()
	if login == st.id.User {
		return false
	}
	_, ok := st.srv.config().Target(login)
	return ok
}

// builtinSessions lists recorded sessions for auditors. Looking is itself
// audited (PCI DSS 10.2.1.3: access to audit trails).
func (st *session) builtinSessions(args string) exitResult {
	if !st.srv.config().IsAuditor(st.id.Groups) {
		st.errorf("only auditors may list sessions")
		return exitResult{code: 1, reason: "not an auditor"}
	}
	list, err := st.srv.store.ListSessions(st.ctx, recorder.SessionFilter{Limit: 200})
	if err != nil {
		return st.internalError("list sessions", err)
	}
	st.srv.audit(recorder.AuditRecord{Type: "audit.read", Outcome: recorder.OutcomeSuccess, User: st.id.User,
		Serial: st.id.Serial, Session: st.rec.ID(), Detail: map[string]string{"what": "sessions", "via": "ssh"}})
	if strings.TrimSpace(args) == "--json" {
		enc := json.NewEncoder(st.stdout)
		for _, m := range list {
			if err := enc.Encode(m); err != nil {
				return st.internalError("encode", err)
			}
		}
		return exitResult{}
	}
	if err := recorder.WriteSessionTable(newlineWriter{w: st.stdout, nl: st.newline()}, list); err != nil {
		return st.internalError("write table", err)
	}
	return exitResult{}
}
