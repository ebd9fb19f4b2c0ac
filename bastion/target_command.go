package bastion

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"charm.land/ssh"
	"github.com/creack/pty"

	"github.com/bastion-dev/bastion/policy"
)

// runCommand runs a command target's fixed argv on the bastion, in a PTY when
// the client asked for one. The client cannot add arguments: the argv is the
// whole of what the target may do.
func (st *session) runCommand(t policy.Target, extra string) exitResult {
	if extra != "" {
		st.errorf("%s runs a fixed command and takes no arguments; connect with `ssh -t %s %s`", t.Name, st.srv.hostName, t.Name)
		return exitResult{code: 2}
	}
	ctx, cancel := context.WithCancel(st.ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, t.Argv[0], t.Argv[1:]...)
	// A minimal environment: the bastion's own (its secrets among them)
	// never reaches the child.
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + os.TempDir(), "BASTION_USER=" + st.id.User}
	cmd.Env = append(cmd.Env, st.env...)
	for k, v := range t.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGHUP) }
	cmd.WaitDelay = teardownTimeout

	if !st.hasPty {
		return st.runCommandPipes(ctx, cmd)
	}
	cmd.Env = append(cmd.Env, "TERM="+st.pty.Term)
	var mu sync.Mutex
	var ptmx *os.File
	win := st.attachResize(func(w ssh.Window) {
		mu.Lock()
		defer mu.Unlock()
		if ptmx != nil {
			_ = pty.Setsize(ptmx, &pty.Winsize{Cols: uint16(w.Width), Rows: uint16(w.Height)})
		}
	})
	defer st.detachResize()
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: uint16(win.Width), Rows: uint16(win.Height)})
	if err != nil {
		st.errorf("cannot start %s: %v", t.Name, err)
		return exitResult{code: 127, reason: "command failed to start"}
	}
	mu.Lock()
	ptmx = f
	if now := st.window(); now != win {
		_ = pty.Setsize(ptmx, &pty.Winsize{Cols: uint16(now.Width), Rows: uint16(now.Height)})
	}
	mu.Unlock()
	defer f.Close()

	inCtx, stopInput := context.WithCancel(ctx)
	defer stopInput()
	go func() { _, _ = copyStream(f, st.input.reader(inCtx)) }()

	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		// Reading the PTY master ends with EIO once the child and all its
		// descendants closed the slave.
		_, _ = copyStream(st.stdout, f)
	}()
	waitErr := cmd.Wait()
	select {
	case <-outDone:
	case <-time.After(teardownTimeout):
		// A grandchild keeps the slave open; stop waiting for it.
	}
	return commandExit(waitErr)
}

func (st *session) runCommandPipes(ctx context.Context, cmd *exec.Cmd) exitResult {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return st.internalError("stdin pipe", err)
	}
	cmd.Stdout = st.stdout
	cmd.Stderr = st.stderr
	if err := cmd.Start(); err != nil {
		st.errorf("cannot start command: %v", err)
		return exitResult{code: 127, reason: "command failed to start"}
	}
	inCtx, stopInput := context.WithCancel(ctx)
	defer stopInput()
	go func() {
		_, _ = copyStream(stdin, st.input.reader(inCtx))
		_ = stdin.Close()
	}()
	return commandExit(cmd.Wait())
}

func commandExit(err error) exitResult {
	if err == nil {
		return exitResult{}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			sig := ws.Signal()
			return exitResult{code: 128 + int(sig), signal: signalName(sig)}
		}
		return exitResult{code: ee.ExitCode()}
	}
	return exitResult{code: 255, reason: err.Error()}
}
