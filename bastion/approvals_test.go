package bastion

import (
	"testing"
	"time"

	"github.com/bastion-dev/bastion/recorder"
)

func TestStatusLine(t *testing.T) {
	created := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	r := recorder.ApprovalRecord{ID: 7, Created: created, Expires: created.Add(15 * time.Minute), Required: 2}
	granted := r
	granted.Decisions = []recorder.ApprovalDecision{{By: "bob", Grant: true}}
	for _, tt := range []struct {
		name string
		r    recorder.ApprovalRecord
		at   time.Duration
		want string
	}{
		{"just filed", r, 0, "bastion: request 7 waiting 0:00 · approvals 0 of 2 · expires in 15:00 · /cancel or Ctrl-C withdraws"},
		{"one of two", granted, 75 * time.Second, "bastion: request 7 waiting 1:15 · approvals 1 of 2 · expires in 13:45 · /cancel or Ctrl-C withdraws"},
		{"past expiry", r, 20 * time.Minute, "bastion: request 7 waiting 20:00 · approvals 0 of 2 · expires in 0:00 · /cancel or Ctrl-C withdraws"},
	} {
		if got := statusLine(tt.r, created.Add(tt.at)); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

func TestClock(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0:00"}, {1499 * time.Millisecond, "0:01"}, {59 * time.Second, "0:59"}, {61 * time.Second, "1:01"},
		{time.Hour + 2*time.Minute + 3*time.Second, "1:02:03"}, {-time.Second, "0:00"},
	} {
		if got := clock(tt.d); got != tt.want {
			t.Errorf("clock(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestApproveLine(t *testing.T) {
	for _, tt := range []struct {
		line, reason string
		ok           bool
	}{
		{"/approve refund ticket 42", "refund ticket 42", true},
		{"  /approve   'quoted reason'  ", "quoted reason", true},
		{"/approve", "", true},
		{"/approvals", "", false},
		{"approve 7", "", false},
		{"/cancel", "", false},
	} {
		reason, ok := approveLine(tt.line)
		if reason != tt.reason || ok != tt.ok {
			t.Errorf("approveLine(%q) = %q, %v; want %q, %v", tt.line, reason, ok, tt.reason, tt.ok)
		}
	}
}

func TestSplitReason(t *testing.T) {
	for _, tt := range []struct{ in, reason, rest string }{
		{"--reason 'deploy 42' systemctl restart api", "deploy 42", "systemctl restart api"},
		{"--reason=urgent uptime", "urgent", "uptime"},
		{`--reason "two words" `, "two words", ""},
		{"uptime --reason x", "", "uptime --reason x"},
	} {
		reason, rest := splitReason(tt.in)
		if reason != tt.reason || rest != tt.rest {
			t.Errorf("splitReason(%q) = %q, %q; want %q, %q", tt.in, reason, rest, tt.reason, tt.rest)
		}
	}
}
