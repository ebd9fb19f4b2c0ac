package testharness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// drainTimeout bounds how long Wait waits, after ssh exits, for the last
// output to be read from the PTY.
const drainTimeout = 2 * time.Second

// PTYSession is an ssh client running in a real PTY, as a user's terminal
// would run it: keys go in with Send, the screen's bytes come out as they
// arrive (raw, with CRLF line ends and escape sequences) and are kept for
// Expect and Output.
type PTYSession struct {
	t      testing.TB
	cmd    *exec.Cmd
	ptmx   *os.File
	cancel context.CancelFunc

	exited  chan struct{} // closed when ssh has been waited for
	waitErr error         // readable after exited

	mu       sync.Mutex
	buf      []byte
	cursor   int           // Expect searches buf[cursor:]
	changed  chan struct{} // closed and replaced whenever buf grows or ends
	readDone bool          // no more output will come
	drained  chan struct{} // closed when the reader has stopped
}

// RunPTY starts ssh in a new PTY of cols×rows and returns at once. Pass
// "-t" first to get a remote PTY along with a command (ssh asks for one by
// itself only without a command). The server is told the terminal type
// c.Term. ssh is killed, if still running, in
// t.Cleanup.
func (c *SSHClient) RunPTY(t testing.TB, cols, rows int, args ...string) *PTYSession {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := c.Command(ctx, args...)
	term := c.Term
	if term == "" {
		term = "xterm-256color"
	}
	cmd.Env = append(cmd.Env, "TERM="+term) // the last value wins
	ptmx, err := pty.StartWithSize(cmd, winsize(cols, rows))
	if err != nil {
		cancel()
		t.Fatalf("start %s in a PTY: %v", strings.Join(cmd.Args, " "), err)
	}
	p := &PTYSession{
		t:       t,
		cmd:     cmd,
		ptmx:    ptmx,
		cancel:  cancel,
		exited:  make(chan struct{}),
		changed: make(chan struct{}),
		drained: make(chan struct{}),
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	go p.read()
	t.Cleanup(p.close)
	return p
}

// winsize converts a size, clamping it to what a terminal can report.
func winsize(cols, rows int) *pty.Winsize {
	clamp := func(n int) uint16 { return uint16(min(max(n, 1), 0xffff)) }
	return &pty.Winsize{Cols: clamp(cols), Rows: clamp(rows)}
}

// read copies the PTY's output into buf until the PTY closes (EIO on Linux
// once ssh and all holders of the terminal have exited).
func (p *PTYSession) read() {
	defer close(p.drained)
	chunk := make([]byte, 4096)
	for {
		n, err := p.ptmx.Read(chunk)
		p.mu.Lock()
		p.buf = append(p.buf, chunk[:n]...)
		if err != nil {
			p.readDone = true
		}
		if n > 0 || err != nil {
			close(p.changed)
			p.changed = make(chan struct{})
		}
		p.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Send types s into the terminal. A failed write fails the test: the
// session is gone, so what follows would only mislead.
func (p *PTYSession) Send(s string) {
	if _, err := p.ptmx.Write([]byte(s)); err != nil {
		p.t.Errorf("send %q to ssh PTY: %v", s, err)
	}
}

// Expect waits up to timeout for output matching the regular expression
// re, searching only output after the previous Expect's match, and returns
// the matched text. On timeout, or if output ends first, it fails the test
// with all output so far.
func (p *PTYSession) Expect(t testing.TB, re string, timeout time.Duration) string {
	t.Helper()
	rx, err := regexp.Compile(re)
	if err != nil {
		t.Fatalf("Expect: bad regular expression %q: %v", re, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		rest := p.buf[p.cursor:]
		if loc := rx.FindIndex(rest); loc != nil {
			m := string(rest[loc[0]:loc[1]])
			p.cursor += loc[1]
			p.mu.Unlock()
			return m
		}
		ended, changed := p.readDone, p.changed
		p.mu.Unlock()
		if ended {
			t.Fatalf("Expect %q: output ended without a match (exit: %s)\noutput so far: %q", re, p.exitText(), p.Output())
		}
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("Expect %q: no match within %v\noutput so far: %q", re, timeout, p.Output())
		}
	}
}

// exitText describes how ssh ended, for failure messages.
func (p *PTYSession) exitText() string {
	select {
	case <-p.exited:
		return p.cmd.ProcessState.String()
	default:
		return "still running"
	}
}

// Resize sets the terminal's size; the kernel sends ssh SIGWINCH and ssh
// forwards the new size to the server as a window-change request.
func (p *PTYSession) Resize(cols, rows int) error {
	if err := pty.Setsize(p.ptmx, winsize(cols, rows)); err != nil {
		return fmt.Errorf("resize ssh PTY to %dx%d: %w", cols, rows, err)
	}
	return nil
}

// Wait waits up to timeout for ssh to exit and returns its exit code (the
// remote command's status, or 255 when ssh failed). After it returns,
// Output holds everything ssh wrote. On timeout ssh is killed and an error
// returned; a death by signal is an error too.
func (p *PTYSession) Wait(timeout time.Duration) (exitCode int, err error) {
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.cancel()
		<-p.exited
		return -1, fmt.Errorf("ssh did not exit within %v and was killed", timeout)
	}
	select {
	case <-p.drained:
	case <-time.After(drainTimeout):
		// A process ssh left behind holds the terminal open; what ssh
		// itself wrote has been read by now.
	}
	var exitErr *exec.ExitError
	if p.waitErr != nil && !errors.As(p.waitErr, &exitErr) {
		return -1, fmt.Errorf("wait for ssh: %w", p.waitErr)
	}
	if code := p.cmd.ProcessState.ExitCode(); code >= 0 {
		return code, nil
	}
	return -1, fmt.Errorf("ssh ended abnormally: %s", p.cmd.ProcessState)
}

// Output returns all output so far.
func (p *PTYSession) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return string(p.buf)
}

// close kills ssh if it still runs and releases the PTY.
func (p *PTYSession) close() {
	p.cancel()
	<-p.exited
	if err := p.ptmx.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		p.t.Errorf("close ssh PTY: %v", err)
	}
}
