package bench

// The benchmark world: the bastion binary built from this module and run as
// a child process, a harness sshd as its one target, a user certificate, and
// two OpenSSH clients, one through the bastion and one straight to sshd.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/internal/testharness"
	"github.com/bastion-dev/bastion/recorder"
)

// Bounds on everything the benchmarks wait for. They are ceilings: each wait
// ends as soon as the awaited thing happens.
const (
	buildTimeout   = 5 * time.Minute  // go build of the bastion (cold cache)
	listenTimeout  = 15 * time.Second // bastion serve to accept connections
	stopTimeout    = 20 * time.Second // SIGTERM to exit, before SIGKILL
	commandTimeout = 30 * time.Second // one bastion subcommand or one login
	finalTimeout   = 15 * time.Second // session rows to be finalised
	serverTries    = 3                // fresh ports tried when one is taken
	// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ,
	// 100 on every Linux ABI Go supports.
	userHZ = 100
)

// The bastion binary is built once per test process, on first use, so that
// `go test ./...` (which runs no benchmark) builds nothing.
var build struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// TestMain removes the built binary after the benchmarks.
func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// bastionBinary returns the path of the bastion built from this module.
func bastionBinary(b *testing.B) string {
	b.Helper()
	build.once.Do(func() { build.bin, build.err = buildBastion() })
	if build.err != nil {
		b.Fatal(build.err)
	}
	return build.bin
}

// buildBastion runs `go build -o <tmp>/bastion ./cmd/bastion` in the module
// root, found with `go env GOMOD`.
func buildBastion() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build the bastion: %w", err)
	}
	out, err := exec.CommandContext(ctx, goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside the bastion module")
	}
	build.dir, err = os.MkdirTemp("", "bastion-bench-bin-")
	if err != nil {
		return "", fmt.Errorf("build the bastion: %w", err)
	}
	bin := filepath.Join(build.dir, "bastion")
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./cmd/bastion")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/bastion in %s: %v\n%s", cmd.Dir, err, out)
	}
	return bin, nil
}

// world is one running bastion in front of one sshd, and a user, alice in
// group sre, who may reach it.
type world struct {
	bin     string
	dir     string
	cfgPath string
	dataDir string
	port    int
	sshd    *testharness.SSHD
	// noMask turns the card-data detectors off in the configuration
	// (setMasking), to measure what masking costs end to end.
	noMask bool

	server     *exec.Cmd
	serverLog  string
	serverDone chan struct{} // closed when the server process was waited for
	serverErr  error         // its exit, readable after serverDone

	// viaBastion logs in to the bastion with alice's certificate; the
	// command's first word names the target.
	viaBastion *testharness.SSHClient
	// direct logs in to the sshd with the key the bastion holds for it.
	direct *testharness.SSHClient
	// viaJump logs in to the sshd through a second sshd (jumpClient),
	// started on first use.
	viaJump *testharness.SSHClient
}

// newWorld builds the bastion, starts sshd and `bastion serve`, and signs
// alice's certificate. Everything is stopped by b.Cleanup: the server with
// SIGTERM, then sshd by the harness.
func newWorld(b *testing.B) *world {
	b.Helper()
	logLoad(b)
	w := &world{bin: bastionBinary(b), dir: b.TempDir()}
	w.dataDir = filepath.Join(w.dir, "data")
	w.cfgPath = filepath.Join(w.dir, "bastion.yaml")
	w.serverLog = filepath.Join(w.dir, "bastion.log")
	w.sshd = testharness.StartSSHD(b, testharness.SSHDOptions{})

	w.start(b, w.writeConfig)
	w.direct = w.sshd.Client(b)

	// One login each way proves the setup and shows the ciphers in use.
	b.Logf("client -> bastion: %s", w.negotiated(b, w.viaBastion, "web-1", "true"))
	b.Logf("client -> sshd:    %s", w.negotiated(b, w.direct, "true"))
	return w
}

// start runs `bastion serve` on a free port with the configuration that
// write produces for it (retrying when another process takes the port),
// stops it in b.Cleanup, and signs alice's certificate for viaBastion.
func (w *world) start(b *testing.B, write func(*testing.B)) {
	b.Helper()
	for try := 1; ; try++ {
		w.port = testharness.FreePort(b)
		write(b)
		err := w.startServer()
		if err == nil {
			break
		}
		log := w.logTail()
		if try < serverTries && strings.Contains(log, "address already in use") {
			continue // another process took the port after FreePort
		}
		b.Fatalf("start bastion: %v\nserver log:\n%s", err, log)
	}
	b.Cleanup(func() { w.stopServer(b) })

	key, _ := testharness.KeyPair(b, w.dir, "ed25519")
	cert, errOut, err := w.bastion("keys", "sign", "--user", "alice", "--groups", "sre", "--ttl", "1h", key+".pub")
	if err != nil {
		b.Fatalf("bastion keys sign: %v\n%s", err, errOut)
	}
	if err := os.WriteFile(key+"-cert.pub", []byte(cert), 0o600); err != nil {
		b.Fatal(err)
	}
	w.viaBastion = testharness.NewSSHClient(b, "127.0.0.1", w.port)
	w.viaBastion.KeyFile = key
	w.viaBastion.CertFile = key + "-cert.pub"
	w.viaBastion.KnownHostsFile = filepath.Join(w.dataDir, "known_hosts")
}

// writeConfig writes the bastion's configuration for the current port:
// recording on (1 s flush interval), masking as by default (all card-data
// detectors), one ssh target and a role for sre.
func (w *world) writeConfig(b *testing.B) {
	b.Helper()
	masking := ""
	if w.noMask {
		masking = "masking: { detectors: [] }\n"
	}
	cfg := fmt.Sprintf(masking+`listen: "127.0.0.1:%d"
data_dir: %q
recording: { input: false, flush_interval: 1s, retention: 400d, on_failure: terminate }
targets:
  - { name: web-1, kind: ssh, address: %q, user: %q, identity_file: %q, known_hosts: %q }
roles:
  - { name: sre, groups: [sre], targets: ["web-*"] }
`, w.port, w.dataDir, w.sshd.Addr, w.sshd.User, w.sshd.ClientKeyFile, w.sshd.KnownHostsFile)
	if err := os.WriteFile(w.cfgPath, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
}

// setMasking turns masking on (the default detectors) or off in the
// configuration and has the running server reload it; sessions opened
// afterwards get it.
func (w *world) setMasking(b *testing.B, on bool) {
	b.Helper()
	w.noMask = !on
	w.writeConfig(b)
	if out, errOut, err := w.bastion("reload"); err != nil {
		b.Fatalf("bastion reload: %v\n%s%s", err, out, errOut)
	}
}

// startServer runs `bastion serve` and waits until it accepts connections
// and has written the known_hosts file its clients use.
func (w *world) startServer() error {
	logf, err := os.OpenFile(w.serverLog, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close() // the child keeps its own descriptor
	args := []string{"serve", "--config", w.cfgPath, "--shutdown-grace", "5s"}
	if p := os.Getenv("BENCH_CPUPROFILE"); p != "" {
		// The bastion's own CPU profile of the whole benchmark, written
		// when the world stops it.
		args = append(args, "--cpuprofile", p)
	}
	cmd := exec.Command(w.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	w.server, w.serverDone = cmd, done
	go func() {
		w.serverErr = cmd.Wait()
		close(done)
	}()

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(w.port))
	knownHosts := filepath.Join(w.dataDir, "known_hosts")
	deadline := time.Now().Add(listenTimeout)
	for {
		select {
		case <-done:
			return fmt.Errorf("bastion serve exited before it listened: %v", w.serverErr)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			_ = c.Close()
			if _, err := os.Stat(knownHosts); err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			w.kill()
			return fmt.Errorf("bastion did not listen on %s within %v", addr, listenTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stopServer sends SIGTERM and waits; a server that does not exit in time
// is killed and the benchmark fails, as does one that exits with an error.
func (w *world) stopServer(b *testing.B) {
	if w.server == nil {
		return
	}
	_ = w.server.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.serverDone:
		if w.serverErr != nil {
			b.Errorf("bastion serve exited with %v after SIGTERM\nserver log:\n%s", w.serverErr, w.logTail())
		}
	case <-time.After(stopTimeout):
		w.kill()
		b.Errorf("bastion serve did not exit within %v of SIGTERM\nserver log:\n%s", stopTimeout, w.logTail())
	}
	w.server = nil
}

// kill ends the server process for good and waits for it briefly.
func (w *world) kill() {
	_ = w.server.Process.Kill()
	select {
	case <-w.serverDone:
	case <-time.After(5 * time.Second):
	}
}

// logTail returns the end of the server's log, for failure messages.
func (w *world) logTail() string {
	b, err := os.ReadFile(w.serverLog)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", w.serverLog, err)
	}
	const max = 4 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// bastion runs an on-host subcommand of the built binary against this
// world's configuration and returns its stdout and stderr.
func (w *world) bastion(args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	args = append(args[:len(args):len(args)], "--config", w.cfgPath)
	cmd := exec.CommandContext(ctx, w.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("bastion %s: did not finish within %v", strings.Join(args, " "), commandTimeout)
	}
	return stdout.String(), stderr.String(), err
}

// logLoad logs the load average: the figures mean little on a machine that
// was busy with something else.
func logLoad(b *testing.B) {
	b.Helper()
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average before the benchmark: %s", strings.TrimSpace(string(la)))
	}
}

var (
	kexRE    = regexp.MustCompile(`kex: algorithm: (\S+)`)
	cipherRE = regexp.MustCompile(`kex: server->client cipher: (\S+) MAC: (\S+)`)
)

// negotiated logs in once with `ssh -v` and returns the key exchange and
// the cipher of the server-to-client direction. A failed login fails the
// benchmark.
func (w *world) negotiated(b *testing.B, c *testharness.SSHClient, args ...string) string {
	b.Helper()
	res := c.Run(b, append([]string{"-v"}, args...)...)
	if res.ExitCode != 0 {
		b.Fatalf("login: exit %d\nstderr:\n%s\nserver log:\n%s", res.ExitCode, res.Stderr, w.logTail())
	}
	kex, cipher := "(not shown by ssh -v)", "(not shown by ssh -v)"
	if m := kexRE.FindStringSubmatch(res.Stderr); m != nil {
		kex = m[1]
	}
	if m := cipherRE.FindStringSubmatch(res.Stderr); m != nil {
		cipher = m[1] + " (MAC " + m[2] + ")"
	}
	return "kex " + kex + ", cipher " + cipher
}

// sessionsSince returns the bastion's session rows for web-1 that started
// at or after t, once none of them is active any more: the server
// finalises a row right after the client has seen the exit.
func (w *world) sessionsSince(b *testing.B, t time.Time) []recorder.SessionMeta {
	b.Helper()
	deadline := time.Now().Add(finalTimeout)
	for {
		out, errOut, err := w.bastion("sessions", "--json", "--target", "web-1")
		if err != nil {
			b.Fatalf("bastion sessions: %v\n%s", err, errOut)
		}
		var list []recorder.SessionMeta
		active := false
		dec := json.NewDecoder(strings.NewReader(out))
		for dec.More() {
			var m recorder.SessionMeta
			if err := dec.Decode(&m); err != nil {
				b.Fatalf("decode bastion sessions --json: %v\n%s", err, out)
			}
			if m.Start.Before(t) {
				continue
			}
			list = append(list, m)
			active = active || m.State == recorder.StateActive
		}
		if !active {
			return list
		}
		if time.Now().After(deadline) {
			b.Fatalf("sessions still active %v after the clients exited: %+v", finalTimeout, list)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cpuTicks returns a process's own CPU time (utime+stime, all threads) and
// that of its waited-for children (cutime+cstime), from /proc/<pid>/stat.
func cpuTicks(pid int) (self, children time.Duration, err error) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold spaces; count after its ')'.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	var t [4]int64 // fields 14-17: utime stime cutime cstime; f[0] is field 3
	for k := range t {
		if t[k], err = strconv.ParseInt(f[11+k], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
		}
	}
	tick := time.Second / userHZ
	return time.Duration(t[0]+t[1]) * tick, time.Duration(t[2]+t[3]) * tick, nil
}

// serverCPU is the bastion process's CPU time so far.
func (w *world) serverCPU(b *testing.B) time.Duration {
	b.Helper()
	self, _, err := cpuTicks(w.server.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	return self
}

// waitServerIdle waits until the bastion has used under 2% of a CPU for
// 250 ms, for at most a minute: a session's end (the SHA-256 of the whole
// recording for the audit trail) runs after the client has left, and must
// neither slow the next run nor be missing from this run's CPU figure.
func (w *world) waitServerIdle(b *testing.B) {
	b.Helper()
	const window = 250 * time.Millisecond
	deadline := time.Now().Add(time.Minute)
	last := w.serverCPU(b)
	for time.Now().Before(deadline) {
		time.Sleep(window)
		now := w.serverCPU(b)
		if now-last < window/50 {
			return
		}
		last = now
	}
	b.Logf("the bastion was still busy a minute after the run")
}

// targetCPU is the CPU time of the sshd's finished connections (the
// per-connection sshd processes and the commands they ran), which the
// listening sshd has reaped. A connection is reaped shortly after the
// client exits, so this waits until the figure has been still for 300 ms,
// for at most 3 s.
func (w *world) targetCPU(b *testing.B) time.Duration {
	b.Helper()
	var last time.Duration
	stillSince := time.Now()
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, children, err := cpuTicks(w.sshd.PID)
		if err != nil {
			b.Fatal(err)
		}
		if children != last {
			last, stillSince = children, time.Now()
		}
		if time.Since(stillSince) >= 300*time.Millisecond || time.Now().After(deadline) {
			return last
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dbSize is the size of the bastion's store file (bbolt grows it in steps,
// so it is an upper bound of what the recordings take).
func (w *world) dbSize() int64 {
	fi, err := os.Stat(filepath.Join(w.dataDir, "bastion.db"))
	if err != nil {
		return -1
	}
	return fi.Size()
}

// streamResult is one streamed command.
type streamResult struct {
	n         int64         // bytes read from ssh's stdout
	stream    time.Duration // first byte to end of stdout
	clientCPU time.Duration // the ssh client's user+system time
	exitCode  int
	stderr    string
}

// stream runs ssh with c and args, reads and counts its stdout, and waits
// for it to exit. The run is bounded by a timeout that allows for at least
// minRate bytes per second for want bytes.
func stream(c *testharness.SSHClient, want int64, args ...string) (streamResult, error) {
	timeout := commandTimeout + time.Duration(float64(want)/minRate*float64(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := c.Command(ctx, args...)
	cmd.WaitDelay = 5 * time.Second
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return streamResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return streamResult{}, err
	}
	var res streamResult
	var first time.Time
	buf := make([]byte, 256<<10)
	for {
		k, err := stdout.Read(buf)
		if k > 0 {
			if res.n == 0 {
				first = time.Now()
			}
			res.n += int64(k)
		}
		if err != nil {
			break
		}
	}
	if !first.IsZero() {
		res.stream = time.Since(first)
	}
	err = cmd.Wait()
	res.stderr = stderr.String()
	if ctx.Err() != nil {
		return res, fmt.Errorf("%s: did not finish within %v (%d of %d bytes received)",
			strings.Join(cmd.Args, " "), timeout, res.n, want)
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return res, err
	}
	res.exitCode = cmd.ProcessState.ExitCode()
	res.clientCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return res, nil
}

// minRate is the slowest stream, in bytes per second, that stream waits
// for before it gives up: 1 GiB in under ten minutes. A bastion that records
// random data on a busy machine has been seen below 10 MB/s.
const minRate = 2e6

// limitedBuffer keeps the first 64 KiB written to it: enough of ssh's
// stderr for a failure message, bounded whatever the remote side prints.
type limitedBuffer struct{ buf bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 64<<10 - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return l.buf.String() }

var _ io.Writer = (*limitedBuffer)(nil)
