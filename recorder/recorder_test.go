package recorder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// spyStore is a real store that reports every append and can be told to
// fail them.
type spyStore struct {
	Store
	chunks chan []byte // every append's events, failed ones included

	mu     sync.Mutex
	fail   error
	calls  int
	stored []int // stored bytes of each append
}

func newSpyStore(s Store) *spyStore { return &spyStore{Store: s, chunks: make(chan []byte, 1000)} }

// AppendPrepared reports the event lines of the chunks, in order, as one
// append: the recorder's flushes arrive here.
func (s *spyStore) AppendPrepared(ctx context.Context, id string, chunks []PreparedChunk) error {
	size := 0
	for _, c := range chunks {
		size += c.Size()
	}
	s.mu.Lock()
	err := s.fail
	s.calls++
	s.stored = append(s.stored, size)
	s.mu.Unlock()
	// Read the chunks first: a successful append spends them.
	var events []byte
	for _, c := range chunks {
		plain, derr := spyCodec.decode(c.stored, nil)
		if derr != nil {
			panic(fmt.Sprintf("spy store: a prepared chunk does not decode: %v", derr))
		}
		events = append(events, plain...)
	}
	if err == nil {
		err = s.Store.AppendPrepared(ctx, id, chunks)
	}
	s.chunks <- events
	return err
}

// spyCodec reads prepared chunks back for the spy.
var spyCodec = func() *chunkCodec {
	c, err := newChunkCodec()
	if err != nil {
		panic(err)
	}
	return c
}()

func (s *spyStore) appendCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// harness is a recorder on a spy store with a fake clock and a fake ticker.
type harness struct {
	rec   *Recorder
	spy   *spyStore
	clock *fakeClock
	tick  chan time.Time
}

func newHarness(t *testing.T, s Store, mod func(*RecorderConfig)) *harness {
	t.Helper()
	h := &harness{spy: newSpyStore(s), clock: &fakeClock{t: t0}, tick: make(chan time.Time)}
	cfg := RecorderConfig{
		Store:  h.spy,
		Meta:   SessionMeta{ID: "sess1", User: "alice", Target: "web-1", Start: t0, Width: 100, Height: 30, Term: "xterm", Title: "alice@web-1"},
		Now:    h.clock.Now,
		Logger: slog.New(slog.DiscardHandler),
		newTicker: func(time.Duration) (<-chan time.Time, func()) {
			return h.tick, func() {}
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	rec, err := NewRecorder(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.rec = rec
	return h
}

// waitChunk returns the next append; the timeout only bounds a failing test.
func (h *harness) waitChunk(t *testing.T) []byte {
	t.Helper()
	select {
	case c := <-h.spy.chunks:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no chunk was appended")
		return nil
	}
}

func (h *harness) noChunk(t *testing.T) {
	t.Helper()
	select {
	case c := <-h.spy.chunks:
		t.Fatalf("unexpected append of %q", c)
	default:
	}
}

func decodeChunk(t *testing.T, chunk []byte) []Event {
	t.Helper()
	hdr := `{"version":2,"width":1,"height":1}` + "\n"
	dec := NewDecoder(io.MultiReader(strings.NewReader(hdr), bytes.NewReader(chunk)))
	var evs []Event
	for {
		ev, err := dec.Next()
		if errors.Is(err, io.EOF) {
			return evs
		}
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
}

func TestRecorderFlushByInterval(t *testing.T) {
	s, _ := openTestStore(t)
	h := newHarness(t, s, nil)
	h.clock.Set(t0.Add(1500 * time.Millisecond))
	h.rec.Output([]byte("hello"))
	h.rec.Resize(120, 40)
	h.noChunk(t) // nothing is written before the interval ends

	h.tick <- time.Now()
	got := decodeChunk(t, h.waitChunk(t))
	want := []Event{{1.5, "o", "hello"}, {1.5, "r", "120x40"}}
	if !slices.Equal(got, want) {
		t.Errorf("first chunk = %+v, want %+v", got, want)
	}

	h.tick <- time.Now() // nothing buffered: no append
	h.clock.Set(t0.Add(2 * time.Second))
	h.rec.Marker("approved by bob")
	h.tick <- time.Now()
	got = decodeChunk(t, h.waitChunk(t))
	if want := []Event{{2, "m", "approved by bob"}}; !slices.Equal(got, want) {
		t.Errorf("second chunk = %+v, want %+v", got, want)
	}
	if err := h.rec.Close(t.Context(), nil, StateClosed, ""); err != nil {
		t.Fatal(err)
	}
	if n := h.spy.appendCalls(); n != 2 {
		t.Errorf("%d appends, want 2", n)
	}
}

func TestRecorderFlushBySize(t *testing.T) {
	s, _ := openTestStore(t)
	h := newHarness(t, s, nil)
	line := bytes.Repeat([]byte("x"), 1024)
	events := flushThreshold/len(line) + 6
	for range events {
		h.rec.Output(line)
	}
	chunk := h.waitChunk(t) // no tick was sent
	if len(chunk) < flushThreshold {
		t.Errorf("chunk of %d bytes, want at least %d", len(chunk), flushThreshold)
	}
	if err := h.rec.Close(t.Context(), nil, StateClosed, ""); err != nil {
		t.Fatal(err)
	}
	_, evs := readRecording(t, s, "sess1")
	if len(evs) != events {
		t.Errorf("%d events recorded, want %d", len(evs), events)
	}
}

func TestRecorderRealTicker(t *testing.T) {
	s, _ := openTestStore(t)
	rec, err := NewRecorder(t.Context(), RecorderConfig{
		Store: s, FlushInterval: 5 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		Meta: SessionMeta{ID: "tick1", User: "alice", Target: "web-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec.Output([]byte("flushed by the clock"))
	// Poll until the flusher has written it; the deadline only bounds a
	// failing test.
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, evs := readRecording(t, s, "tick1")
		if len(evs) == 1 && evs[0].Data == "flushed by the clock" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("event not flushed; recording has %+v", evs)
		}
		time.Sleep(time.Millisecond)
	}
	if err := rec.Close(t.Context(), nil, StateClosed, ""); err != nil {
		t.Fatal(err)
	}
}

func TestRecorderUTF8SplitAcrossOutputs(t *testing.T) {
	const text = "a\u00e9\u20ac\U0001F600z" // 1, 2, 3, 4, 1 bytes
	s, _ := openTestStore(t)
	b := []byte(text)
	for i := 0; i <= len(b); i++ {
		id := fmt.Sprintf("split%02d", i)
		h := newHarness(t, s, func(c *RecorderConfig) { c.Meta.ID = id })
		h.rec.Output(b[:i])
		h.rec.Output(b[i:])
		if err := h.rec.Close(t.Context(), nil, StateClosed, ""); err != nil {
			t.Fatal(err)
		}
		_, evs := readRecording(t, s, id)
		// The first event ends at the last character boundary before the
		// split; the character cut in two goes whole into the second.
		cut := i
		for cut > 0 && cut < len(b) && !utf8.RuneStart(b[cut]) {
			cut--
		}
		var want []Event
		if cut > 0 {
			want = append(want, Event{0, "o", text[:cut]})
		}
		if cut < len(b) {
			want = append(want, Event{0, "o", text[cut:]})
		}
		if !slices.Equal(evs, want) {
			t.Errorf("split at %d: events %+v, want %+v", i, evs, want)
		}
	}
}

// TestRecorderBinaryOutput: output that is not UTF-8 text is recorded as
// "b" events that hold every byte, text as "o" events, and a character cut
// across reads stays whole in whichever event carries it.
func TestRecorderBinaryOutput(t *testing.T) {
	tests := []struct {
		name   string
		reads  []string
		events []Event
	}{
		{"invalid bytes", []string{"a\xffb\xe2\x82Ac"}, []Event{{0, "b", "a\xffb\xe2\x82Ac"}}},
		{"cut short by the end of the session", []string{"ok\xf0\x9f\x98"},
			[]Event{{0, "o", "ok"}, {0, "b", "\xf0\x9f\x98"}}},
		{"text, binary, text", []string{"é", "\x00\x80\xfe", "ü"},
			[]Event{{0, "o", "é"}, {0, "b", "\x00\x80\xfe"}, {0, "o", "ü"}}},
		{"a character split, then binary", []string{"x\xe2\x82", "\xac\xff"},
			[]Event{{0, "o", "x"}, {0, "b", "\xe2\x82\xac\xff"}}},
		{"a character split, then text", []string{"x\xe2\x82", "\xacy"},
			[]Event{{0, "o", "x"}, {0, "o", "€y"}}},
		{"binary that ends in the start of a character", []string{"\xff\xe2\x82", "\xac"},
			[]Event{{0, "b", "\xff\xe2\x82"}, {0, "b", "\xac"}}},
		{"a start held, then a byte that ends it", []string{"\xf0", "\x9f", "A"},
			[]Event{{0, "b", "\xf0\x9fA"}}},
		{"an encoded surrogate", []string{"\xed\xa0\x80"}, []Event{{0, "b", "\xed\xa0\x80"}}},
		{"NUL and escapes are text", []string{"\x00\x1b[0m"}, []Event{{0, "o", "\x00\x1b[0m"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTestStore(t)
			h := newHarness(t, s, nil)
			for _, p := range tt.reads {
				h.rec.Output([]byte(p))
			}
			if err := h.rec.Close(t.Context(), nil, StateClosed, ""); err != nil {
				t.Fatal(err)
			}
			_, evs := readRecording(t, s, "sess1")
			if !slices.Equal(evs, tt.events) {
				t.Errorf("events %#v, want %#v", evs, tt.events)
			}
		})
	}
}

func TestRecorderInputAndTimes(t *testing.T) {
	tests := []struct {
		name        string
		recordInput bool
		want        []Event
	}{
		{"input off", false, []Event{{1.5, "o", "\u00e9"}, {2, "r", "100x30"}, {2, "m", "clock stepped back"}}},
		{"input on", true, []Event{{1.5, "o", "\u00e9"}, {1.5, "i", "\u00e9"}, {2, "r", "100x30"}, {2, "m", "clock stepped back"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTestStore(t)
			h := newHarness(t, s, func(c *RecorderConfig) { c.RecordInput = tt.recordInput })
			h.clock.Set(t0.Add(1500 * time.Millisecond))
			// Output and input are decoded separately: interleaved halves
			// of the same character must not mix.
			h.rec.Output([]byte("\xc3"))
			h.rec.Input([]byte("\xc3"))
			h.rec.Output([]byte("\xa9"))
			h.rec.Input([]byte("\xa9"))
			h.clock.Set(t0.Add(2 * time.Second))
			h.rec.Resize(100, 30)
			h.rec.Resize(0, 30) // not a size: ignored
			h.clock.Set(t0.Add(1 * time.Second))
			h.rec.Marker("clock stepped back")
			h.clock.Set(t0.Add(5 * time.Second))
			code := 0
			if err := h.rec.Close(t.Context(), &code, StateClosed, ""); err != nil {
				t.Fatal(err)
			}
			hdr, evs := readRecording(t, s, "sess1")
			if !slices.Equal(evs, tt.want) {
				t.Errorf("events %+v, want %+v", evs, tt.want)
			}
			if hdr.Width != 100 || hdr.Height != 30 || hdr.Title != "alice@web-1" || hdr.Timestamp != t0.Unix() {
				t.Errorf("header %+v", hdr)
			}
			m, err := s.Session(t.Context(), "sess1")
			if err != nil {
				t.Fatal(err)
			}
			if m.State != StateClosed || !m.End.Equal(t0.Add(5*time.Second)) || m.ExitStatus == nil || *m.ExitStatus != 0 ||
				m.BytesOut != 2 || m.BytesIn != 2 || m.Error != "" {
				t.Errorf("final row %+v", m)
			}
		})
	}
}

var errDiskFull = errors.New("disk full")

func TestRecorderAppendFailure(t *testing.T) {
	s, _ := openTestStore(t)
	h := newHarness(t, s, nil)
	h.spy.mu.Lock()
	h.spy.fail = errDiskFull
	h.spy.mu.Unlock()
	h.rec.Output([]byte("lost"))
	h.tick <- time.Now()
	select {
	case <-h.rec.Failed():
	case <-time.After(10 * time.Second):
		t.Fatal("Failed() not closed after a failing append")
	}
	if err := h.rec.Err(); !errors.Is(err, errDiskFull) || !strings.Contains(err.Error(), "sess1") {
		t.Errorf("Err() = %v, want one wrapping %v and naming the session", err, errDiskFull)
	}
	// Later events are dropped, not retried: two ticks make sure the
	// flusher has been through the loop after the first.
	h.rec.Output([]byte("also lost"))
	h.tick <- time.Now()
	h.tick <- time.Now()
	if n := h.spy.appendCalls(); n != 1 {
		t.Errorf("%d appends after the failure, want 1 in all", n)
	}
	err := h.rec.Close(t.Context(), nil, StateClosed, "")
	if !errors.Is(err, errDiskFull) {
		t.Errorf("Close = %v, want the recording failure", err)
	}
	m, serr := s.Session(t.Context(), "sess1")
	if serr != nil || m.State != StateClosed || !strings.Contains(m.Error, "recording incomplete") || !strings.Contains(m.Error, "disk full") {
		t.Errorf("final row %+v, %v; want the failure in Error", m, serr)
	}
	if m.BytesOut != int64(len("lost")+len("also lost")) {
		t.Errorf("BytesOut = %d; the session's traffic is counted even when not recorded", m.BytesOut)
	}
}

// gatedStore holds every append until the test lets it through, as a slow
// disk would.
type gatedStore struct {
	Store
	gate chan struct{}
}

func (g *gatedStore) AppendPrepared(ctx context.Context, id string, chunks []PreparedChunk) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Store.AppendPrepared(ctx, id, chunks)
}

// TestRecorderBackpressure: a store slower than the session slows the
// session (Output waits) instead of failing it or dropping evidence.
func TestRecorderBackpressure(t *testing.T) {
	s, _ := openTestStore(t)
	g := &gatedStore{Store: s, gate: make(chan struct{})}
	h := newHarness(t, g, func(c *RecorderConfig) { c.MaxPending = 1000 })
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		// Each one overfills the queue: one batch is stored (held at
		// the gate), one waits for it encoded, one fills the queue, and
		// the fourth must wait.
		for i := 0; i < 4; i++ {
			h.rec.Output(bytes.Repeat([]byte("y"), 2000))
		}
	}()
	select {
	case <-wrote:
		t.Fatal("four over-full writes went through with the store blocked")
	case <-time.After(200 * time.Millisecond):
	}
	close(g.gate) // the store catches up
	select {
	case <-wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("writers still blocked after the store caught up")
	}
	select {
	case <-h.rec.Failed():
		t.Fatalf("recording failed: %v", h.rec.Err())
	default:
	}
	if err := h.rec.Close(t.Context(), nil, StateClosed, ""); err != nil {
		t.Fatal(err)
	}
	_, evs := readRecording(t, s, "sess1")
	total := 0
	for _, e := range evs {
		total += len(e.Data)
	}
	if total != 8000 {
		t.Fatalf("recorded %d bytes of 8000", total)
	}
}

func TestRecorderCloseOnce(t *testing.T) {
	s, _ := openTestStore(t)
	h := newHarness(t, s, nil)
	h.rec.Output([]byte("x"))
	code := 130
	if err := h.rec.Close(t.Context(), &code, StateInterrupted, "client disconnected"); err != nil {
		t.Fatal(err)
	}
	code = 1 // Close must have copied the exit status
	h.rec.Output([]byte("after close"))
	h.rec.Marker("after close")
	if err := h.rec.Close(t.Context(), nil, StateClosed, "second"); err != nil {
		t.Errorf("second Close = %v", err)
	}
	m, err := s.Session(t.Context(), "sess1")
	if err != nil || m.State != StateInterrupted || *m.ExitStatus != 130 || m.Error != "client disconnected" || m.BytesOut != 1 {
		t.Errorf("final row %+v, %v", m, err)
	}
	if _, evs := readRecording(t, s, "sess1"); len(evs) != 1 {
		t.Errorf("events after close were recorded: %+v", evs)
	}
}

func TestRecorderGeneratesID(t *testing.T) {
	s, _ := openTestStore(t)
	rec, err := NewRecorder(t.Context(), RecorderConfig{Store: s, Meta: SessionMeta{User: "alice", Target: "web-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(t.Context(), nil, "", ""); err != nil {
		t.Fatal(err)
	}
	m, err := s.Session(t.Context(), rec.ID())
	if err != nil || len(rec.ID()) != sessionIDLen || m.State != StateClosed || m.Start.IsZero() {
		t.Errorf("generated id %q: row %+v, %v", rec.ID(), m, err)
	}
	if _, err := NewRecorder(t.Context(), RecorderConfig{Store: s, Meta: SessionMeta{ID: rec.ID()}}); !errors.Is(err, ErrExists) {
		t.Errorf("recorder for an existing id: err = %v, want ErrExists", err)
	}
	if _, err := NewRecorder(t.Context(), RecorderConfig{}); err == nil {
		t.Error("recorder without a store accepted")
	}
}

// TestConcurrentRecorders runs many sessions at once on one store, each with
// output and input from separate goroutines, the way the server does; every
// event must be stored, in order.
func TestConcurrentRecorders(t *testing.T) {
	s, _ := openTestStore(t)
	const sessions, events = 16, 300
	recs := make([]*Recorder, sessions)
	for i := range recs {
		rec, err := NewRecorder(t.Context(), RecorderConfig{
			Store: s, FlushInterval: 2 * time.Millisecond, RecordInput: true, Logger: slog.New(slog.DiscardHandler),
			Meta: SessionMeta{ID: fmt.Sprintf("c%02d", i), User: "u", Target: "t"},
		})
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = rec
	}
	var wg sync.WaitGroup
	for i, rec := range recs {
		wg.Go(func() {
			for n := range events {
				rec.Output(fmt.Appendf(nil, "out %d %d\r\n", i, n))
			}
		})
		wg.Go(func() {
			for n := range events {
				rec.Input(fmt.Appendf(nil, "in %d %d\r", i, n))
				if n%50 == 0 {
					rec.Resize(80+n/50, 24)
				}
			}
		})
	}
	wg.Wait()
	for _, rec := range recs {
		if err := rec.Close(t.Context(), nil, StateClosed, ""); err != nil {
			t.Fatal(err)
		}
	}
	for i, rec := range recs {
		_, evs := readRecording(t, s, rec.ID())
		var out, in []string
		prev := 0.0
		for _, ev := range evs {
			if ev.Time < prev {
				t.Fatalf("session %d: time goes back at %+v", i, ev)
			}
			prev = ev.Time
			switch ev.Type {
			case "o":
				out = append(out, ev.Data)
			case "i":
				in = append(in, ev.Data)
			}
		}
		if len(out) != events || len(in) != events {
			t.Fatalf("session %d: %d outputs and %d inputs, want %d each", i, len(out), len(in), events)
		}
		for n := range events {
			if out[n] != fmt.Sprintf("out %d %d\r\n", i, n) || in[n] != fmt.Sprintf("in %d %d\r", i, n) {
				t.Fatalf("session %d: event %d out of order: %q / %q", i, n, out[n], in[n])
			}
		}
	}
}

// TestCrashThenReopen leaves a recorder unclosed, as a crash would, and
// checks that the store reopens, the session is marked interrupted, and what
// was flushed replays.
func TestCrashThenReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bastion.db")
	s, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, s, nil)
	h.rec.Output([]byte("flushed"))
	h.tick <- time.Now()
	h.waitChunk(t)
	h.rec.Output([]byte("never flushed"))
	if err := s.Close(); err != nil { // the process "dies" here
		t.Fatal(err)
	}

	s2, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer s2.Close()
	crash := t0.Add(time.Hour)
	ids, err := s2.MarkInterrupted(t.Context(), crash)
	if err != nil || !slices.Equal(ids, []string{"sess1"}) {
		t.Fatalf("MarkInterrupted = %v, %v", ids, err)
	}
	if _, evs := readRecording(t, s2, "sess1"); len(evs) != 1 || evs[0].Data != "flushed" {
		t.Errorf("recording after crash: %+v", evs)
	}
	// The orphaned recorder now only gets errors from the closed store.
	if err := h.rec.Close(t.Context(), nil, StateClosed, ""); !errors.Is(err, ErrStoreClosed) {
		t.Errorf("Close of orphaned recorder = %v, want ErrStoreClosed", err)
	}
}

// TestRecorderPieces: a busy session's output is stored in chunks of about
// pieceBytes of event lines (the unit a replay seeks to), compressible
// output in few appends, binary output in appends whose stored size stays
// bounded, and the recording holds exactly the output either way.
func TestRecorderPieces(t *testing.T) {
	random := make([]byte, 24<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	// Seven-bit noise is text, a quarter of it controls spelt \u00XX:
	// event lines over twice its size, which do not compress.
	noise := make([]byte, len(random))
	for i, c := range random {
		noise[i] = c & 0x7f
	}
	text := bytes.Repeat([]byte("2026-12-01T14:16:30Z INFO served /api/v1/items status=200\r\n"), 6<<20/58)
	for _, tt := range []struct {
		name       string
		data       []byte
		maxAppends int
		// oneFlush queues all the data for a single flush (as a session
		// does whose flusher fell behind), bypassing Output's early
		// flushes, so that the flush must split its appends.
		oneFlush   bool
		minAppends int
	}{
		{"text", text, len(text)/flushThreshold + 2, false, 1},
		{"binary", random, len(random), true, 1},
		{"control-heavy text", noise, len(noise), true, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTestStore(t)
			h := newHarness(t, s, nil)
			r := h.rec
			for rest := tt.data; len(rest) > 0; {
				n := min(len(rest), 32<<10)
				if tt.oneFlush {
					r.mu.Lock()
					off := len(r.arena)
					r.arena = append(r.arena, rest[:n]...)
					r.queue = append(r.queue, rawEvent{typ: 'o', off: off, end: len(r.arena)})
					r.mu.Unlock()
				} else {
					r.Output(rest[:n])
				}
				rest = rest[n:]
			}
			if err := h.rec.Close(t.Context(), nil, StateClosed, ""); err != nil {
				t.Fatal(err)
			}
			_, evs := readRecording(t, s, "sess1")
			var got strings.Builder
			for _, e := range evs {
				if e.IsOutput() {
					got.WriteString(e.Data)
				}
			}
			if got.String() != string(tt.data) {
				t.Fatalf("recording holds %d bytes of output, want the %d bytes printed", got.Len(), len(tt.data))
			}
			idx, err := s.ChunkIndex(t.Context(), "sess1")
			if err != nil {
				t.Fatal(err)
			}
			total := 0
			for _, c := range idx {
				if c.Bytes > pieceBufBytes {
					t.Errorf("chunk %d holds %d bytes of event lines, want at most %d", c.Seq, c.Bytes, pieceBufBytes)
				}
				total += c.Bytes
			}
			if min := total / pieceBufBytes; len(idx) < min {
				t.Errorf("%d chunks for %d bytes of event lines, want at least %d", len(idx), total, min)
			}
			h.spy.mu.Lock()
			defer h.spy.mu.Unlock()
			if h.spy.calls > tt.maxAppends || h.spy.calls < tt.minAppends {
				t.Errorf("%d appends, want %d to %d", h.spy.calls, tt.minAppends, tt.maxAppends)
			}
			for i, n := range h.spy.stored {
				if bound := maxBatchStored + (maxPreparing+1)*pieceBufBytes; n > bound {
					t.Errorf("append %d stored %d bytes, want at most %d", i+1, n, bound)
				}
			}
		})
	}
}

// TestRecorderKeepsBuffersOverOneQuietFlush: the interval's tick lands
// between the busy flushes of a fast session; it must not drop the piece
// buffers and the arena the next busy flush needs (regrowing them cost a
// tenth of the bastion's CPU on binary output), while two quiet flushes in
// a row still let an idle session's memory go.
func TestRecorderKeepsBuffersOverOneQuietFlush(t *testing.T) {
	s, _ := openTestStore(t)
	h := newHarness(t, s, nil)
	r := h.rec
	queue := func(p []byte) {
		r.mu.Lock()
		defer r.mu.Unlock()
		off := len(r.arena)
		r.arena = append(r.arena, p...)
		r.queue = append(r.queue, rawEvent{typ: 'o', off: off, end: len(r.arena)})
	}
	flush := func() (bufs, spare int) {
		t.Helper()
		if err := r.flush(t.Context(), false); err != nil {
			t.Fatal(err)
		}
		r.flushMu.Lock()
		defer r.flushMu.Unlock()
		if err := r.waitAppend(); err != nil {
			t.Fatal(err)
		}
		return len(r.bufs), cap(r.spareArena)
	}
	big := bytes.Repeat([]byte("2026-12-01 INFO busy\r\n"), flushThreshold/20)
	queue(big)
	if bufs, _ := flush(); bufs == 0 {
		t.Fatal("a busy flush kept no piece buffer")
	}
	queue([]byte("a little"))
	if bufs, spare := flush(); bufs == 0 || spare == 0 {
		t.Errorf("one quiet flush after a busy one: %d piece buffers, spare arena of %d bytes; want them kept", bufs, spare)
	}
	queue(big)
	flush()
	queue([]byte("quiet"))
	flush()
	queue([]byte("still quiet"))
	if bufs, spare := flush(); bufs != 0 || spare != 0 {
		t.Errorf("two quiet flushes: %d piece buffers, spare arena of %d bytes; want none", bufs, spare)
	}
}

// TestRecorderIndexesKeyframes: the recorder tells the store which pieces
// held no ESC byte, and the store then skips the search for keyframes
// (PrepareEncoded). Whatever a flush holds, and wherever its pieces are
// cut, the stored index must be what the full search finds in each chunk.
func TestRecorderIndexesKeyframes(t *testing.T) {
	s, _ := openTestStore(t)
	h := newHarness(t, s, nil)
	r := h.rec
	text := bytes.Repeat([]byte("2026-12-01 INFO served path=/api/v1/items\r\n"), (64<<10)/44)
	colour := append([]byte("\x1b[32mINFO\x1b[0m "), text...)
	clear := append([]byte("\x1b[H\x1b[2J"), text...)
	flushes := [][][]byte{
		{text},
		{text, clear, text},
		{colour, text},
		// More than a piece (pieceBytes): the clear in the first piece,
		// in the second, in the last event, and in none.
		append(append([][]byte{clear}, slices.Repeat([][]byte{text}, 24)...), text),
		append(slices.Repeat([][]byte{text}, 20), clear),
		slices.Repeat([][]byte{text}, 22),
	}
	for _, events := range flushes {
		for _, p := range events {
			r.mu.Lock()
			off := len(r.arena)
			r.arena = append(r.arena, p...)
			r.queue = append(r.queue, rawEvent{typ: 'o', off: off, end: len(r.arena)})
			r.mu.Unlock()
		}
		if err := r.flush(t.Context(), false); err != nil {
			t.Fatal(err)
		}
		r.flushMu.Lock()
		err := r.waitAppend()
		r.flushMu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(t.Context(), nil, StateClosed, ""); err != nil {
		t.Fatal(err)
	}
	index, err := s.ChunkIndex(t.Context(), "sess1")
	if err != nil {
		t.Fatal(err)
	}
	keyframes := 0
	for _, c := range index {
		plain, err := s.ReadChunk(t.Context(), "sess1", c.Seq)
		if err != nil {
			t.Fatal(err)
		}
		want, err := IndexChunk(c.Seq, plain)
		if err != nil {
			t.Fatal(err)
		}
		if c != want {
			t.Errorf("chunk %d: stored index %+v, the full search finds %+v", c.Seq, c, want)
		}
		if c.HasKeyframe() {
			keyframes++
		}
	}
	if len(index) < 8 || keyframes != 3 {
		t.Errorf("%d chunks, %d with a keyframe; want more than 7 chunks and 3 keyframes", len(index), keyframes)
	}
}

// escapesStore is a real store that notes the escapes flag of every piece
// the recorder prepares.
type escapesStore struct {
	Store
	mu   sync.Mutex
	seen []bool
}

func (s *escapesStore) PrepareEncoded(events []byte, escapes bool) (PreparedChunk, error) {
	s.mu.Lock()
	s.seen = append(s.seen, escapes)
	s.mu.Unlock()
	return s.Store.PrepareEncoded(events, escapes)
}

// TestRecorderEscapesTextOnly: an ESC byte inside binary output ("b" lines,
// which the keyframe search passes over) does not send a piece to that
// search, which would scan each base64 line for its end; one in text does.
func TestRecorderEscapesTextOnly(t *testing.T) {
	base, _ := openTestStore(t)
	for _, tc := range []struct {
		name   string
		output []byte
		want   bool
	}{
		{"binary with ESC", bytes.Repeat([]byte("\xff\x1b[2J\x00\xfe"), 20000), false},
		{"text with ESC", bytes.Repeat([]byte("\x1b[2Jok\r\n"), 20000), true},
		{"text", bytes.Repeat([]byte("ok\r\n"), 20000), false},
	} {
		s := &escapesStore{Store: base}
		h := newHarness(t, s, func(c *RecorderConfig) { c.Meta.ID = "s-" + strings.ReplaceAll(tc.name, " ", "-") })
		h.rec.Output(tc.output)
		if err := h.rec.Close(t.Context(), nil, StateClosed, ""); err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		seen := s.seen
		s.mu.Unlock()
		if len(seen) == 0 {
			t.Fatalf("%s: no piece prepared", tc.name)
		}
		for i, got := range seen {
			if got != tc.want {
				t.Errorf("%s: piece %d prepared with escapes %v, want %v", tc.name, i, got, tc.want)
			}
		}
	}
}
