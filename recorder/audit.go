package recorder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketAudit holds the audit trail: seq (big-endian) → JSON AuditRecord.
var bucketAudit = []byte("audit")

// Outcomes of an audited event.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// AuditRecord is one entry of the audit trail (PCI DSS 10.2.2: who, what,
// when in UTC, success or failure with reason, origin, affected resource).
// Records are hash-chained: Hash is the SHA-256 of Prev followed by the
// record's JSON with Hash empty, so changing, dropping or reordering any
// record breaks every hash after it.
type AuditRecord struct {
	Seq            uint64            `json:"seq"`
	Time           time.Time         `json:"time"`
	Type           string            `json:"type"` // e.g. login.start, login.success, login.failure, cert.issued, cert.revoked, auth.failure
	Outcome        string            `json:"outcome"`
	Reason         string            `json:"reason,omitempty"`
	User           string            `json:"user,omitempty"`
	Serial         uint64            `json:"serial,omitempty"`
	Client         string            `json:"client,omitempty"`
	KeyFingerprint string            `json:"key_fingerprint,omitempty"`
	Issuer         string            `json:"issuer,omitempty"`
	Subject        string            `json:"subject,omitempty"`
	Target         string            `json:"target,omitempty"`
	Session        string            `json:"session,omitempty"`
	Detail         map[string]string `json:"detail,omitempty"`
	Prev           string            `json:"prev"`
	Hash           string            `json:"hash"`
}

// DetailRecordingDigest is the Detail key of a session.end record that
// holds the hex SHA-256 of the session's whole recording (WriteRecording's
// output) when it closed; VerifyAudit checks it.
const DetailRecordingDigest = "recording_sha256"

// AuditFilter selects audit records; zero fields do not filter. Results
// are newest first.
type AuditFilter struct {
	User, Type, Session string
	Since, Until        time.Time
	Limit               int
}

func (f AuditFilter) match(r AuditRecord) bool {
	switch {
	case f.User != "" && r.User != f.User:
		return false
	case f.Type != "" && r.Type != f.Type:
		return false
	case f.Session != "" && r.Session != f.Session:
		return false
	case !f.Since.IsZero() && r.Time.Before(f.Since):
		return false
	case !f.Until.IsZero() && !r.Time.Before(f.Until):
		return false
	}
	return true
}

// chainHash computes the hash of r (its Hash field ignored) after prev.
func chainHash(r AuditRecord) (string, error) {
	r.Hash = ""
	b, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(r.Prev))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// AppendAudit adds r to the end of the trail, filling Seq, Prev and Hash
// (and Time, when zero, with the current UTC time), and returns it as stored.
func (s *BoltStore) AppendAudit(ctx context.Context, r AuditRecord) (AuditRecord, error) {
	if err := s.enter(ctx); err != nil {
		return r, fmt.Errorf("append audit record: %w", err)
	}
	defer s.mu.RUnlock()
	if r.Type == "" || (r.Outcome != OutcomeSuccess && r.Outcome != OutcomeFailure) {
		return r, fmt.Errorf("append audit record: type and outcome (success|failure) are required, got %q/%q", r.Type, r.Outcome)
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Time = r.Time.UTC()
	// One write transaction at a time extends the chain, so the order of
	// the chain is the order of the records.
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketAudit)
		if err != nil {
			return err
		}
		r.Prev = ""
		if _, last := b.Cursor().Last(); last != nil {
			var prev AuditRecord
			if err := json.Unmarshal(last, &prev); err != nil {
				return fmt.Errorf("decode last audit record: %w", err)
			}
			r.Prev = prev.Hash
		}
		if r.Seq, err = b.NextSequence(); err != nil {
			return err
		}
		if r.Hash, err = chainHash(r); err != nil {
			return err
		}
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		return b.Put(u64key(r.Seq), v)
	})
	if err != nil {
		return r, fmt.Errorf("append audit record to %s: %w", s.path, err)
	}
	return r, nil
}

// ListAudit returns the records that pass f, newest first.
func (s *BoltStore) ListAudit(ctx context.Context, f AuditFilter) ([]AuditRecord, error) {
	if err := s.enter(ctx); err != nil {
		return nil, fmt.Errorf("list audit records: %w", err)
	}
	defer s.mu.RUnlock()
	var out []AuditRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var r AuditRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode audit record %x: %w", k, err)
			}
			if !f.match(r) {
				continue
			}
			out = append(out, r)
			if f.Limit > 0 && len(out) >= f.Limit {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list audit records in %s: %w", s.path, err)
	}
	return out, nil
}

// ErrAuditBroken reports a record whose chain hash does not match.
var ErrAuditBroken = errors.New("audit trail does not verify")

// VerifyAudit walks the whole trail in order and checks every link, then
// every closed recording against the digest its session.end record holds.
// It returns the number of records checked, or an error wrapping
// ErrAuditBroken that names the first record or recording that does not
// match.
func (s *BoltStore) VerifyAudit(ctx context.Context) (int, error) {
	n, digests, err := s.verifyChain(ctx)
	if err != nil {
		return n, err
	}
	for _, d := range digests {
		if d.pruned {
			continue // removed after its retention, as the trail says
		}
		h := sha256.New()
		if err := s.WriteRecording(ctx, d.session, h); err != nil {
			return n, fmt.Errorf("recording of session %s (audit record %d): %v: %w", d.session, d.seq, err, ErrAuditBroken)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != d.digest {
			return n, fmt.Errorf("recording of session %s does not match the digest in audit record %d: it changed after the session closed: %w",
				d.session, d.seq, ErrAuditBroken)
		}
	}
	return n, nil
}

type recordingDigest struct {
	seq             uint64
	session, digest string
	pruned          bool // a later session.pruned record says it was removed
}

func (s *BoltStore) verifyChain(ctx context.Context) (int, []recordingDigest, error) {
	if err := s.enter(ctx); err != nil {
		return 0, nil, fmt.Errorf("verify audit trail: %w", err)
	}
	defer s.mu.RUnlock()
	var digests []recordingDigest
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		if b == nil {
			return nil
		}
		prev := ""
		var wantSeq uint64 = 1
		return b.ForEach(func(k, v []byte) error {
			var r AuditRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("record at key %x does not decode (%v): %w", k, err, ErrAuditBroken)
			}
			if r.Seq != wantSeq || string(u64key(r.Seq)) != string(k) {
				return fmt.Errorf("record %d: expected seq %d (a record was removed or moved): %w", r.Seq, wantSeq, ErrAuditBroken)
			}
			h, err := chainHash(r)
			if err != nil {
				return err
			}
			if r.Prev != prev || r.Hash != h {
				return fmt.Errorf("record %d (%s at %s): hash does not match: %w", r.Seq, r.Type, r.Time.Format(time.RFC3339Nano), ErrAuditBroken)
			}
			if d := r.Detail[DetailRecordingDigest]; d != "" && r.Session != "" {
				digests = append(digests, recordingDigest{seq: r.Seq, session: r.Session, digest: d})
			}
			if r.Type == "session.pruned" {
				for i := range digests {
					if digests[i].session == r.Session {
						digests[i].pruned = true
					}
				}
			}
			prev = r.Hash
			wantSeq++
			n++
			return nil
		})
	})
	return n, digests, err
}
