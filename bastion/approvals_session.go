package bastion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/recorder"
)

// The requester's side of an approval, in call order:
//
//  1. held        a rule says approve: the user is told which rule and how
//                 to ask (`/approve <reason>` on a terminal, `--reason` in
//                 an exec).
//  2. filed       file() stores a request bound to the SHA-256 of the exact
//                 text, the target and the requester.
//  3. waiting     await() shows a status line redrawn in place (elapsed,
//                 approvals N of M, time to expiry); Ctrl-C or /cancel
//                 withdraws the request.
//  4. decided     granted: consume() marks it executed and the text runs
//                 once; denied, expired or withdrawn: the user is told by
//                 whom and why, and nothing runs.

// The causes of a wait the requester ended, for the trail.
var (
	errCtrlC       = errors.New("Ctrl-C")
	errSlashCancel = errors.New("/cancel")
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

// say writes one of the approval flow's messages to the user. With a
// terminal it goes to stdout, in order with the prompts and the status
// line (an SSH client writes stdout and stderr from separate buffers, so a
// message on stderr can overtake or trail the prompt after it); without
// one, to stderr, so that a pipeline's stdout stays the command's. It is
// flushed at once: the masker may hold a line's tail back.
func (st *session) say(format string, args ...any) {
	w := st.stderr
	if st.hasPty {
		w = st.stdout
	}
	fmt.Fprintf(w, "bastion: "+format+st.newline(), args...)
	_ = w.Flush()
}

// approveLine parses `/approve <reason>`: ok when line is an /approve
// command at all, reason what follows it (possibly empty).
func approveLine(line string) (reason string, ok bool) {
	word, rest := splitFirstWord(strings.TrimSpace(line))
	if word != "/approve" {
		return "", false
	}
	return unquote(strings.TrimSpace(rest)), true
}

// heldMessage tells the user which rule holds text and how to ask.
func (st *session) heldMessage(t policy.Target, text, rule string, interactive bool) {
	if interactive {
		st.say("held by rule %q: this runs only once approved. Type /approve <reason> to ask for exactly this; approvers see the reason.", rule)
		return
	}
	st.say("held by rule %q: this needs approval. Ask for it with a reason: ssh %s %s --reason 'why' '%s'",
		rule, st.srv.hostName, t.Name, strings.ReplaceAll(text, "'", `'\''`))
}

// hold asks for approval of text (a command, a statement, or opening the
// target) and waits for the decision. reason comes from --reason; without
// one, a user with a terminal is asked for the `/approve <reason>` line.
// It returns true when a grant was given and used.
func (st *session) hold(t policy.Target, kind, text, reason, rule string) bool {
	final, ok := st.approval(t, kind, text, reason, rule, func() { st.heldMessage(t, text, rule, false) })
	if !ok {
		return false
	}
	_, ok = st.use(final, text)
	return ok
}

// approval gets text approved: an earlier request for exactly it is taken
// up (broker.existing), or a new one filed with reason (asked for on a
// terminal when there is none) and waited for; noReason tells a user
// without a terminal how to ask. ok is true when a grant came; it is not
// used yet.
func (st *session) approval(t policy.Target, kind, text, reason, rule string, noReason func()) (recorder.ApprovalRecord, bool) {
	if r, found, err := st.srv.approvals.existing(st.ctx, st.id.User, kind, t.Name, text); err != nil {
		st.internalError("look for an earlier approval request", err)
		return r, false
	} else if found {
		return st.takeUp(r)
	}
	if reason == "" && st.hasPty {
		st.heldMessage(t, text, rule, true)
		reason = st.askApprove()
	}
	if reason == "" {
		noReason()
		return recorder.ApprovalRecord{}, false
	}
	return st.requestApproval(t, kind, text, reason, rule)
}

// use spends the grant r on text, once; the user is told when it cannot
// be used.
func (st *session) use(r recorder.ApprovalRecord, text string) (recorder.ApprovalRecord, bool) {
	final, err := st.srv.approvals.consume(st.ctx, r.ID, st.id.User, text)
	if err != nil {
		st.srv.log.Error("use approval", "user", st.id.User, "request", r.ID, "err", err)
		st.say("request %d could not be used (%v); nothing was run", r.ID, err)
		return final, false
	}
	return final, true
}

// accessGrant is the approval to open a session on a target that a rule
// with access: session holds. A grant opens a window (approvals.window):
// within it the requester's next sessions there need no new request. It
// returns when the window ends.
func (st *session) accessGrant(t policy.Target, command, rule string) (time.Time, bool) {
	text := "open a session on " + t.Name
	if r, found, err := st.srv.approvals.openWindow(st.ctx, st.id.User, t.Name, text); err != nil {
		st.internalError("look for an access window", err)
		return time.Time{}, false
	} else if found {
		if r, err = st.srv.approvals.consume(st.ctx, r.ID, st.id.User, text); err == nil {
			st.say("access to %s approved until %s (request %d)", t.Name, r.WindowEnds.Local().Format("15:04:05"), r.ID)
			return r.WindowEnds, true
		}
		// The window closed meanwhile: ask anew.
	}
	reason, _ := splitReason(command)
	final, ok := st.approval(t, kindAccess, text, reason, rule, func() {
		st.say("held by rule %q: %s needs approval first. Ask for it with a reason: ssh %s %s --reason 'why' [COMMAND]",
			rule, t.Name, st.srv.hostName, t.Name)
	})
	if !ok {
		return time.Time{}, false
	}
	if final, ok = st.use(final, text); !ok {
		return time.Time{}, false
	}
	st.say("access to %s approved until %s", t.Name, final.WindowEnds.Local().Format("15:04:05"))
	return final.WindowEnds, true
}

// timeBox ends the session when an access window closes; the returned
// func stops the timer (the visit ended first).
func (st *session) timeBox(target string, until time.Time) func() {
	timer := time.AfterFunc(until.Sub(st.srv.now()), func() {
		st.end(fmt.Sprintf("your approved access window to %s ended (approvals.window); ask for approval again to go on", target))
	})
	return func() { timer.Stop() }
}

// requestApproval files a request and waits for its decision, telling the
// user how it went. ok is true when it was granted (and not yet used).
func (st *session) requestApproval(t policy.Target, kind, text, reason, rule string) (recorder.ApprovalRecord, bool) {
	shown, _ := st.srv.maskEngine().MaskText(text)
	r, err := st.srv.approvals.file(st.ctx, recorder.ApprovalRecord{
		Requester: st.id.User, Serial: st.id.Serial, Session: st.rec.ID(), Target: t.Name,
		Kind: kind, Text: shown, Hash: hashText(text), Rule: rule, Reason: reason,
	})
	if err != nil {
		st.internalError("file approval request", err)
		return r, false
	}
	withdraw := "Ctrl-C withdraws it."
	if st.hasPty {
		withdraw = "Ctrl-C or /cancel withdraws it."
	}
	st.say("request %d filed (rule %q, %d approval(s) needed, expires %s); waiting. An approver runs: ssh %s approve %d. %s",
		r.ID, rule, r.Required, r.Expires.Local().Format("15:04"), st.srv.hostName, r.ID, withdraw)
	st.rec.Marker(fmt.Sprintf("approval %d requested", r.ID))
	return st.waitFor(r)
}

// takeUp resumes an earlier request for exactly the same thing (see
// broker.existing): a grant is used at once, a pending request waited for.
func (st *session) takeUp(r recorder.ApprovalRecord) (recorder.ApprovalRecord, bool) {
	if r.State == recorder.ApprovalGranted {
		st.say("request %d for exactly this was granted by %s", r.ID, decidedBy(r, true))
		st.rec.Marker(fmt.Sprintf("approval %d granted", r.ID))
		return r, true
	}
	withdraw := "Ctrl-C withdraws it."
	if st.hasPty {
		withdraw = "Ctrl-C or /cancel withdraws it."
	}
	st.say("request %d for exactly this, filed %s ago, is still waiting (expires %s); waiting for it. %s",
		r.ID, st.srv.now().Sub(r.Created).Round(time.Second), r.Expires.Local().Format("15:04"), withdraw)
	st.rec.Marker(fmt.Sprintf("approval %d resumed", r.ID))
	return st.waitFor(r)
}

// waitFor waits for the decision on r and tells the user how it went. ok
// is true when it was granted (and not yet used).
func (st *session) waitFor(r recorder.ApprovalRecord) (recorder.ApprovalRecord, bool) {
	final, err := st.await(r)
	if errors.Is(err, errRequesterGone) {
		st.srv.log.Info("approval request left pending: the requester's session ended", "user", st.id.User, "request", r.ID)
		return final, false
	}
	if err != nil {
		st.internalError("wait for approval", err)
		return final, false
	}
	st.rec.Marker(fmt.Sprintf("approval %d %s", r.ID, final.State))
	switch final.State {
	case recorder.ApprovalGranted:
		st.say("request %d granted by %s", r.ID, decidedBy(final, true))
		return final, true
	case recorder.ApprovalDenied:
		st.say("request %d denied by %s; nothing was run", r.ID, decidedBy(final, false))
	case recorder.ApprovalExpired:
		st.say("request %d expired without enough approvals (approvals.ttl); nothing was run", r.ID)
	case recorder.ApprovalCancelled:
		st.say("request %d withdrawn; nothing was run", r.ID)
	default:
		st.say("request %d is %s; nothing was run", r.ID, final.State)
	}
	return final, false
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

// askApprove reads the `/approve <reason>` line on the user's terminal.
// Enter on an empty line, /cancel, Ctrl-C or the end of input give up.
func (st *session) askApprove() string {
	ctx, cancel := context.WithCancel(st.ctx)
	defer cancel()
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{st.input.readLimited(ctx), st.stdout}, "approve> ")
	for {
		line, err := t.ReadLine()
		if err != nil {
			return ""
		}
		line = strings.TrimSpace(line)
		if line == "" || line == "/cancel" {
			return ""
		}
		reason, ok := approveLine(line)
		switch {
		case !ok:
			fmt.Fprintf(t, "type /approve <reason>, or Enter to give up\n")
		case reason == "":
			fmt.Fprintf(t, "a request needs a reason for the approvers: /approve <reason>\n")
		default:
			return reason
		}
	}
}

// await waits for the decision on r. With a terminal it redraws one status
// line in place each second and whenever the request changes, and watches
// the input for Ctrl-C and /cancel, which withdraw the request. Without
// one, it prints a line per approval, and the session ending withdraws it.
func (st *session) await(r recorder.ApprovalRecord) (recorder.ApprovalRecord, error) {
	ctx, cancel := context.WithCancelCause(st.ctx)
	defer cancel(nil)
	var (
		mu     sync.Mutex
		latest = r
		typed  []byte
	)
	draw := func() {
		mu.Lock()
		line := statusLine(latest, st.srv.now()) + "  " + string(typed)
		mu.Unlock()
		_, _ = io.WriteString(st.stdout, "\r\x1b[K"+line)
		_ = st.stdout.Flush()
	}
	var wg sync.WaitGroup
	if st.hasPty {
		// Both goroutines end with ctx, which await cancels on return; it
		// waits for them, so that the input is the next consumer's again.
		wg.Add(2)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					draw()
				}
			}
		}()
		go func() {
			defer wg.Done()
			in := st.input.reader(ctx)
			b := make([]byte, 256)
			for {
				n, err := in.Read(b)
				if err != nil {
					return
				}
				for _, c := range b[:n] {
					mu.Lock()
					switch {
					case c == 0x03:
						cancel(errCtrlC)
					case c == '\r' || c == '\n':
						if strings.TrimSpace(string(typed)) == "/cancel" {
							cancel(errSlashCancel)
						}
						typed = typed[:0]
					case c == 0x7f || c == 0x08:
						if len(typed) > 0 {
							typed = typed[:len(typed)-1]
						}
					case c >= 0x20 && len(typed) < 64:
						typed = append(typed, c)
					}
					mu.Unlock()
				}
				draw()
			}
		}()
	}
	grants := 0
	final, err := st.srv.approvals.wait(ctx, r.ID, func(cur recorder.ApprovalRecord) {
		mu.Lock()
		latest = cur
		mu.Unlock()
		if st.hasPty {
			draw()
			return
		}
		if n := countGrants(cur); n > grants {
			grants = n
			st.say("request %d: %d of %d approvals", cur.ID, n, cur.Required)
		}
	})
	cancel(nil)
	wg.Wait()
	if st.hasPty {
		_, _ = io.WriteString(st.stdout, "\r\x1b[K")
	}
	return final, err
}

func countGrants(r recorder.ApprovalRecord) int {
	n := 0
	for _, d := range r.Decisions {
		if d.Grant {
			n++
		}
	}
	return n
}

// statusLine is the requester's one-line view of a waiting request.
func statusLine(r recorder.ApprovalRecord, now time.Time) string {
	left := r.Expires.Sub(now)
	if left < 0 {
		left = 0
	}
	return fmt.Sprintf("bastion: request %d waiting %s · approvals %d of %d · expires in %s · /cancel or Ctrl-C withdraws",
		r.ID, clock(now.Sub(r.Created)), countGrants(r), r.Required, clock(left))
}

// clock formats d as m:ss (or h:mm:ss).
func clock(d time.Duration) string {
	d = d.Round(time.Second)
	if d < 0 {
		d = 0
	}
	h, m, s := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

// approvalView is one pending request as approvers see it (approvals --json).
type approvalView struct {
	recorder.ApprovalRecord
	Age        string `json:"age"`
	AgeSeconds int64  `json:"age_seconds"`
}

// The approver's built-in words: approvals, approve ID [comment], deny ID --reason TEXT.
func (st *session) builtinApprovals(args string) exitResult {
	asJSON := strings.TrimSpace(args) == "--json"
	list, err := st.srv.approvals.pending(st.ctx, st.id)
	if err != nil {
		return st.internalError("list approvals", err)
	}
	now := st.srv.now()
	if asJSON {
		enc := json.NewEncoder(st.stdout)
		for _, r := range list {
			age := now.Sub(r.Created).Round(time.Second)
			if err := enc.Encode(approvalView{ApprovalRecord: r, Age: age.String(), AgeSeconds: int64(age / time.Second)}); err != nil {
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
	fmt.Fprintln(tw, "ID\tREQUESTER\tTARGET\tKIND\tAGE\tAPPROVALS\tREASON\tTEXT")
	for _, r := range list {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", r.ID, r.Requester, r.Target, r.Kind,
			now.Sub(r.Created).Round(time.Second), countGrants(r), r.Required, oneLine(r.Reason), oneLine(r.Text))
	}
	_ = tw.Flush()
	return exitResult{}
}

// oneLine keeps a table row on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// approvalNotice returns the line that tells an approver that requests
// they may decide are waiting ("2 approval requests waiting: type
// approvals", with hint as the word to type), or "". With always false it
// is "" unless a request arrived since *seen (the highest id already
// told), and costs no store read when nothing was filed since.
func (st *session) approvalNotice(seen *uint64, always bool, hint string) string {
	if !always && st.srv.approvals.lastFiled.Load() <= *seen && *seen != 0 {
		return ""
	}
	list, err := st.srv.approvals.pending(st.ctx, st.id)
	if err != nil {
		st.srv.log.Warn("approval notice", "user", st.id.User, "err", err)
		return ""
	}
	newest := uint64(0)
	for _, r := range list {
		newest = max(newest, r.ID)
	}
	fresh := newest > *seen
	*seen = max(*seen, st.srv.approvals.lastFiled.Load(), newest)
	if len(list) == 0 || !fresh && !always {
		return ""
	}
	word := "requests"
	if len(list) == 1 {
		word = "request"
	}
	return fmt.Sprintf("%d approval %s waiting: type %s", len(list), word, hint)
}

func (st *session) builtinDecide(args string, grant bool) exitResult {
	idWord, rest := splitFirstWord(args)
	id, err := strconv.ParseUint(idWord, 10, 64)
	if err != nil {
		st.say("want a request id: ssh %s %s ID", st.srv.hostName, map[bool]string{true: "approve", false: "deny"}[grant])
		return exitResult{code: 2}
	}
	comment := rest
	if r, after := splitReason(rest); r != "" {
		comment = strings.TrimSpace(r + " " + after)
	}
	comment = unquote(strings.TrimSpace(comment))
	if !grant && comment == "" {
		st.say("a denial needs a reason: ssh %s deny %d --reason 'why'", st.srv.hostName, id)
		return exitResult{code: 2}
	}
	r, err := st.srv.approvals.decide(st.ctx, id, st.id, grant, comment)
	if err != nil {
		if errors.Is(err, recorder.ErrNotFound) {
			st.say("no request %d", id)
			return exitResult{code: 1}
		}
		st.say("request %d: %v", id, err)
		return exitResult{code: 1}
	}
	verb := "denied"
	if grant {
		verb = "granted"
		if r.State == recorder.ApprovalPending {
			verb = fmt.Sprintf("granted (%d more approval(s) needed)", r.Required-countGrants(r))
		}
	}
	fmt.Fprintf(st.stdout, "request %d %s: %s on %s by %s%s", id, verb, r.Text, r.Target, r.Requester, st.newline())
	return exitResult{}
}

// heldStatement is a statement an approve rule held in the SQL REPL: the
// one `/approve <reason>` asks for, then (with id) the one its grant runs.
type heldStatement struct {
	stmt, rule string
	id         uint64
}

// approvalSlash handles the requester's in-REPL words, /approve <reason>
// and /cancel, and hands every other /word to slashCommand. A granted
// statement goes into *queued for the REPL to run next and into *granted
// for Check to let through once.
func (st *session) approvalSlash(ctx context.Context, t policy.Target, line string, held, granted **heldStatement, queued *string) bool {
	word, _ := splitFirstWord(line)
	switch word {
	case "/approve":
		reason, _ := approveLine(line)
		switch h := *held; {
		case h == nil:
			st.say("nothing is held: /approve <reason> asks for approval of the last statement a rule held")
		case reason == "":
			st.say("a request needs a reason for the approvers: /approve <reason>")
		default:
			*held = nil
			if final, ok := st.requestApproval(t, kindStatement, h.stmt, reason, h.rule); ok {
				*granted = &heldStatement{stmt: h.stmt, rule: h.rule, id: final.ID}
				*queued = h.stmt
			}
		}
		return true
	case "/cancel":
		st.say("nothing is waiting for approval: /cancel withdraws a request while it waits")
		return true
	}
	return st.slashCommand(ctx, line)
}
