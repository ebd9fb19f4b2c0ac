package webhook

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// endpoint is a loopback HTTP server that answers each POST with the next
// status of a script (the last one repeats), after delay, and keeps the
// bodies it got.
type endpoint struct {
	srv    *httptest.Server
	hits   atomic.Int32
	mu     sync.Mutex
	bodies []map[string]any
}

func newEndpoint(t *testing.T, delay time.Duration, statuses ...int) *endpoint {
	t.Helper()
	e := &endpoint{}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(e.hits.Add(1))
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &m) != nil {
			http.Error(w, "want a JSON POST", http.StatusUnsupportedMediaType)
			return
		}
		e.mu.Lock()
		e.bodies = append(e.bodies, m)
		e.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		w.WriteHeader(statuses[min(n, len(statuses))-1])
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *endpoint) received() []map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]map[string]any(nil), e.bodies...)
}

// results collects what the Sender reports.
type results struct {
	ch chan Result
}

func (r *results) next(t *testing.T) Result {
	t.Helper()
	select {
	case res := <-r.ch:
		return res
	case <-time.After(10 * time.Second):
		t.Fatal("no result reported within 10s")
		return Result{}
	}
}

func newSender(t *testing.T, backoff time.Duration) (*Sender, *results) {
	t.Helper()
	r := &results{ch: make(chan Result, 16)}
	s := New(Options{Backoff: backoff, Report: func(res Result) { r.ch <- res },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(s.Close)
	return s, r
}

var sample = Event{Text: "dave asks to run `delete from cards where id = 1` on pg", Event: "approval.filed",
	Request: 7, Requester: "dave", Target: "pg", Kind: "statement", Statement: "delete from cards where id = 1",
	Hash: strings.Repeat("ab", 32), Rule: "writes", Reason: "refund 42", State: "pending", Required: 1}

func TestDelivery(t *testing.T) {
	tests := []struct {
		name         string
		statuses     []int
		delay        time.Duration
		timeout      time.Duration
		retries      int
		wantAttempts int
		wantErr      string // empty: delivered
	}{
		{name: "ok at once", statuses: []int{200}, retries: 3, wantAttempts: 1},
		{name: "500 then 200", statuses: []int{500, 500, 204}, retries: 3, wantAttempts: 3},
		{name: "always failing", statuses: []int{503}, retries: 2, wantAttempts: 3, wantErr: "503"},
		{name: "no retries", statuses: []int{500, 200}, retries: 0, wantAttempts: 1, wantErr: "500"},
		{name: "4xx is not retried", statuses: []int{404, 200}, retries: 3, wantAttempts: 1, wantErr: "404"},
		{name: "429 is retried", statuses: []int{429, 200}, retries: 3, wantAttempts: 2},
		{name: "slow endpoint times out each attempt", statuses: []int{200}, delay: 2 * time.Second,
			timeout: 100 * time.Millisecond, retries: 1, wantAttempts: 2, wantErr: "approvals.webhook.timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := newEndpoint(t, tt.delay, tt.statuses...)
			s, res := newSender(t, 10*time.Millisecond)
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			s.Send(Target{URL: ep.srv.URL + "/hook/T0KEN", Timeout: timeout, Retries: tt.retries}, sample)
			r := res.next(t)
			if r.Attempts != tt.wantAttempts || int(ep.hits.Load()) != tt.wantAttempts {
				t.Errorf("attempts %d (server saw %d), want %d", r.Attempts, ep.hits.Load(), tt.wantAttempts)
			}
			switch {
			case tt.wantErr == "" && r.Err != nil:
				t.Errorf("not delivered: %v", r.Err)
			case tt.wantErr != "" && (r.Err == nil || !strings.Contains(r.Err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one mentioning %q", r.Err, tt.wantErr)
			}
			if r.Err != nil && strings.Contains(r.Err.Error(), "T0KEN") {
				t.Errorf("the error leaks the URL's token: %v", r.Err)
			}
			if strings.Contains(r.Endpoint, "T0KEN") || !strings.HasPrefix(r.Endpoint, "http://127.0.0.1:") {
				t.Errorf("endpoint %q: want scheme and host only", r.Endpoint)
			}
		})
	}
}

func TestBodyIsSlackCompatibleJSON(t *testing.T) {
	ep := newEndpoint(t, 0, 200)
	s, res := newSender(t, time.Millisecond)
	s.Send(Target{URL: ep.srv.URL, Timeout: time.Second}, sample)
	if r := res.next(t); r.Err != nil {
		t.Fatal(r.Err)
	}
	got := ep.received()
	if len(got) != 1 {
		t.Fatalf("bodies %v", got)
	}
	want := map[string]any{"text": sample.Text, "event": "approval.filed", "request": float64(7), "requester": "dave",
		"target": "pg", "statement": sample.Statement, "hash": sample.Hash, "reason": "refund 42", "state": "pending"}
	for k, v := range want {
		if got[0][k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[0][k], v)
		}
	}
}

// Send never waits for the endpoint: a hung one costs the caller nothing,
// and events beyond the queue are dropped and reported.
func TestSendNeverBlocks(t *testing.T) {
	ep := newEndpoint(t, 5*time.Second, 200)
	r := &results{ch: make(chan Result, 16)}
	s := New(Options{Queue: 2, Report: func(res Result) { r.ch <- res }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	target := Target{URL: ep.srv.URL, Timeout: 10 * time.Second}
	start := time.Now()
	for range 5 {
		s.Send(target, sample)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Fatalf("Send blocked for %v", d)
	}
	// One in flight, two queued: at least two of five dropped at once.
	dropped := 0
	for dropped < 2 {
		if res := r.next(t); res.Err == errQueueFull {
			dropped++
		} else {
			t.Fatalf("unexpected result before the endpoint answered: %+v", res)
		}
	}
	// Close cancels the hung attempt and reports what was left.
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("Close waited for the hung endpoint")
	}
	for range 3 - (dropped - 2) {
		if res := r.next(t); res.Err == nil {
			t.Errorf("an event reported delivered by a hung endpoint: %+v", res)
		}
	}
	s.Send(target, sample)
	if res := r.next(t); res.Err == nil || !strings.Contains(res.Err.Error(), "stopped") {
		t.Errorf("Send after Close: %+v", res)
	}
}

func TestRedacted(t *testing.T) {
	for _, c := range []struct{ url, want string }{
		{"https://hooks.slack.com/services/T000/B000/XXXX", "https://hooks.slack.com"},
		{"https://user:pass@example.com/x?token=1", "https://example.com"},
		{"::bad", "(invalid URL)"},
	} {
		if got := (Target{URL: c.url}).Redacted(); got != c.want {
			t.Errorf("Redacted(%q) = %q, want %q", c.url, got, c.want)
		}
	}
}
