package testharness

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// testTimeout bounds every wait in these tests. It is a ceiling, not a
// sleep: generous, because CI runs all packages at once on two cores.
const testTimeout = 20 * time.Second

func TestFreePortIsBindable(t *testing.T) {
	port := FreePort(t)
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("bind the port FreePort returned (%d): %v", port, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestKeyPair(t *testing.T) {
	keygen := requireTool(t, "ssh-keygen")
	tests := []struct {
		kind     string
		wantType string
		wantBits int // RSA modulus size; 0 for other kinds
	}{
		{"ed25519", ssh.KeyAlgoED25519, 0},
		{"ecdsa", ssh.KeyAlgoECDSA256, 0},
		{"rsa2048", ssh.KeyAlgoRSA, 2048},
		{"rsa1024", ssh.KeyAlgoRSA, 1024},
	}
	if len(tests) != len(KeyKinds()) {
		t.Fatalf("table covers %d kinds, KeyKinds has %d", len(tests), len(KeyKinds()))
	}
	dir := t.TempDir()
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			priv, pub := KeyPair(t, dir, tt.kind)
			if seen[priv] {
				t.Fatalf("KeyPair reused file %s", priv)
			}
			seen[priv] = true
			if got := pub.Type(); got != tt.wantType {
				t.Errorf("type = %s, want %s", got, tt.wantType)
			}
			if tt.wantBits > 0 {
				rk := pub.(ssh.CryptoPublicKey).CryptoPublicKey().(*rsa.PublicKey)
				if got := rk.N.BitLen(); got != tt.wantBits {
					t.Errorf("RSA bits = %d, want %d", got, tt.wantBits)
				}
			}
			fi, err := os.Stat(priv)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("private key mode = %v, want 0600", fi.Mode().Perm())
			}
			pem, err := os.ReadFile(priv)
			if err != nil {
				t.Fatal(err)
			}
			signer, err := ssh.ParsePrivateKey(pem)
			if err != nil {
				t.Fatalf("parse private key: %v", err)
			}
			if !bytes.Equal(signer.PublicKey().Marshal(), pub.Marshal()) {
				t.Error("private key file does not match the returned public key")
			}
			line, err := os.ReadFile(priv + ".pub")
			if err != nil {
				t.Fatal(err)
			}
			filePub, _, _, _, err := ssh.ParseAuthorizedKey(line)
			if err != nil {
				t.Fatalf("parse %s.pub: %v", priv, err)
			}
			if !bytes.Equal(filePub.Marshal(), pub.Marshal()) {
				t.Error(".pub file does not match the returned public key")
			}
			// OpenSSH itself must accept the private key file.
			out, err := exec.Command(keygen, "-y", "-f", priv).Output()
			if err != nil {
				t.Fatalf("ssh-keygen -y -f %s: %v", priv, err)
			}
			kgPub, _, _, _, err := ssh.ParseAuthorizedKey(out)
			if err != nil || !bytes.Equal(kgPub.Marshal(), pub.Marshal()) {
				t.Errorf("ssh-keygen derives %q, want %q (err %v)", out, ssh.MarshalAuthorizedKey(pub), err)
			}
		})
	}
}

func TestGenerateKeyRejectsUnknownKind(t *testing.T) {
	for _, kind := range []string{"", "dsa", "rsa512", "ED25519"} {
		if _, err := generateKey(kind); err == nil {
			t.Errorf("generateKey(%q) succeeded, want an error", kind)
		}
	}
}

func TestSSHDRunsCommandWithExitCode(t *testing.T) {
	t.Parallel()
	s := StartSSHD(t, SSHDOptions{})
	if s.Addr != "127.0.0.1:"+strconv.Itoa(s.Port) {
		t.Errorf("Addr = %q, Port = %d", s.Addr, s.Port)
	}
	r := s.Client(t).Run(t, "echo hello; exit 3")
	if r.Stdout != "hello\n" || r.ExitCode != 3 {
		t.Fatalf("got stdout %q, exit %d, want \"hello\\n\", 3; stderr %q\nsshd log:\n%s", r.Stdout, r.ExitCode, r.Stderr, s.Log())
	}
	if want := "Accepted publickey for " + s.User; !strings.Contains(s.Log(), want) {
		t.Errorf("sshd log lacks %q:\n%s", want, s.Log())
	}
}

// The bastion reaches targets with x/crypto, not the ssh binary: the files
// the harness writes must work for it too.
func TestSSHDWithGoClient(t *testing.T) {
	t.Parallel()
	s := StartSSHD(t, SSHDOptions{})
	key, err := os.ReadFile(s.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	hostKeys, err := knownhosts.New(s.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{
		User:            s.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKeys,
		Timeout:         testTimeout,
	})
	if err != nil {
		t.Fatalf("x/crypto dial %s: %v", s.Addr, err)
	}
	defer conn.Close()
	sess, err := conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.Output("echo go-client")
	if err != nil || string(out) != "go-client\n" {
		t.Fatalf("output %q, err %v", out, err)
	}
}

// The client must use only what it is given: no default keys, no agent, no
// host trusted on first use.
func TestSSHClientIsolation(t *testing.T) {
	t.Parallel()
	s := StartSSHD(t, SSHDOptions{})
	otherKey, _ := KeyPair(t, t.TempDir(), "ed25519")
	tests := []struct {
		name       string
		edit       func(c *SSHClient)
		wantStderr string
	}{
		{"unknown host key", func(c *SSHClient) { c.KnownHostsFile = "" }, "Host key verification failed"},
		{"key not authorized", func(c *SSHClient) { c.KeyFile = otherKey }, "Permission denied"},
		{"no key", func(c *SSHClient) { c.KeyFile = "" }, "Permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := s.Client(t)
			tt.edit(c)
			r := c.Run(t, "echo should-not-run")
			if r.ExitCode != 255 || r.Stdout != "" || !strings.Contains(r.Stderr, tt.wantStderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 255, nothing, %q", r.ExitCode, r.Stdout, r.Stderr, tt.wantStderr)
			}
		})
	}
}

func TestRunPTYHasTerminal(t *testing.T) {
	t.Parallel()
	s := StartSSHD(t, SSHDOptions{})
	p := s.Client(t).RunPTY(t, 80, 24, "-t", "tty")
	p.Expect(t, `/dev/pts/\d+`, testTimeout)
	code, err := p.Wait(testTimeout)
	if err != nil || code != 0 {
		t.Fatalf("exit %d, err %v; output %q", code, err, p.Output())
	}
}

func TestRunPTYInteractiveShell(t *testing.T) {
	t.Parallel()
	s := StartSSHD(t, SSHDOptions{})
	p := s.Client(t).RunPTY(t, 80, 24)
	p.Send("echo $((6*7))x\r")
	p.Expect(t, `42x`, testTimeout)
	p.Send("exit 5\r")
	code, err := p.Wait(testTimeout)
	if err != nil || code != 5 {
		t.Fatalf("exit %d, err %v, want 5; output %q", code, err, p.Output())
	}
}

func TestRunPTYResize(t *testing.T) {
	t.Parallel()
	s := StartSSHD(t, SSHDOptions{})
	p := s.Client(t).RunPTY(t, 80, 24, "-t", "stty size; while read l; do stty size; done")
	p.Expect(t, `24 80\r\n`, testTimeout)
	if err := p.Resize(100, 30); err != nil {
		t.Fatal(err)
	}
	// The window change and the keystroke travel separately; ask again
	// until the remote side reports the new size.
	deadline := time.Now().Add(testTimeout)
	for {
		p.Send("\r")
		if p.Expect(t, `\d+ \d+\r\n`, testTimeout) == "30 100\r\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("remote size never became 30x100; output %q", p.Output())
		}
	}
	p.Send("\x04") // EOF ends the read loop
	if code, err := p.Wait(testTimeout); err != nil || code != 0 {
		t.Fatalf("exit %d, err %v; output %q", code, err, p.Output())
	}
}

func TestExpectAdvancesPastMatches(t *testing.T) {
	t.Parallel()
	s := StartSSHD(t, SSHDOptions{})
	p := s.Client(t).RunPTY(t, 80, 24, "-t", "echo a1; echo a2; echo a3")
	for _, want := range []string{"a1", "a2", "a3"} {
		if got := p.Expect(t, `a\d`, testTimeout); got != want {
			t.Errorf("Expect returned %q, want %q", got, want)
		}
	}
	if _, err := p.Wait(testTimeout); err != nil {
		t.Fatal(err)
	}
}

func TestTrustedUserCAKeys(t *testing.T) {
	t.Parallel()
	ca := newSigner(t)
	otherCA := newSigner(t)
	s := StartSSHD(t, SSHDOptions{TrustedUserCAKeys: []ssh.PublicKey{ca.PublicKey()}})
	now := time.Now()
	tests := []struct {
		name       string
		signer     ssh.Signer
		principals []string
		after      time.Time
		before     time.Time
		wantOK     bool
	}{
		{"one-minute cert", ca, []string{s.User}, now.Add(-time.Minute), now.Add(time.Minute), true},
		{"expired", ca, []string{s.User}, now.Add(-2 * time.Hour), now.Add(-time.Hour), false},
		{"not yet valid", ca, []string{s.User}, now.Add(time.Hour), now.Add(2 * time.Hour), false},
		{"other principal", ca, []string{"not-" + s.User}, now.Add(-time.Minute), now.Add(time.Minute), false},
		{"untrusted CA", otherCA, []string{s.User}, now.Add(-time.Minute), now.Add(time.Minute), false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			key, pub := KeyPair(t, dir, "ed25519")
			cert := &ssh.Certificate{
				Key:             pub,
				Serial:          uint64(i + 1),
				CertType:        ssh.UserCert,
				KeyId:           "testharness-" + tt.name,
				ValidPrincipals: tt.principals,
				ValidAfter:      uint64(tt.after.Unix()),
				ValidBefore:     uint64(tt.before.Unix()),
				Permissions:     ssh.Permissions{Extensions: map[string]string{"permit-pty": ""}},
			}
			if err := cert.SignCert(rand.Reader, tt.signer); err != nil {
				t.Fatal(err)
			}
			certFile := filepath.Join(dir, "user-cert.pub")
			if err := os.WriteFile(certFile, ssh.MarshalAuthorizedKey(cert), 0o644); err != nil {
				t.Fatal(err)
			}
			c := s.Client(t)
			c.KeyFile, c.CertFile = key, certFile
			r := c.Run(t, "echo in")
			if got := r.ExitCode == 0 && r.Stdout == "in\n"; got != tt.wantOK {
				t.Fatalf("logged in = %v, want %v (exit %d, stdout %q, stderr %q)\nsshd log:\n%s",
					got, tt.wantOK, r.ExitCode, r.Stdout, r.Stderr, s.Log())
			}
		})
	}
	// The key itself is in no authorized_keys: only the CA let it in.
	if !strings.Contains(s.Log(), "Accepted certificate ID \"testharness-one-minute cert\"") {
		t.Errorf("sshd log does not show the certificate login:\n%s", s.Log())
	}
}

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	priv, _ := KeyPair(t, t.TempDir(), "ed25519")
	b, err := os.ReadFile(priv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestExtraConfigOverridesDefaults(t *testing.T) {
	t.Parallel()
	s := StartSSHD(t, SSHDOptions{ExtraConfig: "AllowTcpForwarding yes\nMatch User nobody\n\tX11Forwarding yes\n"})
	cfg, err := os.ReadFile(s.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cfg), "AllowTcpForwarding no") {
		t.Errorf("default kept despite the override:\n%s", cfg)
	}
	if !strings.Contains(string(cfg), "X11Forwarding no") {
		t.Errorf("a keyword set only inside Match dropped the default:\n%s", cfg)
	}
	// sshd -T prints the effective config: the override must win.
	bin := requireTool(t, "sshd")
	out, err := exec.Command(bin, "-T", "-f", s.ConfigFile).CombinedOutput()
	if err != nil {
		t.Fatalf("sshd -T: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "allowtcpforwarding yes") {
		t.Errorf("effective config lacks allowtcpforwarding yes:\n%s", out)
	}
}

func TestTopLevelKeywords(t *testing.T) {
	tests := []struct {
		cfg  string
		want []string
	}{
		{"", nil},
		{"# AllowTcpForwarding yes", nil},
		{"AllowTcpForwarding yes\n  loglevel DEBUG3", []string{"allowtcpforwarding", "loglevel"}},
		{"MaxStartups=5", []string{"maxstartups"}},
		{"UseDNS no\nMatch User x\nPrintMotd yes", []string{"usedns"}},
	}
	for _, tt := range tests {
		got := topLevelKeywords(tt.cfg)
		if len(got) != len(tt.want) {
			t.Errorf("topLevelKeywords(%q) = %v, want %v", tt.cfg, got, tt.want)
			continue
		}
		for _, k := range tt.want {
			if !got[k] {
				t.Errorf("topLevelKeywords(%q) = %v, want %v", tt.cfg, got, tt.want)
			}
		}
	}
}

func FuzzTopLevelKeywords(f *testing.F) {
	for _, seed := range []string{"", "A b\nMatch all\nC d", "X=1\n#y\n\t z  w", "match\nfoo bar"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, cfg string) {
		for k := range topLevelKeywords(cfg) {
			if k == "match" || k == "" || k != strings.ToLower(k) || strings.ContainsAny(k, "= \t\n") || strings.HasPrefix(k, "#") {
				t.Errorf("topLevelKeywords(%q) returned keyword %q", cfg, k)
			}
		}
	})
}

func TestArgs(t *testing.T) {
	c := &SSHClient{Bin: "/usr/bin/ssh", Host: "127.0.0.1", Port: 2222}
	tests := []struct {
		args     []string
		wantOpts []string // what goes between the harness options and Host
		wantCmd  []string
	}{
		{nil, nil, nil},
		{[]string{"tty"}, nil, []string{"tty"}},
		{[]string{"-t", "tty"}, []string{"-t"}, []string{"tty"}},
		{[]string{"-tt", "-o", "SendEnv=LANG", "echo", "-n"}, []string{"-tt", "-o", "SendEnv=LANG"}, []string{"echo", "-n"}},
		{[]string{"-oX=y", "cmd"}, []string{"-oX=y"}, []string{"cmd"}},
		{[]string{"--", "-x"}, nil, []string{"-x"}},
		{[]string{"-l"}, []string{"-l"}, nil},
	}
	base := len(c.Args())
	for _, tt := range tests {
		argv := c.Args(tt.args...)
		if argv[0] != c.Bin {
			t.Fatalf("argv[0] = %q", argv[0])
		}
		hostAt := base - 1 + len(tt.wantOpts)
		if got := argv[base-1 : hostAt]; !equal(got, tt.wantOpts) {
			t.Errorf("Args(%q): options %q, want %q", tt.args, got, tt.wantOpts)
		}
		if argv[hostAt] != c.Host {
			t.Errorf("Args(%q): %q at the host's place in %q", tt.args, argv[hostAt], argv)
		}
		if got := argv[hostAt+1:]; !equal(got, tt.wantCmd) {
			t.Errorf("Args(%q): command %q, want %q", tt.args, got, tt.wantCmd)
		}
	}
}

func FuzzArgs(f *testing.F) {
	for _, seed := range []string{"", "tty", "-t\x00tty", "-o\x00X=y\x00cmd", "--\x00-x", "-l"} {
		f.Add(seed)
	}
	// The host cannot occur in args, which are split at NUL.
	const host = "HO\x00ST"
	c := &SSHClient{Bin: "/usr/bin/ssh", Host: host, Port: 22}
	base := len(c.Args())
	f.Fuzz(func(t *testing.T, joined string) {
		var args []string
		if joined != "" {
			args = strings.Split(joined, "\x00")
		}
		argv := c.Args(args...)
		// Everything given comes out once, in order, around the host
		// (a "--" separator is consumed).
		var rest []string
		rest = append(rest, argv[base-1:]...)
		hostAt := -1
		for i, a := range rest {
			if a == host {
				hostAt = i
				break
			}
		}
		if hostAt < 0 {
			t.Fatalf("Args(%q) lost the host: %q", args, argv)
		}
		given := make([]string, 0, len(args))
		for i, a := range args {
			if a == "--" && i == hostAt {
				continue
			}
			given = append(given, a)
		}
		got := append(append([]string(nil), rest[:hostAt]...), rest[hostAt+1:]...)
		if !equal(got, given) {
			t.Fatalf("Args(%q) = %q around the host, want %q", args, rest, given)
		}
		// No remote command word may start with "-" unless "--" or a
		// non-option word came before it.
		if hostAt > 0 && !strings.HasPrefix(rest[0], "-") {
			t.Fatalf("Args(%q) put the non-option %q before the host", args, rest[0])
		}
	})
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		line      string
		ok        bool
		ppid      int
		state     byte
		startTick uint64
	}{
		{statLine(10, "sshd", 'S', 1, 12345), true, 1, 'S', 12345},
		{statLine(11, "a) (b c", 'Z', 10, 7), true, 10, 'Z', 7},
		{"12 (x) S 1 2", false, 0, 0, 0},
		{"no paren", false, 0, 0, 0},
		{"", false, 0, 0, 0},
	}
	for _, tt := range tests {
		st, ok := parseStat([]byte(tt.line))
		if ok != tt.ok || st.ppid != tt.ppid || st.state != tt.state || st.start != tt.startTick {
			t.Errorf("parseStat(%q) = %+v, %v; want ppid %d state %c start %d, %v", tt.line, st, ok, tt.ppid, tt.state, tt.startTick, tt.ok)
		}
	}
	// And a real one: our own process.
	st, ok := readStat(os.Getpid())
	if !ok || st.ppid != os.Getppid() || !st.alive() {
		t.Errorf("readStat(self) = %+v, %v; want ppid %d, alive", st, ok, os.Getppid())
	}
}

// statLine formats a /proc/<pid>/stat line as Linux 6.x writes it.
func statLine(pid int, comm string, state byte, ppid int, start uint64) string {
	// Fields 5..21 are filler here; 22 is the start time; more follow.
	fill := strings.Repeat(" 0", 17)
	return fmt.Sprintf("%d (%s) %c %d%s %d 0 0 0\n", pid, comm, state, ppid, fill, start)
}

func FuzzParseStat(f *testing.F) {
	f.Add("sshd", byte('S'), 1, uint64(100))
	f.Add("a) (b", byte('R'), 0, uint64(0))
	f.Add("", byte('Z'), 99999, uint64(1<<63))
	f.Fuzz(func(t *testing.T, comm string, state byte, ppid int, start uint64) {
		// Arbitrary bytes must never panic.
		parseStat([]byte(comm))
		if ppid < 0 || !(state >= 'A' && state <= 'Z' || state >= 'a' && state <= 'z') {
			return
		}
		line := statLine(42, comm, state, ppid, start)
		st, ok := parseStat([]byte(line))
		if !ok || st.ppid != ppid || st.state != state || st.start != start {
			t.Fatalf("parseStat(%q) = %+v, %v", line, st, ok)
		}
	})
}

// Stop must end sshd and every process its sessions started, including
// ones that left sshd's process tree.
func TestStopLeavesNoProcesses(t *testing.T) {
	t.Parallel()
	s := StartSSHD(t, SSHDOptions{})
	pidText, err := os.ReadFile(s.pidFile())
	if err != nil {
		t.Fatalf("read pid file: %v", err)
	}
	if strings.TrimSpace(string(pidText)) != strconv.Itoa(s.PID) {
		t.Fatalf("pid file says %q, PID is %d", pidText, s.PID)
	}

	c := s.Client(t)
	// A PTY session with a process that escaped via setsid and whose
	// parent exited, so that only the session tag still finds it.
	p := c.RunPTY(t, 80, 24, "-t", "(setsid sleep 303 </dev/null >/dev/null 2>&1 &); echo ready; sleep 304")
	p.Expect(t, "ready", testTimeout)
	// And a session without a PTY.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	plain := c.Command(ctx, "echo ready; exec sleep 305")
	stdout, err := plain.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.Start(); err != nil {
		t.Fatal(err)
	}
	plainReady := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n') // an error shows as a missing line
		plainReady <- line
	}()
	select {
	case line := <-plainReady:
		if line != "ready\n" {
			t.Fatalf("plain session printed %q, want \"ready\\n\"", line)
		}
	case <-time.After(testTimeout):
		t.Fatal("plain session did not start")
	}
	plainDone := make(chan error, 1)
	go func() { plainDone <- plain.Wait() }()

	var before []procID
	deadline := time.Now().Add(testTimeout)
	for {
		before = s.processes()
		if hasCmdline(before, "sleep\x00303") && hasCmdline(before, "sleep\x00304") && hasCmdline(before, "sleep\x00305") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("did not find all session processes, found: %s", describe(before))
		}
		time.Sleep(10 * time.Millisecond)
	}

	listener, ok := readStat(s.PID)
	if !ok || !listener.alive() {
		t.Fatalf("sshd pid %d is not running before Stop", s.PID)
	}
	s.Stop()
	if left := liveProcs(append(before, procID{pid: s.PID, start: listener.start})); len(left) != 0 {
		t.Errorf("still running after Stop: %v", left)
	}
	if left := s.processes(); len(left) != 0 {
		t.Errorf("tagged processes after Stop: %v", left)
	}
	// The clients notice their server went away.
	if code, err := p.Wait(testTimeout); err == nil && code == 0 {
		t.Errorf("PTY client exited 0 after its server was killed")
	}
	select {
	case <-plainDone:
	case <-time.After(testTimeout):
		t.Errorf("plain ssh client still runs after its server was killed")
	}
	// Stop again, as t.Cleanup will, is harmless.
	s.Stop()
}

// describe lists processes with their command lines, for failure messages.
func describe(ps []procID) string {
	var b strings.Builder
	for _, p := range ps {
		cmd, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.pid), "cmdline"))
		if err != nil {
			cmd = []byte(err.Error())
		}
		fmt.Fprintf(&b, "\n  %d: %q", p.pid, cmd)
	}
	return b.String()
}

func hasCmdline(ps []procID, want string) bool {
	for _, p := range ps {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p.pid), "cmdline"))
		if err == nil && strings.TrimRight(string(b), "\x00") == want {
			return true
		}
	}
	return false
}

func TestRunInput(t *testing.T) {
	t.Parallel()
	s := StartSSHD(t, SSHDOptions{})
	r := s.Client(t).RunInput(t, "line one\nline two\n", "cat; echo done >&2")
	if r.Stdout != "line one\nline two\n" || r.Stderr != "done\n" || r.ExitCode != 0 {
		t.Fatalf("got %+v", r)
	}
}

// Both ways to trust a host, checked by the real client and by x/crypto.
func TestHostTrust(t *testing.T) {
	t.Parallel()
	hostCA, otherCA := newSigner(t), newSigner(t)
	s := StartSSHD(t, SSHDOptions{HostCA: hostCA})
	if s.HostCert == nil || s.HostCert.SignatureKey == nil ||
		!bytes.Equal(s.HostCert.SignatureKey.Marshal(), hostCA.PublicKey().Marshal()) {
		t.Fatalf("HostCert not signed by the host CA: %+v", s.HostCert)
	}
	dir := t.TempDir()
	otherKey, _ := KeyPair(t, dir, "ed25519")
	otherPub, err := ssh.ParsePrivateKey(mustRead(t, otherKey))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		knownHosts string
		wantOK     bool
	}{
		{"harness file", s.KnownHostsFile, true},
		{"WriteKnownHosts", WriteKnownHosts(t, dir, s.Addr, s.HostKey), true},
		{"WriteKnownHosts other key", WriteKnownHosts(t, dir, s.Addr, otherPub.PublicKey()), false},
		{"host CA", WriteKnownHostsCA(t, dir, knownhosts.Normalize(s.Addr), hostCA.PublicKey()), true},
		{"other host CA", WriteKnownHostsCA(t, dir, knownhosts.Normalize(s.Addr), otherCA.PublicKey()), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := s.Client(t)
			c.KnownHostsFile = tt.knownHosts
			r := c.Run(t, "echo in")
			if got := r.ExitCode == 0 && r.Stdout == "in\n"; got != tt.wantOK {
				t.Errorf("ssh logged in = %v, want %v (stderr %q)", got, tt.wantOK, r.Stderr)
			}
			cb, err := knownhosts.New(tt.knownHosts)
			if err != nil {
				t.Fatal(err)
			}
			signer, err := ssh.ParsePrivateKey(mustRead(t, s.ClientKeyFile))
			if err != nil {
				t.Fatal(err)
			}
			cfg := &ssh.ClientConfig{
				User:            s.User,
				Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
				HostKeyCallback: cb,
				Timeout:         testTimeout,
			}
			// x/crypto's knownhosts checks a certificate only against
			// @cert-authority lines, so a client holding a plain key must
			// not ask for the certificate.
			cfg.HostKeyAlgorithms = []string{ssh.KeyAlgoED25519}
			if strings.Contains(tt.name, "CA") {
				cfg.HostKeyAlgorithms = []string{ssh.CertAlgoED25519v01}
			}
			conn, err := ssh.Dial("tcp", s.Addr, cfg)
			if (err == nil) != tt.wantOK {
				t.Errorf("x/crypto dial err = %v, want ok %v", err, tt.wantOK)
			}
			if err == nil {
				if err := conn.Close(); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A port taken between FreePort and sshd's bind is retried with a new one.
func TestStartSSHDRetriesTakenPort(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	calls := 0
	s := startSSHD(t, SSHDOptions{}, func(t testing.TB) int {
		calls++
		if calls == 1 {
			return takenPort
		}
		return FreePort(t)
	})
	if calls != 2 || s.Port == takenPort {
		t.Fatalf("ports asked %d times, listening on %d (taken: %d)", calls, s.Port, takenPort)
	}
	if r := s.Client(t).Run(t, "true"); r.ExitCode != 0 {
		t.Fatalf("login after retry: %+v", r)
	}
}

func TestSSHDVersion(t *testing.T) {
	v := sshdVersion(requireTool(t, "sshd"))
	// Options the harness writes (SetEnv, PermitUserRC) need OpenSSH 7.8+.
	if v[0] < 7 || v[0] == 7 && v[1] < 8 {
		t.Fatalf("sshd version %d.%d: the harness needs OpenSSH 7.8 or newer", v[0], v[1])
	}
	if got := sshdVersion("/nonexistent/sshd"); got != [2]int{} {
		t.Errorf("version of a missing binary = %v, want zeros", got)
	}
}

// TestSSHDSessionHome: sessions run with HOME in the instance's dir, so
// the machine's dotfiles do not run in the tests' shells.
func TestSSHDSessionHome(t *testing.T) {
	t.Parallel()
	s := StartSSHD(t, SSHDOptions{})
	r := s.Client(t).Run(t, `echo "$HOME"`)
	if r.ExitCode != 0 || strings.TrimSpace(r.Stdout) != filepath.Join(s.Dir, "home") {
		t.Fatalf("HOME in a session: exit %d %q %s; want %s", r.ExitCode, r.Stdout, r.Stderr, filepath.Join(s.Dir, "home"))
	}
}
