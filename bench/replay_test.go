package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/bastion/admin"
	"github.com/bastion-dev/bastion/recorder"
	"github.com/bastion-dev/bastion/recorder/replay"
)

// The replay benchmarks play a one-hour, 200 MB recording from a
// recorder.BoltStore, in this process, through the player the auditors use
// (recorder/replay: chunk index, keyframe seek, sanitizer), into a writer
// that discards the screen. The recording is what an hour of a busy
// session looks like to the recorder: one chunk per second (the recorder's
// flush_interval), log lines with colour in reads of up to 4 KiB, and a
// full-screen redraw (home and clear, as top, less or vim send) every 30
// seconds, the keyframes a seek starts from. The no-keyframes variant is
// the same hour without a single redraw: the worst case, where a seek has
// to replay from the start.
const (
	replayLength     = 3600        // seconds
	replayBytes      = 200_000_000 // bytes of event lines
	replayRedrawSecs = 30          // a full-screen redraw this often
	replayReadBytes  = 4 << 10     // one recorded event: one read of the PTY
	replayPerSecond  = replayBytes / replayLength
)

// replayRecording is one generated recording in its store.
type replayRecording struct {
	store  *recorder.BoltStore
	id     string
	size   int64 // bytes of event lines
	chunks int
}

// generateReplay writes the recording into a new store at path.
// It takes about a minute on a loaded machine, most of it bbolt commits,
// and is not timed.
func generateReplay(b *testing.B, keyframes bool) *replayRecording {
	b.Helper()
	started := time.Now()
	st, err := recorder.OpenBolt(filepath.Join(b.TempDir(), "bastion.db"), recorder.BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	r, err := fillReplay(st, keyframes)
	if err != nil {
		b.Fatalf("generate the recording: %v", err)
	}
	b.Logf("generated a %.0f-second recording of %.1f MB in %d chunks in %s", float64(replayLength), float64(r.size)/1e6, r.chunks, time.Since(started).Round(time.Second))
	return r
}

// fillReplay writes the recording into st.
func fillReplay(st *recorder.BoltStore, keyframes bool) (*replayRecording, error) {
	ctx := context.Background()
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	r := &replayRecording{store: st, id: "bench-replay-1h"}
	meta := recorder.SessionMeta{ID: r.id, User: "alice", Target: "web-1", Start: start, State: recorder.StateActive,
		Width: 120, Height: 40, Term: "xterm-256color"}
	if err := st.CreateSession(ctx, meta); err != nil {
		return nil, err
	}
	var chunk bytes.Buffer
	enc := recorder.NewEncoder(&chunk)
	line := 0
	for sec := range replayLength {
		chunk.Reset()
		t := float64(sec)
		if keyframes && sec%replayRedrawSecs == 0 {
			// A full redraw: home, clear, a screenful.
			var screen bytes.Buffer
			screen.WriteString("\x1b[H\x1b[2J")
			for row := range 39 {
				fmt.Fprintf(&screen, "\x1b[7m%3d\x1b[0m top - %02d:%02d:%02d up 12 days, load average: 0.42, 0.37, 0.33\r\n", row, sec/3600, sec/60%60, sec%60)
			}
			if err := enc.WriteEvent(recorder.Event{Time: t, Type: recorder.EventOutput, Data: screen.String()}); err != nil {
				return nil, err
			}
		}
		var read bytes.Buffer
		for i := 0; chunk.Len() < replayPerSecond; i++ {
			read.Reset()
			for read.Len() < replayReadBytes {
				line++
				fmt.Fprintf(&read, "2026-12-01T09:%02d:%02d.%03dZ \x1b[32mINFO\x1b[0m request id=%08x path=/api/v1/items/%d status=200 dur=%dms\r\n",
					sec/60%60, sec%60, i%1000, line, line%100000, line%97)
			}
			ev := recorder.Event{Time: t + float64(i)*0.001, Type: recorder.EventOutput, Data: read.String()}
			if err := enc.WriteEvent(ev); err != nil {
				return nil, err
			}
		}
		if err := st.AppendChunk(ctx, r.id, chunk.Bytes()); err != nil {
			return nil, err
		}
		r.size += int64(chunk.Len())
		r.chunks++
	}
	meta.State, meta.End = recorder.StateClosed, start.Add(replayLength*time.Second)
	if err := st.UpdateSession(ctx, meta); err != nil {
		return nil, err
	}
	return r, nil
}

// frameWriter stops the player once its first frame is complete: the
// player draws the status line last, after the screen's content.
type frameWriter struct {
	bytes int64
	done  bool
	stop  context.CancelFunc
}

func (w *frameWriter) Write(p []byte) (int, error) {
	w.bytes += int64(len(p))
	if bytes.Contains(p, []byte("q:quit")) {
		w.done = true
		w.stop()
	}
	return len(p), nil
}

// playFrame opens the recording (its chunk index) and plays until the
// first frame at from is on the screen; it returns the bytes written.
func playFrame(b *testing.B, r *replayRecording, from time.Duration) int64 {
	return playFrameFrom(b, r.store, r.id, from)
}

// playFrameFrom is playFrame reading the chunks from cr: the store, or
// the running server's admin socket.
func playFrameFrom(b *testing.B, cr recorder.ChunkReader, id string, from time.Duration) int64 {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, err := replay.OpenStore(ctx, cr, id)
	if err != nil {
		b.Fatal(err)
	}
	w := &frameWriter{stop: cancel}
	err = replay.Play(ctx, src, replay.Options{From: from, Out: w, User: "alice", Target: "web-1",
		Size: replay.Size{Width: 120, Height: 40}, Keys: func(ctx context.Context) io.Reader { return blockReader{ctx} }})
	if !errors.Is(err, context.Canceled) || !w.done {
		b.Fatalf("play: %v after %d bytes, no frame", err, w.bytes)
	}
	return w.bytes
}

// serveAdmin serves the store on a real admin socket, as a running
// server does, and returns a client of it.
func serveAdmin(b *testing.B, st *recorder.BoltStore) *admin.Client {
	b.Helper()
	sock := filepath.Join(b.TempDir(), admin.SocketName)
	ln, err := admin.Listen(sock)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- admin.Serve(ctx, ln, admin.Handler(st, slog.New(slog.NewTextHandler(io.Discard, nil)), admin.Hooks{}))
	}()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("admin socket: %v", err)
		}
	})
	c, err := admin.Dial(sock)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// blockReader is a keyboard nobody types on.
type blockReader struct{ ctx context.Context }

func (r blockReader) Read([]byte) (int, error) {
	<-r.ctx.Done()
	return 0, io.EOF
}

// BenchmarkReplay measures, on the generated hour:
//
//   - first-frame: from opening the recording to its first frame on the
//     screen (the chunk index, the first chunk, the first output);
//   - seek-end: from opening it to the screen as it was at its last moment
//     (--from the end, or → held down): the index finds the last keyframe,
//     and only the output after it is decoded and drawn;
//   - first-frame-socket and seek-end-socket: the same through a running
//     server's admin socket (`bastion replay` while the server runs), which
//     serves the chunk index and single chunks;
//   - seek-end-no-keyframes: the same on an hour without a single redraw:
//     the player rebuilds the screen from the last lines before the end.
func BenchmarkReplay(b *testing.B) {
	logLoad(b)
	r := generateReplay(b, true)
	b.Run("first-frame", func(b *testing.B) {
		for b.Loop() {
			playFrame(b, r, 0)
		}
		reportMs(b, r, 0)
	})
	b.Run("seek-end", func(b *testing.B) {
		var drawn int64
		for b.Loop() {
			drawn = playFrame(b, r, replayLength*time.Second)
		}
		reportMs(b, r, drawn)
	})
	c := serveAdmin(b, r.store)
	b.Run("first-frame-socket", func(b *testing.B) {
		for b.Loop() {
			playFrameFrom(b, c, r.id, 0)
		}
		reportMs(b, r, 0)
	})
	b.Run("seek-end-socket", func(b *testing.B) {
		var drawn int64
		for b.Loop() {
			drawn = playFrameFrom(b, c, r.id, replayLength*time.Second)
		}
		reportMs(b, r, drawn)
	})
	b.Run("seek-end-no-keyframes", func(b *testing.B) {
		r := generateReplay(b, false)
		var drawn int64
		b.ResetTimer()
		for b.Loop() {
			drawn = playFrame(b, r, replayLength*time.Second)
		}
		reportMs(b, r, drawn)
	})
}

// reportMs reports the mean time per operation in milliseconds, the unit
// of the goal (100 ms), the recording's size and how much was drawn.
func reportMs(b *testing.B, r *replayRecording, drawn int64) {
	if b.N > 0 {
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/op")
	}
	b.ReportMetric(float64(r.size)/1e6, "recording-MB")
	if drawn > 0 {
		b.ReportMetric(float64(drawn)/1e6, "drawn-MB")
	}
}
