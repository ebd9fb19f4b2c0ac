package bastion

import (
	"bufio"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/bastion-dev/bastion/internal/race"
	"github.com/bastion-dev/bastion/internal/testharness"
)

// TestIdleSessionMemory is the in-process twin of the idle-memory benchmark
// of issue 9 (bench/load_test.go): sessions through the bastion to a real
// sshd, each with a PTY and a sleeping shell, recorded and masked. It
// reports the heap and goroutine stacks each idle session holds, so that a
// change that makes idle sessions heavier shows here without the benchmark.
// BASTION_MEM_SESSIONS sets how many sessions (default 100: with fewer,
// the test's own goroutines blur the per-session stacks);
// BASTION_MEM_PROFILE names a directory that receives heap.pprof and
// goroutine.pprof taken with the sessions open.
func TestIdleSessionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens real ssh sessions")
	}
	n := 100
	if v := os.Getenv("BASTION_MEM_SESSIONS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("BASTION_MEM_SESSIONS=%q: want a positive integer", v)
		}
	}
	if os.Getenv("BASTION_MEM_PROFILE") != "" {
		// Every allocation, not a sample: the profile is read per session.
		old := runtime.MemProfileRate
		runtime.MemProfileRate = 1
		defer func() { runtime.MemProfileRate = old }()
	}
	sshd := testharness.StartSSHD(t, testharness.SSHDOptions{})
	ts := startTestServer(t, fmt.Sprintf(`recording: { input: false, flush_interval: 1s, on_failure: terminate }
targets:
  - { name: web-1, kind: ssh, address: %q, user: %q, identity_file: %q, known_hosts: %q }
roles:
  - { name: sre, groups: [sre], targets: ["web-*"] }
`, sshd.Addr, sshd.User, sshd.ClientKeyFile, sshd.KnownHostsFile))
	dir := t.TempDir()
	ts.writeClientFiles(t, dir)

	// The clients run in a child process (this test binary, in
	// TestIdleMemoryClients), so that this process's heap, stacks and RSS
	// are the bastion's alone. One session first, so that one-off
	// allocations (the store's compressor, policy caches, pools) do not
	// count against the rest; its recording flushes once (1s) before the
	// baseline is read.
	warm := startIdleClients(t, ts.addr, dir, 1)
	time.Sleep(1500 * time.Millisecond)
	before := memNow()
	clients := startIdleClients(t, ts.addr, dir, n)
	// As the benchmark does: let the first output's allocations settle.
	time.Sleep(2 * time.Second)
	after := memNow()
	if os.Getenv("BASTION_MEM_SHRINK") != "" {
		for range 5 {
			runtime.GC()
		}
		shrunk := memNow()
		t.Logf("after 6 GCs: stacks %.1f KiB per session", float64(int64(shrunk.stack)-int64(before.stack))/float64(n)/1024)
	}
	defer func() {
		clients()
		warm()
	}()

	per := func(a, b uint64) float64 { return float64(int64(b)-int64(a)) / float64(n) / 1024 }
	t.Logf("%d idle sessions, per session: RSS %.1f KiB, heap in use %.1f KiB, stacks %.1f KiB, goroutines %.1f",
		n, per(before.rss, after.rss), per(before.heap, after.heap), per(before.stack, after.stack),
		float64(after.goroutines-before.goroutines)/float64(n))

	// An idle proxied session runs 13 goroutines: 7 for the client's
	// connection (x/crypto's reader, key exchange and mux; the ssh
	// library's connection, global-request and session-request loops; the
	// handler, which serves the target and the session's watch), 3 for the
	// target's (reader, key exchange, mux), the two output copies and the
	// recorder's flusher. More means a new per-session goroutine, which costs
	// some 5 KiB of stack and header for the session's whole life. (The
	// half is slack for goroutines of the test's own that come and go.)
	if per := float64(after.goroutines-before.goroutines) / float64(n); per > 13.5 {
		t.Errorf("%.1f goroutines per idle session, want 13", per)
	}
	// Their stacks: 4 KiB for most, 2 KiB for a few, and 8 KiB for the
	// handler's, which waits under the session's frames for its whole life
	// (proxySSH, handleSession). With the setup's locals among those frames
	// it took 16 KiB, and the stacks 64-67 KiB per session; they are 55-56.
	if per := per(before.stack, after.stack); per > 60 && !race.Enabled {
		t.Errorf("goroutine stacks take %.1f KiB per idle session, want at most 60: did a function the session waits under grow its frame?", per)
	}
	if dir := os.Getenv("BASTION_MEM_PROFILE"); dir != "" {
		// The goroutine profile as text: stacks grouped, with counts.
		for name, debug := range map[string]int{"heap": 0, "goroutine": 1} {
			f, err := os.Create(filepath.Join(dir, name+".pprof"))
			if err != nil {
				t.Fatal(err)
			}
			if err := pprof.Lookup(name).WriteTo(f, debug); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

type memSample struct {
	rss, heap, stack uint64
	goroutines       int
}

// memNow collects garbage first, so that the sample is what is live.
func memNow() memSample {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSample{rss: rssBytes(), heap: m.HeapInuse, stack: m.StackInuse, goroutines: runtime.NumGoroutine()}
}

// rssBytes is this process's resident set size (0 where /proc has none).
func rssBytes() uint64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// writeClientFiles writes alice's (groups sre) key with a fresh
// certificate, and the bastion's host key, for TestIdleMemoryClients.
func (ts *testServer) writeClientFiles(t *testing.T, dir string) {
	t.Helper()
	priv, _, cert := ts.aliceKey(t)
	block, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"id":       pem.EncodeToMemory(block),
		"id-cert":  gossh.MarshalAuthorizedKey(cert),
		"host.pub": gossh.MarshalAuthorizedKey(ts.host),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// startIdleClients runs TestIdleMemoryClients in a child process to open n
// idle sessions, waits until all of them printed UP, and returns the
// function that ends them (and the child).
func startIdleClients(t *testing.T, addr, dir string, n int) func() {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleMemoryClients$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%d", idleClientsEnv, addr, dir, n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if line := sc.Text(); line == "ALL UP" {
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return stop
		} else if strings.HasPrefix(line, "FAIL ") {
			stop()
			t.Fatalf("clients: %s", line)
		}
	}
	stop()
	t.Fatal("the client process ended before its sessions were up")
	return nil
}

const idleClientsEnv = "BASTION_IDLE_CLIENTS"

// TestIdleMemoryClients is the client side of TestIdleSessionMemory, run
// in a child process; on its own it does nothing. It opens the sessions,
// eight at a time, prints ALL UP, and holds them until stdin closes.
func TestIdleMemoryClients(t *testing.T) {
	spec := os.Getenv(idleClientsEnv)
	if spec == "" {
		t.Skip("the child process of TestIdleSessionMemory")
	}
	parts := strings.Split(spec, "|")
	if len(parts) != 3 {
		t.Fatalf("%s=%q: want addr|dir|n", idleClientsEnv, spec)
	}
	addr, dir := parts[0], parts[1]
	n, err := strconv.Atoi(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	signer, err := gossh.ParsePrivateKey(read("id"))
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := gossh.ParseAuthorizedKey(read("id-cert"))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := gossh.NewCertSigner(pub.(*gossh.Certificate), signer)
	if err != nil {
		t.Fatal(err)
	}
	host, _, _, _, err := gossh.ParseAuthorizedKey(read("host.pub"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &gossh.ClientConfig{User: "alice", Auth: []gossh.AuthMethod{gossh.PublicKeys(cs)},
		HostKeyCallback: gossh.FixedHostKey(host), Timeout: 10 * time.Second}

	clients, _, first := testharness.OpenPTYSessions(addr, cfg, "web-1 echo UP; exec sleep 3600", "UP", n, 8)
	if first != nil {
		fmt.Printf("FAIL %v\n", first)
	} else {
		fmt.Println("ALL UP")
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range clients {
		_ = c.Close()
	}
}
