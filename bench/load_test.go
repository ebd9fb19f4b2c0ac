package bench

// Load benchmarks of issue 9: keystroke latency, memory per idle session,
// and session churn, each through the bastion and with plain OpenSSH (and
// through an OpenSSH ProxyJump hop where the issue compares with one).

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
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
	keysFlag    = flag.String("bench.keys", envOr("BENCH_KEYS", "2000"), "round trips per keystroke-latency run (env BENCH_KEYS)")
	idleFlag    = flag.String("bench.idle", envOr("BENCH_IDLE", "500"), "concurrent idle sessions in the memory benchmark (env BENCH_IDLE)")
	rateFlag    = flag.String("bench.churn.rate", envOr("BENCH_CHURN_RATE", "50"), "new sessions per second in the churn benchmark (env BENCH_CHURN_RATE)")
	churnFor    = flag.String("bench.churn", envOr("BENCH_CHURN", "60s"), "how long the churn benchmark runs (env BENCH_CHURN)")
	churnClient = flag.String("bench.churn.client", envOr("BENCH_CHURN_CLIENT", "go"),
		"what opens the churn sessions: go (in-process x/crypto/ssh clients) or ssh (OpenSSH client processes) (env BENCH_CHURN_CLIENT)")
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
	conns, failed, err := testharness.OpenPTYSessions(addr, cfg, cmd, "UP", n, 8)
	closeAll := func() {
		for _, c := range conns {
			_ = c.Close()
		}
		conns = nil
	}
	b.Cleanup(closeAll)
	if err != nil {
		b.Fatalf("%d of %d sessions failed to open; first: %v", failed, n, err)
	}
	// Let the servers settle (allocations after the first output) before
	// the caller reads memory.
	time.Sleep(2 * time.Second)
	return closeAll
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

// BenchmarkChurn opens BENCH_CHURN_RATE new sessions per second for
// BENCH_CHURN, each running `true` (through the bastion: `web-1 true`),
// through the bastion and straight to the sshd, and reports the failures
// (goal: 0, each logged with its reason), the sessions that succeeded, and
// the p50 and p99 time from connect to exit status.
//
// The sessions are opened by in-process x/crypto/ssh clients, not by ssh
// processes: an OpenSSH client process cost 25 ms of CPU per session
// through the bastion and 160 ms straight to the sshd (measured with
// BENCH_CHURN_CLIENT=ssh), so 50 of them a second saturate a 2-CPU
// machine by themselves, and the benchmark measured mostly the client
// (438 of 985 plain OpenSSH sessions failed that way). A Go client costs
// one goroutine and 2-3 ms, so what is left is the servers. The
// ssh-process variant is kept behind BENCH_CHURN_CLIENT=ssh, as a measure
// of what users' own clients see on a machine with CPU to spare for them.
//
// Besides the percentiles, the CPU spent per session is reported: the
// bastion process's own, the sshd's per-connection processes' (which the
// bastion path pays for too, since it opens one connection to the sshd
// per session), and the clients'. On a 2-CPU machine 50 sessions a second
// leave 40 ms of CPU per session for all of them together.
func BenchmarkChurn(b *testing.B) {
	rate := intFlag(b, rateFlag, "BENCH_CHURN_RATE")
	d := durFlag(b, churnFor, "BENCH_CHURN")
	w := newWorld(b)
	me, err := user.Current()
	if err != nil {
		b.Fatal(err)
	}
	type side struct {
		name string
		run  func() churnResult
	}
	var sides []side
	switch *churnClient {
	case "go":
		viaBastion := w.goClientConfig(b, me.Username, w.viaBastion.KeyFile, w.viaBastion.CertFile, w.viaBastion.KnownHostsFile)
		direct := w.goClientConfig(b, w.sshd.User, w.sshd.ClientKeyFile, "", w.sshd.KnownHostsFile)
		bastionAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(w.port))
		sides = []side{
			{"bastion", func() churnResult { return churnGo(bastionAddr, viaBastion, rate, d, "web-1 true") }},
			{"openssh", func() churnResult { return churnGo(w.sshd.Addr, direct, rate, d, "true") }},
		}
	case "ssh":
		sides = []side{
			{"bastion-sshbinary", func() churnResult { return churnSSH(w.viaBastion, rate, d, "web-1", "true") }},
			{"openssh-sshbinary", func() churnResult { return churnSSH(w.direct, rate, d, "true") }},
		}
	default:
		b.Fatalf("BENCH_CHURN_CLIENT %q: want go or ssh", *churnClient)
	}
	for _, p := range sides {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				cpu0, sshd0, client0 := w.serverCPU(b), w.targetCPU(b), clientCPU(b)
				res := p.run()
				cpu, sshd, client := w.serverCPU(b)-cpu0, w.targetCPU(b)-sshd0, clientCPU(b)-client0
				p50, p99 := percentiles(res.times)
				n := len(res.times) + len(res.fails)
				b.ReportMetric(float64(len(res.fails)), "failures")
				b.ReportMetric(float64(len(res.times)), "sessions")
				b.ReportMetric(float64(p50.Milliseconds()), "p50-ms")
				b.ReportMetric(float64(p99.Milliseconds()), "p99-ms")
				b.ReportMetric(float64(n)/d.Seconds(), "started/s")
				if n > 0 {
					if strings.HasPrefix(p.name, "bastion") {
						b.ReportMetric(float64(cpu.Microseconds())/1000/float64(n), "bastion-cpu-ms/session")
					}
					b.ReportMetric(float64(sshd.Microseconds())/1000/float64(n), "sshd-cpu-ms/session")
					b.ReportMetric(float64(client.Microseconds())/1000/float64(n), "client-cpu-ms/session")
				}
				logFailures(b, res.fails)
				if len(res.fails) > 0 {
					logTargetRefusals(b, w.sshd.Log())
				}
			}
		})
	}
}

// clientCPU is the CPU time of this process (the Go clients) and of its
// waited-for children (the ssh client processes).
func clientCPU(b *testing.B) time.Duration {
	b.Helper()
	self, children, err := cpuTicks(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	return self + children
}

// churnResult is one churn run: the connect-to-exit time of every session
// that succeeded, and the failure of every other.
type churnResult struct {
	times []time.Duration
	fails []error
}

// logFailures logs how many failures each reason caused, most first, and
// the first few failures in full.
func logFailures(b *testing.B, fails []error) {
	b.Helper()
	if len(fails) == 0 {
		return
	}
	count := map[string]int{}
	for _, f := range fails {
		count[failureReason(f)]++
	}
	reasons := slices.Collect(maps.Keys(count))
	slices.SortFunc(reasons, func(x, y string) int { return count[y] - count[x] })
	for _, r := range reasons {
		b.Logf("%5d failures: %s", count[r], r)
	}
	for i, f := range fails[:min(len(fails), 5)] {
		b.Logf("failure %d: %v", i+1, f)
	}
}

// logTargetRefusals logs how often the target sshd turned connections away
// and why, from its log: a churn failure on the bastion's side is often the
// target's doing, and the sshd's log dies with its temporary directory.
func logTargetRefusals(b *testing.B, log string) {
	b.Helper()
	count := map[string]int{}
	for line := range strings.Lines(log) {
		for _, kind := range targetRefusals {
			if strings.Contains(line, kind) {
				count[kind]++
			}
		}
	}
	for _, kind := range targetRefusals {
		b.Logf("target sshd log: %5d lines with %q", count[kind], kind)
	}
}

// targetRefusals are the sshd log messages of a connection it refused or
// gave up on before the session ran. ("Connection closed by" is not one:
// sshd logs it at the end of every session.)
var targetRefusals = []string{
	"past MaxStartups",              // sshd's listener: "drop connection #N ... past MaxStartups"
	"Timeout before authentication", // LoginGraceTime
	"fatal:",                        // anything else that ended a connection
}

// failureReason is a churn failure without the session's own details
// (time taken, port numbers), so that failures group by cause.
func failureReason(err error) string {
	var cf churnFailure
	if errors.As(err, &cf) {
		return cf.stage + ": " + portRE.ReplaceAllString(cf.err.Error(), ":*")
	}
	return err.Error()
}

var portRE = regexp.MustCompile(`:\d{2,5}\b`)

// churnFailure is a failed churn session: the step that failed and why.
type churnFailure struct {
	stage string // dial, handshake, session, exit
	after time.Duration
	err   error
}

func (f churnFailure) Error() string {
	return fmt.Sprintf("%s failed after %v: %v", f.stage, f.after.Round(time.Millisecond), f.err)
}

// churnGo opens a session to addr every 1/rate seconds for d, each with a
// connection of its own that runs cmd without a PTY, and waits for all.
// A session's time runs from the TCP connect to the exit status, and all
// of it is bounded by commandTimeout.
func churnGo(addr string, cfg *ssh.ClientConfig, rate int, d time.Duration, cmd string) churnResult {
	return tickChurn(rate, d, func() (time.Duration, error) {
		start := time.Now()
		fail := func(stage string, err error) (time.Duration, error) {
			return 0, churnFailure{stage: stage, after: time.Since(start), err: err}
		}
		conn, err := net.DialTimeout("tcp", addr, commandTimeout)
		if err != nil {
			return fail("dial", err)
		}
		defer conn.Close()
		// One deadline for the whole session: a server that stalls
		// anywhere (handshake, channel, exit) fails it, named by its step.
		if err := conn.SetDeadline(start.Add(commandTimeout)); err != nil {
			return fail("dial", err)
		}
		sc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
		if err != nil {
			return fail("handshake", err)
		}
		c := ssh.NewClient(sc, chans, reqs)
		defer c.Close()
		s, err := c.NewSession()
		if err != nil {
			return fail("session", err)
		}
		var stderr limitedBuffer
		s.Stderr = &stderr
		if err := s.Run(cmd); err != nil {
			if time.Since(start) >= commandTimeout {
				err = fmt.Errorf("no exit status within %v (%w)", commandTimeout, err)
			}
			if msg := strings.TrimSpace(stderr.String()); msg != "" {
				err = fmt.Errorf("%w (stderr %q)", err, msg)
			}
			return fail("exit", err)
		}
		return time.Since(start), nil
	})
}

// churnSSH is churnGo with an OpenSSH client process per session.
func churnSSH(c *testharness.SSHClient, rate int, d time.Duration, args ...string) churnResult {
	return tickChurn(rate, d, func() (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
		defer cancel()
		start := time.Now()
		out, err := c.Command(ctx, args...).CombinedOutput()
		if err != nil {
			return 0, churnFailure{stage: "ssh", after: time.Since(start), err: fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))}
		}
		return time.Since(start), nil
	})
}

// tickChurn starts one session every 1/rate seconds for d and waits for
// all of them. The starts follow a fixed schedule: when the generator is
// late (a busy machine), it catches up instead of skipping sessions, as a
// time.Ticker would, so that the offered load is the one asked for.
func tickChurn(rate int, d time.Duration, one func() (time.Duration, error)) churnResult {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		res churnResult
	)
	every := time.Second / time.Duration(rate)
	begin := time.Now()
	for i := 0; ; i++ {
		at := begin.Add(time.Duration(i) * every)
		if at.Sub(begin) >= d {
			break
		}
		time.Sleep(time.Until(at))
		wg.Go(func() {
			took, err := one()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.fails = append(res.fails, err)
				return
			}
			res.times = append(res.times, took)
		})
	}
	wg.Wait()
	return res
}
