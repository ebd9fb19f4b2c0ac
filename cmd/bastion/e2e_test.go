package main

// End-to-end tests: the real OpenSSH client against this bastion, which
// proxies to a real sshd started by the harness on a loopback port.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	gossh "golang.org/x/crypto/ssh"

	"github.com/bastion-dev/bastion/internal/testharness"
	"github.com/bastion-dev/bastion/keys"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/recorder"
)

// world is one bastion with its target sshd and a user with a certificate.
type world struct {
	t       *testing.T
	dir     string
	cfgPath string
	cfg     *policy.Config
	sshd    *testharness.SSHD
	port    int
	userKey string // private key path; its certificate is userKey+"-cert.pub"
	client  *testharness.SSHClient
	auth    *authorities
	stop    func()
	logs    *testharness.SyncBuffer
}

type worldOpts struct {
	extraTargets string // YAML list items appended to targets
	recording    string // recording: line override
	extra        string // more top-level YAML
	roles        string // YAML list items appended to roles
}

// newWorld starts sshd and the bastion (in-process) and signs a certificate
// for alice in groups sre.
func newWorld(t *testing.T, o worldOpts) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir()}
	dataDir := filepath.Join(w.dir, "data")
	// The bastion's keys exist before the target, which must trust the
	// target CA.
	root := mustRoot(t, dataDir)
	auth, err := loadAuthorities(root)
	if err != nil {
		t.Fatal(err)
	}
	_ = root.Close()
	w.auth = auth
	w.sshd = testharness.StartSSHD(t, testharness.SSHDOptions{TrustedUserCAKeys: []gossh.PublicKey{auth.targetCA.PublicKey()}})
	w.port = testharness.FreePort(t)

	// A known_hosts that holds some other key for the sshd's address.
	_, otherKey := testharness.KeyPair(t, w.dir, "ed25519")
	wrongKH := filepath.Join(w.dir, "wrong_known_hosts")
	writeFile(t, wrongKH, fmt.Sprintf("[127.0.0.1]:%d %s", w.sshd.Port, keys.AuthorizedKeyLine(otherKey)))
	emptyKH := filepath.Join(w.dir, "empty_known_hosts")
	writeFile(t, emptyKH, "")

	rec := o.recording
	if rec == "" {
		rec = "recording: { input: false, flush_interval: 200ms, retention: 400d, on_failure: terminate }"
	}
	w.cfgPath = filepath.Join(w.dir, "bastion.yaml")
	writeFile(t, w.cfgPath, fmt.Sprintf(`listen: "127.0.0.1:%d"
data_dir: %q
%s
targets:
  - { name: web-1, kind: ssh, address: %q, user: %q, identity_file: %q, known_hosts: %q, description: "the web server" }
  - { name: web-ca, kind: ssh, address: %q, user: %q, auth: ca, known_hosts: %q }
  - { name: web-unknown, kind: ssh, address: %q, user: %q, identity_file: %q, known_hosts: %q }
  - { name: web-changed, kind: ssh, address: %q, user: %q, identity_file: %q, known_hosts: %q }
  - { name: web-down, kind: ssh, address: "127.0.0.1:1", user: %q, identity_file: %q, known_hosts: %q }
  - { name: db-secret, kind: command, argv: ["/bin/echo", "secret"] }
%s
roles:
  - { name: sre, groups: [sre], targets: ["web-*"] }
%s%s`, w.port, dataDir, rec,
		w.sshd.Addr, w.sshd.User, w.sshd.ClientKeyFile, w.sshd.KnownHostsFile,
		w.sshd.Addr, w.sshd.User, w.sshd.KnownHostsFile,
		w.sshd.Addr, w.sshd.User, w.sshd.ClientKeyFile, emptyKH,
		w.sshd.Addr, w.sshd.User, w.sshd.ClientKeyFile, wrongKH,
		w.sshd.User, w.sshd.ClientKeyFile, w.sshd.KnownHostsFile,
		o.extraTargets, o.roles, o.extra))
	cfg, err := policy.Load(w.cfgPath)
	if err != nil {
		t.Fatalf("load test config: %v", err)
	}
	w.cfg = cfg
	w.startServer()

	w.userKey, _ = testharness.KeyPair(t, w.dir, "ed25519")
	w.sign("alice", "sre", "1h", w.userKey)
	w.client = testharness.NewSSHClient(t, "127.0.0.1", w.port)
	w.client.KeyFile = w.userKey
	w.client.CertFile = w.userKey + "-cert.pub"
	w.client.KnownHostsFile = filepath.Join(dataDir, "known_hosts")
	return w
}

func (w *world) startServer() {
	t := w.t
	ctx, cancel := context.WithCancel(context.Background())
	w.logs = &testharness.SyncBuffer{}
	e := &env{stdout: io.Discard, stderr: io.Discard, stdin: strings.NewReader(""), getenv: os.Getenv,
		log: slog.New(slog.NewTextHandler(w.logs, nil))}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, e, w.cfg, false, 5*time.Second) }()
	waitPort(t, w.port, done)
	w.stop = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("serve did not stop within 20s")
		}
	}
	t.Cleanup(func() {
		if w.stop != nil {
			w.stop()
			w.stop = nil
		}
	})
}

// bastion runs an on-host subcommand and returns its stdout.
func (w *world) bastion(args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	e := &env{stdout: &out, stderr: &errOut, stdin: strings.NewReader(""), getenv: func(string) string { return "" },
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	code := run(context.Background(), e, append(append([]string(nil), args...), "--config", w.cfgPath))
	return out.String(), errOut.String(), code
}

func (w *world) sign(user, groups, ttl, key string) {
	w.t.Helper()
	out, errOut, code := w.bastion("keys", "sign", "--user", user, "--groups", groups, "--ttl", ttl, key+".pub")
	if code != 0 {
		w.t.Fatalf("keys sign: exit %d: %s", code, errOut)
	}
	writeFile(w.t, key+"-cert.pub", out)
}

func (w *world) sessions(t *testing.T, args ...string) []recorder.SessionMeta {
	t.Helper()
	out, errOut, code := w.bastion(append([]string{"sessions", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("sessions --json: exit %d: %s", code, errOut)
	}
	var list []recorder.SessionMeta
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var m recorder.SessionMeta
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("decode sessions --json: %v\n%s", err, out)
		}
		list = append(list, m)
	}
	return list
}

func (w *world) recording(t *testing.T, id string) string {
	t.Helper()
	out, errOut, code := w.bastion("export", id)
	if code != 0 {
		t.Fatalf("export %s: exit %d: %s", id, code, errOut)
	}
	return out
}

// waitSession polls until the newest session is no longer active (the
// server finalises the row right after the client saw the exit).
func (w *world) lastSession(t *testing.T) recorder.SessionMeta {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list := w.sessions(t)
		if len(list) > 0 && list[0].State != recorder.StateActive {
			return list[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no finished session after 10s: %+v", list)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestExecThroughBastion(t *testing.T) {
	w := newWorld(t, worldOpts{})
	cases := []struct {
		name       string
		args       []string
		host       string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"uname", []string{"web-1", "uname", "-s"}, "", 0, "Linux\n", ""},
		{"exit status", []string{"web-1", "exit 7"}, "", 7, "", ""},
		{"stdout and stderr apart", []string{"web-1", "echo out; echo err >&2"}, "", 0, "out\n", "err\n"},
		{"quoting kept", []string{"web-1", "printf '%s|' 'a  b' c"}, "", 0, "a  b|c|", ""},
		{"login name names the target", []string{"echo via-login-name"}, "web-1@127.0.0.1", 0, "via-login-name\n", ""},
		{"target CA certificate", []string{"web-ca", "echo ca-ok"}, "", 0, "ca-ok\n", ""},
		{"env allow-list", []string{"web-1", "echo LANG=$LANG EVIL=$EVIL"}, "", 0, "LANG=C.UTF-8 EVIL=\n", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := *w.client
			if c.host != "" {
				cl.Host = c.host
			}
			cl.ExtraOpts = []string{"-o", "SendEnv=LANG EVIL"}
			cmd := cl.Command(context.Background(), c.args...)
			cmd.Env = append(cmd.Env, "LANG=C.UTF-8", "EVIL=1")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			_ = cmd.Run()
			if got := cmd.ProcessState.ExitCode(); got != c.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", got, c.wantCode, stderr.String())
			}
			if stdout.String() != c.wantStdout {
				t.Errorf("stdout %q, want %q", stdout.String(), c.wantStdout)
			}
			if !strings.Contains(stderr.String(), c.wantStderr) || (c.wantStderr == "" && stderr.Len() != 0 && c.wantCode == 0) {
				t.Errorf("stderr %q, want %q", stderr.String(), c.wantStderr)
			}
		})
	}
}

func TestStdinEOFReachesTarget(t *testing.T) {
	w := newWorld(t, worldOpts{})
	cmd := w.client.Command(context.Background(), "web-1", "wc -c")
	cmd.Stdin = strings.NewReader(strings.Repeat("x", 100000))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("wc through bastion: %v", err)
	}
	if strings.TrimSpace(string(out)) != "100000" {
		t.Fatalf("target read %q bytes, want 100000", out)
	}
}

func TestInteractiveShellAndRecording(t *testing.T) {
	w := newWorld(t, worldOpts{})
	p := w.client.RunPTY(t, 100, 30, "-t", "web-1")
	p.Send("stty size; echo TERM=$TERM\r")
	p.Expect(t, `30 100`, 10*time.Second)
	p.Expect(t, `TERM=\S+`, 5*time.Second)
	if err := p.Resize(120, 40); err != nil {
		t.Fatal(err)
	}
	// The resize is not acknowledged; poll until the shell sees it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.Send("stty size\r")
		out := p.Expect(t, `\d+ \d+`, 5*time.Second)
		if strings.Contains(out, "40 120") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("resize never reached the target; last %q", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.Send("printf 'multi-byte: \\342\\202\\254 done\\n'\r")
	p.Expect(t, "multi-byte: € done", 5*time.Second)
	p.Send("exit 3\r")
	code, err := p.Wait(10 * time.Second)
	if err != nil || code != 3 {
		t.Fatalf("interactive exit: code %d err %v; output %q", code, err, p.Output())
	}

	m := w.lastSession(t)
	if m.User != "alice" || m.Target != "web-1" || m.State != recorder.StateClosed || m.ExitStatus == nil || *m.ExitStatus != 3 {
		t.Fatalf("session row %+v", m)
	}
	cast := w.recording(t, m.ID)
	dec := recorder.NewDecoder(strings.NewReader(cast))
	h, err := dec.Header()
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != 2 || h.Width != 100 || h.Height != 30 || h.Env["TERM"] == "" || !strings.Contains(h.Title, "alice") || !strings.Contains(h.Title, "web-1") {
		t.Fatalf("header %+v", h)
	}
	var out strings.Builder
	var resized, entered, left bool
	for {
		ev, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Type {
		case "o":
			out.WriteString(ev.Data)
		case "r":
			resized = resized || ev.Data == "120x40"
		case "m":
			entered = entered || ev.Data == "enter web-1"
			left = left || strings.HasPrefix(ev.Data, "leave web-1")
		case "i":
			t.Errorf("input recorded although recording.input is false")
		}
	}
	if !resized || !entered || !left {
		t.Errorf("resize %v enter %v leave %v in recording", resized, entered, left)
	}
	if !strings.Contains(out.String(), "multi-byte: € done") || !strings.Contains(out.String(), "40 120") {
		t.Errorf("recording output lacks what the client saw: %q", out.String())
	}

	// asciinema itself accepts the export.
	if bin, err := exec.LookPath("asciinema"); err == nil {
		f := filepath.Join(t.TempDir(), "s.cast")
		if _, errOut, code := w.bastion("export", m.ID, "-o", f); code != 0 {
			t.Fatalf("export -o: %s", errOut)
		}
		// asciinema cat insists on a terminal.
		catOut, err := runInPTY(exec.Command(bin, "cat", f))
		if err != nil || !strings.Contains(string(catOut), "multi-byte: € done") {
			t.Fatalf("asciinema cat: %v\n%s", err, catOut)
		}
	} else if os.Getenv("CI") != "" {
		t.Fatalf("asciinema missing in CI: make deps installs it")
	}
}

func TestRefusals(t *testing.T) {
	w := newWorld(t, worldOpts{})
	now := time.Now()
	otherCA := mustSigner(t, w.dir, "other_ca")

	type cert struct {
		name   string
		make   func(t *testing.T, key string) // writes key-cert.pub
		banner string
	}
	signWith := func(ca gossh.Signer, mutate func(*gossh.Certificate)) func(t *testing.T, key string) {
		return func(t *testing.T, key string) {
			pub := readPub(t, key+".pub")
			c := &gossh.Certificate{Key: pub, Serial: 9999, CertType: gossh.UserCert, KeyId: "user=alice serial=9999",
				ValidPrincipals: []string{"alice"}, ValidAfter: uint64(now.Add(-time.Minute).Unix()), ValidBefore: uint64(now.Add(time.Hour).Unix()),
				Permissions: gossh.Permissions{Extensions: map[string]string{"permit-pty": "", keys.GroupsExtension: "sre"}}}
			mutate(c)
			if err := c.SignCert(strings.NewReader(strings.Repeat("r", 1<<16)), ca); err != nil {
				t.Fatal(err)
			}
			writeFile(t, key+"-cert.pub", string(keys.AuthorizedKeyLine(c)))
		}
	}
	cases := []cert{
		{"unknown CA", signWith(otherCA, func(*gossh.Certificate) {}), "not issued by this bastion"},
		{"expired", signWith(w.auth.userCA, func(c *gossh.Certificate) {
			c.ValidAfter, c.ValidBefore = uint64(now.Add(-3*time.Hour).Unix()), uint64(now.Add(-2*time.Hour).Unix())
		}), "expired"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key, _ := testharness.KeyPair(t, t.TempDir(), "ed25519")
			c.make(t, key)
			cl := *w.client
			cl.KeyFile, cl.CertFile = key, key+"-cert.pub"
			res := cl.Run(t, "whoami")
			if res.ExitCode != 255 || !strings.Contains(strings.ToLower(res.Stderr), strings.ToLower(c.banner)) {
				t.Fatalf("exit %d stderr %q; want refusal with %q", res.ExitCode, res.Stderr, c.banner)
			}
		})
	}
	// OpenSSH will not offer these at all, so a Go client presents them:
	// the bastion must refuse them itself.
	goClientCases := []struct {
		name, kind string
		mutate     func(*gossh.Certificate)
		banner     string
	}{
		{"weak key", "rsa1024", func(*gossh.Certificate) {}, "too weak"},
		{"host certificate", "ed25519", func(c *gossh.Certificate) { c.CertType = gossh.HostCert }, "host certificate"},
	}
	for _, c := range goClientCases {
		t.Run(c.name, func(t *testing.T) {
			key, _ := testharness.KeyPair(t, t.TempDir(), c.kind)
			signWith(w.auth.userCA, c.mutate)(t, key)
			banner, err := w.goClientLogin(t, key)
			if err == nil {
				t.Fatalf("%s got in", c.name)
			}
			if !strings.Contains(banner, c.banner) {
				t.Fatalf("banner %q, want %q", banner, c.banner)
			}
		})
	}
	t.Run("plain key", func(t *testing.T) {
		key, _ := testharness.KeyPair(t, t.TempDir(), "ed25519")
		cl := *w.client
		cl.KeyFile, cl.CertFile = key, ""
		cl.ExtraOpts = []string{"-o", "BatchMode=no", "-o", "KbdInteractiveAuthentication=yes", "-o", "PasswordAuthentication=no"}
		res := cl.Run(t, "whoami")
		if res.ExitCode != 255 || !strings.Contains(res.Stderr, "only certificates") {
			t.Fatalf("plain key: %+v", res)
		}
	})
	t.Run("revoked serial", func(t *testing.T) {
		key, _ := testharness.KeyPair(t, t.TempDir(), "ed25519")
		w.sign("alice", "sre", "1h", key)
		cl := *w.client
		cl.KeyFile, cl.CertFile = key, key+"-cert.pub"
		if res := cl.Run(t, "whoami"); res.ExitCode != 0 {
			t.Fatalf("fresh certificate refused: %+v", res)
		}
		serial := readCert(t, key+"-cert.pub").Serial
		if _, errOut, code := w.bastion("revoke", "--serial", fmt.Sprint(serial)); code != 0 {
			t.Fatalf("revoke: %s", errOut)
		}
		res := cl.Run(t, "whoami")
		if res.ExitCode != 255 || !strings.Contains(res.Stderr, "revoked") {
			t.Fatalf("revoked certificate: %+v", res)
		}
	})
	t.Run("failures are in the audit trail", func(t *testing.T) {
		out, errOut, code := w.bastion("audit", "--type", "auth.failure", "--json")
		for _, reason := range []string{"unknown-authority", "expired", "revoked", "not-certificate"} {
			if code != 0 || !strings.Contains(out, `"reason":"`+reason+`"`) {
				t.Errorf("no auth.failure with reason %s: %s %s", reason, out, errOut)
			}
		}
	})
	t.Run("ttl above max_ttl", func(t *testing.T) {
		_, errOut, code := w.bastion("keys", "sign", "--user", "alice", "--ttl", "48h", w.userKey+".pub")
		if code == 0 || !strings.Contains(errOut, "max") {
			t.Fatalf("48h certificate issued (exit %d): %s", code, errOut)
		}
	})
}

func TestTargetHostKeyChecked(t *testing.T) {
	w := newWorld(t, worldOpts{})
	for _, c := range []struct{ target, want string }{
		{"web-unknown", "not known"},
		{"web-changed", "HOST KEY MISMATCH"},
		{"web-down", "connection to the target failed"},
	} {
		t.Run(c.target, func(t *testing.T) {
			res := w.client.Run(t, c.target, "echo should-not-run")
			if res.ExitCode == 0 || strings.Contains(res.Stdout, "should-not-run") || !strings.Contains(res.Stderr, c.want) {
				t.Fatalf("%+v", res)
			}
		})
	}
}

func TestForwardingRefused(t *testing.T) {
	w := newWorld(t, worldOpts{})
	t.Run("local (direct-tcpip)", func(t *testing.T) {
		res := w.client.Run(t, "-W", w.sshd.Addr)
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, "port forwarding is disabled") {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("remote", func(t *testing.T) {
		res := w.client.Run(t, "-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:9", "whoami")
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, "forwarding failed") {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("agent", func(t *testing.T) {
		sock := startAgent(t)
		cl := *w.client
		cl.ExtraOpts = []string{"-o", "IdentityAgent=" + sock, "-o", "ForwardAgent=yes"}
		res := cl.Run(t, "whoami")
		if !strings.Contains(res.Stderr, "agent forwarding is disabled") {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("x11", func(t *testing.T) {
		cl := *w.client
		cl.ExtraOpts = []string{"-o", "ForwardX11=yes", "-o", "XAuthLocation=/nonexistent"}
		cmd := cl.Command(context.Background(), "whoami")
		cmd.Env = append(cmd.Env, "DISPLAY=127.0.0.1:99")
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), "X11 forwarding request failed") {
			t.Fatalf("%s", out)
		}
	})
	t.Run("subsystem", func(t *testing.T) {
		res := w.client.Run(t, "-s", "sftp")
		if res.ExitCode == 0 {
			t.Fatalf("%+v", res)
		}
	})
}

func TestTargetListAndAccess(t *testing.T) {
	w := newWorld(t, worldOpts{})
	res := w.client.Run(t)
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, "web-1") || strings.Contains(res.Stdout, "db-secret") {
		t.Fatalf("target list: %+v", res)
	}
	res = w.client.Run(t, "db-secret")
	if res.ExitCode == 0 || strings.Contains(res.Stdout, "secret") || !strings.Contains(res.Stderr, "no target") {
		t.Fatalf("target outside the role reached: %+v", res)
	}
	res = w.client.Run(t, "whoami")
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, "alice") || !strings.Contains(res.Stdout, "sre") {
		t.Fatalf("whoami: %+v", res)
	}
}

func TestMenuWithPTY(t *testing.T) {
	w := newWorld(t, worldOpts{extra: "motd: \"Authorised use only.\"\n"})
	p := w.client.RunPTY(t, 80, 24)
	p.Expect(t, `Authorised use only\.`, 10*time.Second)
	p.Expect(t, `\d+/\d+`, 10*time.Second) // the filter line's match count
	p.Expect(t, `web-1`, 5*time.Second)
	p.Send("web-1\r")
	p.Send("echo in-target\r")
	p.Expect(t, `in-target`, 10*time.Second)
	p.Send("exit 4\r")
	p.Expect(t, `web-1 ended with exit status 4`, 10*time.Second)
	p.Send("q")
	if code, err := p.Wait(10 * time.Second); err != nil || code != 0 {
		t.Fatalf("menu exit %d %v", code, err)
	}
	m := w.lastSession(t)
	if m.Target != "web-1" {
		t.Fatalf("menu session row names target %q, want web-1", m.Target)
	}
	cast := w.recording(t, m.ID)
	if !strings.Contains(cast, `"m","enter web-1"`) || !strings.Contains(cast, `"m","leave web-1 exit=4"`) || !strings.Contains(cast, "in-target") {
		t.Fatalf("menu recording lacks markers or output:\n%s", cast)
	}
}

func TestExitSignalPassedBack(t *testing.T) {
	w := newWorld(t, worldOpts{})
	key, _ := testharness.KeyPair(t, t.TempDir(), "ed25519")
	w.sign("alice", "sre", "1h", key)
	c := w.goClient(t, key)
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	err = sess.Run("web-1 kill -TERM $$")
	ee, ok := err.(*gossh.ExitError)
	if !ok || ee.Signal() != "TERM" {
		t.Fatalf("want exit-signal TERM, got %v", err)
	}
}

// goClient logs in as alice with key and its certificate using x/crypto's
// client, for what the OpenSSH client cannot be made to do.
func (w *world) goClient(t *testing.T, key string) *gossh.Client {
	t.Helper()
	c, err := w.dialGo(t, key, nil)
	if err != nil {
		t.Fatalf("go client login: %v", err)
	}
	return c
}

func (w *world) goClientLogin(t *testing.T, key string) (string, error) {
	var banner strings.Builder
	c, err := w.dialGo(t, key, func(msg string) error { banner.WriteString(msg); return nil })
	if err == nil {
		_ = c.Close()
	}
	return banner.String(), err
}

func (w *world) dialGo(t *testing.T, key string, onBanner gossh.BannerCallback) (*gossh.Client, error) {
	t.Helper()
	b, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	cert := readCert(t, key+"-cert.pub")
	cs, err := gossh.NewCertSigner(cert, signer)
	if err != nil {
		t.Fatal(err)
	}
	return gossh.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", w.port), &gossh.ClientConfig{
		User: "alice", Auth: []gossh.AuthMethod{gossh.PublicKeys(cs)},
		HostKeyCallback: gossh.FixedHostKey(w.auth.hostKey.PublicKey()), HostKeyAlgorithms: []string{gossh.KeyAlgoED25519},
		BannerCallback: onBanner, Timeout: 10 * time.Second,
	})
}

// runInPTY runs cmd with a terminal as its stdin/stdout and returns what it
// printed.
func runInPTY(cmd *exec.Cmd) ([]byte, error) {
	f, err := pty.Start(cmd)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&out, f); close(copied) }()
	err = cmd.Wait()
	select {
	case <-copied:
	case <-time.After(2 * time.Second):
	}
	return out.Bytes(), err
}

// startAgent runs an ssh-agent on a socket in a temp dir for the test.
func startAgent(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("ssh-agent")
	if err != nil {
		t.Skip("ssh-agent not installed")
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command(bin, "-D", "-a", sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		if time.Now().After(deadline) {
			t.Fatal("ssh-agent socket did not appear")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// helpers

func mustRoot(t *testing.T, dir string) *os.Root {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustSigner(t *testing.T, dir, name string) gossh.Signer {
	t.Helper()
	r := mustRoot(t, dir)
	defer r.Close()
	s, err := keys.LoadOrCreateSigner(r, name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readPub(t *testing.T, path string) gossh.PublicKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, _, _, _, err := gossh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func readCert(t *testing.T, path string) *gossh.Certificate {
	t.Helper()
	c, ok := readPub(t, path).(*gossh.Certificate)
	if !ok {
		t.Fatalf("%s is not a certificate", path)
	}
	return c
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func waitPort(t *testing.T, port int, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("server exited early: %v", err)
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("bastion did not listen on %d within 10s", port)
}
