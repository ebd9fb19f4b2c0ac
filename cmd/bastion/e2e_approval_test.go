package main

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/bastion/sqlrepl"
	"github.com/bastion-dev/bastion/internal/testharness"
	"github.com/bastion-dev/bastion/recorder"
)

// userClient signs a certificate for user in groups and returns a client.
func (w *world) userClient(t *testing.T, user, groups string) *testharness.SSHClient {
	t.Helper()
	key, _ := testharness.KeyPair(t, t.TempDir(), "ed25519")
	w.sign(user, groups, "1h", key)
	cl := *w.client
	cl.KeyFile, cl.CertFile = key, key+"-cert.pub"
	return &cl
}

func approvalWorld(t *testing.T, required int) *world {
	return newWorld(t, worldOpts{
		roles: `  - { name: dev, groups: [dev], targets: ["web-*"] }
  - { name: approver, groups: [approver], approve: ["web-*"] }
`,
		extra: `rules:
  - { name: no-rm, targets: ["web-*"], commands: ["rm -rf *"], action: deny }
  - { name: restarts, targets: ["web-*"], roles: [dev], commands: ["echo restart*"], action: approve }
approvals: { ttl: 1m, required: ` + strconv.Itoa(required) + ` }
`,
	})
}

// pendingID waits until the approver sees one pending request and returns it.
func pendingID(t *testing.T, approver *testharness.SSHClient) recorder.ApprovalRecord {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res := approver.Run(t, "approvals", "--json")
		if res.ExitCode != 0 {
			t.Fatalf("approvals: %+v", res)
		}
		if line := strings.TrimSpace(res.Stdout); line != "" {
			var r recorder.ApprovalRecord
			if err := json.Unmarshal([]byte(strings.Split(line, "\n")[0]), &r); err != nil {
				t.Fatal(err)
			}
			return r
		}
		if time.Now().After(deadline) {
			t.Fatal("no pending request appeared")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestApprovalOfHeldCommand(t *testing.T) {
	w := approvalWorld(t, 1)
	dev := w.userClient(t, "dave", "dev")
	bob := w.userClient(t, "bob", "approver")

	// Without a reason the command is held and the user is told how to ask.
	if res := dev.Run(t, "web-1", "echo restarted api"); res.ExitCode != 1 || !strings.Contains(res.Stderr, "--reason") || strings.Contains(res.Stdout, "restarted") {
		t.Fatalf("held command without reason: %+v", res)
	}
	// deny rules refuse at once.
	if res := dev.Run(t, "web-1", "rm -rf /tmp/x"); res.ExitCode != 1 || !strings.Contains(res.Stderr, "no-rm") {
		t.Fatalf("denied command: %+v", res)
	}

	run := func(cl *testharness.SSHClient, args ...string) <-chan testharness.Result {
		ch := make(chan testharness.Result, 1)
		go func() { ch <- cl.Run(t, args...) }()
		return ch
	}
	// Grant: the command runs once, exactly as approved.
	done := run(dev, "web-1", "--reason", "'deploy 42'", "echo restarted api")
	req := pendingID(t, bob)
	if req.Requester != "dave" || req.Text != "echo restarted api" || req.Reason != "deploy 42" {
		t.Fatalf("request %+v", req)
	}
	if res := dev.Run(t, "approve", itoa(req.ID)); res.ExitCode != 1 || !strings.Contains(res.Stderr, "own request") && !strings.Contains(res.Stderr, "may not approve") {
		t.Fatalf("self-approval: %+v", res)
	}
	if res := bob.Run(t, "approve", itoa(req.ID), "looks", "fine"); res.ExitCode != 0 {
		t.Fatalf("approve: %+v", res)
	}
	res := <-done
	if res.ExitCode != 0 || res.Stdout != "restarted api\n" || !strings.Contains(res.Stderr, "granted by bob") {
		t.Fatalf("granted command: %+v", res)
	}
	if res := bob.Run(t, "approve", itoa(req.ID)); res.ExitCode == 0 {
		t.Fatalf("a used grant was granted again: %+v", res)
	}

	// Deny: the requester is told by whom and why.
	done = run(dev, "web-1", "--reason", "again", "echo restarted api")
	req = pendingID(t, bob)
	if res := bob.Run(t, "deny", itoa(req.ID), "--reason", "'not now'"); res.ExitCode != 0 {
		t.Fatalf("deny: %+v", res)
	}
	res = <-done
	if res.ExitCode != 1 || strings.Contains(res.Stdout, "restarted") || !strings.Contains(res.Stderr, "denied by bob (not now)") {
		t.Fatalf("denied request: %+v", res)
	}

	// The trail has every step with both identities, and still verifies.
	out, errOut, code := w.bastion("audit", "--type", "approval", "--json")
	if code != 0 {
		t.Fatalf("audit: %s", errOut)
	}
	var types []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r recorder.AuditRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if r.Detail["requester"] != "dave" || r.Detail["hash"] == "" {
			t.Errorf("approval record without requester or hash: %+v", r)
		}
		types = append(types, r.Type+"/"+r.User+"/"+r.Outcome)
	}
	// Newest first; refused attempts (self-approval, reusing a grant) are
	// recorded as failures.
	want := "approval.denied/bob/success approval.filed/dave/success approval.granted/bob/failure approval.executed/dave/success " +
		"approval.granted/bob/success approval.granted/dave/failure approval.filed/dave/success"
	if got := strings.Join(types, " "); got != want {
		t.Errorf("approval trail (newest first)\n got %s\nwant %s", got, want)
	}
	if out, errOut, code := w.bastion("audit", "verify"); code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("audit verify: %s %s", out, errOut)
	}
}

func TestApprovalNeedsDistinctApprovers(t *testing.T) {
	w := approvalWorld(t, 2)
	dev := w.userClient(t, "dave", "dev")
	bob := w.userClient(t, "bob", "approver")
	carol := w.userClient(t, "carol", "approver")
	done := make(chan testharness.Result, 1)
	go func() { done <- dev.Run(t, "web-1", "--reason", "two-man", "echo restart both") }()
	req := pendingID(t, bob)
	if res := bob.Run(t, "approve", itoa(req.ID)); res.ExitCode != 0 || !strings.Contains(res.Stdout, "1 more") {
		t.Fatalf("first approval: %+v", res)
	}
	if res := bob.Run(t, "approve", itoa(req.ID)); res.ExitCode != 1 {
		t.Fatalf("same approver twice: %+v", res)
	}
	select {
	case res := <-done:
		t.Fatalf("ran after one of two approvals: %+v", res)
	case <-time.After(300 * time.Millisecond):
	}
	if res := carol.Run(t, "approve", itoa(req.ID)); res.ExitCode != 0 {
		t.Fatalf("second approval: %+v", res)
	}
	if res := <-done; res.ExitCode != 0 || res.Stdout != "restart both\n" {
		t.Fatalf("after two approvals: %+v", res)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func TestApprovalFromInsideTheREPL(t *testing.T) {
	lite := filepath.Join(t.TempDir(), "lite.db")
	if err := sqlrepl.WriteDemoDB(lite); err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, worldOpts{
		extraTargets: "  - { name: lite, kind: sqlite, path: " + strconv.Quote(lite) + " }\n",
		roles: `  - { name: dev, groups: [dev], targets: ["lite"] }
  - { name: approver, groups: [approver], targets: ["lite"], approve: ["lite"] }
`,
		extra: `rules:
  - { name: writes-need-approval, targets: ["lite"], roles: [dev], statements: [write], action: approve }
approvals: { ttl: 1m, required: 1 }
`,
	})
	dev := w.userClient(t, "dave", "dev")
	bob := w.userClient(t, "bob", "approver")
	done := make(chan testharness.Result, 1)
	go func() { done <- dev.Run(t, "lite", "--reason", "'refund 1'", "delete from payments where id = 1;") }()
	req := pendingID(t, bob)

	p := bob.RunPTY(t, 120, 30, "-t", "lite")
	p.Expect(t, `lite=>`, 10*time.Second)
	p.Send("/approvals\r")
	p.Expect(t, `dave`, 5*time.Second)
	p.Send("/grant " + itoa(req.ID) + " fine\r")
	p.Expect(t, `granted`, 5*time.Second)
	p.Send("\\q\r")
	if _, err := p.Wait(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.ExitCode != 0 || !strings.Contains(res.Stderr, "granted by bob (fine)") {
		t.Fatalf("requester after the in-REPL grant: %+v", res)
	}
	if res := bob.Run(t, "lite", "select count(*) from payments where id = 1;"); !strings.Contains(res.Stdout, "0") {
		t.Fatalf("the granted delete did not run: %+v", res)
	}
}
