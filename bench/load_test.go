package bench

// Load benchmarks of issue 9: keystroke latency, memory per idle session,
// and session churn, each through the bastion and with plain OpenSSH (and
// through an OpenSSH ProxyJump hop where the issue compares with one).

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/bastion-dev/bastion/internal/testharness"
)

var (
	keysFlag = flag.String("bench.keys", envOr("BENCH_KEYS", "2000"), "round trips per keystroke-latency run (env BENCH_KEYS)")
	idleFlag = flag.String("bench.idle", envOr("BENCH_IDLE", "500"), "concurrent idle sessions in the memory benchmark (env BENCH_IDLE)")
	rateFlag = flag.String("bench.churn.rate", envOr("BENCH_CHURN_RATE", "50"), "new sessions per second in the churn benchmark (env BENCH_CHURN_RATE)")
	churnFor = flag.String("bench.churn", envOr("BENCH_CHURN", "60s"), "how long the churn benchmark runs (env BENCH_CHURN)")
)

// intFlag parses a positive integer setting.
func intFlag(b *testing.B, s *string, what string) int {
	b.Helper()
	n, err := strconv.Atoi(*s)
	if err != nil || n <= 0 {
		b.Fatalf("%s %q: want a positive integer", what, *s)
	}
	return n
}

// durFlag parses a positive duration setting.
func durFlag(b *testing.B, s *string, what string) time.Duration {
	b.Helper()
	d, err := time.ParseDuration(*s)
	if err != nil || d <= 0 {
		b.Fatalf("%s %q: want a positive duration such as 60s", what, *s)
	}
	return d
}

// jumpClient returns an OpenSSH client for w's sshd that goes through a
// second sshd, which b's cleanup stops (call it with the benchmark whose
// sub-benchmarks use it), as `ssh -J` does: ProxyJump is `ssh -W %h:%p` to the jump
// host, which ProxyCommand spells out so that the hop gets the harness's
// options (key, known_hosts) instead of the user's ssh_config.
func (w *world) jumpClient(b *testing.B) *testharness.SSHClient {
	b.Helper()
	if w.viaJump != nil {
		return w.viaJump
	}
	jump := testharness.StartSSHD(b, testharness.SSHDOptions{ExtraConfig: "AllowTcpForwarding yes\n"})
	hop := jump.Client(b).Args("-W", "%h:%p")
	quoted := make([]string, len(hop))
	for i, a := range hop {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	c := *w.direct
	c.ExtraOpts = append([]string{"-o", "ProxyCommand=" + strings.Join(quoted, " ")}, c.ExtraOpts...)
	w.viaJump = &c
	b.Logf("client -> jump sshd -> sshd: %s", w.negotiated(b, w.viaJump, "true"))
	return w.viaJump
}

// percentiles returns the 50th and 99th percentile of d (sorted in place).
func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	return d[len(d)/2], d[min(len(d)-1, len(d)*99/100)]
}

// BenchmarkKeystroke sends one byte at a time through a PTY and waits for
// it to come back: the local pty, the ssh client, the path to the target
// (the bastion with recording and masking, plain OpenSSH, or a ProxyJump
// hop), a remote pty in non-canonical mode, and cat. BENCH_KEYS round
// trips per run; p50 and p99 over all runs.
func BenchmarkKeystroke(b *testing.B) {
	n := intFlag(b, keysFlag, "BENCH_KEYS")
	w := newWorld(b)
	const remote = "stty -icanon -echo min 1; echo READY; exec cat"
	paths := []struct {
		name string
		c    func() *testharness.SSHClient
		args []string
	}{
		{"bastion", func() *testharness.SSHClient { return w.viaBastion }, []string{"web-1", remote}},
		{"openssh", func() *testharness.SSHClient { return w.direct }, []string{remote}},
		{"proxyjump", func() *testharness.SSHClient { return w.jumpClient(b) }, []string{remote}},
	}
	for _, p := range paths {
		b.Run(p.name, func(b *testing.B) {
			c := p.c()
			var all []time.Duration
			for b.Loop() {
				rtt, err := keystrokes(c, n, p.args...)
				if err != nil {
					b.Fatalf("%v\nserver log:\n%s", err, w.logTail())
				}
				all = append(all, rtt...)
			}
			p50, p99 := percentiles(all)
			b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
			b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
		})
	}
}

// keystrokes runs `ssh -tt args...` on a pty of its own, waits for READY,
// then times n round trips of one byte each.
func keystrokes(c *testharness.SSHClient, n int, args ...string) ([]time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(n)*100*time.Millisecond+commandTimeout)
	defer cancel()
	cmd := c.Command(ctx, append([]string{"-tt"}, args...)...)
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		return nil, fmt.Errorf("start ssh on a pty: %w", err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = ptmx.Close()
	}()
	// The reader goroutine ends when the pty closes (deferred above).
	in := make(chan []byte, 64)
	go func() {
		defer close(in)
		buf := make([]byte, 4096)
		for {
			k, err := ptmx.Read(buf)
			if k > 0 {
				in <- bytes.Clone(buf[:k])
			}
			if err != nil {
				return
			}
		}
	}()
	var seen []byte
	wait := func(want []byte) error {
		timer := time.NewTimer(commandTimeout)
		defer timer.Stop()
		for !bytes.Contains(seen, want) {
			select {
			case chunk, ok := <-in:
				if !ok {
					return fmt.Errorf("ssh ended before %q came back; output %q", want, seen)
				}
				seen = append(seen, chunk...)
			case <-timer.C:
				return fmt.Errorf("%q did not come back within %v; output %q", want, commandTimeout, seen)
			}
		}
		seen = seen[:0]
		return nil
	}
	if err := wait([]byte("READY")); err != nil {
		return nil, err
	}
	rtt := make([]time.Duration, 0, n)
	for k := range n {
		ch := []byte{byte('a' + k%26)}
		start := time.Now()
		if _, err := ptmx.Write(ch); err != nil {
			return nil, fmt.Errorf("keystroke %d: %w", k, err)
		}
		if err := wait(ch); err != nil {
			return nil, fmt.Errorf("keystroke %d: %w", k, err)
		}
		rtt = append(rtt, time.Since(start))
	}
	return rtt, nil
}

// BenchmarkIdleSessions holds BENCH_IDLE sessions open at once, each with a
// PTY and `sleep`, through the bastion (each recorded) and straight to the
// sshd, and reports the memory each costs: the bastion's RSS growth per
// session, and the growth of the sshd processes' PSS (proportional set
// size, so that pages its forks share count once) per session.
func BenchmarkIdleSessions(b *testing.B) {
	n := intFlag(b, idleFlag, "BENCH_IDLE")
	w := newWorld(b)
	me, err := user.Current()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("bastion", func(b *testing.B) {
		cfg := w.goClientConfig(b, me.Username, w.viaBastion.KeyFile, w.viaBastion.CertFile, w.viaBastion.KnownHostsFile)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(w.port))
		// A Go process keeps freed heap for a while, so a second run starts
		// from a larger RSS: the largest growth, the first run's, counts.
		var worst, rss int64
		for b.Loop() {
			before := rssKiB(b, w.server.Process.Pid)
			closeAll := openIdle(b, addr, cfg, n, "web-1 echo UP; exec sleep 3600")
			after := rssKiB(b, w.server.Process.Pid)
			closeAll()
			if after-before > worst {
				worst, rss = after-before, after
			}
		}
		b.ReportMetric(float64(worst)/float64(n), "KiB/session")
		b.ReportMetric(float64(rss), "rss-KiB")
	})
	b.Run("openssh", func(b *testing.B) {
		cfg := w.goClientConfig(b, w.sshd.User, w.sshd.ClientKeyFile, "", w.sshd.KnownHostsFile)
		var worst int64
		for b.Loop() {
			before := sshdPSSKiB(b, w.sshd.PID)
			closeAll := openIdle(b, w.sshd.Addr, cfg, n, "echo UP; exec sleep 3600")
			after := sshdPSSKiB(b, w.sshd.PID)
			closeAll()
			worst = max(worst, after-before)
		}
		b.ReportMetric(float64(worst)/float64(n), "KiB/session")
	})
}

// goClientConfig is an x/crypto/ssh client configuration: hundreds of idle
// sessions as ssh processes would measure the clients, not the servers.
func (w *world) goClientConfig(b *testing.B, userName, keyFile, certFile, knownHosts string) *ssh.ClientConfig {
	b.Helper()
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		b.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		b.Fatalf("parse %s: %v", keyFile, err)
	}
	if certFile != "" {
		raw, err := os.ReadFile(certFile)
		if err != nil {
			b.Fatal(err)
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey(raw)
		if err != nil {
			b.Fatalf("parse %s: %v", certFile, err)
		}
		cert, ok := pub.(*ssh.Certificate)
		if !ok {
			b.Fatalf("%s holds no certificate", certFile)
		}
		if signer, err = ssh.NewCertSigner(cert, signer); err != nil {
			b.Fatal(err)
		}
	}
	hostKeys, err := knownhosts.New(knownHosts)
	if err != nil {
		b.Fatalf("known_hosts %s: %v", knownHosts, err)
	}
	return &ssh.ClientConfig{
		User:            userName,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKeys,
		Timeout:         commandTimeout,
	}
}

// openIdle opens n sessions to addr, eight at a time, each running cmd on
// a PTY, and returns once every one has printed UP. The returned function
// closes them all; b.Cleanup closes whatever is left if the benchmark
// fails half way.
func openIdle(b *testing.B, addr string, cfg *ssh.ClientConfig, n int, cmd string) func() {
	b.Helper()
	var (
		mu    sync.Mutex
		conns []*ssh.Client
		errs  []error
		wg    sync.WaitGroup
	)
	closeAll := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
		conns = nil
	}
	b.Cleanup(closeAll)
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := openOne(addr, cfg, cmd)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("session %d: %w", i, err))
				return
			}
			conns = append(conns, c)
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		b.Fatalf("%d of %d sessions failed to open; first: %v", len(errs), n, errs[0])
	}
	// Let the servers settle (allocations after the first output) before
	// the caller reads memory.
	time.Sleep(2 * time.Second)
	return closeAll
}

// openOne dials addr, starts cmd on a PTY and waits for its "UP".
func openOne(addr string, cfg *ssh.ClientConfig, cmd string) (*ssh.Client, error) {
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
	if err != nil || !strings.Contains(line, "UP") {
		c.Close()
		return nil, fmt.Errorf("no UP from %q: %q, %v", cmd, line, err)
	}
	return c, nil
}

// rssKiB is the resident set size of process pid.
func rssKiB(b *testing.B, pid int) int64 {
	b.Helper()
	v, err := procKiB(filepath.Join("/proc", strconv.Itoa(pid), "status"), "VmRSS:")
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// sshdPSSKiB sums the PSS of sshd (pid) and of every sshd process under it:
// the per-connection monitors and session processes, not their shells.
func sshdPSSKiB(b *testing.B, pid int) int64 {
	b.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	parent := map[int]int{}
	comm := map[int]string{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		s := string(stat)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		parent[p], comm[p] = pp, s[open+1:end]
	}
	var total int64
	for p, c := range comm {
		if !strings.HasPrefix(c, "sshd") {
			continue
		}
		under := false
		for q, hops := p, 0; q > 1 && hops < 64; q, hops = parent[q], hops+1 {
			if q == pid {
				under = true
				break
			}
		}
		if !under {
			continue
		}
		v, err := procKiB(filepath.Join("/proc", strconv.Itoa(p), "smaps_rollup"), "Pss:")
		if err == nil {
			total += v
		}
	}
	return total
}

// procKiB reads the "key: N kB" line of a /proc file.
func procKiB(path, key string) (int64, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("%s: no %s line", path, key)
}

// BenchmarkChurn starts BENCH_CHURN_RATE new `ssh ... true` sessions per
// second for BENCH_CHURN, through the bastion and straight to the sshd,
// and reports the failures (goal: 0) and the p50 and p99 time from start
// to exit of each.
func BenchmarkChurn(b *testing.B) {
	rate := intFlag(b, rateFlag, "BENCH_CHURN_RATE")
	d := durFlag(b, churnFor, "BENCH_CHURN")
	w := newWorld(b)
	for _, p := range []struct {
		name string
		c    *testharness.SSHClient
		args []string
	}{
		{"bastion", w.viaBastion, []string{"web-1", "true"}},
		{"openssh", w.direct, []string{"true"}},
	} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				times, fails := churn(p.c, rate, d, p.args...)
				p50, p99 := percentiles(times)
				b.ReportMetric(float64(len(fails)), "failures")
				b.ReportMetric(float64(len(times)), "sessions")
				b.ReportMetric(float64(p50.Milliseconds()), "p50-ms")
				b.ReportMetric(float64(p99.Milliseconds()), "p99-ms")
				for i, f := range fails {
					if i == 5 {
						b.Logf("... and %d more failures", len(fails)-5)
						break
					}
					b.Logf("failure: %v", f)
				}
			}
		})
	}
}

// churn starts a session every 1/rate seconds for d and waits for all.
func churn(c *testharness.SSHClient, rate int, d time.Duration, args ...string) (times []time.Duration, fails []error) {
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.Now().Add(d)
	for now := range tick.C {
		if now.After(end) {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
			defer cancel()
			start := time.Now()
			out, err := c.Command(ctx, args...).CombinedOutput()
			took := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fails = append(fails, fmt.Errorf("%v after %v: %s", err, took.Round(time.Millisecond), bytes.TrimSpace(out)))
				return
			}
			times = append(times, took)
		}()
	}
	wg.Wait()
	return times, fails
}
