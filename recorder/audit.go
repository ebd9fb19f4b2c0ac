package recorder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

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
	// User, Session and Target match the record's fields exactly.
	User, Session, Target string
	// Type matches a type exactly ("login.failure") or a family of types:
	// "approval" or "approval." matches approval.filed, approval.granted, ...
	Type string
	// Outcome is OutcomeSuccess or OutcomeFailure.
	Outcome string
	// Text is free text searched, case-insensitively, in the reason and
	// every detail value: the commands and statements users ran.
	Text string
	// Since (inclusive) and Until (exclusive) bound the record's time.
	Since, Until time.Time
	// After keeps only records appended after the one with this sequence
	// number: what a follower has not seen yet.
	After uint64
	// Limit caps the number of results; 0 means all.
	Limit int
}

// typeMatches reports whether typ is want or a member of the family want.
func typeMatches(want, typ string) bool {
	want = strings.TrimSuffix(want, ".")
	return typ == want || strings.HasPrefix(typ, want+".")
}

func (f AuditFilter) match(r AuditRecord) bool {
	switch {
	case f.After != 0 && r.Seq <= f.After:
		return false
	case f.User != "" && r.User != f.User:
		return false
	case f.Type != "" && !typeMatches(f.Type, r.Type):
		return false
	case f.Session != "" && r.Session != f.Session:
		return false
	case f.Target != "" && r.Target != f.Target:
		return false
	case f.Outcome != "" && r.Outcome != f.Outcome:
		return false
	case !f.Since.IsZero() && r.Time.Before(f.Since):
		return false
	case !f.Until.IsZero() && !r.Time.Before(f.Until):
		return false
	case f.Text != "" && !recordContains(r, strings.ToLower(f.Text)):
		return false
	}
	return true
}

// textPrefilter returns the lower-cased free-text filter when a record
// that matches it must hold it verbatim in its stored JSON (lower-cased
// too): true when encoding/json writes each of its characters as itself.
// A scan then decodes only the records whose bytes contain it.
func textPrefilter(text string) []byte {
	if text == "" {
		return nil
	}
	for _, c := range text {
		if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c == '\u2028' || c == '\u2029' || c == utf8.RuneError {
			return nil
		}
	}
	return bytes.ToLower([]byte(text))
}

// containsFold reports whether hay, lower-cased as bytes.ToLower does,
// holds the lower-case needle. Stored records are nearly always ASCII,
// and then no copy is made.
func containsFold(hay, needle []byte) bool {
	for _, c := range hay {
		if c >= utf8.RuneSelf {
			return bytes.Contains(bytes.ToLower(hay), needle)
		}
	}
	for _, c := range needle {
		if c >= utf8.RuneSelf {
			return false // an ASCII hay lower-cases to ASCII
		}
	}
	first, upper := needle[0], needle[0]
	if 'a' <= first && first <= 'z' {
		upper -= 'a' - 'A'
	}
	for i := 0; i+len(needle) <= len(hay); i++ {
		if c := hay[i]; c != first && c != upper {
			continue
		}
		j := 1
		for ; j < len(needle); j++ {
			c := hay[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != needle[j] {
				break
			}
		}
		if j == len(needle) {
			return true
		}
	}
	return false
}

// recordContains reports whether the reason or a detail value of r holds
// the lower-case text.
func recordContains(r AuditRecord, lower string) bool {
	if strings.Contains(strings.ToLower(r.Reason), lower) {
		return true
	}
	for _, v := range r.Detail {
		if strings.Contains(strings.ToLower(v), lower) {
			return true
		}
	}
	return false
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
	out, err := s.AppendAudits(ctx, []AuditRecord{r})
	if err != nil {
		return r, err
	}
	return out[0], nil
}

// AppendAudits adds records to the end of the trail in one transaction, in
// order, and returns them as stored. It is AppendAudit for many records at
// once (an import, a benchmark's million records): one commit instead of
// one per record. Either all are appended or none.
//
// Concurrent callers share commits (auditbatch.go): a call that arrives
// while a commit runs waits for the next one, which holds every call that
// arrived meanwhile, so a burst of sessions costs one disk sync per wave
// instead of one each. A call returns once its records are durable, or
// with the error that failed their commit. Once queued, a call waits for
// that commit whatever ctx says: giving up then could report a failure
// for records that do get stored.
func (s *BoltStore) AppendAudits(ctx context.Context, rs []AuditRecord) ([]AuditRecord, error) {
	if err := s.enter(ctx); err != nil {
		return nil, fmt.Errorf("append audit record: %w", err)
	}
	defer s.mu.RUnlock()
	out := make([]AuditRecord, len(rs))
	now := time.Now()
	for i, r := range rs {
		if r.Type == "" || (r.Outcome != OutcomeSuccess && r.Outcome != OutcomeFailure) {
			return nil, fmt.Errorf("append audit record: type and outcome (success|failure) are required, got %q/%q", r.Type, r.Outcome)
		}
		if r.Time.IsZero() {
			r.Time = now
		}
		r.Time = r.Time.UTC()
		// encoding/json refuses such a time. Refused here, a bad record
		// fails its own call only, not the shared commit it would join.
		if y := r.Time.Year(); y < 0 || y > 9999 {
			return nil, fmt.Errorf("append audit record %s: time %s is outside the years 0 to 9999", r.Type, r.Time)
		}
		out[i] = r
	}
	if len(out) == 0 {
		return out, nil
	}
	if err := s.audit.commits.do(out, len(out), s.commitAudit); err != nil {
		return nil, fmt.Errorf("append audit record to %s: %w", s.path, err)
	}
	return out, nil // commitAudit filled in Seq, Prev and Hash
}

// maxAuditBatch bounds the records one commit takes from the queue.
const maxAuditBatch = 4096

// commitAudit appends the records of batch, request after request, to the
// chain in one write transaction, filling in their Seq, Prev and Hash, and
// then tells the observers, before the next commit starts, so that they see
// the records in chain order. Only one runs at a time (groupcommit.go), so
// the chain's order is the order of the requests. Every error here is the
// store's, not one request's (the records were checked before they were
// queued), so it fails the batch.
func (s *BoltStore) commitAudit(batch [][]AuditRecord) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketAudit)
		if err != nil {
			return err
		}
		idx, err := tx.CreateBucketIfNotExists(bucketAuditIndex)
		if err != nil {
			return err
		}
		prev := ""
		if _, last := b.Cursor().Last(); last != nil {
			var p AuditRecord
			if err := json.Unmarshal(last, &p); err != nil {
				return fmt.Errorf("decode last audit record: %w", err)
			}
			prev = p.Hash
		}
		var keys []indexEntry
		n := 0
		for _, recs := range batch {
			for i := range recs {
				r := &recs[i]
				r.Prev = prev
				if r.Seq, err = b.NextSequence(); err != nil {
					return err
				}
				if r.Hash, err = chainHash(*r); err != nil {
					return err
				}
				v, err := json.Marshal(r)
				if err != nil {
					return err
				}
				if err := b.Put(u64key(r.Seq), v); err != nil {
					return err
				}
				keys = append(keys, indexKeys(*r)...)
				prev = r.Hash
				n++
			}
		}
		if err := putSorted(idx, keys); err != nil {
			return fmt.Errorf("index audit records: %w", err)
		}
		if hook := s.audit.beforeCommit; hook != nil {
			return hook(tx, n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, recs := range batch {
		for _, r := range recs {
			s.audit.notify(r)
		}
	}
	return nil
}

// ListAudit returns the records that pass f, newest first. Equality
// filters and time ranges are answered from the audit index (audit_index.go)
// so that the first page of a filtered query over millions of records
// takes milliseconds; a store without an index (opened read-only before
// one was built) is scanned instead.
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
		emit := func(r AuditRecord) bool {
			if !f.match(r) {
				return true
			}
			out = append(out, r)
			return f.Limit <= 0 || len(out) < f.Limit
		}
		if idx := tx.Bucket(bucketAuditIndex); idx != nil && indexed(tx) {
			if done, err := listIndexed(ctx, b, idx, f, emit); done || err != nil {
				return err
			}
		}
		pre := textPrefilter(f.Text)
		c := b.Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			if f.After != 0 && len(k) == 8 && binary.BigEndian.Uint64(k) <= f.After {
				return nil
			}
			if pre != nil && !containsFold(v, pre) {
				continue // cannot match: no need to decode it
			}
			var r AuditRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode audit record %x: %w", k, err)
			}
			if !emit(r) {
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

// OnAudit calls fn with every record appended from now on, after it is
// committed and in chain order. fn runs while the next append waits, so it
// must not block: hand the record to a bounded queue or a wake-up channel
// (the syslog sink, the metrics and `audit --follow` do). The returned
// function stops the calls.
func (s *BoltStore) OnAudit(fn func(AuditRecord)) (stop func()) {
	return s.audit.subscribe(fn)
}

// auditObservers is the list of OnAudit functions and the queue of the
// audit trail's group commit, whose order is the chain's.
type auditObservers struct {
	obs  sync.Map // id → func(AuditRecord)
	next atomic.Uint64

	commits groupCommit[[]AuditRecord]

	// beforeCommit, when set (by tests), runs at the end of each audit
	// write transaction with the number of records in it; an error fails
	// the commit.
	beforeCommit func(tx *bolt.Tx, records int) error
}

func (a *auditObservers) subscribe(fn func(AuditRecord)) func() {
	id := a.next.Add(1)
	a.obs.Store(id, fn)
	return func() { a.obs.Delete(id) }
}

func (a *auditObservers) notify(r AuditRecord) {
	a.obs.Range(func(_, fn any) bool {
		fn.(func(AuditRecord))(r)
		return true
	})
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
