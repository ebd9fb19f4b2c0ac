package main

import (
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/internal/testharness"
	"github.com/bastion-dev/bastion/recorder"
)

// TestApprovalSurvivesRestart: a request outlives the session that filed
// it and the bastion itself. It is still pending after a restart, an
// approver grants it, and asking again for exactly the same command takes
// up the grant (once) instead of filing a second request; a pending one is
// taken up and waited for the same way.
func TestApprovalSurvivesRestart(t *testing.T) {
	w := approvalWorld(t, 1)
	dev := w.userClient(t, "dave", "dev")
	bob := w.userClient(t, "bob", "approver")
	run := func(args ...string) <-chan testharness.Result {
		ch := make(chan testharness.Result, 1)
		go func() { ch <- dev.Run(t, args...) }()
		return ch
	}
	restart := func() {
		w.stop()
		w.startServer()
	}

	done := run("web-1", "--reason", "'deploy 43'", "echo restarted api")
	req := pendingID(t, bob)
	restart()
	if res := <-done; res.ExitCode == 0 || strings.Contains(res.Stdout, "restarted") {
		t.Fatalf("the waiting command across a restart: %+v", res)
	}
	if got := pendingID(t, bob); got.ID != req.ID || got.State != recorder.ApprovalPending {
		t.Fatalf("after the restart: %+v, want request %d pending", got, req.ID)
	}
	if res := bob.Run(t, "approve", itoa(req.ID)); res.ExitCode != 0 {
		t.Fatalf("approve after the restart: %+v", res)
	}
	res := dev.Run(t, "web-1", "echo restarted api")
	if res.ExitCode != 0 || res.Stdout != "restarted api\n" || !strings.Contains(res.Stderr, "granted by bob") {
		t.Fatalf("asking again after the grant: %+v", res)
	}
	if res := dev.Run(t, "web-1", "echo restarted api"); res.ExitCode != 1 || strings.Contains(res.Stdout, "restarted") {
		t.Fatalf("the grant was used twice: %+v", res)
	}

	// A pending request is taken up and waited for.
	done = run("web-1", "--reason", "'deploy 44'", "echo restarted web")
	req2 := pendingID(t, bob)
	restart()
	<-done
	done = run("web-1", "echo restarted web")
	deadline := time.Now().Add(20 * time.Second)
	for resumed := false; !resumed; {
		for _, m := range w.sessions(t) {
			if m.State == recorder.StateActive && m.User == "dave" &&
				strings.Contains(w.recording(t, m.ID), "approval "+itoa(req2.ID)+" resumed") {
				resumed = true
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the second run did not take up the pending request")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if res := bob.Run(t, "approve", itoa(req2.ID)); res.ExitCode != 0 {
		t.Fatalf("approve the taken-up request: %+v", res)
	}
	if res := <-done; res.ExitCode != 0 || res.Stdout != "restarted web\n" || !strings.Contains(res.Stderr, "still waiting") {
		t.Fatalf("the taken-up request: %+v", res)
	}

	filed := 0
	for _, r := range w.approvalTrail(t) {
		if r.Type == "approval.filed" {
			filed++
		}
		if r.Type == "approval.cancelled" {
			t.Errorf("a restart cancelled a request: %+v", r)
		}
	}
	if filed != 2 {
		t.Errorf("%d requests filed, want 2: asking again must take up the earlier one", filed)
	}
}

// TestApprovalRefusedFromRevokedOrExpiredApprover: an approver whose
// certificate was revoked, or has expired, cannot grant: the bastion
// refuses the login that would carry the grant, and the request stays
// pending until an approver in good standing decides it.
func TestApprovalRefusedFromRevokedOrExpiredApprover(t *testing.T) {
	w := approvalWorld(t, 1)
	dev := w.userClient(t, "dave", "dev")
	bob := w.userClient(t, "bob", "approver")
	carol := w.userClient(t, "carol", "approver")

	// erin's certificate is valid for two seconds only.
	key, _ := testharness.KeyPair(t, t.TempDir(), "ed25519")
	w.sign("erin", "approver", "2s", key)
	erin := *w.client
	erin.KeyFile, erin.CertFile = key, key+"-cert.pub"

	done := make(chan testharness.Result, 1)
	go func() { done <- dev.Run(t, "web-1", "--reason", "'deploy 45'", "echo restarted api") }()
	req := pendingID(t, bob)

	if _, errOut, code := w.bastion("revoke", "--user", "bob"); code != 0 {
		t.Fatalf("revoke bob: %s", errOut)
	}
	if res := bob.Run(t, "approve", itoa(req.ID)); res.ExitCode == 0 || !strings.Contains(res.Stderr, "revoked") {
		t.Fatalf("a revoked approver's grant: %+v", res)
	}
	time.Sleep(3 * time.Second)
	if res := erin.Run(t, "approve", itoa(req.ID)); res.ExitCode == 0 || !strings.Contains(res.Stderr, "expired") {
		t.Fatalf("an expired approver's grant: %+v", res)
	}
	if got := pendingID(t, carol); got.ID != req.ID || len(got.Decisions) != 0 {
		t.Fatalf("after the refused grants: %+v", got)
	}
	if res := carol.Run(t, "approve", itoa(req.ID)); res.ExitCode != 0 {
		t.Fatalf("carol's grant: %+v", res)
	}
	if res := <-done; res.ExitCode != 0 || !strings.Contains(res.Stderr, "granted by carol") {
		t.Fatalf("the command after carol's grant: %+v", res)
	}
}
