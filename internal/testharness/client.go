package testharness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// runTimeout bounds SSHClient.Run: long enough for a slow CI machine,
// short enough that a hung session fails the test instead of the suite.
const runTimeout = 30 * time.Second

// noIdentity is an IdentityFile that never exists. Naming one stops ssh from
// falling back to the user's own ~/.ssh/id_* keys when KeyFile is empty.
const noIdentity = "/nonexistent/testharness/no-identity"

// SSHClient runs the real OpenSSH `ssh` binary with an isolated config:
// -F /dev/null (no user or system config), UserKnownHostsFile, StrictHostKeyChecking yes,
// IdentitiesOnly yes, IdentityFile/CertificateFile as given, BatchMode yes,
// no agent (IdentityAgent none), ConnectTimeout 10. Nothing of ~/.ssh is
// read or written. Change the fields freely before each run.
type SSHClient struct {
	// Bin is the absolute path of ssh.
	Bin string
	// KeyFile is the private key to offer; empty offers none.
	KeyFile string
	// CertFile is a certificate for KeyFile (CertificateFile); empty uses
	// none, though ssh still finds KeyFile+"-cert.pub" on its own.
	CertFile string
	// KnownHostsFile is the only known_hosts consulted; empty trusts no host.
	KnownHostsFile string
	// Port is the server's port (-p).
	Port int
	// Host is the destination, e.g. "127.0.0.1" or "web-1@127.0.0.1".
	Host string
	// User, if set, is passed as -l (the SSH user name).
	User string
	// Term is $TERM for RunPTY, the terminal type the server is told in
	// its pty-req; empty means xterm-256color, so that runs do not depend
	// on the terminal (or lack of one) the tests were started from.
	Term string
	// ExtraOpts are passed before the harness's own options, and ssh keeps
	// the first value of each option, so they override the defaults, e.g.
	// []string{"-o", "BatchMode=no"}.
	ExtraOpts []string
}

// NewSSHClient returns a client for host:port with no key and no trusted
// host yet. It skips or fails the test as StartSSHD does when ssh is absent.
func NewSSHClient(t testing.TB, host string, port int) *SSHClient {
	t.Helper()
	return &SSHClient{Bin: requireTool(t, "ssh"), Host: host, Port: port}
}

// sshArgOpts are the ssh flags that take a value, so that Args can tell a
// leading "-l user" from the start of the remote command.
const sshArgOpts = "BbcDEeFIiJLlmOoPpQRSWw"

// Args returns the full argv (Bin first) for `ssh [opts] host args...`.
// Leading options in args (e.g. "-t", "-T", "-o", "X=y") go before the
// host; the rest is the remote command.
func (c *SSHClient) Args(args ...string) []string {
	knownHosts := c.KnownHostsFile
	if knownHosts == "" {
		knownHosts = os.DevNull
	}
	key := c.KeyFile
	if key == "" {
		key = noIdentity
	}
	argv := []string{c.Bin, "-F", os.DevNull}
	argv = append(argv, c.ExtraOpts...)
	opts := []string{
		"UserKnownHostsFile=" + knownHosts,
		"GlobalKnownHostsFile=" + os.DevNull,
		"StrictHostKeyChecking=yes",
		"UpdateHostKeys=no",
		"IdentitiesOnly=yes",
		"IdentityFile=" + key,
		"IdentityAgent=none",
		"BatchMode=yes",
		"ConnectTimeout=10",
		"ControlMaster=no",
		"ControlPath=none",
		// OpenSSH 9.5+ delays keystrokes in PTY sessions; tests want them
		// as typed. Older versions do not know the option, hence IgnoreUnknown.
		"IgnoreUnknown=ObscureKeystrokeTiming",
		"ObscureKeystrokeTiming=no",
	}
	if c.CertFile != "" {
		opts = append(opts, "CertificateFile="+c.CertFile)
	}
	for _, o := range opts {
		argv = append(argv, "-o", o)
	}
	argv = append(argv, "-p", strconv.Itoa(c.Port))
	if c.User != "" {
		argv = append(argv, "-l", c.User)
	}

	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		a := args[i]
		i++
		if a == "--" {
			break
		}
		argv = append(argv, a)
		if len(a) == 2 && strings.ContainsRune(sshArgOpts, rune(a[1])) && i < len(args) {
			argv = append(argv, args[i])
			i++
		}
	}
	argv = append(argv, c.Host)
	return append(argv, args[i:]...)
}

// Command returns `ssh -p port [opts] host args...`, ready to run, with no
// agent socket in its environment. Stdin is empty unless the caller sets it.
func (c *SSHClient) Command(ctx context.Context, args ...string) *exec.Cmd {
	argv := c.Args(args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = clientEnv()
	return cmd
}

// clientEnv is the test's environment without an SSH agent.
func clientEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SSH_AUTH_SOCK=") || strings.HasPrefix(kv, "SSH_AGENT_PID=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// Result is what one ssh run produced.
type Result struct {
	Stdout   string
	Stderr   string
	ExitCode int // the remote command's status; 255 when ssh itself failed
}

// Run runs ssh to completion (at most 30 s) without a PTY and with empty
// stdin, and returns its output and exit code. Any exit code is a result,
// not a failure; the test fails only if ssh cannot be run or does not finish.
func (c *SSHClient) Run(t testing.TB, args ...string) Result {
	t.Helper()
	return c.RunInput(t, "", args...)
}

// RunInput is Run with stdin as the client's standard input, e.g. SQL
// statements for a database target.
func (c *SSHClient) RunInput(t testing.TB, stdin string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := c.Command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s: did not finish within %v\nstdout: %q\nstderr: %q", strings.Join(cmd.Args, " "), runTimeout, stdout.String(), stderr.String())
	case err != nil && !errors.As(err, &exitErr):
		t.Fatalf("run %s: %v", strings.Join(cmd.Args, " "), err)
	}
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: cmd.ProcessState.ExitCode()}
}

// OpenPTYSession dials addr with an x/crypto client, runs cmd on a PTY and
// returns once cmd printed want on its first line: an idle session held
// open for memory and load measurements, whose client costs a goroutine
// rather than an ssh process.
func OpenPTYSession(addr string, cfg *ssh.ClientConfig, cmd, want string) (*ssh.Client, error) {
	c, err := ssh.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	s, err := c.NewSession()
	if err != nil {
		c.Close()
		return nil, err
	}
	out, err := s.StdoutPipe()
	if err == nil {
		err = s.RequestPty("xterm", 24, 80, ssh.TerminalModes{})
	}
	if err == nil {
		err = s.Start(cmd)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.Contains(line, want) {
		c.Close()
		return nil, fmt.Errorf("no %s from %q: %q, %v", want, cmd, line, err)
	}
	return c, nil
}

// OpenPTYSessions opens n sessions as OpenPTYSession does, parallel at a
// time, and returns those that opened. failed counts the others, and err
// is the first of their errors, naming its session.
func OpenPTYSessions(addr string, cfg *ssh.ClientConfig, cmd, want string, n, parallel int) (clients []*ssh.Client, failed int, err error) {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, max(parallel, 1))
	)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, cerr := OpenPTYSession(addr, cfg, cmd, want)
			mu.Lock()
			defer mu.Unlock()
			if cerr != nil {
				failed++
				if err == nil {
					err = fmt.Errorf("session %d: %w", i, cerr)
				}
				return
			}
			clients = append(clients, c)
		})
	}
	wg.Wait()
	return clients, failed, err
}
