package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/recorder"
)

func TestKeyDecoder(t *testing.T) {
	tests := []struct {
		name  string
		reads []string
		want  []Key
	}{
		{"plain keys", []string{" +-q"}, []Key{KeyPause, KeyFaster, KeySlower, KeyQuit}},
		{"arrows", []string{"\x1b[C\x1b[D"}, []Key{KeyForward, KeyBack}},
		{"application cursor arrows", []string{"\x1bOC\x1bOD"}, []Key{KeyForward, KeyBack}},
		{"arrow split across reads", []string{"\x1b", "[", "C"}, []Key{KeyForward}},
		{"modified arrow", []string{"\x1b[1;5C"}, []Key{KeyForward}},
		{"other sequences ignored", []string{"\x1b[A\x1b[5~x"}, nil},
		{"ctrl-c quits", []string{"\x03"}, []Key{KeyQuit}},
		{"alt-q is not q", []string{"\x1bq"}, []Key{KeyQuit}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d KeyDecoder
			var got []Key
			for _, r := range tt.reads {
				got = append(got, d.Feed([]byte(r))...)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("keys = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestStateApply(t *testing.T) {
	tests := []struct {
		name   string
		start  State
		key    Key
		pos    float64
		want   State
		action Action
	}{
		{"pause", State{Speed: 1, Length: 60}, KeyPause, 3, State{Speed: 1, Paused: true, Length: 60}, Action{}},
		{"resume", State{Speed: 1, Paused: true, Length: 60}, KeyPause, 3, State{Speed: 1, Length: 60}, Action{}},
		{"faster", State{Speed: 1, Length: 60}, KeyFaster, 0, State{Speed: 2, Length: 60}, Action{}},
		{"faster from odd speed", State{Speed: 3, Length: 60}, KeyFaster, 0, State{Speed: 4, Length: 60}, Action{}},
		{"fastest stays", State{Speed: 16, Length: 60}, KeyFaster, 0, State{Speed: 16, Length: 60}, Action{}},
		{"slower", State{Speed: 1, Length: 60}, KeySlower, 0, State{Speed: 0.5, Length: 60}, Action{}},
		{"slowest stays", State{Speed: 0.25, Length: 60}, KeySlower, 0, State{Speed: 0.25, Length: 60}, Action{}},
		{"forward", State{Speed: 1, Length: 60}, KeyForward, 10, State{Speed: 1, Length: 60}, Action{Seek: true, To: 15}},
		{"forward clamps at end", State{Speed: 1, Length: 60}, KeyForward, 58, State{Speed: 1, Length: 60}, Action{Seek: true, To: 60}},
		{"back", State{Speed: 1, Length: 60}, KeyBack, 10, State{Speed: 1, Length: 60}, Action{Seek: true, To: 5}},
		{"back clamps at start", State{Speed: 1, Length: 60}, KeyBack, 2, State{Speed: 1, Length: 60}, Action{Seek: true, To: 0}},
		{"quit", State{Speed: 1, Length: 60}, KeyQuit, 2, State{Speed: 1, Length: 60}, Action{Quit: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.start
			if a := st.Apply(tt.key, tt.pos); a != tt.action {
				t.Errorf("action = %+v; want %+v", a, tt.action)
			}
			if st != tt.want {
				t.Errorf("state = %+v; want %+v", st, tt.want)
			}
		})
	}
}

func TestPlanSeek(t *testing.T) {
	kf := func(start, end float64, off int, kt float64) recorder.ChunkInfo {
		return recorder.ChunkInfo{Start: start, End: end, Bytes: 1000, Keyframe: off, KeyTime: kt}
	}
	none := func(start, end float64) recorder.ChunkInfo {
		return recorder.ChunkInfo{Start: start, End: end, Bytes: 1000, Keyframe: -1}
	}
	index := []recorder.ChunkInfo{none(0, 9), kf(10, 19, 100, 12), none(20, 29), kf(30, 39, 200, 35), none(40, 49)}
	tests := []struct {
		name        string
		target, pos float64
		want        SeekPlan
	}{
		{"back to before any keyframe", 5, 20, SeekPlan{Reset: true}},
		{"far forward uses the keyframe", 45, 3, SeekPlan{Reset: true, Chunk: 3, Offset: 200}},
		{"keyframe after target in its chunk is skipped", 33, 0, SeekPlan{Reset: true, Chunk: 1, Offset: 100}},
		{"short forward plays on", 38, 36, SeekPlan{}},
		{"forward with no keyframe between plays on", 28, 13, SeekPlan{}},
		{"back re-renders from the keyframe", 36, 44, SeekPlan{Reset: true, Chunk: 3, Offset: 200}},
		{"end", 49, 0, SeekPlan{Reset: true, Chunk: 3, Offset: 200}},
		{"before the first event", 0, 10, SeekPlan{Reset: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PlanSeek(index, tt.target, tt.pos); got != tt.want {
				t.Errorf("PlanSeek(%v from %v) = %+v; want %+v", tt.target, tt.pos, got, tt.want)
			}
		})
	}
	long := []recorder.ChunkInfo{kf(0, 9, 0, 0)}
	for c := 1; c < 10; c++ {
		long = append(long, none(float64(10*c), float64(10*c+9)))
	}
	for i := range long {
		long[i].Bytes = 1 << 20 // ten chunks of 1 MiB: 4 MiB is near
	}
	for _, tt := range []struct {
		name        string
		target, pos float64
		want        SeekPlan
	}{
		{"far forward with the only keyframe far back", 95, 0, SeekPlan{Tail: true}},
		{"far back with the only keyframe far back", 55, 95, SeekPlan{Tail: true}},
		{"near the keyframe", 25, 95, SeekPlan{Reset: true, Chunk: 0, Offset: 0}},
		{"short forward plays on", 98, 94, SeekPlan{}},
	} {
		if got := PlanSeek(long, tt.target, tt.pos); got != tt.want {
			t.Errorf("%s: PlanSeek(%v from %v) = %+v; want %+v", tt.name, tt.target, tt.pos, got, tt.want)
		}
	}
	if got := PlanSeek(nil, 5, 0); got != (SeekPlan{}) {
		t.Errorf("empty index: %+v", got)
	}
}

func TestStatusLine(t *testing.T) {
	tests := []struct {
		name   string
		st     State
		pos    float64
		ended  bool
		user   string
		width  int
		prefix string
	}{
		{"playing", State{Speed: 1, Length: 125}, 61, false, "alice", 120, " PLAY  01:01 / 02:05  alice -> web-1  1x  space:pause"},
		{"paused fast", State{Speed: 2, Paused: true, Length: 125}, 0, false, "alice", 120, " PAUSE 00:00 / 02:05  alice -> web-1  2x"},
		{"long recording", State{Speed: 0.25, Length: 3700}, 3661, false, "alice", 120, " PLAY  1:01:01 / 1:01:40  alice -> web-1  0.25x"},
		{"end", State{Speed: 1, Length: 10}, 10, true, "alice", 120, " END   00:10 / 00:10"},
		{"control characters in names", State{Speed: 1, Length: 10}, 0, false, "a\x1b]52;c;x\x07", 120, " PLAY  00:00 / 00:10  a?]52;c;x? -> web-1"},
		{"narrow", State{Speed: 1, Length: 10}, 0, false, "alice", 12, " PLAY  00:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := StatusLine(tt.st, tt.pos, tt.ended, tt.user, "web-1", tt.width)
			if !strings.HasPrefix(got, tt.prefix) {
				t.Errorf("StatusLine = %q; want prefix %q", got, tt.prefix)
			}
			if len(got) != tt.width-1 {
				t.Errorf("StatusLine is %d wide; want %d", len(got), tt.width-1)
			}
		})
	}
}

// cast builds an asciicast v2 stream.
func cast(t *testing.T, evs ...recorder.Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := recorder.NewEncoder(&buf)
	if err := enc.WriteHeader(recorder.Header{Width: 80, Height: 24}); err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if err := enc.WriteEvent(ev); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func streamSource(t *testing.T, evs ...recorder.Event) *StreamSource {
	t.Helper()
	src, _, err := ReadStream(t.Context(), bytes.NewReader(cast(t, evs...)))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// keyboard is a test keyboard whose Read ends with its context.
type keyboard struct{ ch chan string }

func (k keyboard) open(ctx context.Context) io.Reader { return &kbReader{ctx: ctx, ch: k.ch} }

type kbReader struct {
	ctx context.Context
	ch  chan string
}

func (r *kbReader) Read(p []byte) (int, error) {
	select {
	case <-r.ctx.Done():
		return 0, r.ctx.Err()
	case s := <-r.ch:
		return copy(p, s), nil
	}
}

// screen collects what the player writes.
type screen struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// waitFor waits until the screen output contains want.
func (s *screen) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("screen never showed %q; got %q", want, s.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startPlay runs Play in the background; the returned function waits for
// its result.
func startPlay(t *testing.T, src Source, opt Options) (*screen, keyboard, func() error) {
	t.Helper()
	scr := &screen{}
	kb := keyboard{ch: make(chan string)}
	opt.Out, opt.Keys = scr, kb.open
	if opt.Size == (Size{}) {
		opt.Size = Size{100, 30}
	}
	done := make(chan error, 1)
	go func() { done <- Play(t.Context(), src, opt) }()
	return scr, kb, func() error {
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Play did not return")
			return nil
		}
	}
}

func TestPlayFromKeyframe(t *testing.T) {
	src := streamSource(t,
		recorder.Event{Time: 0, Type: "o", Data: "OLD-SCREEN\r\n"},
		recorder.Event{Time: 1, Type: "i", Data: "\x1b[H\x1b[2J"}, // typed, not shown: not a keyframe
		recorder.Event{Time: 1.5, Type: "o", Data: "\x1b[H\x1b[2Jkeyframe-A\r\n"},
		recorder.Event{Time: 2, Type: "o", Data: "line-2\x1b]52;c;cm0gLXJmIC8K\x07\r\n"},
		recorder.Event{Time: 2.2, Type: "b", Data: "bin\xffary\r\n"}, // not text: shown as a terminal would
		recorder.Event{Time: 50, Type: "o", Data: "late\r\n"},
	)
	scr, kb, wait := startPlay(t, src, Options{From: 2500 * time.Millisecond, User: "alice", Target: "web-1", NoColor: true})
	scr.waitFor(t, "00:02 / 00:50  alice -> web-1")
	kb.ch <- "q"
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	out := scr.String()
	for _, want := range []string{"\x1b[?1049h", "keyframe-A", "line-2", "bin\uFFFDary", "\x1b[?1049l"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q: %q", want, out)
		}
	}
	for _, bad := range []string{"OLD-SCREEN", "late", "\x1b]52", "\x1b[7m"} {
		if strings.Contains(out, bad) {
			t.Errorf("output has %q: %q", bad, out)
		}
	}
}

func TestPlayKeys(t *testing.T) {
	src := streamSource(t,
		recorder.Event{Time: 0, Type: "o", Data: "start\r\n"},
		recorder.Event{Time: 20, Type: "o", Data: "\x1b[H\x1b[2Jat-20\r\n"},
		recorder.Event{Time: 40, Type: "o", Data: "at-40\r\n"},
	)
	scr, kb, wait := startPlay(t, src, Options{User: "alice", Target: "web-1"})
	scr.waitFor(t, "start")
	kb.ch <- " "
	scr.waitFor(t, "PAUSE")
	kb.ch <- "\x1b[D" // back to 0 exactly, wherever the clock had got to
	scr.waitFor(t, " PAUSE 00:00 / 00:40")
	kb.ch <- "+"
	scr.waitFor(t, "2x")
	for range 5 { // 25 s on: past the keyframe at 20 s
		kb.ch <- "\x1b[C"
	}
	scr.waitFor(t, "at-20")
	scr.waitFor(t, " PAUSE 00:25 / 00:40")
	kb.ch <- "\x1b[D"
	scr.waitFor(t, " PAUSE 00:20 / 00:40")
	kb.ch <- "\x1b[D"
	scr.waitFor(t, " PAUSE 00:15 / 00:40")
	kb.ch <- "q"
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(scr.String(), "\x1b[7m") {
		t.Error("status line is not in reverse video")
	}
	if strings.Contains(scr.String(), "at-40") {
		t.Error("played past where it was paused")
	}
}

func TestPlayIdleLimitReachesEnd(t *testing.T) {
	src := streamSource(t,
		recorder.Event{Time: 0, Type: "o", Data: "first\r\n"},
		recorder.Event{Time: 3600, Type: "o", Data: "an hour later\r\n"},
	)
	scr, kb, wait := startPlay(t, src, Options{IdleLimit: 20 * time.Millisecond, Speed: 4, User: "u", Target: "t"})
	scr.waitFor(t, "an hour later")
	scr.waitFor(t, " END   1:00:00 / 1:00:00")
	kb.ch <- "q"
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

func TestPlayCancelled(t *testing.T) {
	src := streamSource(t, recorder.Event{Time: 0, Type: "o", Data: "x"}, recorder.Event{Time: 100, Type: "o", Data: "y"})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	scr := &screen{}
	go func() { done <- Play(ctx, src, Options{Out: scr, Keys: keyboard{ch: make(chan string)}.open}) }()
	scr.waitFor(t, "x")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Play = %v; want context.Canceled", err)
	}
	if !strings.HasSuffix(scr.String(), restoreScreen) {
		t.Errorf("terminal not restored: %q", scr.String())
	}
}

func TestPlayWithoutKeyboardEnds(t *testing.T) {
	src := streamSource(t,
		recorder.Event{Time: 0, Type: "o", Data: "a\r\n"},
		recorder.Event{Time: 0.05, Type: "o", Data: "b\x1b[6n\r\n"},
	)
	scr := &screen{}
	if err := Play(t.Context(), src, Options{Out: scr, Speed: 16}); err != nil {
		t.Fatal(err)
	}
	out := scr.String()
	if !strings.Contains(out, "a\r\n") || !strings.Contains(out, "b\r\n") || !strings.Contains(out, " END ") || strings.Contains(out, "\x1b[6n") || !strings.HasSuffix(out, restoreScreen) {
		t.Errorf("output %q", out)
	}
}

func TestPlayOptionsRefused(t *testing.T) {
	src := streamSource(t, recorder.Event{Time: 0, Type: "o", Data: "x"})
	for _, opt := range []Options{{Speed: 32, Out: io.Discard}, {Speed: 0.1, Out: io.Discard}, {From: -time.Second, Out: io.Discard}, {}} {
		if err := Play(t.Context(), src, opt); err == nil {
			t.Errorf("Play(%+v) accepted", opt)
		}
	}
}

func TestDamagedRecording(t *testing.T) {
	good := string(cast(t, recorder.Event{Time: 0, Type: "o", Data: "x"}))
	for _, in := range []string{
		"",
		"not json\n",
		`{"version":3,"width":80,"height":24}` + "\n",
		good + "[1,\"o\"]\n",
		good + "garbage\n",
		good + "[\"x\",\"o\",\"y\"]\n",
	} {
		// Damage is found when the stream is read or, inside an event
		// line, when its chunk is played: either way an error, not a panic.
		src, _, err := ReadStream(t.Context(), strings.NewReader(in))
		if err == nil {
			err = Play(t.Context(), src, Options{Out: io.Discard})
		}
		if err == nil {
			t.Errorf("recording %q accepted", in)
		}
	}
}

// fakeChunks is a recorder.ChunkReader over chunks in memory.
type fakeChunks struct {
	index  []recorder.ChunkInfo
	chunks map[uint64]string
}

func (f fakeChunks) ChunkIndex(context.Context, string) ([]recorder.ChunkInfo, error) {
	return f.index, nil
}

func (f fakeChunks) ReadChunk(_ context.Context, _ string, seq uint64) ([]byte, error) {
	c, ok := f.chunks[seq]
	if !ok {
		return nil, fmt.Errorf("chunk %d: %w", seq, recorder.ErrNotFound)
	}
	return []byte(c), nil
}

func TestStoreSource(t *testing.T) {
	good := `[0,"o","first\r\n"]` + "\n" + `[1,"o","\u001b[H\u001b[2Jsecond"]` + "\n"
	info, err := recorder.IndexChunk(1, []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		chunks  fakeChunks
		from    time.Duration
		want    string
		wantErr string
	}{
		{"plays", fakeChunks{[]recorder.ChunkInfo{info}, map[uint64]string{1: good}}, 0, "second", ""},
		{"seeks to the keyframe", fakeChunks{[]recorder.ChunkInfo{info}, map[uint64]string{1: good}}, time.Second, "second", ""},
		{"empty recording", fakeChunks{}, 0, " END ", ""},
		{"damaged chunk", fakeChunks{[]recorder.ChunkInfo{{Seq: 1, Bytes: 9, Keyframe: -1}}, map[uint64]string{1: "[0,\"o\",x\n"}}, 0, "", "chunk 1"},
		{"missing chunk", fakeChunks{[]recorder.ChunkInfo{{Seq: 7, Bytes: 9, Keyframe: -1}}, nil}, 0, "", "not found"},
		{"index pointing past the chunk", fakeChunks{[]recorder.ChunkInfo{{Seq: 1, Start: 0, End: 1, Bytes: 99, Keyframe: 90, KeyTime: 0.5}}, map[uint64]string{1: good}}, time.Second, "", "outside the chunk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := OpenStore(t.Context(), tt.chunks, "id")
			if err != nil {
				t.Fatal(err)
			}
			scr := &screen{}
			err = Play(t.Context(), src, Options{Out: scr, From: tt.from, Speed: 16})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Play = %v; want an error with %q", err, tt.wantErr)
				}
				if !strings.HasSuffix(scr.String(), restoreScreen) {
					t.Errorf("terminal not restored after the error: %q", scr.String())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(scr.String(), tt.want) {
				t.Errorf("screen %q lacks %q", scr.String(), tt.want)
			}
			if tt.from > 0 && strings.Contains(scr.String(), "first") {
				t.Errorf("seek drew what came before the keyframe: %q", scr.String())
			}
		})
	}
}

// countingSource is a recording of many chunks, one line a second and no
// keyframe, that counts the chunks a seek reads.
type countingSource struct {
	index  []recorder.ChunkInfo
	chunks [][]recorder.Event
	reads  int
}

func newCountingSource(t *testing.T, chunks, perChunk int) *countingSource {
	t.Helper()
	s := &countingSource{}
	for c := range chunks {
		var evs []recorder.Event
		for k := range perChunk {
			sec := float64(c*perChunk + k)
			evs = append(evs, recorder.Event{Time: sec, Type: "o", Data: fmt.Sprintf("line-%d\r\n", c*perChunk+k)})
		}
		s.chunks = append(s.chunks, evs)
		s.index = append(s.index, recorder.ChunkInfo{Seq: uint64(c + 1), Start: evs[0].Time, End: evs[len(evs)-1].Time, Bytes: 64 << 10, Keyframe: -1})
	}
	return s
}

func (s *countingSource) Index() []recorder.ChunkInfo { return s.index }

func (s *countingSource) Events(_ context.Context, i, from int) ([]recorder.Event, error) {
	s.reads++
	return s.chunks[i], nil
}

// TestSeekTail: in output that scrolls and never clears the screen, a seek
// far ahead shows the lines before the target, and reads a chunk or two,
// not the recording from its start.
func TestSeekTail(t *testing.T) {
	src := newCountingSource(t, 600, 6) // an hour, ten chunks a minute
	scr, kb, wait := startPlay(t, src, Options{From: 3590 * time.Second, Size: Size{80, 24}, NoColor: true})
	scr.waitFor(t, "59:50 / 59:59")
	kb.ch <- "q"
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	out := scr.String()
	for _, want := range []string{"line-3590", "line-3544"} { // the target's line and 46 back: 47 lines, twice the height
		if !strings.Contains(out, want) {
			t.Errorf("the screen at 59:50 lacks %q", want)
		}
	}
	for _, bad := range []string{"line-3591\r", "line-3543\r", "line-0\r"} {
		if strings.Contains(out, bad) {
			t.Errorf("the screen at 59:50 shows %q", bad)
		}
	}
	if src.reads > 12 {
		t.Errorf("the seek read %d chunks; a chunk or two of scrolled output should do", src.reads)
	}
}
