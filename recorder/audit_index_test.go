package recorder

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// indexStore holds n records spread over users, targets, types, outcomes
// and sessions, with times one second apart.
func indexStore(t *testing.T, n int) (*BoltStore, []AuditRecord) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "idx.db")
	st, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	types := []string{"session.start", "session.end", "sql.statement", "approval.filed", "approval.granted", "auth.failure"}
	var rs []AuditRecord
	for i := range n {
		r := AuditRecord{Type: types[i%len(types)], Outcome: OutcomeSuccess, User: fmt.Sprintf("user%d", i%7),
			Target: fmt.Sprintf("db-%d", i%3), Session: fmt.Sprintf("s%d", i/10), Time: base.Add(time.Duration(i) * time.Second),
			Detail: map[string]string{"statement": fmt.Sprintf("SELECT %d FROM cards", i)}}
		if i%5 == 0 {
			r.Outcome, r.Reason = OutcomeFailure, "denied by rule"
		}
		if i%97 == 0 {
			r.Detail["note"] = `<b> & "q" for zoë`
		}
		if i%89 == 0 {
			r.Detail["unit"] = "\u212aelvin"
		}
		rs = append(rs, r)
	}
	stored, err := st.AppendAudits(context.Background(), rs)
	if err != nil {
		t.Fatal(err)
	}
	return st, stored
}

// scanFilter is the filter applied the slow way: every record, newest first.
func scanFilter(all []AuditRecord, f AuditFilter) []uint64 {
	var out []uint64
	for i := len(all) - 1; i >= 0; i-- {
		if f.match(all[i]) {
			out = append(out, all[i].Seq)
			if f.Limit > 0 && len(out) == f.Limit {
				break
			}
		}
	}
	return out
}

func seqs(rs []AuditRecord) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.Seq
	}
	return out
}

func TestAuditIndexAgreesWithScan(t *testing.T) {
	st, all := indexStore(t, 3000)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		f    AuditFilter
	}{
		{"user", AuditFilter{User: "user3"}},
		{"user limit", AuditFilter{User: "user3", Limit: 20}},
		{"user and target", AuditFilter{User: "user3", Target: "db-1"}},
		{"user target type", AuditFilter{User: "user2", Target: "db-2", Type: "sql.statement"}},
		{"type family", AuditFilter{Type: "approval"}},
		{"type family dot", AuditFilter{Type: "approval.", Limit: 7}},
		{"outcome", AuditFilter{Outcome: OutcomeFailure, User: "user1"}},
		{"session", AuditFilter{Session: "s42"}},
		{"no match", AuditFilter{User: "user3", Session: "s0"}},
		{"unknown user", AuditFilter{User: "mallory"}},
		{"time range", AuditFilter{Since: base.Add(100 * time.Second), Until: base.Add(200 * time.Second)}},
		{"since", AuditFilter{Since: base.Add(2990 * time.Second)}},
		{"until", AuditFilter{Until: base.Add(5 * time.Second)}},
		{"user and time", AuditFilter{User: "user4", Since: base.Add(1000 * time.Second), Until: base.Add(1100 * time.Second)}},
		{"text", AuditFilter{Text: "select 2999 from"}},
		{"text and user", AuditFilter{Text: "cards", User: "user5", Limit: 3}},
		{"text any case", AuditFilter{Text: "FROM CARDS", Limit: 5}},
		{"text with json-escaped characters", AuditFilter{Text: "<b> & \"q\""}},
		{"text with non-ascii", AuditFilter{Text: "ZOË", User: "user1"}},
		{"text kelvin sign", AuditFilter{Text: "kelvin"}}, // "\u212aelvin" lower-cases to "kelvin"
		{"after", AuditFilter{After: 2990}},
		{"after and user", AuditFilter{After: 2900, User: "user0"}},
		{"nul in value", AuditFilter{User: "a\x00b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := st.ListAudit(context.Background(), c.f)
			if err != nil {
				t.Fatal(err)
			}
			want := scanFilter(all, c.f)
			if !slices.Equal(seqs(got), want) {
				t.Fatalf("indexed %v\nscan    %v", seqs(got), want)
			}
		})
	}
}

// A store written before the index existed gets one at its next
// read-write open; read-only it is scanned and answers the same.
func TestAuditIndexBuiltForOldStore(t *testing.T) {
	old := indexBuildBatch
	indexBuildBatch = 64 // several transactions, a partial last one
	t.Cleanup(func() { indexBuildBatch = old })
	st, all := indexStore(t, 500)
	path := st.Path()
	if err := st.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketAuditIndex); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Delete(keyAuditIndexed)
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	f := AuditFilter{User: "user6", Type: "session"}
	want := scanFilter(all, f)
	ro, err := OpenBolt(path, BoltOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ro.ListAudit(context.Background(), f)
	if err != nil || !slices.Equal(seqs(got), want) {
		t.Fatalf("read-only, unindexed: %v %v, want %v", seqs(got), err, want)
	}
	_ = ro.Close()
	rw, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	if err := rw.db.View(func(tx *bolt.Tx) error {
		if !indexed(tx) {
			return fmt.Errorf("index not rebuilt")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err = rw.ListAudit(context.Background(), f)
	if err != nil || !slices.Equal(seqs(got), want) {
		t.Fatalf("rebuilt index: %v %v, want %v", seqs(got), err, want)
	}
	if n, err := rw.VerifyAudit(context.Background()); err != nil || n != 500 {
		t.Fatalf("verify after the rebuild: %d %v", n, err)
	}
}

// Observers see every record once, in chain order, even when many
// goroutines append at once; a stopped observer sees nothing more.
func TestOnAuditSeesChainOrder(t *testing.T) {
	st, _ := indexStore(t, 1)
	var mu sync.Mutex
	var seen []uint64
	stop := st.OnAudit(func(r AuditRecord) {
		mu.Lock()
		seen = append(seen, r.Seq)
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				if _, err := st.AppendAudit(context.Background(), AuditRecord{Type: "x.y", Outcome: OutcomeSuccess}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	stop()
	if _, err := st.AppendAudit(context.Background(), AuditRecord{Type: "x.z", Outcome: OutcomeSuccess}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 80 {
		t.Fatalf("observer saw %d records, want 80", len(seen))
	}
	for i, s := range seen {
		if s != uint64(i+2) {
			t.Fatalf("observer saw seq %d at position %d: not chain order (%v)", s, i, seen)
		}
	}
}

func TestContainsFold(t *testing.T) {
	cases := []struct{ hay, needle string }{
		{`{"detail":{"command":"UNAME -A"}}`, "uname -a"},
		{`{"x":"abc"}`, "abd"},
		{`{"x":"ab"}`, "abc"},
		{`{"x":"Zoë"}`, "zoë"},
		{`{"x":"ZOË"}`, "zoë"},
		{`{"x":"\u212aelvin"}`, "kelvin"},
		{`{"x":"plain"}`, "zoë"},
		{`{"x":"aAaAb"}`, "aab"},
		{``, "a"},
	}
	for _, c := range cases {
		hay := []byte(c.hay)
		if c.hay == `{"x":"\u212aelvin"}` {
			hay = []byte("{\"x\":\"\u212aelvin\"}")
		}
		want := bytes.Contains(bytes.ToLower(hay), []byte(c.needle))
		if got := containsFold(hay, []byte(c.needle)); got != want {
			t.Errorf("containsFold(%q, %q) = %v, want %v", hay, c.needle, got, want)
		}
	}
}
