package bastion

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/keys"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/recorder"
)

// brokerWorld is a broker over a real store, a clock the test moves and
// an audit trail it can read.
type brokerWorld struct {
	b     *broker
	now   time.Time
	mu    sync.Mutex
	trail []recorder.AuditRecord
}

func newBrokerWorld(t *testing.T, extra string) *brokerWorld {
	t.Helper()
	cfg, err := policy.Parse([]byte(`listen: ":2222"
data_dir: /tmp/x
targets:
  - { name: db, kind: command, argv: [/bin/true] }
  - { name: web, kind: command, argv: [/bin/true] }
roles:
  - { name: dev, groups: [dev], targets: ["*"] }
  - { name: approver, groups: [approver], approve: ["*"] }
`+extra), "t.yaml", "/tmp")
	if err != nil {
		t.Fatal(err)
	}
	store, err := recorder.OpenBolt(filepath.Join(t.TempDir(), "bastion.db"), recorder.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	w := &brokerWorld{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	w.b = newBroker(store, func() *policy.Config { return cfg }, func() time.Time {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.now
	}, func(r recorder.AuditRecord) {
		w.mu.Lock()
		w.trail = append(w.trail, r)
		w.mu.Unlock()
	})
	w.b.startHooks(slog.New(slog.NewTextHandler(io.Discard, nil)), "bastion.test")
	t.Cleanup(w.b.stopHooks)
	return w
}

func (w *brokerWorld) advance(d time.Duration) {
	w.mu.Lock()
	w.now = w.now.Add(d)
	w.mu.Unlock()
}

func (w *brokerWorld) types() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, r := range w.trail {
		out = append(out, r.Type+"/"+r.Outcome)
	}
	return out
}

var (
	dave = &keys.Identity{User: "dave", Groups: []string{"dev"}, Serial: 1}
	bob  = &keys.Identity{User: "bob", Groups: []string{"approver"}, Serial: 2}
)

func (w *brokerWorld) file(t *testing.T, kind, text string) recorder.ApprovalRecord {
	t.Helper()
	r, err := w.b.file(context.Background(), recorder.ApprovalRecord{Requester: dave.User, Serial: dave.Serial,
		Target: "db", Kind: kind, Text: text, Hash: hashText(text), Rule: "r", Reason: "why"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestBrokerGrantIsBoundAndSingleUse(t *testing.T) {
	w := newBrokerWorld(t, "")
	ctx := context.Background()
	r := w.file(t, kindStatement, "DELETE FROM t WHERE id=1")
	if _, err := w.b.decide(ctx, r.ID, bob, true, "ok"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ who, text string }{
		{"dave", "DELETE FROM t"},             // other text
		{"eve", "DELETE FROM t WHERE id=1"},   // another user
		{"dave", "DELETE FROM t WHERE id=1 "}, // not byte for byte
	} {
		if _, err := w.b.consume(ctx, r.ID, tt.who, tt.text); err == nil {
			t.Errorf("consume by %s of %q: want refused", tt.who, tt.text)
		}
	}
	if _, err := w.b.consume(ctx, r.ID, "dave", "DELETE FROM t WHERE id=1"); err != nil {
		t.Fatalf("consume: %v", err)
	}
	if _, err := w.b.consume(ctx, r.ID, "dave", "DELETE FROM t WHERE id=1"); err == nil {
		t.Fatal("a grant was used twice")
	}
}

// A request nobody waits for any more (its session is gone, the bastion
// restarted) still ends in the trail: it expires when next listed.
func TestBrokerExpiresOrphansWhenListed(t *testing.T) {
	w := newBrokerWorld(t, "approvals: { ttl: 1m }\n")
	ctx := context.Background()
	r := w.file(t, kindCommand, "systemctl restart api")
	if list, err := w.b.pending(ctx, bob); err != nil || len(list) != 1 {
		t.Fatalf("pending %v %v", list, err)
	}
	if list, _ := w.b.pending(ctx, dave); len(list) != 0 {
		t.Errorf("a requester is shown their own request to decide: %v", list)
	}
	w.advance(2 * time.Minute)
	if list, err := w.b.pending(ctx, bob); err != nil || len(list) != 0 {
		t.Fatalf("pending after ttl %v %v", list, err)
	}
	if _, err := w.b.decide(ctx, r.ID, bob, true, ""); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("grant of an expired request: %v", err)
	}
	want := "approval.filed/success approval.expired/failure approval.granted/failure"
	if got := strings.Join(w.types(), " "); got != want {
		t.Errorf("trail %s, want %s", got, want)
	}
}

func TestBrokerAccessWindow(t *testing.T) {
	w := newBrokerWorld(t, "approvals: { window: 10m }\n")
	ctx := context.Background()
	const text = "open a session on db"
	r := w.file(t, kindAccess, text)
	if _, ok, _ := w.b.openWindow(ctx, "dave", "db", text); ok {
		t.Fatal("a window before any grant")
	}
	g, err := w.b.decide(ctx, r.ID, bob, true, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := w.now.Add(10 * time.Minute); !g.WindowEnds.Equal(want) {
		t.Fatalf("window ends %v, want %v", g.WindowEnds, want)
	}
	for range 2 { // each session in the window uses it
		if _, err := w.b.consume(ctx, r.ID, "dave", text); err != nil {
			t.Fatalf("use within the window: %v", err)
		}
	}
	w.advance(9 * time.Minute)
	if found, ok, _ := w.b.openWindow(ctx, "dave", "db", text); !ok || found.ID != r.ID {
		t.Fatalf("open window not found: %+v %v", found, ok)
	}
	if _, ok, _ := w.b.openWindow(ctx, "dave", "web", "open a session on web"); ok {
		t.Fatal("a window on db opened web")
	}
	w.advance(2 * time.Minute)
	if _, ok, _ := w.b.openWindow(ctx, "dave", "db", text); ok {
		t.Fatal("window still open after approvals.window")
	}
	if _, err := w.b.consume(ctx, r.ID, "dave", text); err == nil {
		t.Fatal("used after the window ended")
	}
}

// The webhook is told of each step; when it fails, the decision stands and
// the failure is audited.
func TestBrokerWebhook(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		got = append(got, m)
		s := status
		mu.Unlock()
		rw.WriteHeader(s)
	}))
	defer srv.Close()
	w := newBrokerWorld(t, "approvals: { webhook: { url: \""+srv.URL+"\", timeout: 1s, retries: 0 } }\n")
	ctx := context.Background()
	r := w.file(t, kindStatement, "DELETE FROM t")
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	mu.Lock()
	if got[0]["event"] != "approval.filed" || !strings.Contains(got[0]["text"].(string), "dave asks to run `DELETE FROM t` on db") ||
		!strings.Contains(got[0]["text"].(string), "ssh bastion.test approve") {
		t.Errorf("filed event %v", got[0])
	}
	status = http.StatusInternalServerError
	mu.Unlock()
	d, err := w.b.decide(ctx, r.ID, bob, false, "no")
	if err != nil || d.State != recorder.ApprovalDenied {
		t.Fatalf("deny with a failing webhook: %+v %v", d, err)
	}
	waitFor(t, func() bool {
		return strings.Contains(strings.Join(w.types(), " "), "approval.webhook/failure")
	})
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[1]["event"] != "approval.denied" || got[1]["decided_by"] != "bob" {
		t.Errorf("events %v", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
