package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/internal/testharness"
	"github.com/bastion-dev/bastion/recorder"
)

// hookSink is a loopback webhook endpoint that keeps what it was sent and
// answers with status.
type hookSink struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []map[string]any
}

func newHookSink(t *testing.T, status int) *hookSink {
	t.Helper()
	h := &hookSink{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err == nil {
			h.mu.Lock()
			h.events = append(h.events, m)
			h.mu.Unlock()
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// waitEvents waits until the sink holds events of every kind in want.
func (h *hookSink) waitEvents(t *testing.T, want ...string) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		got := append([]map[string]any(nil), h.events...)
		h.mu.Unlock()
		seen := map[string]bool{}
		for _, e := range got {
			seen[fmt.Sprint(e["event"])] = true
		}
		missing := false
		for _, w := range want {
			missing = missing || !seen[w]
		}
		if !missing {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook events %v; want all of %v", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// approvalTrail returns the approval records of the audit trail, oldest first.
func (w *world) approvalTrail(t *testing.T) []recorder.AuditRecord {
	t.Helper()
	out, errOut, code := w.bastion("audit", "--type", "approval", "--json")
	if code != 0 {
		t.Fatalf("audit --type approval: exit %d: %s", code, errOut)
	}
	var recs []recorder.AuditRecord
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r recorder.AuditRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		recs = append([]recorder.AuditRecord{r}, recs...)
	}
	return recs
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// pgApprovalWorld has one PostgreSQL target whose writes need approval by
// dev, approvers who may approve it, and a webhook endpoint.
func pgApprovalWorld(t *testing.T, hookURL string) *world {
	t.Helper()
	pg := testharness.StartPostgres(t)
	pg.Exec(t, "CREATE TABLE cards (id INT PRIMARY KEY, holder VARCHAR(40))",
		"INSERT INTO cards VALUES (1, 'Ann'), (2, 'Bo'), (3, 'Cy')")
	pass := filepath.Join(t.TempDir(), "pg.pass")
	writeFile(t, pass, pg.Password+"\n")
	// The webhook's URL carries its token: it lives in a file.
	hookFile := filepath.Join(t.TempDir(), "hook.url")
	writeFile(t, hookFile, hookURL+"\n")
	w := newWorld(t, worldOpts{
		extraTargets: fmt.Sprintf("  - { name: pg, kind: postgres, dsn: %q, password_file: %q }\n", pg.DSN(), pass),
		roles: `  - { name: dev, groups: [dev], targets: ["pg"] }
  - { name: approver, groups: [approver], targets: ["pg"], approve: ["pg"] }
`,
		extra: fmt.Sprintf(`rules:
  - { name: writes-need-approval, targets: ["pg"], roles: [dev], statements: [write], action: approve }
approvals: { ttl: 1m, required: 1, webhook: { url_file: %q, timeout: 2s, retries: 1 } }
`, hookFile),
	})
	return w
}

// statusRedraw matches the requester's status line as it is redrawn in
// place: carriage return, erase line, the line, and no newline.
var statusRedraw = regexp.MustCompile(`\r\x1b\[Kbastion: request \d+ waiting (\d+:\d\d) · approvals 0 of 1 · expires in \d+:\d\d · /cancel or Ctrl-C withdraws[^\n]*?\r\x1b\[Kbastion: request \d+ waiting (\d+:\d\d)`)

// TestApprovalOfHeldStatementInTheREPL: two real ssh clients in the SQL
// REPL on a real PostgreSQL. The requester's statement is held, asked for
// with /approve, shown to the approver (notice, /approvals), granted and
// run once; the same statement is held again, withdrawn with /cancel and
// with Ctrl-C, denied, and (after a reload that shortens approvals.ttl in
// the open sessions) left to expire; a second reload makes writes a deny
// for the very next statement. Every step is in the trail and the webhook.
func TestApprovalOfHeldStatementInTheREPL(t *testing.T) {
	hook := newHookSink(t, http.StatusOK)
	w := pgApprovalWorld(t, hook.srv.URL+"/services/T0KEN")
	dev := w.userClient(t, "dave", "dev")
	bob := w.userClient(t, "bob", "approver")
	const stmt = "delete from cards where id = 1"

	ap := bob.RunPTY(t, 160, 40, "-t", "pg")
	ap.Expect(t, `pg=> `, 15*time.Second)
	rq := dev.RunPTY(t, 160, 40, "-t", "pg")
	rq.Expect(t, `pg=> `, 15*time.Second)

	// Held: not run, the rule named, the way to ask given.
	rq.Send(stmt + ";\r")
	rq.Expect(t, `held by rule "writes-need-approval": this runs only once approved\. Type /approve <reason>`, 5*time.Second)
	rq.Expect(t, `pg=> `, 5*time.Second)
	rq.Send("/approve\r")
	rq.Expect(t, `a request needs a reason`, 5*time.Second)
	rq.Send("/approve refund ticket 42\r")
	rq.Expect(t, `request \d+ filed \(rule "writes-need-approval", 1 approval\(s\) needed`, 5*time.Second)
	// The live status line, redrawn in place (no newline in between) with
	// the time going on.
	rq.Expect(t, statusRedraw.String(), 10*time.Second)

	// The approver is told before the next prompt, and lists it.
	ap.Send("select 1 as one;\r")
	ap.Expect(t, `1 approval request waiting: type /approvals`, 5*time.Second)
	ap.Send("/approvals\r")
	ap.Expect(t, `dave\s+pg\s+statement\s+\S+\s+0/1\s+refund ticket 42\s+delete from cards where id = 1`, 5*time.Second)
	req := pendingID(t, bob)
	if req.Hash != sha(stmt) || req.Requester != "dave" || req.Target != "pg" || req.Reason != "refund ticket 42" {
		t.Fatalf("request %+v", req)
	}
	// approvals --json for scripts: id, requester, target, text, reason, age.
	res := bob.Run(t, "approvals", "--json")
	var view map[string]any
	if err := json.Unmarshal([]byte(strings.Split(strings.TrimSpace(res.Stdout), "\n")[0]), &view); err != nil {
		t.Fatalf("approvals --json: %v: %q", err, res.Stdout)
	}
	for _, k := range []string{"id", "requester", "target", "text", "reason", "age", "age_seconds"} {
		if _, ok := view[k]; !ok {
			t.Errorf("approvals --json lacks %q: %v", k, view)
		}
	}
	ap.Send("/grant " + itoa(req.ID) + " fine\r")
	ap.Expect(t, `request \d+ granted`, 5*time.Second)

	// Granted: the statement runs once, exactly as approved.
	rq.Expect(t, `granted by bob \(fine\)`, 10*time.Second)
	rq.Expect(t, `DELETE 1`, 10*time.Second)
	rq.Expect(t, `pg=> `, 5*time.Second)

	// The same statement again is held again: a grant is single-use.
	withdraw := func(how, keys string) {
		t.Helper()
		rq.Send(stmt + ";\r")
		rq.Expect(t, `held by rule "writes-need-approval"`, 5*time.Second)
		rq.Expect(t, `pg=> `, 5*time.Second)
		rq.Send("/approve try " + how + "\r")
		rq.Expect(t, `request \d+ filed`, 5*time.Second)
		rq.Expect(t, `waiting \d+:\d\d · approvals 0 of 1`, 5*time.Second)
		rq.Send(keys)
		rq.Expect(t, `request \d+ withdrawn; nothing was run`, 5*time.Second)
		rq.Expect(t, `pg=> `, 5*time.Second)
	}
	withdraw("cancel", "/cancel\r")
	withdraw("ctrl-c", "\x03")

	// Denied: the requester is told by whom and why.
	rq.Send(stmt + ";\r")
	rq.Expect(t, `held by rule`, 5*time.Second)
	rq.Send("/approve please\r")
	rq.Expect(t, `request (\d+) filed`, 5*time.Second)
	req = pendingID(t, bob)
	ap.Send("/deny " + itoa(req.ID) + " not today\r")
	ap.Expect(t, `request \d+ denied`, 5*time.Second)
	rq.Expect(t, `request \d+ denied by bob \(not today\); nothing was run`, 10*time.Second)

	// A reload applies to the open sessions' next request: approvals.ttl
	// becomes 2s, and the request expires.
	orig, err := os.ReadFile(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	reload := func(from, to string) {
		t.Helper()
		next := strings.Replace(string(orig), from, to, 1)
		if next == string(orig) {
			t.Fatalf("config has no %q", from)
		}
		writeFile(t, w.cfgPath, next)
		if out, errOut, code := w.bastion("reload"); code != 0 {
			t.Fatalf("reload: exit %d %s %s", code, out, errOut)
		}
	}
	reload("ttl: 1m", "ttl: 2s")
	rq.Send(stmt + ";\r")
	rq.Expect(t, `held by rule`, 5*time.Second)
	rq.Send("/approve in a hurry\r")
	rq.Expect(t, `expires in 0:0[12]`, 5*time.Second)
	rq.Expect(t, `request \d+ expired without enough approvals \(approvals\.ttl\); nothing was run`, 10*time.Second)
	rq.Expect(t, `pg=> `, 5*time.Second)

	// And a reload that turns the rule into a deny decides the very next
	// statement of the session that is already open.
	reload("statements: [write], action: approve", "statements: [write], action: deny")
	rq.Send(stmt + ";\r")
	rq.Expect(t, `refused by rule "writes-need-approval" \(write statement\)`, 5*time.Second)
	rq.Send("\\q\r")
	ap.Send("\\q\r")
	for _, p := range []*testharness.PTYSession{rq, ap} {
		if _, err := p.Wait(10 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if res := bob.Run(t, "pg", "select count(*) as n from cards;"); !strings.Contains(res.Stdout, " 2\n") {
		t.Fatalf("want the one granted delete to have run once: %+v", res)
	}

	// The trail: every step, with both identities, reasons, times and the
	// statement's hash.
	var steps []string
	for _, r := range w.approvalTrail(t) {
		if r.Detail["hash"] != sha(stmt) || r.Detail["requester"] != "dave" || r.Detail["created"] == "" || r.Time.IsZero() {
			t.Errorf("approval record without hash, requester or times: %+v", r)
		}
		step := r.Type + "/" + r.User
		switch r.Type {
		case "approval.filed":
			step += "/" + r.Reason
		case "approval.granted", "approval.denied":
			step += "/" + r.Reason
		case "approval.executed":
			step += "/approvers=" + r.Detail["approvers"] + "/" + r.Detail["request_reason"]
		case "approval.cancelled":
			step += "/" + strings.TrimPrefix(r.Reason, "withdrawn by the requester ")
		}
		steps = append(steps, step)
	}
	want := []string{
		"approval.filed/dave/refund ticket 42", "approval.granted/bob/fine", "approval.executed/dave/approvers=bob/refund ticket 42",
		"approval.filed/dave/try cancel", "approval.cancelled/dave/(/cancel)",
		"approval.filed/dave/try ctrl-c", "approval.cancelled/dave/(Ctrl-C)",
		"approval.filed/dave/please", "approval.denied/bob/not today",
		"approval.filed/dave/in a hurry", "approval.expired/dave",
	}
	if strings.Join(steps, "\n") != strings.Join(want, "\n") {
		t.Errorf("approval trail, oldest first:\n got %q\nwant %q", steps, want)
	}

	// The webhook heard of each request and decision, in Slack's shape,
	// and its token never reached the log.
	events := hook.waitEvents(t, "approval.filed", "approval.granted", "approval.denied", "approval.cancelled", "approval.expired")
	for _, e := range events {
		if text, _ := e["text"].(string); !strings.Contains(text, "dave") || !strings.Contains(text, stmt) || e["hash"] != sha(stmt) {
			t.Errorf("webhook event %v", e)
		}
	}
	if strings.Contains(w.logs.String(), "T0KEN") {
		t.Errorf("the webhook URL's token is in the log")
	}
}

// TestApprovalOfTargetAccessAndCommands: a whole target that needs
// approval (access: session) is opened from a terminal with the same
// /approve line, grants a time-boxed window (further sessions in it need
// no request; a session still open when it ends is ended; after it, access
// is held again); a held command asked for interactively runs once. The
// webhook endpoint fails throughout: nothing waits for it, and each
// failure is audited.
func TestApprovalOfTargetAccessAndCommands(t *testing.T) {
	hook := newHookSink(t, http.StatusInternalServerError)
	w := newWorld(t, worldOpts{
		roles: `  - { name: dev, groups: [dev], targets: ["web-*"] }
  - { name: approver, groups: [approver], approve: ["web-*"] }
`,
		extra: fmt.Sprintf(`rules:
  - { name: web-1-needs-approval, targets: ["web-1"], roles: [dev], access: session, action: approve }
  - { name: restarts, targets: ["web-ca"], roles: [dev], commands: ["echo restart*"], action: approve }
approvals: { ttl: 1m, required: 1, window: 15s, webhook: { url: %q, timeout: 1s, retries: 0 } }
`, hook.srv.URL),
	})
	dev := w.userClient(t, "dave", "dev")
	bob := w.userClient(t, "bob", "approver")

	// Non-interactive, without a reason: held, told how to ask.
	if res := dev.Run(t, "web-1", "echo hi"); res.ExitCode != 1 || !strings.Contains(res.Stderr, `held by rule "web-1-needs-approval"`) ||
		!strings.Contains(res.Stderr, "--reason") || strings.Contains(res.Stdout, "hi") {
		t.Fatalf("held access without reason: %+v", res)
	}

	// Interactive: the /approve line, then the shell.
	p := dev.RunPTY(t, 120, 30, "-t", "web-1")
	p.Expect(t, `Type /approve <reason>`, 10*time.Second)
	p.Expect(t, `approve> `, 5*time.Second)
	p.Send("/approve need a shell\r")
	p.Expect(t, `request \d+ filed`, 5*time.Second)
	req := pendingID(t, bob)
	if req.Kind != "access" || req.Target != "web-1" || req.Reason != "need a shell" {
		t.Fatalf("access request %+v", req)
	}
	// The approver's menu says what waits, and decides it.
	menu := bob.RunPTY(t, 120, 30)
	menu.Expect(t, `1 approval request is waiting for you`, 10*time.Second)
	menu.Expect(t, `\d+/\d+`, 5*time.Second)
	menu.Send("approvals\r")
	menu.Expect(t, `dave\s+web-1\s+access\s+\S+\s+0/1\s+need a shell\s+open a session on web-1`, 5*time.Second)
	menu.Expect(t, `approvals> `, 5*time.Second)
	menu.Send("approve " + itoa(req.ID) + " go ahead\r")
	menu.Expect(t, `request \d+ granted`, 5*time.Second)
	// Back to the menu, which bob, with no targets and nothing left to
	// decide, leaves.
	menu.Send("\r")
	if _, err := menu.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	p.Expect(t, `access to web-1 approved until`, 10*time.Second)
	p.Send("echo $((6*7))\r")
	p.Expect(t, `42`, 10*time.Second)
	p.Send("exit\r")
	if _, err := p.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}

	// Within the window: no new request; a session still open when it
	// ends is ended.
	start := time.Now()
	res := dev.Run(t, "web-1", "echo inside; sleep 60; echo survived")
	if !strings.Contains(res.Stdout, "inside") || strings.Contains(res.Stdout, "survived") ||
		!strings.Contains(res.Stderr, "approved access window to web-1 ended") || time.Since(start) > 45*time.Second {
		t.Fatalf("session in the window: %+v after %v", res, time.Since(start))
	}
	// After it: held again.
	if res := dev.Run(t, "web-1", "echo after"); res.ExitCode != 1 || !strings.Contains(res.Stderr, "held by rule") {
		t.Fatalf("after the window: %+v", res)
	}

	// A held command, asked for from the terminal with the same line.
	p = dev.RunPTY(t, 120, 30, "-t", "web-ca", "echo restart api")
	p.Expect(t, `held by rule "restarts"`, 10*time.Second)
	p.Expect(t, `approve> `, 5*time.Second)
	p.Send("/approve deploy 43\r")
	p.Expect(t, `request \d+ filed`, 5*time.Second)
	req = pendingID(t, bob)
	if req.Kind != "command" || req.Text != "echo restart api" || req.Hash != sha("echo restart api") {
		t.Fatalf("command request %+v", req)
	}
	if res := bob.Run(t, "approve", itoa(req.ID)); res.ExitCode != 0 {
		t.Fatalf("approve: %+v", res)
	}
	p.Expect(t, `granted by bob`, 10*time.Second)
	p.Expect(t, `restart api`, 10*time.Second)
	if code, err := p.Wait(10 * time.Second); err != nil || code != 0 {
		t.Fatalf("held command: exit %d %v", code, err)
	}

	// The failing webhook held nothing up, and each failure is in the trail.
	hook.waitEvents(t, "approval.filed", "approval.granted")
	deadline := time.Now().Add(10 * time.Second)
	for {
		var failed, executedWindow int
		for _, r := range w.approvalTrail(t) {
			if r.Type == "approval.webhook" && r.Outcome == recorder.OutcomeFailure && strings.Contains(r.Reason, "500") {
				failed++
			}
			if r.Type == "approval.executed" && r.Detail["kind"] == "access" && r.Detail["window_ends"] != "" {
				executedWindow++
			}
		}
		if failed >= 4 && executedWindow == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("want ≥4 audited webhook failures and 2 uses of the access window, got %d and %d", failed, executedWindow)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
