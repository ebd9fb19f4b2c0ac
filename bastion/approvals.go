package bastion

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bastion-dev/bastion/bastion/webhook"
	"github.com/bastion-dev/bastion/keys"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/recorder"
)

// broker files, decides and waits on just-in-time approval requests. The
// requests live in the store (they survive a restart); the broker adds the
// rules and wakes the sessions that wait.
//
// Lock order: broker.mu is taken alone; store calls happen under it so
// that two approvers deciding at once cannot both see "one grant missing".
type broker struct {
	store recorder.Store
	cfg   func() *policy.Config // the current policy: a reload applies to the next decision
	now   func() time.Time
	audit func(recorder.AuditRecord)
	// hooks tells approvals.webhook of requests filed and decided; nil
	// (tests) tells nobody. It only queues: it never blocks a decision.
	hooks *webhook.Sender
	// host is how users reach the bastion, for the webhook's text.
	host string
	log  *slog.Logger

	mu      sync.Mutex
	changed map[uint64]chan struct{} // closed and replaced when a request changes
	// lastFiled is the highest request id filed or seen; approvers' notices
	// compare against it before they read the store.
	lastFiled atomic.Uint64
}

func newBroker(store recorder.Store, cfg func() *policy.Config, now func() time.Time, audit func(recorder.AuditRecord)) *broker {
	return &broker{store: store, cfg: cfg, now: now, audit: audit, changed: make(map[uint64]chan struct{})}
}

// startHooks starts the webhook sender. It always runs, so that a reload
// that adds approvals.webhook takes effect at the next event; with no
// webhook configured it sends nothing. stopHooks stops it.
func (b *broker) startHooks(log *slog.Logger, host string) {
	b.host, b.log = host, log
	b.hooks = webhook.New(webhook.Options{Logger: log, Report: b.webhookReport})
}

// stopHooks stops the webhook sender; events not yet delivered are
// logged and audited as such.
func (b *broker) stopHooks() {
	if b.hooks != nil {
		b.hooks.Close()
	}
}

// hashText binds a request to the exact bytes that will run.
func hashText(text string) string {
	h := sha256.Sum256([]byte(text))
	return hex.EncodeToString(h[:])
}

// file creates a pending request.
func (b *broker) file(ctx context.Context, r recorder.ApprovalRecord) (recorder.ApprovalRecord, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	r.State = recorder.ApprovalPending
	r.Created = now
	ttl := time.Duration(b.cfg().Approvals.TTL)
	if ttl <= 0 {
		ttl = 15 * time.Minute
	}
	r.Expires = now.Add(ttl)
	r.Required = max(b.cfg().Approvals.Required, 1)
	stored, err := b.store.PutApproval(ctx, r)
	if err != nil {
		return stored, fmt.Errorf("file approval request: %w", err)
	}
	b.seen(stored.ID)
	b.auditRequest("approval.filed", recorder.OutcomeSuccess, stored, r.Requester, r.Serial, r.Reason)
	b.tell("approval.filed", stored, "", "")
	return stored, nil
}

// seen raises lastFiled to id.
func (b *broker) seen(id uint64) {
	for {
		cur := b.lastFiled.Load()
		if id <= cur || b.lastFiled.CompareAndSwap(cur, id) {
			return
		}
	}
}

// auditRequest writes one step of a request's life into the trail. User
// and Serial are who acted (the requester, or an approver); Detail holds
// the requester, every approver so far, the request's own reason, the
// statement hash and the request's times, so that each record stands alone.
func (b *broker) auditRequest(typ, outcome string, r recorder.ApprovalRecord, by string, serial uint64, reason string) {
	var approvers, deniers []string
	for _, d := range r.Decisions {
		if d.Grant {
			approvers = append(approvers, d.By)
		} else {
			deniers = append(deniers, d.By)
		}
	}
	detail := map[string]string{
		"request": fmt.Sprint(r.ID), "requester": r.Requester, "requester_serial": fmt.Sprint(r.Serial),
		"kind": r.Kind, "hash": r.Hash, "rule": r.Rule, "text": r.Text, "request_reason": r.Reason,
		"state": r.State, "required": fmt.Sprint(r.Required),
		"created": r.Created.UTC().Format(time.RFC3339Nano), "expires": r.Expires.UTC().Format(time.RFC3339Nano),
	}
	if len(approvers) > 0 {
		detail["approvers"] = strings.Join(approvers, ",")
	}
	if len(deniers) > 0 {
		detail["denied_by"] = strings.Join(deniers, ",")
	}
	if !r.WindowEnds.IsZero() {
		detail["window_ends"] = r.WindowEnds.UTC().Format(time.RFC3339Nano)
	}
	b.audit(recorder.AuditRecord{Type: typ, Outcome: outcome, User: by, Serial: serial, Target: r.Target,
		Session: r.Session, Reason: reason, Detail: detail})
}

// notify wakes the waiters of id; b.mu must be held.
func (b *broker) notify(id uint64) {
	if ch, ok := b.changed[id]; ok {
		close(ch)
		delete(b.changed, id)
	}
}

func (b *broker) watch(id uint64) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch, ok := b.changed[id]
	if !ok {
		ch = make(chan struct{})
		b.changed[id] = ch
	}
	return ch
}

// wait blocks until the request is no longer pending, expiring it when its
// time is up, and withdraws it if ctx ends first (the requester gave up:
// why, from context.Cause, goes into the trail). status, when set, is told
// of the request each time it changes.
func (b *broker) wait(ctx context.Context, id uint64, status func(recorder.ApprovalRecord)) (recorder.ApprovalRecord, error) {
	for {
		ch := b.watch(id)
		r, err := b.expire(id)
		if err != nil || r.State != recorder.ApprovalPending {
			return r, err
		}
		if status != nil {
			status(r)
		}
		timer := time.NewTimer(time.Until(r.Expires) + 10*time.Millisecond)
		select {
		case <-ch:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			// Ctrl-C and /cancel withdraw the request. Otherwise the
			// requester's session ended (they left, the connection
			// dropped, the bastion stopped): the request stays pending, to
			// be decided or to expire, and asking again for exactly the
			// same thing takes it up (existing).
			if c := context.Cause(ctx); errors.Is(c, errCtrlC) || errors.Is(c, errSlashCancel) {
				return b.cancel(id, "withdrawn by the requester ("+c.Error()+")")
			}
			return r, errRequesterGone
		}
		timer.Stop()
	}
}

// expire reads the request and marks it expired when its time is up.
func (b *broker) expire(id uint64) (recorder.ApprovalRecord, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := b.store.Approval(ctx, id)
	if err != nil {
		return r, err
	}
	return b.expireLocked(ctx, r)
}

// expireLocked marks r expired when it is pending and its time is up, and
// says so in the trail; b.mu must be held. Requests whose requester is gone
// (a restart, a dropped connection) expire here too, when they are next
// listed or decided, so that every request ends in the trail.
func (b *broker) expireLocked(ctx context.Context, r recorder.ApprovalRecord) (recorder.ApprovalRecord, error) {
	if r.State != recorder.ApprovalPending || b.now().Before(r.Expires) {
		return r, nil
	}
	r.State = recorder.ApprovalExpired
	r, err := b.store.PutApproval(ctx, r)
	if err != nil {
		return r, fmt.Errorf("expire approval request %d: %w", r.ID, err)
	}
	b.auditRequest("approval.expired", recorder.OutcomeFailure, r, r.Requester, r.Serial, "not decided within approvals.ttl")
	b.tell("approval.expired", r, "", "not decided within approvals.ttl")
	b.notify(r.ID)
	return r, nil
}

// cancel withdraws a pending request; why goes into the trail.
func (b *broker) cancel(id uint64, why string) (recorder.ApprovalRecord, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := b.store.Approval(ctx, id)
	if err != nil || r.State != recorder.ApprovalPending {
		return r, err
	}
	r.State = recorder.ApprovalCancelled
	if r, err = b.store.PutApproval(ctx, r); err != nil {
		return r, fmt.Errorf("cancel approval request %d: %w", id, err)
	}
	b.auditRequest("approval.cancelled", recorder.OutcomeSuccess, r, r.Requester, r.Serial, why)
	b.tell("approval.cancelled", r, r.Requester, why)
	b.notify(id)
	return r, nil
}

// errRequesterGone: the session waiting for a request ended; the request
// stays pending.
var errRequesterGone = errors.New("the requester's session ended; the request stays pending")

// existing finds the newest request of requester, of kind, for target and
// exactly text, that is pending or granted and unused. A request outlives
// the session that filed it (a restart, a dropped connection): asking
// again for the same thing takes it up instead of filing a second one.
func (b *broker) existing(ctx context.Context, requester, kind, target, text string) (recorder.ApprovalRecord, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	all, err := b.store.ListApprovals(ctx)
	if err != nil {
		return recorder.ApprovalRecord{}, false, fmt.Errorf("look for an earlier request: %w", err)
	}
	h := hashText(text)
	var best recorder.ApprovalRecord
	found := false
	for _, r := range all {
		if r.Requester != requester || r.Kind != kind || r.Target != target || r.Hash != h {
			continue
		}
		if r, err = b.expireLocked(ctx, r); err != nil {
			return recorder.ApprovalRecord{}, false, err
		}
		if (r.State == recorder.ApprovalPending || r.State == recorder.ApprovalGranted) && (!found || r.ID > best.ID) {
			best, found = r, true
		}
	}
	return best, found, nil
}

// errNotApprover and friends are what an approver is told.
var (
	errSelfApproval = errors.New("you cannot decide your own request")
	errNotApprover  = errors.New("you may not approve requests for this target")
	errNotPending   = errors.New("the request is no longer pending")
	errAlreadyVoted = errors.New("you have already granted this request")
)

// decide records an approver's grant or denial. approver is an identity
// the server verified for this very session (certificate valid, not
// revoked), so a revoked or expired approver never gets here.
func (b *broker) decide(ctx context.Context, id uint64, approver *keys.Identity, grant bool, comment string) (recorder.ApprovalRecord, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.store.Approval(ctx, id)
	if err != nil {
		return r, err
	}
	refuse := func(e error) (recorder.ApprovalRecord, error) {
		b.auditRequest(map[bool]string{true: "approval.granted", false: "approval.denied"}[grant], recorder.OutcomeFailure, r, approver.User, approver.Serial, e.Error())
		return r, e
	}
	if r, err = b.expireLocked(ctx, r); err != nil {
		return r, err
	}
	switch {
	case r.State == recorder.ApprovalExpired:
		return refuse(fmt.Errorf("%w (it expired: approvals.ttl passed without enough approvals)", errNotPending))
	case r.State != recorder.ApprovalPending:
		return refuse(fmt.Errorf("%w (it is %s)", errNotPending, r.State))
	case approver.User == r.Requester:
		return refuse(errSelfApproval)
	case !b.cfg().CanApprove(approver.Groups, r.Target):
		return refuse(errNotApprover)
	case slices.ContainsFunc(r.Decisions, func(d recorder.ApprovalDecision) bool { return d.By == approver.User }):
		return refuse(errAlreadyVoted)
	}
	r.Decisions = append(r.Decisions, recorder.ApprovalDecision{By: approver.User, Serial: approver.Serial, At: b.now(), Grant: grant, Comment: comment})
	typ := "approval.denied"
	if !grant {
		r.State = recorder.ApprovalDenied
	} else {
		typ = "approval.granted"
		grants := 0
		for _, d := range r.Decisions {
			if d.Grant {
				grants++
			}
		}
		if grants >= r.Required {
			r.State = recorder.ApprovalGranted
			if r.Kind == kindAccess {
				// Access is granted for a time box, from now.
				window := time.Duration(b.cfg().Approvals.Window)
				if window <= 0 {
					window = time.Hour
				}
				r.WindowEnds = b.now().Add(window)
			}
		}
	}
	if r, err = b.store.PutApproval(ctx, r); err != nil {
		return r, fmt.Errorf("record decision on request %d: %w", id, err)
	}
	b.auditRequest(typ, recorder.OutcomeSuccess, r, approver.User, approver.Serial, comment)
	b.tell(typ, r, approver.User, comment)
	b.notify(id)
	return r, nil
}

// Request kinds: what an ApprovalRecord asks to do.
const (
	kindStatement = "statement"
	kindCommand   = "command"
	kindAccess    = "access"
)

// consume uses a grant once, for exactly the text it was filed for, by the
// user who asked for it. A grant of access is used once per session for as
// long as its window lasts.
func (b *broker) consume(ctx context.Context, id uint64, requester, text string) (recorder.ApprovalRecord, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.store.Approval(ctx, id)
	if err != nil {
		return r, fmt.Errorf("use approval %d: %w", id, err)
	}
	usable := r.State == recorder.ApprovalGranted ||
		r.Kind == kindAccess && r.State == recorder.ApprovalExecuted && b.now().Before(r.WindowEnds)
	switch {
	case !usable:
		return r, fmt.Errorf("request %d does not grant this (state %s)", id, r.State)
	case r.Hash != hashText(text) || r.Requester != requester:
		// Fail closed: a grant is bound to its text and its requester.
		return r, fmt.Errorf("request %d was granted for other text or another user", id)
	case r.Kind == kindAccess && !b.now().Before(r.WindowEnds):
		return r, fmt.Errorf("request %d: its access window ended at %s", id, r.WindowEnds.Format(time.RFC3339))
	}
	r.State = recorder.ApprovalExecuted
	if r, err = b.store.PutApproval(ctx, r); err != nil {
		return r, fmt.Errorf("use approval %d: %w", id, err)
	}
	b.auditRequest("approval.executed", recorder.OutcomeSuccess, r, r.Requester, r.Serial, "")
	return r, nil
}

// openWindow finds a granted access request of requester for target whose
// window is still open, so that a second session in the window needs no
// new request.
func (b *broker) openWindow(ctx context.Context, requester, target, text string) (recorder.ApprovalRecord, bool, error) {
	all, err := b.store.ListApprovals(ctx)
	if err != nil {
		return recorder.ApprovalRecord{}, false, fmt.Errorf("look for an open access window: %w", err)
	}
	now := b.now()
	for _, r := range all {
		if r.Kind == kindAccess && r.Requester == requester && r.Target == target && r.Hash == hashText(text) &&
			(r.State == recorder.ApprovalGranted || r.State == recorder.ApprovalExecuted) && now.Before(r.WindowEnds) {
			return r, true, nil
		}
	}
	return recorder.ApprovalRecord{}, false, nil
}

// pending lists the pending requests an approver may decide: for targets
// their roles approve, not their own. Requests whose time is up are marked
// expired on the way.
func (b *broker) pending(ctx context.Context, approver *keys.Identity) ([]recorder.ApprovalRecord, error) {
	all, err := b.store.ListApprovals(ctx)
	if err != nil {
		return nil, fmt.Errorf("list approval requests: %w", err)
	}
	var out []recorder.ApprovalRecord
	for _, r := range all {
		b.seen(r.ID)
		if r.State != recorder.ApprovalPending {
			continue
		}
		if !b.now().Before(r.Expires) {
			b.mu.Lock()
			_, err := b.expireLocked(ctx, r)
			b.mu.Unlock()
			if err != nil {
				return nil, err
			}
			continue
		}
		if r.Requester != approver.User && b.cfg().CanApprove(approver.Groups, r.Target) {
			out = append(out, r)
		}
	}
	return out, nil
}

// tell queues a webhook event about r, when approvals.webhook is set. by and
// comment are who acted and what they said.
func (b *broker) tell(event string, r recorder.ApprovalRecord, by, comment string) {
	w := b.cfg().Approvals.Webhook
	if b.hooks == nil || w == nil {
		return
	}
	ev := webhook.Event{Event: event, Request: r.ID, Requester: r.Requester, Target: r.Target, Kind: r.Kind,
		Statement: r.Text, Hash: r.Hash, Rule: r.Rule, Reason: r.Reason, State: r.State, Required: r.Required,
		DecidedBy: by, Comment: comment, Created: r.Created, Expires: r.Expires}
	for _, d := range r.Decisions {
		if d.Grant {
			ev.Approvers = append(ev.Approvers, d.By)
		}
	}
	ev.Text = webhookText(ev, b.host)
	u, err := w.ResolveURL()
	if err != nil {
		b.webhookReport(webhook.Result{Event: ev, Endpoint: unresolvedEndpoint, Err: err})
		return
	}
	b.hooks.Send(webhook.Target{URL: u, Timeout: time.Duration(w.Timeout), Retries: w.Retries}, ev)
}

// webhookText is the one line a chat channel shows.
func webhookText(ev webhook.Event, host string) string {
	what := fmt.Sprintf("`%s` on %s", strings.ReplaceAll(ev.Statement, "`", "'"), ev.Target)
	switch ev.Event {
	case "approval.filed":
		return fmt.Sprintf("bastion: %s asks to run %s (rule %s): %q. Request %d needs %d approval(s); decide with: ssh %s approve %d, or ssh %s deny %d --reason '...'",
			ev.Requester, what, ev.Rule, ev.Reason, ev.Request, ev.Required, host, ev.Request, host, ev.Request)
	case "approval.granted":
		if ev.State == recorder.ApprovalPending {
			return fmt.Sprintf("bastion: request %d (%s, %s) approved by %s; %d of %d approvals", ev.Request, ev.Requester, what, ev.DecidedBy, len(ev.Approvers), ev.Required)
		}
		return fmt.Sprintf("bastion: request %d (%s, %s) granted by %s", ev.Request, ev.Requester, what, strings.Join(ev.Approvers, ", "))
	case "approval.denied":
		return fmt.Sprintf("bastion: request %d (%s, %s) denied by %s: %s", ev.Request, ev.Requester, what, ev.DecidedBy, ev.Comment)
	case "approval.expired":
		return fmt.Sprintf("bastion: request %d (%s, %s) expired without a decision", ev.Request, ev.Requester, what)
	case "approval.cancelled":
		return fmt.Sprintf("bastion: request %d (%s, %s) withdrawn by %s", ev.Request, ev.Requester, what, ev.Requester)
	}
	return fmt.Sprintf("bastion: request %d (%s, %s): %s", ev.Request, ev.Requester, what, ev.Event)
}

// unresolvedEndpoint stands for a webhook whose url_file or url_env could
// not be read.
const unresolvedEndpoint = "(unresolved)"

// webhookReport logs and audits a webhook that could not be delivered. The
// request itself is untouched: a notification is never part of a decision.
func (b *broker) webhookReport(res webhook.Result) {
	if res.Err == nil {
		return
	}
	if res.Endpoint == unresolvedEndpoint && b.log != nil {
		// Never queued, so the Sender did not log it.
		b.log.Warn("approval webhook not sent", "event", res.Event.Event, "request", res.Event.Request, "err", res.Err)
	}
	ev := res.Event
	b.audit(recorder.AuditRecord{Type: "approval.webhook", Outcome: recorder.OutcomeFailure, Reason: res.Err.Error(),
		User: ev.Requester, Target: ev.Target, Detail: map[string]string{
			"request": fmt.Sprint(ev.Request), "requester": ev.Requester, "hash": ev.Hash, "event": ev.Event,
			"endpoint": res.Endpoint, "attempts": fmt.Sprint(res.Attempts)}})
}
