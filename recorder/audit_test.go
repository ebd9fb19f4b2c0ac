package recorder

import (
	"context"
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
