package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/bastion-dev/bastion/bastion/admin"
	"github.com/bastion-dev/bastion/recorder"
	"github.com/bastion-dev/bastion/recorder/replay"
)

// runReplay plays a recording: in the interactive player when standard
// output is a terminal, else as plain output at the recorded pace (for a
// pipe or a file). Either way the recording's dangerous sequences are
// neutralised unless --raw asks for the bytes as recorded.
func runReplay(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "replay", "replay ID [--config F] [--speed X] [--idle-limit S] [--from T] [--raw]")
	cfgPath := fs.String("config", "", "configuration file")
	speed := fs.Float64("speed", 1, "playback speed factor (2 = twice as fast; the player takes 0.25 to 16)")
	idle := fs.Duration("idle-limit", 0, "cap every pause at this (e.g. 2s); 0 keeps the original pauses")
	from := fs.Duration("from", 0, "start at this point of the recording (e.g. 1m30s)")
	raw := fs.Bool("raw", false, "write the recorded bytes unchanged, without the player: a hostile recording can then act on your terminal")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one session ID (see `bastion sessions`)")
	}
	if *speed <= 0 {
		return usagef("--speed must be above 0")
	}
	if *idle < 0 || *from < 0 {
		return usagef("--idle-limit and --from must not be negative")
	}
	tty := !*raw && isTerminal(e.stdout)
	if tty {
		if err := replay.CheckSpeed(*speed); err != nil {
			return usagef("--speed: %v (+ and - change it while playing)", err)
		}
	}
	ops, closeOps, err := openConfigOps(e, *cfgPath)
	if err != nil {
		return err
	}
	defer closeOps()
	id := pos[0]
	meta, err := ops.Session(ctx, id)
	if err != nil {
		return notFoundHint(err, id)
	}
	if err := auditReadSession(ctx, e, ops, "replay", id, strings.Join(args, " ")); err != nil {
		return err
	}
	if tty {
		kb, err := openKeyboard()
		if err == nil {
			defer kb.Close()
			return playInteractive(ctx, e, ops, meta, kb, replay.Options{Speed: *speed, IdleLimit: *idle, From: *from,
				User: meta.User, Target: meta.Target, NoColor: e.getenv("NO_COLOR") != ""})
		}
		e.log.Debug("no keyboard for the player; plain output", "err", err)
	}
	return playPlain(ctx, e, ops, id, *raw, recorder.PlayOptions{Speed: *speed, IdleLimit: *idle, From: *from})
}

// playPlain writes the recording at its pace, as `bastion replay` always
// did: to a pipe, or when no keyboard can be had.
func playPlain(ctx context.Context, e *env, ops admin.Ops, id string, raw bool, opt recorder.PlayOptions) error {
	out := e.stdout
	var san *replay.Writer
	if !raw {
		san = replay.NewWriter(e.stdout)
		out = san
	}
	pr, stop := streamRecording(ctx, ops, id)
	defer stop()
	if err := recorder.Play(ctx, pr, out, opt); err != nil {
		return err
	}
	if san != nil {
		return san.Close()
	}
	return nil
}

// streamRecording streams a recording through a pipe; stop closes the pipe
// and waits for the writer.
func streamRecording(ctx context.Context, ops admin.Ops, id string) (io.Reader, func()) {
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	wg.Go(func() { pw.CloseWithError(ops.WriteRecording(ctx, id, pw)) })
	return pr, func() { _ = pr.Close(); wg.Wait() }
}

// openSource gives the player random access to the recording: straight
// from the store file by its chunk index, or, through the running server's
// admin socket (which serves recordings only as a stream), by reading it
// whole first.
func openSource(ctx context.Context, ops admin.Ops, id string) (replay.Source, error) {
	if cr, ok := ops.(recorder.ChunkReader); ok {
		return replay.OpenStore(ctx, cr, id)
	}
	pr, stop := streamRecording(ctx, ops, id)
	defer stop()
	src, _, err := replay.ReadStream(ctx, pr)
	if err != nil {
		return nil, fmt.Errorf("recording %s: %w", id, err)
	}
	return src, nil
}

// playInteractive runs the player on this terminal: raw mode, the size and
// its changes, and the keyboard read from the controlling terminal.
func playInteractive(ctx context.Context, e *env, ops admin.Ops, meta recorder.SessionMeta, kb *os.File, opt replay.Options) error {
	src, err := openSource(ctx, ops, meta.ID)
	if err != nil {
		return err
	}
	// The descriptor is used through Control, never Fd: Fd would put the
	// file in blocking mode, and the player could no longer stop reading it.
	var state *term.State
	err = withFd(kb, func(fd int) (err error) { state, err = term.MakeRaw(fd); return err })
	if err != nil {
		return fmt.Errorf("replay: put the terminal in raw mode (use a pipe, `| cat`, for plain output): %w", err)
	}
	defer func() { _ = withFd(kb, func(fd int) error { return term.Restore(fd, state) }) }()

	size := func() replay.Size {
		var sz replay.Size
		_ = withFd(kb, func(fd int) (err error) { sz.Width, sz.Height, err = term.GetSize(fd); return err })
		return sz
	}
	opt.Size = size()
	resize := make(chan replay.Size, 1)
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-rctx.Done():
				return
			case <-winch:
				select {
				case resize <- size():
				case <-rctx.Done():
					return
				}
			}
		}
	})
	defer func() { signal.Stop(winch); cancel(); wg.Wait() }()
	opt.Resize = resize
	opt.Out = e.stdout
	opt.Keys = func(ctx context.Context) io.Reader {
		// A read blocked on the terminal ends when the player is done.
		context.AfterFunc(ctx, func() { _ = kb.SetReadDeadline(time.Now()) })
		return kb
	}
	if err := replay.Play(ctx, src, opt); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// openKeyboard opens the controlling terminal for the player's keys. The
// file must support read deadlines (so the player can stop reading it);
// without one there is no interactive player.
func openKeyboard() (*os.File, error) {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("the terminal does not support read deadlines: %w", err)
	}
	return f, nil
}

// withFd calls fn with f's descriptor without taking it out of
// non-blocking mode (as f.Fd would).
func withFd(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
