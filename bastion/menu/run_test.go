package menu

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// syncBuffer is the client's terminal: bubbletea writes from its renderer
// goroutine while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitGoroutines waits until no more goroutines run than before, so that a
// goroutine Run left behind fails the test.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Run, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type result struct {
	name string
	err  error
}

func startRun(t *testing.T, ctx context.Context, in io.Reader, out io.Writer, resize chan [2]int) <-chan result {
	t.Helper()
	done := make(chan result, 1)
	go func() {
		name, err := Run(ctx, Options{
			In: in, Out: out, Width: 80, Height: 24, Resize: resize,
			User: "alice", Groups: []string{"ops"}, Expires: testNow.Add(time.Hour),
			Items: testItems(), Now: func() time.Time { return testNow },
		})
		done <- result{name, err}
	}()
	return done
}

func wait(t *testing.T, done <-chan result) result {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
		return result{}
	}
}

// write sends keystrokes as a client would, each write a packet.
func write(t *testing.T, w io.Writer, s string) {
	t.Helper()
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

func TestRun(t *testing.T) {
	tests := []struct {
		name  string
		keys  []string
		want  string
		after string // what the input still holds for the next consumer
	}{
		{name: "filter and enter", keys: []string{"w", "e", "b", "\r"}, want: "web-1"},
		{name: "arrow keys", keys: []string{"web", "\x1b[B", "\r"}, want: "web-2"},
		{name: "ssh3 arrow keys", keys: []string{"web", "\x1bOB", "\r"}, want: "web-2"},
		{name: "esc then q", keys: []string{"zz", "\x1b", "q"}, want: ""},
		{name: "ctrl+c", keys: []string{"web\x03"}, want: ""},
		{name: "ctrl+d", keys: []string{"\x04"}, want: ""},
		{name: "type-ahead stays for the target", keys: []string{"web\rls -l\r"}, want: "web-1", after: "ls -l\r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			pr, pw := io.Pipe()
			out := &syncBuffer{}
			done := startRun(t, context.Background(), pr, out, nil)
			// The writes of a packet complete as Run reads them; type-ahead
			// is read by the test below, as the target would.
			wrote := make(chan struct{})
			go func() {
				defer close(wrote)
				for _, k := range tt.keys {
					if _, err := io.WriteString(pw, k); err != nil {
						return
					}
					time.Sleep(80 * time.Millisecond) // past escTimeout: a lone ESC is the Esc key
				}
			}()
			r := wait(t, done)
			if r.err != nil || r.name != tt.want {
				t.Fatalf("Run = %q, %v; want %q", r.name, r.err, tt.want)
			}
			if tt.after != "" {
				buf := make([]byte, len(tt.after))
				if _, err := io.ReadFull(pr, buf); err != nil || string(buf) != tt.after {
					t.Fatalf("after the menu the input holds %q (%v), want %q", buf, err, tt.after)
				}
			}
			pw.Close()
			<-wrote
			waitGoroutines(t, before)
			s := out.String()
			if !strings.Contains(s, ansi.SetModeAltScreenSaveCursor) {
				t.Errorf("no alternate screen: %q", s)
			}
			// Visibility is global to both screens: what counts is that the
			// last word on it was "show".
			if strings.LastIndex(s, ansi.ShowCursor) < strings.LastIndex(s, ansi.HideCursor) || !strings.Contains(s, ansi.ShowCursor) {
				t.Errorf("cursor not shown after the alternate screen: %q", s[max(len(s)-200, 0):])
			}
			if !strings.Contains(s, ansi.ResetModeAltScreenSaveCursor) {
				t.Errorf("alternate screen not left: %q", s[max(len(s)-200, 0):])
			}
			for _, q := range []string{"\x1b[c", "\x1b[>c", "\x1b]11;?", "\x1b[6n", "\x1b[?2026$p", "\x1b[?u"} {
				if strings.Contains(s, q) {
					t.Errorf("terminal query %q sent: nobody reads the reply", q)
				}
			}
		})
	}
}

func TestRunEOF(t *testing.T) {
	before := runtime.NumGoroutine()
	pr, pw := io.Pipe()
	done := startRun(t, context.Background(), pr, io.Discard, nil)
	write(t, pw, "we")
	pw.Close()
	if r := wait(t, done); r.err != nil || r.name != "" {
		t.Fatalf("Run = %q, %v; want \"\", nil", r.name, r.err)
	}
	waitGoroutines(t, before)
}

// A cancelled ctx closes the menu; the input (like the session's consumer
// view) ends with it.
func TestRunContext(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	go func() { <-ctx.Done(); pw.CloseWithError(io.EOF) }()
	out := &syncBuffer{}
	done := startRun(t, ctx, pr, out, nil)
	write(t, pw, "web")
	time.Sleep(50 * time.Millisecond)
	cancel()
	r := wait(t, done)
	if r.name != "" || r.err == nil {
		t.Fatalf("Run = %q, %v; want \"\" and the context's error", r.name, r.err)
	}
	waitGoroutines(t, before)
	if !strings.Contains(out.String(), ansi.ResetModeAltScreenSaveCursor) {
		t.Error("alternate screen not left after cancellation")
	}
}

func TestRunResize(t *testing.T) {
	before := runtime.NumGoroutine()
	pr, pw := io.Pipe()
	out := &syncBuffer{}
	resize := make(chan [2]int)
	done := startRun(t, context.Background(), pr, out, resize)
	write(t, pw, "web")
	for _, s := range [][2]int{{20, 5}, {200, 60}, {1, 1}, {80, 24}} {
		resize <- s
	}
	write(t, pw, "\x1b[B\r")
	if r := wait(t, done); r.err != nil || r.name != "web-2" {
		t.Fatalf("Run = %q, %v; want web-2", r.name, r.err)
	}
	pw.Close()
	waitGoroutines(t, before)
}

// TestKeystrokeIsSmall: over a slow link a keystroke must not redraw the
// screen. After the first frame, typing one letter of the filter sends a
// few dozen bytes, not the 2 KB of a full 80×24 frame.
func TestKeystrokeIsSmall(t *testing.T) {
	pr, pw := io.Pipe()
	out := &syncBuffer{}
	done := startRun(t, context.Background(), pr, out, nil)
	settle := func() int {
		// The renderer draws at its frame rate: wait until output stops.
		n := -1
		for n != len(out.String()) {
			n = len(out.String())
			time.Sleep(150 * time.Millisecond)
		}
		return n
	}
	first := settle()
	write(t, pw, "j")
	after := settle()
	if first < 500 {
		t.Fatalf("first frame is only %d bytes: %q", first, out.String())
	}
	if d := after - first; d == 0 || d > 300 {
		t.Fatalf("one keystroke sent %d bytes (first frame %d): %q", d, first, out.String()[first:])
	}
	write(t, pw, "\x03")
	wait(t, done)
	pw.Close()
}
