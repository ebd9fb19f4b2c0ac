package bench

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/internal/testharness"
	"github.com/bastion-dev/bastion/recorder"
)

var (
	bytesFlag = flag.String("bench.bytes", envOr("BENCH_BYTES", "1G"),
		"bytes per streamed command: an integer with an optional K, M or G suffix (binary) (env BENCH_BYTES)")
	sourceFlag = flag.String("bench.source", envOr("BENCH_SOURCE", "zero,text,urandom"),
		"comma-separated sources to stream: zero (/dev/zero), urandom (/dev/urandom), text (log lines) (env BENCH_SOURCE)")
	roundsFlag = flag.Int("bench.rounds", envInt("BENCH_ROUNDS", 1),
		"rounds of BenchmarkThroughput: each streams every source through every path once, so that a slow spell of a shared machine falls on all paths alike; benchtable takes the median of the rounds (env BENCH_ROUNDS)")
)

// envInt reads an integer environment variable; a value that is not a
// positive integer is reported by the benchmark that uses it.
func envInt(key string, def int) int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return -1
	}
	return n
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// parseSize reads "1073741824", "64K", "512M", "1G" (also "1GiB", "1g"):
// the suffixes are binary.
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q: want a positive integer with an optional K, M or G suffix", s)
	}
	return n * mult, nil
}

// source is what the remote `head -c N` reads: a device, or (text) a file
// of log lines that the benchmark writes first, read over and over.
type source struct {
	name string // "zero", "urandom", "text"
	path string // the device; empty for text
}

var knownSources = []source{{"zero", "/dev/zero"}, {"urandom", "/dev/urandom"}, {"text", ""}}

// remote is the command that prints n bytes of s on the target (which runs
// on this machine: the file lives in dir).
func (s source) remote(b *testing.B, dir string, n int64) string {
	if s.path != "" {
		return fmt.Sprintf("head -c %d %s", n, s.path)
	}
	file := filepath.Join(dir, "log.txt")
	if err := os.WriteFile(file, logText(64<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	return fmt.Sprintf("while cat %s; do :; done | head -c %d", file, n)
}

// logText returns size bytes of application log lines, the output an
// engineer tails through a bastion: timestamps, levels, messages, request
// paths, client addresses from a pool, request ids, status codes, sizes and
// durations (digit runs too short to be a card number). A fixed-seed
// generator varies them, so that the text compresses like a real service
// log (zstd: about a tenth) rather than like one repeated line.
func logText(size int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	levels := []string{"INFO", "INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"}
	words := []string{"request served", "request served", "cache miss", "retrying upstream", "slow query", "token refreshed", "connection reset by peer"}
	paths := []string{"/api/v1/orders", "/api/v1/items", "/healthz", "/api/v2/payments/authorize", "/static/app.js", "/login", "/api/v1/orders/search"}
	statuses := []string{"200", "200", "200", "200", "201", "304", "404", "500"}
	clients := make([]string, 40)
	for i := range clients {
		clients[i] = fmt.Sprintf("10.%d.%d.%d", rng.IntN(4), rng.IntN(256), rng.IntN(256))
	}
	t := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	out := make([]byte, 0, size+256)
	for req := rng.Uint32(); len(out) < size; req++ {
		t = t.Add(time.Duration(rng.IntN(5000)) * time.Microsecond)
		out = t.AppendFormat(out, "2006-01-02T15:04:05.000Z07:00")
		out = fmt.Appendf(out, " %-5s %s path=%s client=%s req=%08x status=%s bytes=%d dur=%dms\r\n",
			pick(levels), pick(words), pick(paths), pick(clients), req, pick(statuses), 100*rng.IntN(60), rng.IntN(300))
	}
	return out[:size]
}

func benchBytes(b *testing.B) int64 {
	b.Helper()
	n, err := parseSize(*bytesFlag)
	if err != nil {
		b.Fatalf("BENCH_BYTES / -bench.bytes: %v", err)
	}
	return n
}

func benchSources(b *testing.B) []source {
	b.Helper()
	var out []source
	for _, name := range strings.Split(*sourceFlag, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, s := range knownSources {
			if s.name == name {
				out, found = append(out, s), true
			}
		}
		if !found {
			b.Fatalf("BENCH_SOURCE / -bench.source: unknown source %q: want zero, urandom or text", name)
		}
	}
	return out
}

// subName is the sub-benchmark's name: the path alone for /dev/zero (the
// reference case), path-source otherwise.
func subName(path string, s source) string {
	if s.name == "zero" {
		return path
	}
	return path + "-" + s.name
}

// BenchmarkThroughput streams `head -c N /dev/zero` (BENCH_BYTES, default
// 1 GiB) to the client's stdout, through the bastion to the sshd target
// (bastion), the same with masking turned off (bastion-nomask: what
// masking costs), and with plain ssh straight to that sshd (openssh), and
// likewise from /dev/urandom. MB/s covers each whole ssh run, login
// included; stream-MB/s counts from the first byte to the last. Every run
// must deliver exactly N bytes, and each bastion run must leave a finished
// recording that counted N bytes of output.
//
// Also reported, per run: the CPU time of the bastion process, of the ssh
// client and of the sshd side (its per-connection processes and head).
//
// With BENCH_ROUNDS above one, the whole sequence runs that many times, so
// each path is measured in every spell of a shared machine's load; each
// run prints its own line.
func BenchmarkThroughput(b *testing.B) {
	n := benchBytes(b)
	sources := benchSources(b)
	rounds := *roundsFlag
	if rounds <= 0 {
		b.Fatalf("BENCH_ROUNDS (-bench.rounds) must be a positive integer")
	}
	w := newWorld(b)
	jump := w.jumpClient(b) // started here, so that it lives as long as b
	remotes := make([]string, len(sources))
	for i, s := range sources {
		remotes[i] = s.remote(b, b.TempDir(), n)
	}
	for range rounds {
		for i, s := range sources {
			remote := remotes[i]
			b.Run(subName("bastion", s), func(b *testing.B) {
				w.benchStream(b, n, w.viaBastion, true, "web-1", remote)
			})
			// The same with the card-data detectors off: what masking costs.
			b.Run(subName("bastion-nomask", s), func(b *testing.B) {
				w.setMasking(b, false)
				defer w.setMasking(b, true)
				w.benchStream(b, n, w.viaBastion, true, "web-1", remote)
			})
			b.Run(subName("openssh", s), func(b *testing.B) {
				w.benchStream(b, n, w.direct, false, remote)
			})
			b.Run(subName("proxyjump", s), func(b *testing.B) {
				w.benchStream(b, n, jump, false, remote)
			})
		}
	}
}

// benchStream runs the streamed command b.N times with c and checks and
// reports the results. viaBastion adds the bastion's CPU time and the
// recording checks.
func (w *world) benchStream(b *testing.B, n int64, c *testharness.SSHClient, viaBastion bool, args ...string) {
	b.SetBytes(n)
	w.waitServerIdle(b) // the previous run's end is not this run's cost
	start := time.Now()
	dbBefore := w.dbSize()
	var serverBefore time.Duration
	if viaBastion {
		serverBefore = w.serverCPU(b)
	}
	targetBefore := w.targetCPU(b)
	var streamTime, clientCPU time.Duration
	runs := 0
	for b.Loop() {
		res, err := stream(c, n, args...)
		if err != nil {
			b.Fatalf("run %d: %v\nstderr: %s\nserver log:\n%s", runs+1, err, res.stderr, w.logTail())
		}
		if res.exitCode != 0 || res.n != n {
			b.Fatalf("run %d: received %d bytes, want %d; exit status %d\nstderr: %s\nserver log:\n%s",
				runs+1, res.n, n, res.exitCode, res.stderr, w.logTail())
		}
		streamTime += res.stream
		clientCPU += res.clientCPU
		runs++
	}
	// b.Loop has stopped the timer: what follows is not measured.
	perRun := func(d time.Duration) float64 { return d.Seconds() / float64(runs) }
	if streamTime > 0 {
		b.ReportMetric(float64(n)*float64(runs)/1e6/streamTime.Seconds(), "stream-MB/s")
	}
	b.ReportMetric(perRun(clientCPU), "client-cpu-s/op")
	b.ReportMetric(perRun(w.targetCPU(b)-targetBefore), "sshd-cpu-s/op")
	if !viaBastion {
		return
	}
	w.waitServerIdle(b) // the session's end (the recording's digest) counts
	b.ReportMetric(perRun(w.serverCPU(b)-serverBefore), "bastion-cpu-s/op")

	// Every run left a finished recording of all its output.
	list := w.sessionsSince(b, start)
	if len(list) != runs {
		b.Fatalf("%d sessions recorded since the first run, want %d: %+v", len(list), runs, list)
	}
	var errs []error
	for _, m := range list {
		if m.State != recorder.StateClosed || m.BytesOut != n || m.ExitStatus == nil || *m.ExitStatus != 0 || m.Error != "" {
			errs = append(errs, fmt.Errorf("session %s: state %s, bytes_out %d (want %d), exit %v, error %q",
				m.ID, m.State, m.BytesOut, n, m.ExitStatus, m.Error))
		}
	}
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d sessions of %d bytes each, all recorded; bastion.db %d -> %d bytes", runs, n, dbBefore, w.dbSize())
}

// BenchmarkSessionSetup times `ssh ... true`: TCP connect, key exchange,
// authentication, exec and exit, through the bastion (bastion: certificate
// check, policy, a recording, and a second login, to the target) and with
// plain ssh straight to the sshd (openssh).
//
// OpenSSH client and server agree on the post-quantum hybrid key exchange
// sntrup761x25519-sha512, which golang.org/x/crypto/ssh (both of the
// bastion's hops) does not implement; it offers mlkem768x25519-sha256,
// which OpenSSH has only from 9.9, so against an older OpenSSH both hops
// use curve25519-sha256. openssh-curve25519 is plain ssh with that key
// exchange, for a like-for-like comparison.
func BenchmarkSessionSetup(b *testing.B) {
	w := newWorld(b)
	b.Run("bastion", func(b *testing.B) { w.benchLogin(b, w.viaBastion, "web-1", "true") })
	b.Run("openssh", func(b *testing.B) { w.benchLogin(b, w.direct, "true") })
	b.Run("openssh-curve25519", func(b *testing.B) {
		w.benchLogin(b, w.direct, "-o", "KexAlgorithms=curve25519-sha256", "true")
	})
	jump := w.jumpClient(b)
	b.Run("proxyjump", func(b *testing.B) { w.benchLogin(b, jump, "true") })
}

// benchLogin runs ssh with c and args b.N times; each must exit 0 and print
// nothing.
func (w *world) benchLogin(b *testing.B, c *testharness.SSHClient, args ...string) {
	var times []time.Duration
	for b.Loop() {
		start := time.Now()
		res := c.Run(b, args...)
		times = append(times, time.Since(start))
		if res.ExitCode != 0 || res.Stdout != "" {
			b.Fatalf("run %d: exit %d, stdout %q\nstderr: %s\nserver log:\n%s", len(times), res.ExitCode, res.Stdout, res.Stderr, w.logTail())
		}
	}
	// The issue asks for the median (of 20: make bench runs 20x).
	p50, _ := percentiles(times)
	b.ReportMetric(float64(p50.Microseconds())/1000, "median-ms")
}
