package recorder

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketApprovals holds just-in-time approval requests: id → JSON
// ApprovalRecord. The bucket sequence hands out the ids.
var bucketApprovals = []byte("approvals")

// Approval states.
const (
	ApprovalPending   = "pending"
	ApprovalGranted   = "granted"
	ApprovalDenied    = "denied"
	ApprovalExpired   = "expired"
	ApprovalCancelled = "cancelled"
	ApprovalExecuted  = "executed" // granted and used: a grant is single-use
)

// ApprovalDecision is one approver's grant or denial.
type ApprovalDecision struct {
	By      string    `json:"by"`
	Serial  uint64    `json:"serial"`
	At      time.Time `json:"at"`
	Grant   bool      `json:"grant"`
	Comment string    `json:"comment,omitempty"`
}

// ApprovalRecord is a request to run one exact command or statement (or
// to open a target), and what became of it. It lives in the store so that
// pending requests and decisions survive a restart.
type ApprovalRecord struct {
	ID        uint64             `json:"id"`
	Requester string             `json:"requester"`
	Serial    uint64             `json:"serial"`
	Session   string             `json:"session,omitempty"`
	Target    string             `json:"target"`
	Kind      string             `json:"kind"` // command | statement | access
	Text      string             `json:"text"` // masked, for display
	Hash      string             `json:"hash"` // SHA-256 of the exact text as it will run
	Rule      string             `json:"rule"`
	Reason    string             `json:"reason"`
	Required  int                `json:"required"`
	Created   time.Time          `json:"created"`
	Expires   time.Time          `json:"expires"`
	State     string             `json:"state"`
	Decisions []ApprovalDecision `json:"decisions,omitempty"`
	// WindowEnds is set when a request for access to a whole target is
	// granted: its requester may open sessions there until then.
	WindowEnds time.Time `json:"window_ends,omitzero"`
}

// PutApproval stores r; an r.ID of 0 gets the next id. It returns r as
// stored.
func (s *BoltStore) PutApproval(ctx context.Context, r ApprovalRecord) (ApprovalRecord, error) {
	if err := s.enter(ctx); err != nil {
		return r, fmt.Errorf("store approval: %w", err)
	}
	defer s.mu.RUnlock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketApprovals)
		if err != nil {
			return err
		}
		if r.ID == 0 {
			if r.ID, err = b.NextSequence(); err != nil {
				return err
			}
		}
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		return b.Put(u64key(r.ID), v)
	})
	if err != nil {
		return r, fmt.Errorf("store approval %d in %s: %w", r.ID, s.path, err)
	}
	return r, nil
}

// Approval returns one request, or an error wrapping ErrNotFound.
func (s *BoltStore) Approval(ctx context.Context, id uint64) (ApprovalRecord, error) {
	var r ApprovalRecord
	if err := s.enter(ctx); err != nil {
		return r, fmt.Errorf("read approval %d: %w", id, err)
	}
	defer s.mu.RUnlock()
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketApprovals)
		var v []byte
		if b != nil {
			v = b.Get(u64key(id))
		}
		if v == nil {
			return fmt.Errorf("approval %d: %w", id, ErrNotFound)
		}
		return json.Unmarshal(v, &r)
	})
	return r, err
}

// ListApprovals returns every request, newest first.
func (s *BoltStore) ListApprovals(ctx context.Context) ([]ApprovalRecord, error) {
	if err := s.enter(ctx); err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	defer s.mu.RUnlock()
	var out []ApprovalRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketApprovals)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var r ApprovalRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode approval %x: %w", k, err)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}
