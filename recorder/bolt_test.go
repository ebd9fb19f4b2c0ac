package recorder

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bastion-dev/bastion/internal/race"
)

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func openTestStore(t *testing.T) (*BoltStore, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bastion.db")
	s, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s, path
}

func activeMeta(id, user, target string, start time.Time) SessionMeta {
	return SessionMeta{ID: id, User: user, Target: target, Start: start, State: StateActive,
		Width: 100, Height: 30, Term: "xterm-256color", Title: user + "@" + target}
}

// eventLines encodes events as a chunk, the way the recorder does.
func eventLines(t *testing.T, evs ...Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, ev := range evs {
		if err := encodeEvent(&buf, ev); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// readRecording decodes a whole recording.
func readRecording(t *testing.T, s Store, id string) (Header, []Event) {
	t.Helper()
	var buf bytes.Buffer
	if err := s.WriteRecording(t.Context(), id, &buf); err != nil {
		t.Fatal(err)
	}
	dec := NewDecoder(&buf)
	h, err := dec.Header()
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	for {
		ev, err := dec.Next()
		if errors.Is(err, io.EOF) {
			return h, evs
		}
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
}

func TestCreateAndUpdateSession(t *testing.T) {
	s, _ := openTestStore(t)
	ctx := t.Context()
	m := activeMeta("s1", "alice", "web-1", t0)
	if err := s.CreateSession(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, m); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate create: err = %v, want ErrExists", err)
	}
	got, err := s.Session(ctx, "s1")
	if err != nil || got.User != "alice" || !got.Start.Equal(t0) || got.State != StateActive {
		t.Errorf("Session = %+v, %v", got, err)
	}
	code := 3
	m.State, m.End, m.ExitStatus, m.BytesOut = StateClosed, t0.Add(time.Minute), &code, 42
	if err := s.UpdateSession(ctx, m); err != nil {
		t.Fatal(err)
	}
	got, err = s.Session(ctx, "s1")
	if err != nil || got.State != StateClosed || got.ExitStatus == nil || *got.ExitStatus != 3 || got.BytesOut != 42 || !got.End.Equal(m.End) {
		t.Errorf("after update Session = %+v, %v", got, err)
	}

	bad := []struct {
		name string
		meta SessionMeta
	}{
		{"empty id", activeMeta("", "a", "t", t0)},
		{"slash in id", activeMeta("../x", "a", "t", t0)},
		{"dot id", activeMeta(".x", "a", "t", t0)},
		{"no start", activeMeta("s2", "a", "t", time.Time{})},
		{"bad state", func() SessionMeta { m := activeMeta("s3", "a", "t", t0); m.State = "done"; return m }()},
	}
	for _, tt := range bad {
		if err := s.CreateSession(ctx, tt.meta); err == nil {
			t.Errorf("%s: CreateSession accepted %+v", tt.name, tt.meta)
		}
	}
	if _, err := s.Session(ctx, "nope"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing session: err = %v, want ErrNotFound naming the id", err)
	}
	if err := s.UpdateSession(ctx, activeMeta("nope", "a", "t", t0)); !errors.Is(err, ErrNotFound) {
		t.Errorf("update of missing session: err = %v, want ErrNotFound", err)
	}
}

func TestAppendChunkRefusals(t *testing.T) {
	s, _ := openTestStore(t)
	ctx := t.Context()
	if err := s.CreateSession(ctx, activeMeta("s1", "alice", "web-1", t0)); err != nil {
		t.Fatal(err)
	}
	line := eventLines(t, Event{Time: 1, Type: "o", Data: "x"})
	tests := []struct {
		name   string
		id     string
		events []byte
		want   error
		text   string
	}{
		{"missing session", "nope", line, ErrNotFound, ""},
		{"empty", "s1", nil, nil, "empty"},
		{"no newline", "s1", bytes.TrimSuffix(line, []byte("\n")), nil, "newline"},
		{"not an event", "s1", []byte("hello\n"), nil, "does not start"},
		{"invalid utf8", "s1", []byte("[1,\"o\",\"\xff\"]\n"), nil, "UTF-8"},
	}
	for _, tt := range tests {
		err := s.AppendChunk(ctx, tt.id, tt.events)
		if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%s: err = %v, want %v / %q", tt.name, err, tt.want, tt.text)
		}
	}
	m := activeMeta("s1", "alice", "web-1", t0)
	m.State, m.End = StateClosed, t0.Add(time.Second)
	if err := s.UpdateSession(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendChunk(ctx, "s1", line); !errors.Is(err, ErrEnded) {
		t.Errorf("append to closed session: err = %v, want ErrEnded", err)
	}
}

func TestWriteRecording(t *testing.T) {
	s, _ := openTestStore(t)
	ctx := t.Context()
	m := activeMeta("rec1", "alice", "web-1", t0.Add(500*time.Millisecond))
	if err := s.CreateSession(ctx, m); err != nil {
		t.Fatal(err)
	}
	// Incompressible chunks of ~600 KiB make WriteRecording read several
	// pages, so the paging is exercised too.
	rng := rand.New(rand.NewPCG(1, 2))
	var want []Event
	for i := range 5 {
		raw := make([]byte, 450<<10)
		for j := range raw {
			raw[j] = byte(rng.Uint32())
		}
		chunk := []Event{
			{Time: float64(i), Type: "o", Data: base64.StdEncoding.EncodeToString(raw)},
			{Time: float64(i) + 0.25, Type: "m", Data: "chunk " + string(rune('a'+i))},
		}
		if err := s.AppendChunk(ctx, "rec1", eventLines(t, chunk...)); err != nil {
			t.Fatal(err)
		}
		want = append(want, chunk...)
	}
	h, got := readRecording(t, s, "rec1")
	if h.Version != 2 || h.Width != 100 || h.Height != 30 || h.Timestamp != t0.Unix() ||
		h.Title != "alice@web-1" || h.Env["TERM"] != "xterm-256color" {
		t.Errorf("header = %+v", h)
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %d events, want %d (or they differ)", len(got), len(want))
	}

	// A session without a PTY still gets a playable size, and no events.
	np := activeMeta("nopty", "bob", "db", t0)
	np.Width, np.Height, np.Term = 0, 0, ""
	if err := s.CreateSession(ctx, np); err != nil {
		t.Fatal(err)
	}
	h, got = readRecording(t, s, "nopty")
	if h.Width != 80 || h.Height != 24 || h.Env != nil || len(got) != 0 {
		t.Errorf("no-PTY recording: header %+v, %d events", h, len(got))
	}
	if err := s.WriteRecording(ctx, "nope", io.Discard); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing recording: err = %v, want ErrNotFound", err)
	}
}

func TestListSessions(t *testing.T) {
	s, _ := openTestStore(t)
	ctx := t.Context()
	rows := []SessionMeta{
		activeMeta("a1", "alice", "web-1", t0),
		activeMeta("b1", "bob", "web-1", t0.Add(1*time.Hour)),
		activeMeta("a2", "alice", "db", t0.Add(2*time.Hour)),
		activeMeta("c1", "carol", "web-2", t0.Add(3*time.Hour)),
		activeMeta("a3", "alice", "web-1", t0.Add(4*time.Hour)),
	}
	for _, m := range rows {
		if err := s.CreateSession(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		f    SessionFilter
		want []string
	}{
		{"all newest first", SessionFilter{}, []string{"a3", "c1", "a2", "b1", "a1"}},
		{"user", SessionFilter{User: "alice"}, []string{"a3", "a2", "a1"}},
		{"target", SessionFilter{Target: "web-1"}, []string{"a3", "b1", "a1"}},
		{"user and target", SessionFilter{User: "alice", Target: "web-1"}, []string{"a3", "a1"}},
		{"since inclusive", SessionFilter{Since: t0.Add(2 * time.Hour)}, []string{"a3", "c1", "a2"}},
		{"until exclusive", SessionFilter{Until: t0.Add(2 * time.Hour)}, []string{"b1", "a1"}},
		{"window", SessionFilter{Since: t0.Add(time.Hour), Until: t0.Add(4 * time.Hour)}, []string{"c1", "a2", "b1"}},
		{"limit", SessionFilter{Limit: 2}, []string{"a3", "c1"}},
		{"limit after filter", SessionFilter{User: "alice", Limit: 2}, []string{"a3", "a2"}},
		{"no match", SessionFilter{User: "mallory"}, nil},
	}
	for _, tt := range tests {
		got, err := s.ListSessions(ctx, tt.f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range got {
			ids = append(ids, m.ID)
		}
		if !slices.Equal(ids, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, ids, tt.want)
		}
	}
}

func TestMarkInterrupted(t *testing.T) {
	s, _ := openTestStore(t)
	ctx := t.Context()
	for _, m := range []SessionMeta{activeMeta("x1", "a", "t", t0), activeMeta("x2", "b", "t", t0), activeMeta("x3", "c", "t", t0)} {
		if err := s.CreateSession(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	chunk := eventLines(t, Event{Time: 0.5, Type: "o", Data: "before the crash"})
	if err := s.AppendChunk(ctx, "x1", chunk); err != nil {
		t.Fatal(err)
	}
	closed := activeMeta("x3", "c", "t", t0)
	closed.State, closed.End = StateClosed, t0.Add(time.Minute)
	if err := s.UpdateSession(ctx, closed); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Hour)
	ids, err := s.MarkInterrupted(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{"x1", "x2"}) {
		t.Errorf("interrupted = %v, want [x1 x2]", ids)
	}
	for _, id := range []string{"x1", "x2"} {
		m, err := s.Session(ctx, id)
		if err != nil || m.State != StateInterrupted || !m.End.Equal(now) || m.Error == "" {
			t.Errorf("%s after MarkInterrupted: %+v, %v", id, m, err)
		}
	}
	if m, _ := s.Session(ctx, "x3"); m.State != StateClosed || !m.End.Equal(closed.End) {
		t.Errorf("closed session changed: %+v", m)
	}
	if _, evs := readRecording(t, s, "x1"); len(evs) != 1 || evs[0].Data != "before the crash" {
		t.Errorf("interrupted recording replays %+v", evs)
	}
	if ids, err := s.MarkInterrupted(ctx, now); err != nil || len(ids) != 0 {
		t.Errorf("second MarkInterrupted = %v, %v; want none", ids, err)
	}
}

func TestNextSerialAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bastion.db")
	ctx := t.Context()
	var got []uint64
	for round := range 2 {
		s, err := OpenBolt(path, BoltOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			n, err := s.NextSerial(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, n)
		}
		if round == 0 {
			// A serial recorded from elsewhere moves the sequence past it.
			if err := s.RecordCert(ctx, CertRecord{Serial: 10, User: "alice", IssuedAt: t0, ValidBefore: t0.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if err := s.RecordCert(ctx, CertRecord{Serial: 10, User: "bob"}); !errors.Is(err, ErrExists) {
				t.Errorf("duplicate serial: err = %v, want ErrExists", err)
			}
			if err := s.RecordCert(ctx, CertRecord{User: "bob"}); err == nil {
				t.Error("serial 0 accepted")
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if want := []uint64{1, 2, 3, 11, 12, 13}; !slices.Equal(got, want) {
		t.Errorf("serials = %v, want %v", got, want)
	}
}

func TestRevoke(t *testing.T) {
	s, _ := openTestStore(t)
	ctx := t.Context()
	for _, r := range []Revocation{
		{Serial: 7, At: t0, By: "admin", Reason: "laptop lost"},
		{User: "bob", At: t0.Add(time.Hour), By: "admin"},
		{User: "bob", At: t0.Add(-time.Hour), By: "admin"}, // an older one is kept but does not narrow the later one
	} {
		if err := s.Revoke(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		serial   uint64
		user     string
		issuedAt time.Time
		want     bool
	}{
		{"revoked serial", 7, "alice", t0.Add(time.Hour), true},
		{"other serial", 8, "alice", t0, false},
		{"user cert issued before", 9, "bob", t0, true},
		{"user cert issued after", 9, "bob", t0.Add(2 * time.Hour), false},
		{"user cert issued at the cutoff", 9, "bob", t0.Add(time.Hour), false},
		{"prefix of a revoked user", 9, "bo", t0, false},
		{"longer name than a revoked user", 9, "bobby", t0, false},
	}
	for _, tt := range tests {
		got, err := s.IsRevoked(ctx, tt.serial, tt.user, tt.issuedAt)
		if err != nil || got != tt.want {
			t.Errorf("%s: IsRevoked = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	for _, r := range []Revocation{
		{At: t0},
		{Serial: 1, User: "bob", At: t0},
		{Serial: 1},
		{User: "a\x00b", At: t0},
	} {
		if err := s.Revoke(ctx, r); err == nil {
			t.Errorf("Revoke(%+v) accepted", r)
		}
	}
}

func TestOpenBoltLocked(t *testing.T) {
	_, path := openTestStore(t)
	for _, opts := range []BoltOptions{{Timeout: 50 * time.Millisecond}, {ReadOnly: true, Timeout: 50 * time.Millisecond}} {
		s, err := OpenBolt(path, opts)
		if err == nil {
			s.Close()
			t.Fatalf("second OpenBolt(%+v) succeeded while the store is open", opts)
		}
		sock := filepath.Join(filepath.Dir(path), "admin.sock")
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "is locked by a running bastion") || !strings.Contains(err.Error(), sock) {
			t.Errorf("second open: err = %v; want ErrLocked naming %s", err, sock)
		}
	}
}

func TestOpenBoltReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bastion.db")
	ctx := context.Background()
	s, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, activeMeta("r1", "alice", "web-1", t0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenBolt(path, BoltOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if m, err := ro.Session(ctx, "r1"); err != nil || m.User != "alice" {
		t.Errorf("read-only Session = %+v, %v", m, err)
	}
	if err := ro.CreateSession(ctx, activeMeta("r2", "bob", "web-1", t0)); err == nil {
		t.Error("read-only store accepted a write")
	}
	if _, err := OpenBolt(filepath.Join(t.TempDir(), "missing.db"), BoltOptions{ReadOnly: true}); err == nil {
		t.Error("read-only open of a missing file succeeded")
	}
}

func TestStoreHonoursCancelledContext(t *testing.T) {
	s, _ := openTestStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.CreateSession(ctx, activeMeta("c1", "a", "t", t0)); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateSession with cancelled ctx: err = %v", err)
	}
	if _, err := s.ListSessions(ctx, SessionFilter{}); !errors.Is(err, context.Canceled) {
		t.Errorf("ListSessions with cancelled ctx: err = %v", err)
	}
}

func TestAppendPreparedRefusals(t *testing.T) {
	s, _ := openTestStore(t)
	ctx := t.Context()
	if err := s.CreateSession(ctx, activeMeta("s1", "alice", "web-1", t0)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		events []byte
		text   string
	}{
		{"empty", nil, "empty"},
		{"no newline", []byte(`[1,"o","x"]`), "newline"},
		{"not an event", []byte("hello\n"), "does not start"},
		{"invalid utf8", []byte("[1,\"o\",\"\xff\"]\n"), "UTF-8"},
	} {
		if c, err := s.PrepareChunk(tt.events); err == nil || !strings.Contains(err.Error(), tt.text) || c.Size() != 0 {
			t.Errorf("PrepareChunk(%s) = %d bytes, %v; want an error about %q", tt.name, c.Size(), err, tt.text)
		}
		// The encoder's own lines skip the UTF-8 check, and only it.
		c, err := s.PrepareEncoded(tt.events, true)
		if tt.text == "UTF-8" {
			if err != nil {
				t.Errorf("PrepareEncoded(%s): %v, want the UTF-8 check skipped", tt.name, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), tt.text) || c.Size() != 0 {
			t.Errorf("PrepareEncoded(%s) = %d bytes, %v; want an error about %q", tt.name, c.Size(), err, tt.text)
		}
	}
	if err := s.AppendPrepared(ctx, "s1", []PreparedChunk{{}}); err == nil || !strings.Contains(err.Error(), "not made by PrepareChunk") {
		t.Errorf("AppendPrepared of a zero chunk: err = %v, want a refusal", err)
	}
	c, err := s.PrepareChunk(eventLines(t, Event{Time: 1, Type: "o", Data: "x"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AppendPrepared(ctx, "nope", []PreparedChunk{c}); !errors.Is(err, ErrNotFound) {
		t.Errorf("AppendPrepared to a missing session: err = %v, want ErrNotFound", err)
	}
	var buf bytes.Buffer
	if err := s.WriteRecording(ctx, "s1", &buf); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(buf.String(), "\n"); lines != 1 {
		t.Errorf("recording has %d lines after only refused appends, want the header alone", lines)
	}
}

// TestAppendPreparedSharedCommit: sessions appending at once share commits,
// an append to an ended session fails alone, and every other session gets
// all its chunks, in order.
func TestAppendPreparedSharedCommit(t *testing.T) {
	s, _ := openTestStore(t)
	ctx := t.Context()
	const sessions, appends = 8, 20
	ended := "s0"
	for i := range sessions {
		if err := s.CreateSession(ctx, activeMeta(fmt.Sprintf("s%d", i), "alice", "web-1", t0)); err != nil {
			t.Fatal(err)
		}
	}
	m := activeMeta(ended, "alice", "web-1", t0)
	m.State, m.End = StateClosed, t0.Add(time.Second)
	if err := s.UpdateSession(ctx, m); err != nil {
		t.Fatal(err)
	}
	errs := make([][]error, sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		errs[i] = make([]error, appends)
		wg.Go(func() {
			for k := range appends {
				c, err := s.PrepareChunk(eventLines(t, Event{Time: float64(k), Type: "o", Data: fmt.Sprintf("s%d-%d;", i, k)}))
				if err == nil {
					err = s.AppendPrepared(ctx, fmt.Sprintf("s%d", i), []PreparedChunk{c})
				}
				errs[i][k] = err
			}
		})
	}
	wg.Wait()
	for i := range sessions {
		id := fmt.Sprintf("s%d", i)
		for k, err := range errs[i] {
			if id == ended && !errors.Is(err, ErrEnded) {
				t.Errorf("append %d to the ended session: err = %v, want ErrEnded", k, err)
			}
			if id != ended && err != nil {
				t.Errorf("append %d to %s: %v", k, id, err)
			}
		}
		if id == ended {
			continue
		}
		_, evs := readRecording(t, s, id)
		var got, want strings.Builder
		for _, e := range evs {
			got.WriteString(e.Data)
		}
		for k := range appends {
			fmt.Fprintf(&want, "s%d-%d;", i, k)
		}
		if got.String() != want.String() {
			t.Errorf("%s recorded %q, want %q", id, got.String(), want.String())
		}
	}
}

// TestSchemaVersions: a version 1 store (zstd chunks) opens and is marked
// version 2 once opened for writing, so that an older bastion refuses it;
// a version this bastion does not know is refused with a message naming
// the file and what to do.
func TestSchemaVersions(t *testing.T) {
	for _, tt := range []struct {
		stored, after string
		refused       bool
	}{
		{"1", "2", false},
		{"2", "2", false},
		{"3", "3", true},
	} {
		path := filepath.Join(t.TempDir(), "bastion.db")
		s, err := OpenBolt(path, BoltOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte(tt.stored)) }); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, err = OpenBolt(path, BoltOptions{})
		if tt.refused {
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "upgrade bastion") {
				t.Errorf("version %s: open = %v, want a refusal naming %s", tt.stored, err, path)
			}
			if s != nil {
				_ = s.Close()
			}
			continue
		}
		if err != nil {
			t.Fatalf("version %s: %v", tt.stored, err)
		}
		var got string
		_ = s.db.View(func(tx *bolt.Tx) error { got = string(tx.Bucket(bucketMeta).Get(keySchema)); return nil })
		if got != tt.after {
			t.Errorf("version %s after opening for writing: %s, want %s", tt.stored, got, tt.after)
		}
		_ = s.Close()
	}
}

// TestAppendChunkTooLongToRead: a chunk that the reader would refuse as
// larger than maxDecodedChunk (a single line too long to cut) is refused
// when it is written, with nothing stored, instead of being stored and
// then replaying as damage.
func TestAppendChunkTooLongToRead(t *testing.T) {
	s, _ := openTestStore(t)
	ctx := t.Context()
	if err := s.CreateSession(ctx, activeMeta("s1", "alice", "web-1", t0)); err != nil {
		t.Fatal(err)
	}
	line := append(append([]byte(`[1,"o","`), bytes.Repeat([]byte("x"), maxDecodedChunk)...), "\"]\n"...)
	if _, err := s.PrepareChunk(line); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("PrepareChunk of a %d-byte line: err = %v, want a refusal", len(line), err)
	}
	if err := s.AppendChunk(ctx, "s1", line); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("AppendChunk of a %d-byte line: err = %v, want a refusal", len(line), err)
	}
	var buf bytes.Buffer
	if err := s.WriteRecording(ctx, "s1", &buf); err != nil {
		t.Fatalf("the recording no longer reads: %v", err)
	}
	if lines := strings.Count(buf.String(), "\n"); lines != 1 {
		t.Errorf("recording has %d lines after a refused append, want the header alone", lines)
	}
}

// TestAppendPreparedReusesRawFrames: the buffer of a raw frame goes back to
// the codec once its commit is done, the next piece is built in it, and
// the chunk stored first still reads back as it was: bbolt copied it.
func TestAppendPreparedReusesRawFrames(t *testing.T) {
	s, _ := openTestStore(t)
	ctx := t.Context()
	if err := s.CreateSession(ctx, activeMeta("s1", "alice", "web-1", t0)); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	piece := func(at int) []byte {
		raw := make([]byte, 256<<10)
		for i := range raw {
			raw[i] = byte(rng.Uint32())
		}
		var d utf8Decoder
		return appendBinaryLine(nil, time.Duration(at)*time.Second, raw, &d)
	}
	first, second := piece(1), piece(2)
	c1, err := s.PrepareEncoded(first, false)
	if err != nil {
		t.Fatal(err)
	}
	buf := c1.stored[:1]
	chunks := []PreparedChunk{c1}
	if err := s.AppendPrepared(ctx, "s1", chunks); err != nil {
		t.Fatal(err)
	}
	if chunks[0].stored != nil {
		t.Error("a committed chunk still holds its buffer")
	}
	c2, err := s.PrepareEncoded(second, false)
	if err != nil {
		t.Fatal(err)
	}
	if !race.Enabled && &c2.stored[:1][0] != &buf[0] {
		t.Error("the second raw frame was not built in the first one's buffer")
	}
	if err := s.AppendPrepared(ctx, "s1", []PreparedChunk{c2}); err != nil {
		t.Fatal(err)
	}
	for seq, want := range [][]byte{first, second} {
		got, err := s.ReadChunk(ctx, "s1", uint64(seq+1))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("chunk %d reads back %d bytes (%v), want the %d appended", seq+1, len(got), err, len(want))
		}
	}
	// A failed append keeps its chunk's buffer: nothing was committed.
	c3, err := s.PrepareEncoded(piece(3), false)
	if err != nil {
		t.Fatal(err)
	}
	failed := []PreparedChunk{c3}
	if err := s.AppendPrepared(ctx, "no-such-session", failed); err == nil || failed[0].stored == nil {
		t.Errorf("append to a missing session = %v, chunk buffer kept %v", err, failed[0].stored != nil)
	}
}
