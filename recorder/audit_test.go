package recorder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func auditStore(t *testing.T) *BoltStore {
	t.Helper()
	st, err := OpenBolt(filepath.Join(t.TempDir(), "a.db"), BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	base := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for i, typ := range []string{"login.start", "login.success", "cert.issued", "login.failure"} {
		outcome := OutcomeSuccess
		if strings.HasSuffix(typ, "failure") {
			outcome = OutcomeFailure
		}
		if _, err := st.AppendAudit(ctx, AuditRecord{Type: typ, Outcome: outcome, User: []string{"alice", "alice", "alice", "bob"}[i],
			Time: base.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func TestAuditChainVerifies(t *testing.T) {
	st := auditStore(t)
	n, err := st.VerifyAudit(context.Background())
	if err != nil || n != 4 {
		t.Fatalf("verify: %d records, %v", n, err)
	}
	list, err := st.ListAudit(context.Background(), AuditFilter{User: "alice"})
	if err != nil || len(list) != 3 || list[0].Type != "cert.issued" || list[0].Prev == "" {
		t.Fatalf("list: %+v %v", list, err)
	}
	if _, err := st.AppendAudit(context.Background(), AuditRecord{Type: "x"}); err == nil {
		t.Fatal("record without outcome accepted")
	}
}

func TestAuditChainDetectsTampering(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(b *bolt.Bucket) error
		want   string
	}{
		{"changed field", func(b *bolt.Bucket) error {
			v := append([]byte(nil), b.Get(u64key(2))...)
			return b.Put(u64key(2), []byte(strings.Replace(string(v), `"alice"`, `"mallory"`, 1)))
		}, "record 2"},
		{"deleted record", func(b *bolt.Bucket) error { return b.Delete(u64key(2)) }, "record 3"},
		{"garbage", func(b *bolt.Bucket) error { return b.Put(u64key(3), []byte("{")) }, "does not decode"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := auditStore(t)
			if err := st.db.Update(func(tx *bolt.Tx) error { return c.tamper(tx.Bucket(bucketAudit)) }); err != nil {
				t.Fatal(err)
			}
			_, err := st.VerifyAudit(context.Background())
			if !errors.Is(err, ErrAuditBroken) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("verify after %s: %v (want mention of %q)", c.name, err, c.want)
			}
		})
	}
}

func TestAuditVerifyChecksRecordingDigests(t *testing.T) {
	ctx := context.Background()
	st, err := OpenBolt(filepath.Join(t.TempDir(), "r.db"), BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	if err := st.CreateSession(ctx, SessionMeta{ID: "s1", User: "alice", Start: start, State: StateActive, Width: 80, Height: 24}); err != nil {
		t.Fatal(err)
	}
	if err := st.AppendChunk(ctx, "s1", []byte("[0.1,\"o\",\"hello\"]\n")); err != nil {
		t.Fatal(err)
	}
	m, _ := st.Session(ctx, "s1")
	m.State, m.End = StateClosed, start.Add(time.Second)
	if err := st.UpdateSession(ctx, m); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if err := st.WriteRecording(ctx, "s1", h); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendAudit(ctx, AuditRecord{Type: "session.end", Outcome: OutcomeSuccess, Session: "s1",
		Detail: map[string]string{DetailRecordingDigest: hex.EncodeToString(h.Sum(nil))}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.VerifyAudit(ctx); err != nil {
		t.Fatalf("untouched: %v", err)
	}
	// Replace the chunk with another recording of the same length.
	err = st.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents).Bucket([]byte("s1"))
		return b.Put(u64key(1), st.codec.encode([]byte("[0.1,\"o\",\"HELLO\"]\n")))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.VerifyAudit(ctx); !errors.Is(err, ErrAuditBroken) || !strings.Contains(err.Error(), "session s1") {
		t.Fatalf("verify after the recording changed: %v", err)
	}
}

func TestPruneKeepsTheChainAndYoungSessions(t *testing.T) {
	ctx := context.Background()
	st, err := OpenBolt(filepath.Join(t.TempDir(), "p.db"), BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for i, age := range []time.Duration{500 * 24 * time.Hour, 10 * 24 * time.Hour} {
		id := []string{"old", "young"}[i]
		start := now.Add(-age)
		if err := st.CreateSession(ctx, SessionMeta{ID: id, User: "alice", Start: start, State: StateActive, Width: 80, Height: 24}); err != nil {
			t.Fatal(err)
		}
		if err := st.AppendChunk(ctx, id, []byte("[0.1,\"o\",\"x\"]\n")); err != nil {
			t.Fatal(err)
		}
		m, _ := st.Session(ctx, id)
		m.State, m.End = StateClosed, start.Add(time.Minute)
		if err := st.UpdateSession(ctx, m); err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		if err := st.WriteRecording(ctx, id, h); err != nil {
			t.Fatal(err)
		}
		if _, err := st.AppendAudit(ctx, AuditRecord{Type: "session.end", Outcome: OutcomeSuccess, Session: id,
			Detail: map[string]string{DetailRecordingDigest: hex.EncodeToString(h.Sum(nil))}}); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := st.Prune(ctx, now.Add(-400*24*time.Hour))
	if err != nil || len(ids) != 1 || ids[0] != "old" {
		t.Fatalf("pruned %v %v", ids, err)
	}
	if _, err := st.Session(ctx, "old"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old session still there: %v", err)
	}
	if _, err := st.Session(ctx, "young"); err != nil {
		t.Fatalf("young session pruned: %v", err)
	}
	if n, err := st.VerifyAudit(ctx); err != nil || n != 3 {
		t.Fatalf("verify after prune: %d %v", n, err)
	}
}
