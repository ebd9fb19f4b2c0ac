package bastion

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

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

	mu      sync.Mutex
	changed map[uint64]chan struct{} // closed and replaced when a request changes
}

func newBroker(store recorder.Store, cfg func() *policy.Config, now func() time.Time, audit func(recorder.AuditRecord)) *broker {
	return &broker{store: store, cfg: cfg, now: now, audit: audit, changed: make(map[uint64]chan struct{})}
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
		return stored, err
	}
	b.auditRequest("approval.filed", recorder.OutcomeSuccess, stored, r.Requester, r.Serial, r.Reason)
	return stored, nil
}

func (b *broker) auditRequest(typ, outcome string, r recorder.ApprovalRecord, by string, serial uint64, reason string) {
	b.audit(recorder.AuditRecord{Type: typ, Outcome: outcome, User: by, Serial: serial, Target: r.Target,
		Session: r.Session, Reason: reason, Detail: map[string]string{
			"request": fmt.Sprint(r.ID), "requester": r.Requester, "kind": r.Kind, "hash": r.Hash, "rule": r.Rule, "text": r.Text}})
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
// time is up, and withdraws it if ctx ends first (the requester gave up).
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
			return b.cancel(id)
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
	if err != nil || r.State != recorder.ApprovalPending || b.now().Before(r.Expires) {
		return r, err
	}
	r.State = recorder.ApprovalExpired
	if r, err = b.store.PutApproval(ctx, r); err != nil {
		return r, err
	}
	b.auditRequest("approval.expired", recorder.OutcomeFailure, r, r.Requester, r.Serial, "not decided within approvals.ttl")
	b.notify(id)
	return r, nil
}

func (b *broker) cancel(id uint64) (recorder.ApprovalRecord, error) {
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
		return r, err
	}
	b.auditRequest("approval.cancelled", recorder.OutcomeSuccess, r, r.Requester, r.Serial, "withdrawn by the requester")
	b.notify(id)
	return r, nil
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
	switch {
	case r.State != recorder.ApprovalPending:
		return refuse(fmt.Errorf("%w (it is %s)", errNotPending, r.State))
	case !b.now().Before(r.Expires):
		return refuse(fmt.Errorf("%w (it expired)", errNotPending))
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
		}
	}
	if r, err = b.store.PutApproval(ctx, r); err != nil {
		return r, err
	}
	b.auditRequest(typ, recorder.OutcomeSuccess, r, approver.User, approver.Serial, comment)
	b.notify(id)
	return r, nil
}

// consume uses a grant once, for exactly the text it was filed for.
func (b *broker) consume(ctx context.Context, id uint64, text string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.store.Approval(ctx, id)
	if err != nil {
		return err
	}
	if r.State != recorder.ApprovalGranted || r.Hash != hashText(text) {
		return fmt.Errorf("request %d does not grant this (state %s)", id, r.State)
	}
	r.State = recorder.ApprovalExecuted
	if _, err := b.store.PutApproval(ctx, r); err != nil {
		return err
	}
	b.auditRequest("approval.executed", recorder.OutcomeSuccess, r, r.Requester, r.Serial, "")
	return nil
}

// pending lists the pending requests an approver with groups may decide.
func (b *broker) pending(ctx context.Context, groups []string) ([]recorder.ApprovalRecord, error) {
	all, err := b.store.ListApprovals(ctx)
	if err != nil {
		return nil, err
	}
	var out []recorder.ApprovalRecord
	now := b.now()
	for _, r := range all {
		if r.State == recorder.ApprovalPending && now.Before(r.Expires) && b.cfg().CanApprove(groups, r.Target) {
			out = append(out, r)
		}
	}
	return out, nil
}
