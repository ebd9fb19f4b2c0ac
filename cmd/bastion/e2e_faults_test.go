package main

// The quick fault suite (issue 9, point 2): what the bastion does when the
// things around it break — the target, the store file, the identity
// provider — or when its clients misbehave. Every test bounds its own time
// and stops what it starts.

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/bastion/devidp"
	"github.com/bastion-dev/bastion/internal/testharness"
	"github.com/bastion-dev/bastion/recorder"
)

// startStreaming starts `ssh ... args` and waits until its stdout has
// printed want; the returned stderr collects the rest.
func startStreaming(t *testing.T, cl *testharness.SSHClient, want string, args ...string) (*exec.Cmd, *testharness.SyncBuffer, <-chan error) {
	t.Helper()
	cmd := cl.Command(context.Background(), args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &testharness.SyncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	exited := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	got := make(chan error, 1)
	go func() {
		buf := make([]byte, len(want))
		_, err := io.ReadFull(out, buf)
		if err == nil && string(buf) != want {
			err = fmt.Errorf("read %q, want %q", buf, want)
		}
		got <- err
		_, _ = io.Copy(io.Discard, out)
		done <- cmd.Wait() // after the pipe is drained, as Wait wants
		close(exited)
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("session did not start: %v; stderr %q", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no %q within 15s; stderr %q", want, stderr.String())
	}
	return cmd, stderr, done
}

// waitSessionEnded polls until the session id is no longer active.
func waitSessionEnded(t *testing.T, w *world, id string, within time.Duration) recorder.SessionMeta {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var last recorder.SessionMeta
		for _, m := range w.sessions(t) {
			if m.ID == id {
				last = m
			}
		}
		if last.ID != "" && last.State != recorder.StateActive {
			return last
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s still not ended after %v: %+v", id, within, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// activeSession waits until exactly one session is active and returns it.
func activeSession(t *testing.T, w *world) recorder.SessionMeta {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var act []recorder.SessionMeta
		for _, m := range w.sessions(t) {
			if m.State == recorder.StateActive {
				act = append(act, m)
			}
		}
		if len(act) == 1 {
			return act[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("want one active session, have %+v", act)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFaultTargetKilledMidSession stops the target sshd (and every process
// of its sessions) while a command runs through the bastion.
func TestFaultTargetKilledMidSession(t *testing.T) {
	w := newWorld(t, worldOpts{})
	_, stderr, done := startStreaming(t, w.client, "started\n", "web-1", "echo started; sleep 60")
	id := activeSession(t, w).ID

	start := time.Now()
	w.sshd.Stop()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("client still running 10s after the target died; stderr %q", stderr.String())
	}
	took := time.Since(start)
	t.Logf("client ended %v after the target was stopped: %v; stderr %q", took.Round(time.Millisecond), err, stderr.String())
	if err == nil {
		t.Fatalf("client exited 0 after its target died")
	}
	if took > 5*time.Second {
		t.Errorf("the client took %v to notice", took)
	}

	m := waitSessionEnded(t, w, id, 5*time.Second)
	t.Logf("session row: state %s exit %v reason %q", m.State, derefInt(m.ExitStatus), m.Error)
	if m.State == recorder.StateActive || m.Error == "" || m.End.IsZero() {
		t.Fatalf("session row after the target died: %+v", m)
	}
	if !strings.Contains(m.Error, "target") {
		t.Errorf("session row reason %q does not name the target", m.Error)
	}
	// The recording is closed and readable up to the end.
	if cast := w.recording(t, id); !strings.Contains(cast, "started") {
		t.Errorf("recording lacks the output before the fault:\n%s", cast)
	}

	var p problems
	if s := strings.ToLower(stderr.String()); !strings.Contains(s, "target") {
		p.add("client stderr does not say the target went away: %q (exit %v)", stderr.String(), err)
	}
	p.report(t, "")
}

func derefInt(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// problems collects what a check found, so that a case marked as a known
// product bug can be skipped with the evidence instead of failing.
type problems struct{ list []string }

func (p *problems) add(format string, args ...any) {
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

// report fails t with the problems found, or skips it when bug names them
// as a known product bug.
func (p *problems) report(t *testing.T, bug string) {
	t.Helper()
	switch {
	case len(p.list) == 0 && bug != "":
		t.Logf("marked as bug %q, but the check passed: remove the mark", bug)
	case len(p.list) == 0:
	case bug != "":
		t.Skipf("bug: %s\n%s", bug, strings.Join(p.list, "\n"))
	default:
		t.Error(strings.Join(p.list, "\n"))
	}
}

// TestFaultBadStoreFileAtStart starts the real binary on a data_dir whose
// store file is garbage or a truncated copy of a real store: it must exit
// non-zero quickly, name the file, not panic, and leave the file as it was.
func TestFaultBadStoreFileAtStart(t *testing.T) {
	bin := buildBinary(t)

	// A real store with some content, to truncate.
	realDir := t.TempDir()
	realPath := filepath.Join(realDir, storeFile)
	st, err := recorder.OpenBolt(realPath, recorder.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := st.AppendAudit(context.Background(), recorder.AuditRecord{Type: "test.fill", Outcome: recorder.OutcomeSuccess,
			Detail: map[string]string{"i": fmt.Sprint(i), "pad": strings.Repeat("x", 500)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	realStore, err := os.ReadFile(realPath)
	if err != nil {
		t.Fatal(err)
	}
	// The high-water mark of the newest meta page: pages below it hold data.
	hwm, pageSize := storeHighWater(t, realStore)
	t.Logf("real store is %d bytes, %d pages of %d in use", len(realStore), hwm, pageSize)
	garbage := make([]byte, 64<<10)
	_, _ = rand.Read(garbage)

	const panics = "a store truncated inside its data panics in bbolt (invalid freelist page) instead of a clear error"
	cases := []struct {
		name    string
		content []byte
		bug     string // a known product bug this case shows
	}{
		{"random bytes", garbage, ""},
		{"a few bytes of text", []byte("not a database\n"), ""},
		{"truncated to 100 bytes", realStore[:100], ""},
		{"truncated to one page", realStore[:pageSize], ""},
		{"truncated to half the used pages", realStore[:hwm/2*pageSize], ""},
		{"last used page cut off", realStore[:(hwm-1)*pageSize], ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			dataDir := filepath.Join(dir, "data")
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dataDir, storeFile)
			if err := os.WriteFile(path, c.content, 0o600); err != nil {
				t.Fatal(err)
			}
			port := testharness.FreePort(t)
			cfg := filepath.Join(dir, "bastion.yaml")
			writeFile(t, cfg, fmt.Sprintf("listen: \"127.0.0.1:%d\"\ndata_dir: %q\ntargets:\n  - { name: t, kind: command, argv: [\"/bin/true\"] }\n", port, dataDir))

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "serve", "--config", cfg, "--shutdown-grace", "1s")
			out := &testharness.SyncBuffer{}
			cmd.Stdout, cmd.Stderr = out, out
			start := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			var p problems
			var err error
		wait:
			for {
				select {
				case err = <-exited:
					break wait
				case <-time.After(50 * time.Millisecond):
					if dialable(port) {
						p.add("serve started and listens on a bad store file")
						_ = cmd.Process.Kill()
						err = <-exited
						break wait
					}
				}
			}
			took := time.Since(start)
			t.Logf("exit after %v: %v\n%s", took.Round(time.Millisecond), err, out.String())
			switch {
			case ctx.Err() != nil:
				p.add("serve neither failed nor listened within 10s")
			case len(p.list) > 0:
			case err == nil || cmd.ProcessState.ExitCode() == 0:
				p.add("serve exited 0 on a bad store file")
			}
			if s := out.String(); strings.Contains(s, "panic:") || strings.Contains(s, "goroutine ") || strings.Contains(s, "fatal error") {
				p.add("serve crashed instead of refusing the file: %s", firstLine(s))
			} else if len(p.list) == 0 && !strings.Contains(s, path) {
				p.add("error does not name the store file %s: %s", path, s)
			}
			if took > 5*time.Second {
				p.add("refusing the store took %v", took)
			}
			if after, err := os.ReadFile(path); err != nil || !bytes.Equal(after, c.content) {
				p.add("the bad store file was changed (%d bytes before, %d after, %v): evidence must stay as found", len(c.content), len(after), err)
			}
			p.report(t, c.bug)
		})
	}
}

// storeHighWater reads a bbolt file's page size and high-water mark (the
// number of pages in use) from the newer of its two meta pages.
func storeHighWater(t *testing.T, b []byte) (pages, pageSize int) {
	t.Helper()
	// page header: id u64, flags u16, count u16, overflow u32 (16 bytes);
	// meta: magic, version, pageSize, flags (u32 each), root bucket (16),
	// freelist u64, pgid u64, txid u64, checksum u64.
	le := func(off, n int) uint64 {
		var v uint64
		for i := n - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[off+i])
		}
		return v
	}
	pageSize = int(le(16+8, 4))
	if pageSize < 512 || len(b) < 2*pageSize {
		t.Fatalf("unexpected store layout: page size %d, %d bytes", pageSize, len(b))
	}
	best, bestTx := 0, uint64(0)
	for _, off := range []int{0, pageSize} {
		if tx := le(off+16+48, 8); tx >= bestTx {
			best, bestTx = int(le(off+16+40, 8)), tx
		}
	}
	if best < 4 || best*pageSize > len(b) {
		t.Fatalf("unexpected high-water mark %d (page size %d, %d bytes)", best, pageSize, len(b))
	}
	return best, pageSize
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func dialable(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
	if err == nil {
		_ = c.Close()
	}
	return err == nil
}

// TestFaultIdentityProviderDown logs in while the identity provider cannot
// be reached: a clear error, a non-zero exit, no certificate, and a
// login.failure in the audit trail.
func TestFaultIdentityProviderDown(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	writeFile(t, secret, "s3cret\n")
	startIdP := func(t *testing.T) *devidp.IdP {
		idp, err := devidp.Start(context.Background(), devidp.Options{
			Addr: "127.0.0.1:0", ClientID: "bastion", ClientSecret: "s3cret", PollInterval: time.Second,
			Users: []devidp.User{{Username: "alice", Password: "pw-alice", Email: "alice@example.com", Groups: []string{"sre"}, MFA: true}},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = idp.Close() })
		return idp
	}
	oidcWorld := func(t *testing.T, issuer string) *world {
		return newWorld(t, worldOpts{extra: "oidc: { issuer: " + issuer + ", client_id: bastion, client_secret_file: " + secret + " }\n"})
	}
	cases := []struct {
		name   string
		reason string // login.failure reason
		// setup returns the world, with the provider down by the time of
		// the login under test.
		setup func(t *testing.T) *world
	}{
		{"nothing listens at the issuer", "provider-unavailable", func(t *testing.T) *world {
			return oidcWorld(t, fmt.Sprintf("http://127.0.0.1:%d", testharness.FreePort(t)))
		}},
		{"provider closed before the first login", "provider-unavailable", func(t *testing.T) *world {
			idp := startIdP(t)
			w := oidcWorld(t, idp.Issuer())
			if err := idp.Close(); err != nil {
				t.Fatal(err)
			}
			return w
		}},
		{"provider closed after discovery", "device-auth-failed", func(t *testing.T) *world {
			idp := startIdP(t)
			w := oidcWorld(t, idp.Issuer())
			// A first login, denied, makes the bastion discover the provider.
			key, _ := testharness.KeyPair(t, t.TempDir(), "ed25519")
			out, errOut, code := sshLogin(t, w, key, func(c string) error { return idp.Deny(context.Background(), c, "alice", "pw-alice") })
			if code == 0 || out != "" || !strings.Contains(errOut, "denied") {
				t.Fatalf("first (denied) login: exit %d stdout %q stderr %s", code, out, errOut)
			}
			if err := idp.Close(); err != nil {
				t.Fatal(err)
			}
			return w
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := c.setup(t)
			issuedBefore := w.auditCount(t, "cert.issued")
			failuresBefore := w.auditCount(t, "login.failure")

			key, _ := testharness.KeyPair(t, t.TempDir(), "ed25519")
			cl := *w.client
			cl.KeyFile, cl.CertFile, cl.Host = key, "", "login@127.0.0.1"
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := cl.Command(ctx)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			_ = cmd.Run()
			took := time.Since(start)
			t.Logf("login ended after %v, exit %d; stderr %q", took.Round(time.Millisecond), cmd.ProcessState.ExitCode(), stderr.String())
			if ctx.Err() != nil {
				t.Fatalf("login still running after 30s with the provider down")
			}
			if code := cmd.ProcessState.ExitCode(); code == 0 {
				t.Errorf("login exited 0 with the provider down")
			}
			if stdout.Len() != 0 {
				t.Errorf("something was printed on stdout (where the certificate goes): %q", stdout.String())
			}
			if !strings.Contains(stderr.String(), "identity provider") {
				t.Errorf("stderr does not say the identity provider is the problem: %q", stderr.String())
			}
			if took > 10*time.Second {
				t.Errorf("failing the login took %v", took)
			}
			if got := w.auditCount(t, "cert.issued"); got != issuedBefore {
				t.Errorf("cert.issued records went from %d to %d", issuedBefore, got)
			}
			out, errOut, code := w.bastion("audit", "--type", "login.failure", "--json")
			if code != 0 || w.auditCount(t, "login.failure") != failuresBefore+1 || !strings.Contains(out, `"reason":"`+c.reason+`"`) {
				t.Errorf("no new login.failure with reason %s: exit %d %s %s", c.reason, code, out, errOut)
			}
		})
	}
}

// auditCount is how many audit records of type typ the store holds.
func (w *world) auditCount(t *testing.T, typ string) int {
	t.Helper()
	out, errOut, code := w.bastion("audit", "--type", typ, "--json")
	if code != 0 {
		t.Fatalf("audit --type %s: exit %d %s", typ, code, errOut)
	}
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, `"type":"`+typ+`"`) {
			n++
		}
	}
	return n
}

// TestFaultMisbehavingClients holds 1,000 loopback connections open that
// never complete a handshake (silent, garbage, a banner and nothing more):
// a normal client still gets through while they are open, the bastion's
// heap grows by a bounded amount per connection (whatever they send), and
// once they are closed its heap, goroutines and files go back to where they
// were and it shuts down within its grace period.
func TestFaultMisbehavingClients(t *testing.T) {
	const conns = 1000
	// perConnHeap bounds what one connection that has not finished its
	// handshake may hold: x/crypto's buffers and key exchange state come to
	// a few KiB; a bastion that buffered what such a client sends, or held
	// a session's worth of state for it, would pass this with 1,000 of them.
	const perConnHeap = 64 << 10
	junk := make([]byte, 4096)
	_, _ = rand.Read(junk)
	cases := []struct {
		name string
		send []byte
		// hangsUp: the bastion must close the connection by itself soon,
		// since what it got can never become a handshake.
		hangsUp bool
	}{
		{"silent", nil, false},
		{"banner only", []byte("SSH-2.0-OpenSSH_9.6\r\n"), false},
		{"garbage bytes", append([]byte("SSH-2.0-x\r\n"), junk...), true},
		// RFC 4253 lets lines before the version line be skipped, up to
		// 255 bytes; an HTTP request longer than that can only be refused.
		{"not ssh at all", []byte("GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: " + strings.Repeat("y", 300) + "\r\n\r\n"), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, worldOpts{})
			if res := w.client.Run(t, "whoami"); res.ExitCode != 0 {
				t.Fatalf("whoami before: %+v", res)
			}
			time.Sleep(200 * time.Millisecond)
			baseG, baseFD, baseHeap := runtime.NumGoroutine(), openFDs(t), liveHeap()

			open := make([]net.Conn, 0, conns)
			defer func() {
				for _, cn := range open {
					_ = cn.Close()
				}
			}()
			for range conns {
				cn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", w.port), 5*time.Second)
				if err != nil {
					t.Fatalf("dial %d: %v", len(open), err)
				}
				open = append(open, cn)
				if len(c.send) > 0 {
					_ = cn.SetWriteDeadline(time.Now().Add(2 * time.Second))
					_, _ = cn.Write(c.send) // the bastion may hang up first
				}
			}

			// The bastion has read what they sent (or hung up on them).
			time.Sleep(500 * time.Millisecond)
			grown := liveHeap() - baseHeap
			t.Logf("heap with %d %s connections open: %+d KiB, %d bytes a connection", conns, c.name, grown>>10, grown/conns)
			if grown > conns*perConnHeap {
				t.Errorf("heap grew by %d KiB with %d %s connections open: more than %d KiB a connection",
					grown>>10, conns, c.name, perConnHeap>>10)
			}

			start := time.Now()
			res := w.client.Run(t, "whoami")
			t.Logf("whoami with %d %s connections open took %v", conns, c.name, time.Since(start).Round(time.Millisecond))
			if res.ExitCode != 0 || !strings.Contains(res.Stdout, "alice") {
				t.Fatalf("whoami while %d %s connections are open: %+v", conns, c.name, res)
			}
			if time.Since(start) > 10*time.Second {
				t.Errorf("whoami took %v while the bad connections were open", time.Since(start))
			}
			if res := w.client.Run(t, "web-1", "echo ok"); res.ExitCode != 0 || res.Stdout != "ok\n" {
				t.Fatalf("session while %d %s connections are open: %+v", conns, c.name, res)
			}

			if c.hangsUp {
				// Each connection reads to EOF (or reset) within a few seconds.
				var wg sync.WaitGroup
				var mu sync.Mutex
				stillOpen := 0
				for _, cn := range open {
					wg.Add(1)
					go func() {
						defer wg.Done()
						_ = cn.SetReadDeadline(time.Now().Add(5 * time.Second))
						_, err := io.Copy(io.Discard, cn)
						if ne, ok := err.(net.Error); ok && ne.Timeout() {
							mu.Lock()
							stillOpen++
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				if stillOpen > 0 {
					t.Errorf("%d of %d %s connections still open after 5s", stillOpen, conns, c.name)
				}
			}

			for _, cn := range open {
				_ = cn.Close()
			}
			open = nil

			// Nothing left behind: goroutines, descriptors and the heap come
			// back (the heap to within what two sessions' worth of pools and
			// buffers may keep).
			deadline := time.Now().Add(10 * time.Second)
			for {
				g, fd, h := runtime.NumGoroutine(), openFDs(t), liveHeap()
				if g <= baseG+10 && fd <= baseFD+10 && h <= baseHeap+4<<20 {
					t.Logf("goroutines %d (baseline %d), fds %d (baseline %d), heap %d KiB (baseline %d)", g, baseG, fd, baseFD, h>>10, baseHeap>>10)
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after closing the connections: %d goroutines (baseline %d), %d fds (baseline %d), heap %d KiB (baseline %d)",
						g, baseG, fd, baseFD, h>>10, baseHeap>>10)
				}
				time.Sleep(100 * time.Millisecond)
			}

			start = time.Now()
			w.stop()
			w.stop = nil
			if took := time.Since(start); took > 6*time.Second {
				t.Errorf("shutdown took %v, grace is 5s", took)
			}
		})
	}
}

// liveHeap is the heap this process (the bastion runs in it) holds after a
// collection: what the bastion keeps, not what it has yet to free.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// openFDs counts this process's open file descriptors (the bastion runs in
// it).
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// TestFaultClientStopsReading runs a session whose client never reads its
// output: another session is unaffected, the bastion does not buffer the
// output it cannot deliver, and killing the stuck client ends its session.
func TestFaultClientStopsReading(t *testing.T) {
	w := newWorld(t, worldOpts{})
	// A first session warms what every session allocates once (encoders,
	// pools), so that the baseline is that of a bastion in use.
	if res := w.client.Run(t, "web-1", "head -c 1000000 /dev/zero"); res.ExitCode != 0 {
		t.Fatalf("warm-up session: %+v", res)
	}
	heap := liveHeap
	before := heap()

	cmd := w.client.Command(context.Background(), "web-1", "yes | head -c 200000000")
	if _, err := cmd.StdoutPipe(); err != nil { // never read
		t.Fatal(err)
	}
	stderr := &testharness.SyncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	stuck := activeSession(t, w)
	// Let the target fill every window and buffer on the way.
	time.Sleep(1500 * time.Millisecond)
	mid := heap()

	start := time.Now()
	res := w.client.Run(t, "web-1", "echo ok")
	t.Logf("echo ok beside the stuck session took %v", time.Since(start).Round(time.Millisecond))
	if res.ExitCode != 0 || res.Stdout != "ok\n" {
		t.Fatalf("other session while one client stops reading: %+v", res)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("other session took %v", time.Since(start))
	}

	time.Sleep(time.Second)
	after := heap()
	t.Logf("heap: %d KiB before, %d KiB 1.5s into the stuck session, %d KiB 1s after that", before>>10, mid>>10, after>>10)
	// Flow control bounds what sits in the bastion: a few channel windows,
	// not the 200 MB the target is trying to send.
	if grew := after - before; grew > 32<<20 {
		t.Errorf("heap grew by %d MiB: the bastion buffers output its client does not read", grew>>20)
	}
	if grew := after - mid; grew > 8<<20 {
		t.Errorf("heap still growing (%d MiB in 1s) while the client does not read", grew>>20)
	}
	if m := w.sessions(t); len(m) == 0 {
		t.Fatal("no sessions")
	}
	for _, m := range w.sessions(t) {
		if m.ID == stuck.ID && m.State != recorder.StateActive {
			t.Fatalf("stuck session ended before its client was killed: %+v", m)
		}
	}

	_ = cmd.Process.Kill()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("killed client did not exit")
	}
	start = time.Now()
	m := waitSessionEnded(t, w, stuck.ID, 5*time.Second)
	t.Logf("stuck session ended %v after its client was killed: %+v", time.Since(start).Round(time.Millisecond), m)
	if m.BytesOut >= 200000000 {
		t.Errorf("session counts %d bytes out though its client never read them", m.BytesOut)
	}
}
