package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/internal/testharness"
	"github.com/bastion-dev/bastion/recorder"
)

func TestLargeOutputDrainsBeforeExitStatus(t *testing.T) {
	w := newWorld(t, worldOpts{})
	const n = 8 << 20
	cmd := w.client.Command(context.Background(), "web-1", fmt.Sprintf("head -c %d /dev/zero; echo tail >&2; exit 5", n))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 5 || stdout.Len() != n || stderr.String() != "tail\n" {
		t.Fatalf("exit %d, %d bytes of stdout (want %d), stderr %q", code, stdout.Len(), n, stderr.String())
	}
	m := w.lastSession(t)
	if m.BytesOut < n {
		t.Fatalf("session row counts %d bytes out, want >= %d", m.BytesOut, n)
	}
}

func TestClientGoneEndsSession(t *testing.T) {
	w := newWorld(t, worldOpts{})
	cmd := w.client.Command(context.Background(), "web-1", "echo started; sleep 60")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "started\n" {
		t.Fatalf("read %q: %v", buf, err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	// The row is finalised without waiting for the target's sleep.
	m := w.lastSession(t)
	if m.State != recorder.StateClosed || m.End.Sub(m.Start) > 30*time.Second {
		t.Fatalf("session after client kill: %+v", m)
	}
}

func TestRecordInputWhenConfigured(t *testing.T) {
	w := newWorld(t, worldOpts{recording: "recording: { input: true, flush_interval: 200ms }"})
	cmd := w.client.Command(context.Background(), "web-1", "cat")
	cmd.Stdin = strings.NewReader("typed-by-user\n")
	if out, err := cmd.Output(); err != nil || string(out) != "typed-by-user\n" {
		t.Fatalf("cat: %q %v", out, err)
	}
	cast := w.recording(t, w.lastSession(t).ID)
	if !strings.Contains(cast, `"i","typed-by-user\n"`) {
		t.Fatalf("input not recorded with recording.input: true:\n%s", cast)
	}
}

func TestRevokeUserSparesLaterCertificates(t *testing.T) {
	w := newWorld(t, worldOpts{})
	if res := w.client.Run(t, "whoami"); res.ExitCode != 0 {
		t.Fatalf("before revoke: %+v", res)
	}
	if _, errOut, code := w.bastion("revoke", "--user", "alice"); code != 0 {
		t.Fatalf("revoke --user: %s", errOut)
	}
	if res := w.client.Run(t, "whoami"); res.ExitCode != 255 || !strings.Contains(res.Stderr, "revoked") {
		t.Fatalf("revoked user got in: %+v", res)
	}
	// Certificates carry whole seconds: a new one from the next second on
	// is not covered by the revocation.
	time.Sleep(1100 * time.Millisecond)
	w.sign("alice", "sre", "1h", w.userKey)
	if res := w.client.Run(t, "whoami"); res.ExitCode != 0 {
		t.Fatalf("certificate issued after the revocation refused: %+v", res)
	}
}

func TestOnHostCommandsOnStoppedStore(t *testing.T) {
	w := newWorld(t, worldOpts{})
	if res := w.client.Run(t, "web-1", "echo recorded-line"); res.ExitCode != 0 {
		t.Fatalf("%+v", res)
	}
	id := w.lastSession(t).ID
	w.stop()
	w.stop = nil
	if _, err := os.Stat(filepath.Join(w.cfg.DataDir, "admin.sock")); err == nil {
		// A stale socket must not be mistaken for a running server.
		t.Logf("admin.sock left behind after shutdown")
	}
	list := w.sessions(t, "--user", "alice", "--target", "web-1")
	if len(list) != 1 || list[0].ID != id {
		t.Fatalf("sessions on a stopped store: %+v", list)
	}
	if got := w.sessions(t, "--user", "bob"); len(got) != 0 {
		t.Fatalf("--user bob: %+v", got)
	}
	if got := w.sessions(t, "--grep", "recorded-li"); len(got) != 1 || got[0].ID != id {
		t.Fatalf("--grep recorded-li: %+v", got)
	}
	if got := w.sessions(t, "--grep", "never printed"); len(got) != 0 {
		t.Fatalf("--grep of text nobody printed: %+v", got)
	}
	// Nothing is older than the retention: prune removes nothing.
	if out, errOut, code := w.bastion("prune"); code != 0 || !strings.Contains(out, "pruned 0 session(s)") {
		t.Fatalf("prune: exit %d %s %s", code, out, errOut)
	}
	out, errOut, code := w.bastion("replay", id, "--speed", "1000")
	if code != 0 || !strings.Contains(out, "recorded-line") {
		t.Fatalf("replay: exit %d %q %s", code, out, errOut)
	}
	_, errOut, code = w.bastion("replay", "nosuchsession")
	if code != 1 || !strings.Contains(errOut, "bastion sessions") {
		t.Fatalf("replay of unknown id: exit %d %s", code, errOut)
	}
	_, _, code = w.bastion("replay")
	if code != 2 {
		t.Fatalf("replay without id: exit %d, want 2", code)
	}

	// The audit trail kept the certificate issued at the start and the
	// server's start and stop, in a chain that verifies.
	st, err := recorder.OpenBolt(filepath.Join(w.cfg.DataDir, storeFile), recorder.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.ListAudit(context.Background(), recorder.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	var end recorder.AuditRecord
	reads := 0
	for _, r := range recs {
		if r.Type == "audit.read" {
			reads++ // each look at the trail, in whatever order the polling made
			continue
		}
		types = append(types, r.Type)
		if r.Type == "session.end" {
			end = r
		}
	}
	// Checkpoints sign the head at shutdown: after the sessions' records,
	// and again after server.stop.
	// The session brings its recording's start and stop, the target it
	// reached and the command it ran; each look at the trail is in it too
	// (audit.read: the sessions listings and the replay).
	if got := strings.Join(types, " "); got != "audit.checkpoint server.stop audit.checkpoint "+
		"session.end recording.stop exec.command target.access recording.start session.start cert.issued server.start" || reads < 5 {
		t.Fatalf("audit trail types (newest first) %q", got)
	}
	if end.Detail[recorder.DetailRecordingDigest] == "" || end.Session != id {
		t.Fatalf("session.end without the recording's digest: %+v", end)
	}
	if n, err := st.VerifyAudit(context.Background()); err != nil || n != len(recs) {
		t.Fatalf("verify: %d %v", n, err)
	}
	_ = st.Close()
	if out, errOut, code := w.bastion("audit", "verify"); code != 0 || !strings.Contains(out, "2 signed checkpoints") {
		t.Fatalf("audit verify: exit %d %s %s", code, out, errOut)
	}

	// One byte flipped inside the store file: verify names the record.
	path := filepath.Join(w.cfg.DataDir, storeFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(raw, []byte(`"type":"session.start"`))
	if i < 0 {
		t.Fatal("session.start record not found in the file")
	}
	raw[i+len(`"type":"session.st`)] ^= 0x02 // "start" -> "stcrt": still valid JSON, no longer the record that was hashed
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = w.bastion("audit", "verify")
	if code == 0 || !strings.Contains(errOut, "record 3") {
		t.Fatalf("verify after a flipped byte: exit %d %s %s", code, out, errOut)
	}
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "listen: \":2222\"\ndata_dir: /tmp/x\ntargets:\n  - { name: web-1, kind: ssh, adress: 10.0.0.5:22 }\n")
	var out, errOut bytes.Buffer
	e := &env{stdout: &out, stderr: &errOut, stdin: strings.NewReader(""), getenv: func(string) string { return "" }}
	if code := run(context.Background(), e, []string{"check-config", "--config", bad}); code != 1 {
		t.Fatalf("check-config of a bad file: exit %d", code)
	}
	if !strings.Contains(errOut.String(), "bad.yaml:4") || !strings.Contains(errOut.String(), "adress") {
		t.Fatalf("check-config output lacks file:line and key: %s", errOut.String())
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run(context.Background(), e, []string{"check-config", "--config", filepath.Join(root, "bastion.example.yaml")}); code != 0 {
		t.Fatalf("check-config bastion.example.yaml: %s", errOut.String())
	}
}

// TestCrashRecoveryAndGracefulShutdown runs the real binary: kill -9 during
// a session, restart, and the session is interrupted with its recording up
// to the last flush; then SIGTERM lets an open session finish.
func TestCrashRecoveryAndGracefulShutdown(t *testing.T) {
	w := newWorld(t, worldOpts{})
	w.stop() // the in-process server; the binary takes over the same config
	w.stop = nil
	bin := buildBinary(t)

	srv := startBinary(t, bin, w.cfgPath, w.port)
	cmd := w.client.Command(context.Background(), "web-1", "echo before-crash; sleep 60")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("before-crash\n"))
	if _, err := io.ReadFull(out, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	// Past one flush interval (200ms), the output is in the store.
	time.Sleep(600 * time.Millisecond)
	_ = srv.Process.Signal(syscall.SIGKILL)
	_ = srv.Wait()
	_ = cmd.Wait()

	srv = startBinary(t, bin, w.cfgPath, w.port)
	list := w.sessions(t)
	if len(list) == 0 || list[0].State != recorder.StateInterrupted {
		t.Fatalf("after kill -9 and restart: %+v", list)
	}
	if cast := w.recording(t, list[0].ID); !strings.Contains(cast, "before-crash") {
		t.Fatalf("interrupted recording lacks flushed output:\n%s", cast)
	}

	// Graceful: SIGTERM while a session runs; it may finish.
	cmd = w.client.Command(context.Background(), "web-1", "sleep 1; echo finished")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if l := w.sessions(t); len(l) > 0 && l[0].State == recorder.StateActive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("session never became active")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = srv.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil || stdout.String() != "finished\n" {
		t.Fatalf("session during graceful shutdown: %v %q", err, stdout.String())
	}
	if err := srv.Wait(); err != nil {
		t.Fatalf("server after SIGTERM: %v", err)
	}
	if l := w.sessions(t); l[0].State != recorder.StateClosed || l[0].ExitStatus == nil || *l[0].ExitStatus != 0 {
		t.Fatalf("row after graceful shutdown: %+v", l[0])
	}
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bastion")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startBinary(t *testing.T, bin, cfg string, port int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", cfg, "--shutdown-grace", "10s")
	logs := &testharness.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	waitPortProc(t, port, logs)
	return cmd
}

func waitPortProc(t *testing.T, port int, logs *testharness.SyncBuffer) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond); err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(30 * time.Millisecond)
	}
	t.Fatalf("bastion binary did not listen on %d:\n%s", port, logs.String())
}

func TestRevocationEndsOpenSession(t *testing.T) {
	for _, by := range []string{"serial", "user"} {
		t.Run(by, func(t *testing.T) {
			w := newWorld(t, worldOpts{})
			cmd := w.client.Command(context.Background(), "web-1", "echo started; sleep 60")
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			stderr := &testharness.SyncBuffer{}
			cmd.Stderr = stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 8)
			if _, err := io.ReadFull(out, buf); err != nil {
				t.Fatal(err)
			}
			args := []string{"revoke", "--user", "alice"}
			if by == "serial" {
				args = []string{"revoke", "--serial", fmt.Sprint(readCert(t, w.userKey+"-cert.pub").Serial)}
			}
			if _, errOut, code := w.bastion(args...); code != 0 {
				t.Fatalf("revoke: %s", errOut)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(stderr.String(), "revoked") {
					t.Fatalf("session after revocation: %v, stderr %q", err, stderr.String())
				}
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatal("open session survived its certificate's revocation")
			}
			m := w.lastSession(t)
			if !strings.Contains(m.Error, "revoked") {
				t.Fatalf("session row reason %q", m.Error)
			}
		})
	}
}

func TestMaskingEndToEnd(t *testing.T) {
	// printf renders the PAN in pieces with colour codes between its
	// groups, as a hostile or merely colourful target might.
	const script = `printf 'card 4111 1111 1111 1111 exp 12/29 cvv 123\n'; printf 'amex \033[31m3782\033[0m-822463-10005\n'; printf 'split 5555'; sleep 0.2; printf '555555554444 done\n'; echo date 2026-12-01 ip 10.0.0.1`
	cases := []struct {
		name      string
		unmask    bool
		wantClear bool // the client sees clear values
	}{
		{"masked for everyone", false, false},
		{"unmask role sees clear values, recording stays masked", true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := worldOpts{}
			if c.unmask {
				o.extra = "masking: { unmask_roles: [sre] }\n"
			}
			w := newWorld(t, o)
			res := w.client.Run(t, "web-1", script)
			if res.ExitCode != 0 {
				t.Fatalf("%+v", res)
			}
			clear := []string{"4111 1111 1111 1111", "555555554444", "822463-10005"}
			for _, pan := range clear {
				if got := strings.Contains(stripEscapes(res.Stdout), pan); got != c.wantClear {
					t.Errorf("client output has %q in clear: %v, want %v\n%q", pan, got, c.wantClear, res.Stdout)
				}
			}
			if !c.wantClear && (!strings.Contains(res.Stdout, "**** **** **** 1111") || !strings.Contains(res.Stdout, "exp **/**") || !strings.Contains(res.Stdout, "cvv ***")) {
				t.Errorf("masked output not as expected: %q", res.Stdout)
			}
			if !strings.Contains(res.Stdout, "date 2026-12-01 ip 10.0.0.1") {
				t.Errorf("ordinary numbers were touched: %q", res.Stdout)
			}
			m := w.lastSession(t)
			cast := w.recording(t, m.ID)
			for _, pan := range clear {
				if strings.Contains(stripEscapes(decodeCastOutput(t, cast)), pan) {
					t.Errorf("recording holds %q in clear", pan)
				}
			}
			if m.Masked["pan"] != 3 {
				t.Errorf("session row masked counts %v, want pan=3", m.Masked)
			}
			if table, _, _ := w.bastion("sessions"); !strings.Contains(table, "pan=3") {
				t.Errorf("bastion sessions does not show the masked counts:\n%s", table)
			}
		})
	}
}

// decodeCastOutput joins the "o" events of a recording.
func decodeCastOutput(t *testing.T, cast string) string {
	t.Helper()
	dec := recorder.NewDecoder(strings.NewReader(cast))
	if _, err := dec.Header(); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for {
		ev, err := dec.Next()
		if err == io.EOF {
			return b.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == "o" {
			b.WriteString(ev.Data)
		}
	}
}

// stripEscapes removes CSI sequences, as a reader of the screen would not
// see them.
func stripEscapes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			i = j
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func TestSessionLimits(t *testing.T) {
	t.Run("idle timeout warns, then ends", func(t *testing.T) {
		w := newWorld(t, worldOpts{extra: "session: { idle_timeout: 2s, max_duration: 12h }\n"})
		p := w.client.RunPTY(t, 80, 24, "-t", "web-1")
		p.Send("echo ready\r")
		p.Expect(t, "ready", 10*time.Second)
		p.Expect(t, "idle for", 10*time.Second)
		p.Expect(t, "session.idle_timeout", 10*time.Second)
		if code, _ := p.Wait(10 * time.Second); code == 0 {
			t.Fatalf("idle session exited 0")
		}
		if m := w.lastSession(t); !strings.Contains(m.Error, "idle") {
			t.Fatalf("row reason %q", m.Error)
		}
	})
	t.Run("activity keeps the session", func(t *testing.T) {
		w := newWorld(t, worldOpts{extra: "session: { idle_timeout: 2s, max_duration: 12h }\n"})
		res := w.client.Run(t, "web-1", "for i in 1 2 3 4; do echo tick; sleep 1; done")
		if res.ExitCode != 0 || strings.Count(res.Stdout, "tick") != 4 {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("certificate expiry ends the session", func(t *testing.T) {
		w := newWorld(t, worldOpts{})
		key, _ := testharness.KeyPair(t, t.TempDir(), "ed25519")
		w.sign("alice", "sre", "3s", key)
		cl := *w.client
		cl.KeyFile, cl.CertFile = key, key+"-cert.pub"
		res := cl.Run(t, "web-1", "sleep 20; echo survived")
		if res.ExitCode == 0 || strings.Contains(res.Stdout, "survived") || !strings.Contains(res.Stderr, "certificate expired") {
			t.Fatalf("%+v", res)
		}
	})
}

func TestReloadPolicy(t *testing.T) {
	w := newWorld(t, worldOpts{})
	if res := w.client.Run(t, "web-1", "echo before"); res.ExitCode != 0 {
		t.Fatalf("before reload: %+v", res)
	}
	orig, err := os.ReadFile(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	narrowed := strings.Replace(string(orig), `{ name: sre, groups: [sre], targets: ["web-*"] }`, `{ name: sre, groups: [sre], targets: ["web-ca"] }`, 1)
	if narrowed == string(orig) {
		t.Fatal("test config changed shape")
	}
	writeFile(t, w.cfgPath, narrowed)
	if out, errOut, code := w.bastion("reload"); code != 0 || !strings.Contains(out, "reloaded") {
		t.Fatalf("reload: exit %d %s %s", code, out, errOut)
	}
	if res := w.client.Run(t, "web-1", "echo after"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "no target") {
		t.Fatalf("web-1 after the reload took it away: %+v", res)
	}
	// A broken file is refused and the policy in force stays.
	writeFile(t, w.cfgPath, narrowed+"\nbogus_key: 1\n")
	if _, errOut, code := w.bastion("reload"); code == 0 || !strings.Contains(errOut, "bogus_key") {
		t.Fatalf("reload of a broken file: exit %d %s", code, errOut)
	}
	if res := w.client.Run(t, "web-ca", "echo still"); res.ExitCode != 0 || res.Stdout != "still\n" {
		t.Fatalf("after a refused reload: %+v", res)
	}
}

func TestSessionsOverSSHForAuditors(t *testing.T) {
	w := newWorld(t, worldOpts{roles: "  - { name: auditor, groups: [audit], audit: true }\n"})
	if res := w.client.Run(t, "web-1", "echo audited"); res.ExitCode != 0 {
		t.Fatal(res)
	}
	if res := w.client.Run(t, "sessions"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "only auditors") {
		t.Fatalf("non-auditor listed sessions: %+v", res)
	}
	key, _ := testharness.KeyPair(t, t.TempDir(), "ed25519")
	w.sign("eve", "audit", "1h", key)
	cl := *w.client
	cl.KeyFile, cl.CertFile = key, key+"-cert.pub"
	res := cl.Run(t, "sessions")
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, "web-1") || !strings.Contains(res.Stdout, "MASKED") {
		t.Fatalf("auditor's sessions: %+v", res)
	}
}

func TestFirstStartRecordsKeyCreation(t *testing.T) {
	dir := t.TempDir()
	port := testharness.FreePort(t)
	cfgPath := filepath.Join(dir, "bastion.yaml")
	writeFile(t, cfgPath, fmt.Sprintf("listen: \"127.0.0.1:%d\"\ndata_dir: %q\n", port, filepath.Join(dir, "data")))
	cfg, err := loadConfig(&env{getenv: func(string) string { return "" }}, cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, &env{stdout: io.Discard, stderr: io.Discard, getenv: os.Getenv, log: slog.New(slog.DiscardHandler)}, cfg, false, time.Second)
	}()
	waitPort(t, port, done)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st, err := recorder.OpenBolt(filepath.Join(dir, "data", storeFile), recorder.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.ListAudit(context.Background(), recorder.AuditFilter{Type: "key.created"})
	if err != nil || len(recs) != 5 {
		t.Fatalf("key.created records: %d %v", len(recs), err)
	}
}
