package recorder

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// batchStore is an empty store for the group-commit tests.
func batchStore(t *testing.T) *BoltStore {
	t.Helper()
	st, err := OpenBolt(filepath.Join(t.TempDir(), "b.db"), BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// queued is how many calls wait for the next audit commit.
func queued(st *BoltStore) int {
	st.audit.commits.mu.Lock()
	defer st.audit.commits.mu.Unlock()
	return len(st.audit.commits.pending)
}

// waitQueued waits until n calls wait for the next commit.
func waitQueued(t *testing.T, st *BoltStore, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for queued(st) < n {
		if time.Now().After(deadline) {
			t.Errorf("%d calls queued after 10s, want %d", queued(st), n)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// observeAudit subscribes to st's audit records until the test ends and
// returns a function that gives f of each record seen so far, in order.
func observeAudit[T any](t *testing.T, st *BoltStore, f func(AuditRecord) T) func() []T {
	var mu sync.Mutex
	var seen []T
	stop := st.OnAudit(func(r AuditRecord) {
		mu.Lock()
		seen = append(seen, f(r))
		mu.Unlock()
	})
	t.Cleanup(stop)
	return func() []T {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// appendFirst starts appending a record "first" and returns once its commit
// runs; the channel gets the append's error.
func appendFirst(ctx context.Context, st *BoltStore) <-chan error {
	first := make(chan error, 1)
	go func() {
		_, err := st.AppendAudit(ctx, AuditRecord{Type: "first", Outcome: OutcomeSuccess})
		first <- err
	}()
	waitCommitting(st)
	return first
}

// waitCommitting waits until a commit runs.
func waitCommitting(st *BoltStore) {
	for {
		st.audit.commits.mu.Lock()
		c := st.audit.commits.committing
		st.audit.commits.mu.Unlock()
		if c {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// holdFirstCommit makes the first audit commit wait inside its transaction
// until `others` calls have queued behind it, and counts the records of
// every commit; fail, when set, decides the result of the later commits.
func holdFirstCommit(t *testing.T, st *BoltStore, others int, fail func(commit int) error) *[]int {
	var sizes []int
	st.audit.beforeCommit = func(_ *bolt.Tx, records int) error {
		sizes = append(sizes, records) // commits run one at a time
		if len(sizes) == 1 {
			waitQueued(t, st, others)
			return nil
		}
		if fail != nil {
			return fail(len(sizes))
		}
		return nil
	}
	return &sizes
}

// Calls that arrive while a commit runs share the next one; the chain
// verifies, every caller gets its own records as stored (consecutive
// sequence numbers, in its order), the index finds them, and observers see
// them once each in chain order.
func TestAuditGroupCommitSharesCommits(t *testing.T) {
	st := batchStore(t)
	const callers = 16
	sizes := holdFirstCommit(t, st, callers, nil)
	observed := observeAudit(t, st, func(r AuditRecord) uint64 { return r.Seq })

	ctx := context.Background()
	first := appendFirst(ctx, st) // it leads at once, and its commit runs
	results := make([][]AuditRecord, callers)
	var wg sync.WaitGroup
	for k := range callers {
		wg.Go(func() {
			user := fmt.Sprintf("u%02d", k)
			rs := []AuditRecord{
				{Type: "target.access", Outcome: OutcomeSuccess, User: user, Session: user + "-s"},
				{Type: "exec.command", Outcome: OutcomeSuccess, User: user, Detail: map[string]string{"command": "true " + user}},
			}
			out, err := st.AppendAudits(ctx, rs)
			if err != nil {
				t.Errorf("caller %d: %v", k, err)
				return
			}
			results[k] = out
		})
	}
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(*sizes, []int{1, 2 * callers}) {
		t.Fatalf("commits held %v records, want [1 %d]: the waiting calls did not share one commit", *sizes, 2*callers)
	}
	if n, err := st.VerifyAudit(ctx); err != nil || n != 1+2*callers {
		t.Fatalf("verify: %d records, %v", n, err)
	}
	stored, err := st.ListAudit(ctx, AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	bySeq := map[uint64]AuditRecord{}
	for _, r := range stored {
		bySeq[r.Seq] = r
	}
	for k, out := range results {
		user := fmt.Sprintf("u%02d", k)
		if len(out) != 2 || out[1].Seq != out[0].Seq+1 || out[0].Type != "target.access" || out[1].Type != "exec.command" {
			t.Fatalf("caller %d got %+v: want its two records, in order, with consecutive seqs", k, out)
		}
		for _, r := range out {
			if s := bySeq[r.Seq]; s.Hash != r.Hash || s.User != user || !s.Time.Equal(r.Time) {
				t.Fatalf("caller %d was told %+v, the store holds %+v", k, r, s)
			}
		}
		got, err := st.ListAudit(ctx, AuditFilter{User: user})
		if err != nil || !slices.Equal(seqs(got), []uint64{out[1].Seq, out[0].Seq}) {
			t.Fatalf("index for %s: %v %v, want %d and %d", user, seqs(got), err, out[1].Seq, out[0].Seq)
		}
	}
	seen := observed()
	for i, s := range seen {
		if s != uint64(i+1) {
			t.Fatalf("observers saw %v: not every record once in chain order", seen)
		}
	}
	if len(seen) != 1+2*callers {
		t.Fatalf("observers saw %d records, want %d", len(seen), 1+2*callers)
	}
}

// Many goroutines appending without any hook: the chain verifies and no
// record is lost or doubled.
func TestAuditGroupCommitUnderContention(t *testing.T) {
	st := batchStore(t)
	var commits int
	st.audit.beforeCommit = func(*bolt.Tx, int) error { commits++; return nil }
	ctx := context.Background()
	const goroutines, each = 32, 25
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				r, err := st.AppendAudit(ctx, AuditRecord{Type: "x", Outcome: OutcomeSuccess, User: fmt.Sprintf("g%d", g),
					Detail: map[string]string{"i": fmt.Sprint(i)}})
				if err != nil || r.Seq == 0 || r.Hash == "" {
					t.Errorf("append: %+v %v", r, err)
				}
			}
		})
	}
	wg.Wait()
	if n, err := st.VerifyAudit(ctx); err != nil || n != goroutines*each {
		t.Fatalf("verify: %d records, %v", n, err)
	}
	for g := range goroutines {
		got, err := st.ListAudit(ctx, AuditFilter{User: fmt.Sprintf("g%d", g)})
		if err != nil || len(got) != each {
			t.Fatalf("g%d: %d records, %v", g, len(got), err)
		}
		// One goroutine's records are in its order.
		for i, r := range got {
			if want := fmt.Sprint(each - 1 - i); r.Detail["i"] != want {
				t.Fatalf("g%d: record %d holds i=%s, want %s", g, r.Seq, r.Detail["i"], want)
			}
		}
	}
	t.Logf("%d appends in %d commits", goroutines*each, commits)
	if commits >= goroutines*each {
		t.Fatalf("%d commits for %d appends from %d goroutines: none shared a commit", commits, goroutines*each, goroutines)
	}
}

// A commit that fails fails every call in it, stores none of their records
// (nor index entries, nor sequence numbers), and tells no observer; the
// commit before it stands and the next works.
func TestAuditGroupCommitFailureFailsEveryCaller(t *testing.T) {
	st := batchStore(t)
	const callers = 8
	boom := errors.New("disk on fire")
	holdFirstCommit(t, st, callers, func(commit int) error {
		if commit == 2 {
			return boom
		}
		return nil
	})
	observed := observeAudit(t, st, func(r AuditRecord) string { return r.Type })
	ctx := context.Background()
	first := appendFirst(ctx, st) // it leads at once, and its commit runs
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for k := range callers {
		wg.Go(func() {
			_, errs[k] = st.AppendAudits(ctx, []AuditRecord{
				{Type: "doomed", Outcome: OutcomeSuccess, User: "victim"},
				{Type: "doomed", Outcome: OutcomeFailure, User: "victim"},
			})
		})
	}
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatalf("the first commit: %v", err)
	}
	for k, err := range errs {
		if !errors.Is(err, boom) {
			t.Fatalf("caller %d: %v, want the commit's error", k, err)
		}
	}
	if n, err := st.VerifyAudit(ctx); err != nil || n != 1 {
		t.Fatalf("verify after the failed commit: %d records, %v (want only the first)", n, err)
	}
	if got, err := st.ListAudit(ctx, AuditFilter{User: "victim"}); err != nil || len(got) != 0 {
		t.Fatalf("records of the failed commit are listed: %+v %v", got, err)
	}
	err := st.db.View(func(tx *bolt.Tx) error {
		idx := tx.Bucket(bucketAuditIndex)
		if n := idx.Stats().KeyN; n != len(indexKeys(AuditRecord{Seq: 1, Type: "first", Outcome: OutcomeSuccess, Time: time.Now()})) {
			return fmt.Errorf("the index holds %d keys: entries of the failed commit were left", n)
		}
		if s := tx.Bucket(bucketAudit).Sequence(); s != 1 {
			return fmt.Errorf("the audit bucket's sequence is %d after the failed commit, want 1", s)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen := observed(); !slices.Equal(seen, []string{"first"}) {
		t.Fatalf("observers saw %v, want only the committed record", seen)
	}
	st.audit.beforeCommit = nil
	r, err := st.AppendAudit(ctx, AuditRecord{Type: "after", Outcome: OutcomeSuccess})
	if err != nil || r.Seq != 2 {
		t.Fatalf("append after the failure: seq %d, %v; want 2", r.Seq, err)
	}
	if n, err := st.VerifyAudit(ctx); err != nil || n != 2 {
		t.Fatalf("verify: %d records, %v", n, err)
	}
}

// A panic in a commit answers every other call of its batch with an error
// and passes the lead on, so that later appends do not hang.
func TestAuditGroupCommitPanicReleasesWaiters(t *testing.T) {
	st := batchStore(t)
	const callers = 4
	holdFirstCommit(t, st, callers, func(commit int) error {
		if commit == 2 {
			panic("commit blew up")
		}
		return nil
	})
	ctx := context.Background()
	first := appendFirst(ctx, st) // it leads at once, and its commit runs
	errs := make([]error, callers)
	panics := make([]any, callers)
	var wg sync.WaitGroup
	for k := range callers {
		wg.Go(func() {
			defer func() { panics[k] = recover() }()
			_, errs[k] = st.AppendAudit(ctx, AuditRecord{Type: "waiter", Outcome: OutcomeSuccess})
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("calls still blocked 10s after their commit panicked")
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// The second commit held all four waiters; its leader's goroutine
	// panicked, the three others were told.
	leaders, failed := 0, 0
	for k := range callers {
		switch {
		case panics[k] == "commit blew up":
			leaders++
		case errs[k] != nil && strings.Contains(errs[k].Error(), "panicked"):
			failed++
		default:
			t.Errorf("waiter %d: panic %v, error %v", k, panics[k], errs[k])
		}
	}
	if leaders != 1 || failed != callers-1 {
		t.Fatalf("%d leaders panicked and %d waiters failed, want 1 and %d", leaders, failed, callers-1)
	}
	if r, err := st.AppendAudit(ctx, AuditRecord{Type: "after", Outcome: OutcomeSuccess}); err != nil || r.Seq != 2 {
		t.Fatalf("append after the panic: %+v %v; want seq 2", r, err)
	}
	if n, err := st.VerifyAudit(ctx); err != nil || n != 2 {
		t.Fatalf("verify: %d %v", n, err)
	}
}

// A record encoding/json cannot store is refused before it is queued, so
// it fails its own call and nothing else.
func TestAuditBadTimeFailsAlone(t *testing.T) {
	st := batchStore(t)
	ctx := context.Background()
	_, err := st.AppendAudits(ctx, []AuditRecord{
		{Type: "ok", Outcome: OutcomeSuccess},
		{Type: "bad", Outcome: OutcomeSuccess, Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	})
	if err == nil {
		t.Fatal("a record dated in the year 10000 was accepted")
	}
	if r, err := st.AppendAudit(ctx, AuditRecord{Type: "ok", Outcome: OutcomeSuccess}); err != nil || r.Seq != 1 {
		t.Fatalf("next append: %+v %v", r, err)
	}
}
