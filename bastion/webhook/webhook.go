// Package webhook tells a chat channel (or any HTTP endpoint) about
// approval requests: a JSON POST with a Slack-compatible "text" field and
// the structured fields beside it, when a request is filed and when it is
// decided.
//
// A notification is a courtesy, never part of a decision: Send only queues
// the event and returns at once, delivery happens on the Sender's own
// goroutine with a timeout per attempt and retries with backoff, and a
// failure is reported (logged and audited by the caller) and dropped. The
// broker neither waits for a webhook nor reads anything from one, so a
// webhook that is slow, down or hostile can neither block nor approve a
// request.
//
// The life of a Sender, in call order:
//
//  1. New            starts the delivery goroutine.
//  2. Send           queues an event (dropped, and reported, when the queue is full).
//  3. Close          stops the goroutine; an attempt in flight is cancelled,
//     events still queued are reported as not delivered.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Target is where and how to deliver: approvals.webhook in the config. It
// travels with each event, so that a policy reload applies to the next one.
type Target struct {
	// URL receives the POST. It often holds a secret token (Slack's
	// incoming webhooks do), so it is never logged: see Redacted.
	URL string
	// Timeout bounds one attempt, connection and response included.
	Timeout time.Duration
	// Retries is how many more attempts follow a failed first one.
	Retries int
}

// Redacted is the URL without path, query or user info, for logs and the
// audit trail: scheme and host only.
func (t Target) Redacted() string {
	u, err := url.Parse(t.URL)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	return u.Scheme + "://" + u.Host
}

// Event is one notification. Text is what a Slack-compatible endpoint
// shows; the other fields are for endpoints that parse them.
type Event struct {
	Text      string    `json:"text"`
	Event     string    `json:"event"` // approval.filed, approval.granted, approval.denied, ...
	Request   uint64    `json:"request"`
	Requester string    `json:"requester"`
	Target    string    `json:"target"`
	Kind      string    `json:"kind"`      // statement | command | access
	Statement string    `json:"statement"` // masked, as approvers see it
	Hash      string    `json:"hash"`      // SHA-256 of the exact text
	Rule      string    `json:"rule"`
	Reason    string    `json:"reason"`
	State     string    `json:"state"`
	Required  int       `json:"required"`
	Approvers []string  `json:"approvers,omitempty"`
	DecidedBy string    `json:"decided_by,omitempty"`
	Comment   string    `json:"comment,omitempty"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
}

// Result is what became of one event, for the caller's log and audit.
type Result struct {
	Event    Event
	Endpoint string // Target.Redacted()
	Attempts int
	Err      error // nil when delivered
}

// Options configure a Sender.
type Options struct {
	// Client makes the requests; nil means a client without redirects.
	// Per-attempt timeouts come from Target.Timeout either way.
	Client *http.Client
	// Logger gets one line per delivery; nil means slog.Default().
	Logger *slog.Logger
	// Report, when set, is told of every event's outcome, on the
	// delivery goroutine. It must not block for long.
	Report func(Result)
	// Backoff is the wait before the first retry, doubled for each next
	// one (capped at 30s). Zero means one second.
	Backoff time.Duration
	// Queue is how many events may wait for delivery. Zero means 256.
	Queue int
}

type job struct {
	target Target
	event  Event
}

// Sender delivers events, one at a time, on its own goroutine.
type Sender struct {
	opt    Options
	jobs   chan job
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// errQueueFull is reported for an event that found the queue full.
var errQueueFull = errors.New("webhook queue full: event dropped")

// New starts a Sender. Close stops it.
func New(opt Options) *Sender {
	if opt.Client == nil {
		opt.Client = &http.Client{
			// A webhook endpoint has no business redirecting a POST
			// (and a redirect could carry the body elsewhere).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Backoff <= 0 {
		opt.Backoff = time.Second
	}
	if opt.Queue <= 0 {
		opt.Queue = 256
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sender{opt: opt, jobs: make(chan job, opt.Queue), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go s.run()
	return s
}

// Send queues ev for t and returns at once. A full queue drops the event
// and reports it; a Sender that was closed reports it too.
func (s *Sender) Send(t Target, ev Event) {
	if s.ctx.Err() != nil {
		s.report(Result{Event: ev, Endpoint: t.Redacted(), Err: errors.New("webhook sender stopped")})
		return
	}
	select {
	case s.jobs <- job{t, ev}:
	default:
		s.report(Result{Event: ev, Endpoint: t.Redacted(), Err: errQueueFull})
	}
}

// Close stops delivery and waits for the goroutine to end. An attempt in
// flight is cancelled; queued events are reported as not delivered.
func (s *Sender) Close() {
	s.once.Do(func() {
		s.cancel()
		<-s.done
		for {
			select {
			case j := <-s.jobs:
				s.report(Result{Event: j.event, Endpoint: j.target.Redacted(), Err: errors.New("bastion stopping: not delivered")})
			default:
				return
			}
		}
	})
}

func (s *Sender) run() {
	defer close(s.done)
	for {
		select {
		case <-s.ctx.Done():
			return
		case j := <-s.jobs:
			attempts, err := s.deliver(s.ctx, j.target, j.event)
			s.report(Result{Event: j.event, Endpoint: j.target.Redacted(), Attempts: attempts, Err: err})
		}
	}
}

func (s *Sender) report(r Result) {
	if r.Err != nil {
		s.opt.Logger.Warn("approval webhook not delivered", "endpoint", r.Endpoint, "event", r.Event.Event,
			"request", r.Event.Request, "attempts", r.Attempts, "err", r.Err)
	} else {
		s.opt.Logger.Debug("approval webhook delivered", "endpoint", r.Endpoint, "event", r.Event.Event,
			"request", r.Event.Request, "attempts", r.Attempts)
	}
	if s.opt.Report != nil {
		s.opt.Report(r)
	}
}

// deliver makes up to 1+t.Retries attempts, waiting Backoff, 2×Backoff,
// … between them. A 2xx answer is success; a 4xx other than 408 and 429
// will not get better by retrying and ends the attempts.
func (s *Sender) deliver(ctx context.Context, t Target, ev Event) (int, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return 0, fmt.Errorf("encode webhook event: %w", err)
	}
	wait := s.opt.Backoff
	attempts := 0
	for {
		attempts++
		err = s.attempt(ctx, t, body)
		var perm permanentError
		if err == nil || errors.As(err, &perm) || attempts > t.Retries {
			return attempts, err
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return attempts, fmt.Errorf("%w (then the bastion stopped)", err)
		case <-timer.C:
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// permanentError is an answer that retrying would not change.
type permanentError struct{ msg string }

func (e permanentError) Error() string { return e.msg }

func (s *Sender) attempt(ctx context.Context, t Target, body []byte) error {
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		// The URL is validated at load; do not echo it (it holds a token).
		return permanentError{msg: "approvals.webhook.url is not a valid URL; fix it in the config"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "bastion-approvals")
	resp, err := s.opt.Client.Do(req)
	if err != nil {
		// url.Error quotes the whole URL, token and all: keep only why.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no answer within approvals.webhook.timeout (%s)", timeout)
		}
		return fmt.Errorf("post to %s: %w", t.Redacted(), err)
	}
	defer resp.Body.Close()
	// Read a little of the answer so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return permanentError{msg: fmt.Sprintf("endpoint answered %d %s, which retrying will not change; check approvals.webhook.url",
			resp.StatusCode, http.StatusText(resp.StatusCode))}
	}
	return fmt.Errorf("endpoint answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
}
