package bastion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/recorder"
)

// splitReason takes a leading `--reason TEXT` (or `--reason=TEXT`) off the
// command of an exec: the non-interactive way to ask for approval,
// `ssh bastion web-1 --reason "deploy 42" 'systemctl restart api'`. TEXT
// is one shell word: quote it.
func splitReason(command string) (reason, rest string) {
	word, after := splitFirstWord(command)
	switch {
	case strings.HasPrefix(word, "--reason="):
		return unquote(strings.TrimPrefix(word, "--reason=")), after
	case word == "--reason":
		r, rest := splitQuoted(after)
		return r, rest
	}
	return "", command
}

// splitQuoted takes one possibly quoted word off s.
func splitQuoted(s string) (word, rest string) {
	s = strings.TrimLeft(s, " \t")
	if s == "" {
		return "", ""
	}
	if q := s[0]; q == '\'' || q == '"' {
		if end := strings.IndexByte(s[1:], q); end >= 0 {
			return s[1 : 1+end], strings.TrimLeft(s[2+end:], " \t")
		}
	}
	return splitFirstWord(s)
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

// hold asks for approval of text (a command, or opening the target) and
// waits for the decision. It returns true when a grant was given and used.
func (st *session) hold(t policy.Target, kind, text, reason, rule string) bool {
	host := st.srv.hostName
	if reason == "" && st.hasPty {
		reason = st.askReason(rule)
	}
	if reason == "" {
		st.errorf("held by rule %q: this needs approval. Ask for it with a reason: ssh %s %s --reason 'why' '%s'",
			rule, host, t.Name, strings.ReplaceAll(text, "'", `'\''`))
		return false
	}
	shown, _ := st.srv.maskEngine().MaskText(text)
	r, err := st.srv.approvals.file(st.ctx, recorder.ApprovalRecord{
		Requester: st.id.User, Serial: st.id.Serial, Session: st.rec.ID(), Target: t.Name,
		Kind: kind, Text: shown, Hash: hashText(text), Rule: rule, Reason: reason,
	})
	if err != nil {
		st.internalError("file approval request", err)
		return false
	}
	st.errorf("request %d filed (rule %q, %d approval(s) needed, expires %s); waiting. An approver runs: ssh %s approve %d. Ctrl-C withdraws it.",
		r.ID, rule, r.Required, r.Expires.Local().Format("15:04"), host, r.ID)
	st.rec.Marker(fmt.Sprintf("approval %d requested", r.ID))

	ctx, cancel := context.WithCancel(st.ctx)
	defer cancel()
	if st.hasPty {
		// The client's terminal is raw: Ctrl-C arrives as a byte.
		go func() {
			in := st.input.reader(ctx)
			b := make([]byte, 64)
			for {
				n, err := in.Read(b)
				if err != nil {
					return
				}
				if strings.IndexByte(string(b[:n]), 0x03) >= 0 {
					cancel()
					return
				}
			}
		}()
	}
	final, err := st.srv.approvals.wait(ctx, r.ID, nil)
	if err != nil {
		st.internalError("wait for approval", err)
		return false
	}
	switch final.State {
	case recorder.ApprovalGranted:
		if err := st.srv.approvals.consume(st.ctx, r.ID, text); err != nil {
			st.internalError("use approval", err)
			return false
		}
		st.errorf("request %d granted by %s", r.ID, decidedBy(final, true))
		st.rec.Marker(fmt.Sprintf("approval %d granted", r.ID))
		return true
	case recorder.ApprovalDenied:
		st.errorf("request %d denied by %s", r.ID, decidedBy(final, false))
	case recorder.ApprovalExpired:
		st.errorf("request %d expired without a decision (approvals.ttl)", r.ID)
	case recorder.ApprovalCancelled:
		st.errorf("request %d withdrawn", r.ID)
	}
	st.rec.Marker(fmt.Sprintf("approval %d %s", r.ID, final.State))
	return false
}

func decidedBy(r recorder.ApprovalRecord, grant bool) string {
	var who []string
	for _, d := range r.Decisions {
		if d.Grant == grant {
			s := d.By
			if d.Comment != "" {
				s += " (" + d.Comment + ")"
			}
			who = append(who, s)
		}
	}
	return strings.Join(who, ", ")
}

// askReason prompts for a reason on the user's terminal.
func (st *session) askReason(rule string) string {
	ctx, cancel := context.WithCancel(st.ctx)
	defer cancel()
	st.errorf("held by rule %q: this needs approval.", rule)
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{st.input.readLimited(ctx), st.stdout}, "reason (empty to give up)> ")
	line, err := t.ReadLine()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(line)
}

// The approver's built-in words: approvals, approve ID [comment], deny ID --reason TEXT.
func (st *session) builtinApprovals(args string) exitResult {
	asJSON := strings.TrimSpace(args) == "--json"
	list, err := st.srv.approvals.pending(st.ctx, st.id.Groups)
	if err != nil {
		return st.internalError("list approvals", err)
	}
	if asJSON {
		enc := json.NewEncoder(st.stdout)
		for _, r := range list {
			if err := enc.Encode(r); err != nil {
				return st.internalError("encode", err)
			}
		}
		return exitResult{}
	}
	if len(list) == 0 {
		fmt.Fprintf(st.stdout, "No pending requests that you may decide.%s", st.newline())
		return exitResult{}
	}
	tw := tabwriter.NewWriter(newlineWriter{w: st.stdout, nl: st.newline()}, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tREQUESTER\tTARGET\tKIND\tAGE\tREASON\tTEXT")
	for _, r := range list {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Requester, r.Target, r.Kind,
			st.srv.now().Sub(r.Created).Round(time.Second), r.Reason, r.Text)
	}
	_ = tw.Flush()
	return exitResult{}
}

func (st *session) builtinDecide(args string, grant bool) exitResult {
	idWord, rest := splitFirstWord(args)
	id, err := strconv.ParseUint(idWord, 10, 64)
	if err != nil {
		st.errorf("want a request id: ssh %s %s ID", st.srv.hostName, map[bool]string{true: "approve", false: "deny"}[grant])
		return exitResult{code: 2}
	}
	comment := rest
	if r, after := splitReason(rest); r != "" {
		comment = strings.TrimSpace(r + " " + after)
	}
	comment = unquote(strings.TrimSpace(comment))
	if !grant && comment == "" {
		st.errorf("a denial needs a reason: ssh %s deny %d --reason 'why'", st.srv.hostName, id)
		return exitResult{code: 2}
	}
	r, err := st.srv.approvals.decide(st.ctx, id, st.id, grant, comment)
	if err != nil {
		if errors.Is(err, recorder.ErrNotFound) {
			st.errorf("no request %d", id)
			return exitResult{code: 1}
		}
		st.errorf("request %d: %v", id, err)
		return exitResult{code: 1}
	}
	verb := "denied"
	if grant {
		verb = "granted"
		if r.State == recorder.ApprovalPending {
			verb = fmt.Sprintf("granted (%d more approval(s) needed)", r.Required-len(r.Decisions))
		}
	}
	fmt.Fprintf(st.stdout, "request %d %s: %s on %s by %s%s", id, verb, r.Text, r.Target, r.Requester, st.newline())
	return exitResult{}
}
