package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/recorder"
)

// serveStore runs the admin handler over a real store on a real unix
// socket and returns a client for it.
func serveStore(t *testing.T) (*recorder.BoltStore, *Client, context.CancelFunc) {
	t.Helper()
	dir := t.TempDir()
	st, err := recorder.OpenBolt(filepath.Join(dir, "bastion.db"), recorder.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, SocketName)
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, Handler(st, slog.New(slog.NewTextHandler(io.Discard, nil)), Hooks{})) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = st.Close()
	})
	c, err := Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	return st, c, cancel
}

func TestFollowAuditStreamsFilteredRecords(t *testing.T) {
	st, c, stopServer := serveStore(t)
	ctx := context.Background()
	appendRec := func(typ, user string) recorder.AuditRecord {
		r, err := st.AppendAudit(ctx, recorder.AuditRecord{Type: typ, Outcome: recorder.OutcomeSuccess, User: user})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	before := appendRec("session.start", "alice") // seq 1: before the follow, skipped by After
	got := make(chan recorder.AuditRecord, 16)
	ended := make(chan error, 1)
	go func() {
		ended <- c.FollowAudit(ctx, recorder.AuditFilter{User: "alice", Type: "session", After: before.Seq}, func(r recorder.AuditRecord) error {
			got <- r
			return nil
		})
	}()
	time.Sleep(200 * time.Millisecond)
	appendRec("session.start", "bob") // another user: filtered out
	appendRec("audit.read", "alice")  // another type: filtered out
	want := appendRec("session.end", "alice")
	select {
	case r := <-got:
		if r.Seq != want.Seq || r.Hash != want.Hash {
			t.Fatalf("followed %+v, want seq %d", r, want.Seq)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("appended record not streamed")
	}
	// A server that stops ends the stream with io.EOF, after what it
	// appended last.
	last := appendRec("session.pruned", "alice")
	stopServer()
	select {
	case err := <-ended:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("stream ended with %v, want io.EOF", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream did not end when the server stopped")
	}
	close(got)
	var tail []uint64
	for r := range got {
		tail = append(tail, r.Seq)
	}
	if len(tail) != 1 || tail[0] != last.Seq {
		t.Fatalf("after the first record the stream carried %v, want [%d]", tail, last.Seq)
	}
}

func TestFollowAuditEndsWithContext(t *testing.T) {
	_, c, _ := serveStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() {
		ended <- c.FollowAudit(ctx, recorder.AuditFilter{}, func(recorder.AuditRecord) error { return nil })
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-ended:
		if err != nil {
			t.Fatalf("cancelled follow: %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end with its context")
	}
}

func TestAuditFilterQueryRoundTrip(t *testing.T) {
	f := recorder.AuditFilter{User: "alice", Session: "s1", Target: "db", Type: "approval", Outcome: "failure", Text: "rm -rf",
		Since: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Until: time.Date(2026, 2, 2, 3, 4, 5, 0, time.UTC), After: 42, Limit: 7}
	back, err := auditFilterFromQuery(auditQuery(f))
	if err != nil || !back.Since.Equal(f.Since) || !back.Until.Equal(f.Until) {
		t.Fatalf("%+v %v", back, err)
	}
	back.Since, back.Until = f.Since, f.Until
	if back != f {
		t.Fatalf("round trip %+v, want %+v", back, f)
	}
	if _, err := auditFilterFromQuery(map[string][]string{"after": {"x"}}); err == nil {
		t.Fatal("after=x accepted")
	}
}

// TestChunksOverTheSocket: a player reaches a running server's recording
// chunk by chunk, with the same index and bytes as the store itself.
func TestChunksOverTheSocket(t *testing.T) {
	st, c, _ := serveStore(t)
	ctx := context.Background()
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	if err := st.CreateSession(ctx, recorder.SessionMeta{ID: "s1", User: "alice", Target: "web-1", Start: start,
		State: recorder.StateActive, Width: 80, Height: 24, Term: "xterm"}); err != nil {
		t.Fatal(err)
	}
	chunks := [][]byte{
		[]byte("[0.5,\"o\",\"hello\\r\\n\"]\n[1.0,\"o\",\"\\u001b[H\\u001b[2Jscreen\"]\n"),
		[]byte("[2.5,\"o\",\"more\"]\n"),
	}
	for _, ch := range chunks {
		if err := st.AppendChunk(ctx, "s1", ch); err != nil {
			t.Fatal(err)
		}
	}
	want, err := st.ChunkIndex(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.ChunkIndex(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(got) != 2 {
		t.Fatalf("index over the socket %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("chunk %d: %+v, want %+v", i, got[i], want[i])
		}
		b, err := c.ReadChunk(ctx, "s1", want[i].Seq)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != string(chunks[i]) {
			t.Errorf("chunk %d over the socket: %q, want %q", i, b, chunks[i])
		}
	}
	if _, err := c.ReadChunk(ctx, "s1", 99); !errors.Is(err, recorder.ErrNotFound) {
		t.Errorf("a chunk that is not there: %v, want not found", err)
	}
	if _, err := c.ChunkIndex(ctx, "nope"); err == nil {
		t.Error("the index of an unknown session: no error")
	}
}
