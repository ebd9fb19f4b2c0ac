package testharness

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Bounds on how long the harness waits for sshd. They are ceilings, not
// sleeps: each wait ends as soon as the awaited thing happens.
const (
	sshdReadyTimeout = 10 * time.Second // port open and banner sent
	sshdStopTimeout  = 5 * time.Second  // SIGTERM to exit, before SIGKILL
	sshdStartTries   = 3                // fresh ports tried when one is taken
)

// tagEnv is set by sshd (SetEnv) in every session it starts, with the
// instance's Dir as value, so that Stop can find the session processes even
// after they have left sshd's process tree (setsid, nohup, reparenting).
const tagEnv = "BASTION_TESTHARNESS_SSHD"

// SSHD is a real OpenSSH sshd running on 127.0.0.1:<free port> from a temp
// dir, stopped by t.Cleanup. It is the SSH target of end-to-end tests: the
// bastion logs in to it with ClientKeyFile and checks it with KnownHostsFile.
type SSHD struct {
	// Addr is "127.0.0.1:port".
	Addr string
	// Port is the loopback port sshd listens on.
	Port int
	// HostKey is sshd's (only) host key, an ed25519 key.
	HostKey ssh.PublicKey
	// HostCert is HostKey's certificate, when SSHDOptions.HostCA signed one.
	HostCert *ssh.Certificate
	// KnownHostsFile lists HostKey for [127.0.0.1]:port, one
	// knownhosts.Line, as ssh-keyscan would write it.
	KnownHostsFile string
	// User is the OS user the target logs you in as: the current user
	// (root in CI), because an unprivileged sshd can log in no one else.
	User string
	// ClientKeyFile is an ed25519 private key (0600), with its public half
	// in ClientKeyFile+".pub" and in the authorized keys: the credential the
	// bastion will hold for this target.
	ClientKeyFile string
	// Dir holds everything: config, keys, pid file and log.
	Dir string
	// ConfigFile is the generated sshd_config, for failure messages.
	ConfigFile string
	// LogFile receives sshd's VERBOSE log (sshd -E); see Log.
	LogFile string
	// PID is the listening sshd's process id (also in Dir/sshd.pid).
	PID int

	t        testing.TB
	cancel   context.CancelFunc
	exited   chan struct{} // closed once the listener has been waited for
	waitErr  error         // the listener's exit, readable after exited
	stopOnce sync.Once
	stopErr  error
}

// SSHDOptions adjusts the target sshd for a test.
type SSHDOptions struct {
	// TrustedUserCAKeys are written to a file named by TrustedUserCAKeys in
	// sshd_config, so that user certificates they sign log in (the
	// bastion's target-CA mode). Principals must include User.
	TrustedUserCAKeys []ssh.PublicKey
	// HostCA, if set, signs a host certificate for HostKey (principals
	// 127.0.0.1 and localhost, valid forever so that no test depends on the
	// clock) that sshd presents as HostCertificate: the target side of
	// host-CA verification.
	HostCA ssh.Signer
	// ExtraConfig is appended to sshd_config. sshd takes the first value of
	// a keyword, so every keyword ExtraConfig sets before its first Match
	// line replaces the harness default instead (e.g. "AllowTcpForwarding
	// yes"). ListenAddress, Port, PidFile and SetEnv stay the harness's:
	// the harness needs them to reach and to stop the server.
	ExtraConfig string
}

// StartSSHD starts an sshd for the test and stops it, and every session
// process it started, in t.Cleanup.
//
// Without sshd the test is skipped with an install hint, but only for a
// developer who is not root; as root, or in CI (CI set), `make deps`
// installs openssh-server, so its absence fails the test.
func StartSSHD(t testing.TB, opt SSHDOptions) *SSHD {
	t.Helper()
	return startSSHD(t, opt, FreePort)
}

// startSSHD is StartSSHD with the port source injected, so that a test can
// hand it a taken port and watch it retry.
func startSSHD(t testing.TB, opt SSHDOptions, pickPort func(testing.TB) int) *SSHD {
	t.Helper()
	bin := requireTool(t, "sshd")
	u, err := user.Current()
	if err != nil {
		t.Fatalf("look up the current user for sshd: %v", err)
	}
	if os.Geteuid() == 0 {
		// sshd as root chroots its pre-auth child into this directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("create sshd privilege separation dir /run/sshd: %v", err)
		}
	}

	dir := t.TempDir()
	s := &SSHD{
		User:       u.Username,
		Dir:        dir,
		ConfigFile: filepath.Join(dir, "sshd_config"),
		LogFile:    filepath.Join(dir, "sshd.log"),
		t:          t,
	}
	if err := s.writeFiles(opt); err != nil {
		t.Fatalf("prepare sshd in %s: %v", dir, err)
	}
	version := sshdVersion(bin)

	for try := 1; ; try++ {
		s.Port = pickPort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
		err := s.start(bin, version, opt)
		if err == nil {
			break
		}
		log := s.Log()
		if stopErr := s.stop(); stopErr != nil {
			t.Fatalf("stop sshd after a failed start: %v\nsshd log:\n%s", stopErr, log)
		}
		s.cancel = nil
		if try < sshdStartTries && strings.Contains(log, "Address already in use") {
			continue // another process took the port between FreePort and bind
		}
		t.Fatalf("start sshd on %s: %v\nsshd log (%s):\n%s\nsshd_config:\n%s",
			s.Addr, err, s.LogFile, log, readOrErr(s.ConfigFile))
	}
	t.Cleanup(s.Stop)
	return s
}

// writeFiles writes the keys and the files that do not depend on the port.
func (s *SSHD) writeFiles(opt SSHDOptions) error {
	_, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate host key: %w", err)
	}
	if s.HostKey, err = writeKeyFiles(s.hostKeyFile(), hostPriv, "testharness-host"); err != nil {
		return fmt.Errorf("write host key: %w", err)
	}
	if opt.HostCA != nil {
		if err := s.writeHostCert(opt.HostCA); err != nil {
			return err
		}
	}
	_, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate client key: %w", err)
	}
	s.ClientKeyFile = filepath.Join(s.Dir, "client_ed25519")
	clientPub, err := writeKeyFiles(s.ClientKeyFile, clientPriv, "testharness-client")
	if err != nil {
		return fmt.Errorf("write client key: %w", err)
	}
	if err := os.WriteFile(s.authorizedKeysFile(), ssh.MarshalAuthorizedKey(clientPub), 0o600); err != nil {
		return fmt.Errorf("write authorized keys: %w", err)
	}
	if len(opt.TrustedUserCAKeys) > 0 {
		var b []byte
		for _, k := range opt.TrustedUserCAKeys {
			b = append(b, ssh.MarshalAuthorizedKey(k)...)
		}
		if err := os.WriteFile(s.trustedCAFile(), b, 0o644); err != nil {
			return fmt.Errorf("write trusted user CA keys: %w", err)
		}
	}
	return nil
}

// writeHostCert signs HostKey with ca and writes it beside the host key.
func (s *SSHD) writeHostCert(ca ssh.Signer) error {
	cert := &ssh.Certificate{
		Key:             s.HostKey,
		Serial:          1,
		CertType:        ssh.HostCert,
		KeyId:           "testharness-host",
		ValidPrincipals: []string{"127.0.0.1", "localhost"},
		ValidAfter:      0,
		ValidBefore:     ssh.CertTimeInfinity,
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		return fmt.Errorf("sign host certificate: %w", err)
	}
	if err := os.WriteFile(s.hostCertFile(), ssh.MarshalAuthorizedKey(cert), 0o644); err != nil {
		return fmt.Errorf("write host certificate: %w", err)
	}
	s.HostCert = cert
	return nil
}

func (s *SSHD) hostCertFile() string       { return s.hostKeyFile() + "-cert.pub" }
func (s *SSHD) hostKeyFile() string        { return filepath.Join(s.Dir, "ssh_host_ed25519_key") }
func (s *SSHD) authorizedKeysFile() string { return filepath.Join(s.Dir, "authorized_keys") }
func (s *SSHD) trustedCAFile() string      { return filepath.Join(s.Dir, "trusted_user_ca_keys") }
func (s *SSHD) pidFile() string            { return filepath.Join(s.Dir, "sshd.pid") }
func (s *SSHD) tag() string                { return tagEnv + "=" + s.Dir }
func (s *SSHD) homeDir() string            { return filepath.Join(s.Dir, "home") }

// start writes the port-dependent files, runs sshd and waits until it
// greets with an SSH banner.
func (s *SSHD) start(bin string, version [2]int, opt SSHDOptions) error {
	line := knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.HostKey) + "\n"
	s.KnownHostsFile = filepath.Join(s.Dir, "known_hosts")
	if err := os.WriteFile(s.KnownHostsFile, []byte(line), 0o644); err != nil {
		return fmt.Errorf("write known_hosts: %w", err)
	}
	if err := os.MkdirAll(s.homeDir(), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(s.ConfigFile, []byte(s.config(version, opt)), 0o600); err != nil {
		return fmt.Errorf("write sshd_config: %w", err)
	}
	if err := os.Remove(s.LogFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("clear old sshd log: %w", err)
	}
	logf, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open sshd log: %w", err)
	}
	defer logf.Close() // the child keeps its own descriptor

	ctx, cancel := context.WithCancel(context.Background())
	// -D: stay in the foreground as our child; -e -E: log to LogFile, which
	// also catches what sshd prints before it reads its config.
	cmd := exec.CommandContext(ctx, bin, "-D", "-e", "-f", s.ConfigFile, "-E", s.LogFile)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that Stop can signal children that stayed
	// in it; session children call setsid and are found by tag instead.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = sshdStopTimeout // then Wait sends SIGKILL
	if err := cmd.Start(); err != nil {
		cancel()
		return fmt.Errorf("run %s: %w", bin, err)
	}
	s.PID = cmd.Process.Pid
	s.cancel = cancel
	s.exited = make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	return s.waitReady(sshdReadyTimeout)
}

// waitReady polls until sshd answers with an SSH banner, it exits, or the
// timeout passes.
func (s *SSHD) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("sshd exited before it was ready: %v", s.waitErr)
		default:
		}
		if last = probeBanner(s.Addr, s.exited); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no SSH banner on %s within %v: %w", s.Addr, timeout, last)
		}
		select {
		case <-s.exited:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// probeBanner connects once and reads the server's identification line.
// It gives up early when stop closes: whatever answered on the port then
// was not our sshd.
func probeBanner(addr string, stop <-chan struct{}) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return fmt.Errorf("set probe deadline: %w", err)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-stop:
			conn.Close() // unblocks the read below; its error is reported there
		case <-done:
		}
	}()
	banner, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read SSH banner: %w", err)
	}
	if !strings.HasPrefix(banner, "SSH-2.0-") {
		return fmt.Errorf("unexpected banner %q", banner)
	}
	return nil
}

// config renders sshd_config. Every default is locked down to what the
// tests need: public keys only, no forwarding, no user-controlled
// environment or rc files (HOME is an empty dir of the instance), logs
// verbose enough to debug a failed login.
func (s *SSHD) config(version [2]int, opt SSHDOptions) string {
	fixed := [][2]string{
		{"ListenAddress", "127.0.0.1"},
		{"Port", strconv.Itoa(s.Port)},
		{"PidFile", quote(s.pidFile())},
		// HOME in the instance's dir: bash runs ~/.bashrc even for
		// `ssh host cmd`, and a machine's dotfiles (pyenv's rehash lock
		// waits up to 60 s when many shells start at once, or after one was
		// killed holding it) must not decide how long a test's shell takes.
		{"SetEnv", quote(s.tag()) + " " + quote("HOME="+s.homeDir())},
	}
	defaults := [][2]string{
		{"HostKey", quote(s.hostKeyFile())},
		// AuthorizedKeysFile expands %-tokens, so a literal % is doubled.
		{"AuthorizedKeysFile", quote(strings.ReplaceAll(s.authorizedKeysFile(), "%", "%%"))},
		{"StrictModes", "no"},
		{"UsePAM", "no"},
		{"PubkeyAuthentication", "yes"},
		{"PasswordAuthentication", "no"},
		{"KbdInteractiveAuthentication", "no"},
		{"PermitRootLogin", "prohibit-password"},
		{"AllowTcpForwarding", "no"},
		{"AllowAgentForwarding", "no"},
		{"X11Forwarding", "no"},
		{"PermitUserEnvironment", "no"},
		{"PermitUserRC", "no"},
		{"PrintMotd", "no"},
		{"PrintLastLog", "no"},
		{"UseDNS", "no"},
		{"AcceptEnv", "LANG LC_*"},
		// Tests open many connections at once; refuse none of them early.
		{"MaxStartups", "100"},
		{"LoginGraceTime", "30"},
		{"LogLevel", "VERBOSE"},
	}
	if s.HostCert != nil {
		defaults = append(defaults, [2]string{"HostCertificate", quote(s.hostCertFile())})
	}
	if len(opt.TrustedUserCAKeys) > 0 {
		defaults = append(defaults, [2]string{"TrustedUserCAKeys", quote(s.trustedCAFile())})
	}
	if version[0] > 9 || version[0] == 9 && version[1] >= 8 {
		// OpenSSH 9.8+ penalises sources with failed logins; refusal tests
		// fail logins from 127.0.0.1 on purpose and must not lock out the
		// tests after them.
		defaults = append(defaults, [2]string{"PerSourcePenalties", "no"})
	}

	overridden := topLevelKeywords(opt.ExtraConfig)
	var b strings.Builder
	b.WriteString("# Written by internal/testharness for one test.\n")
	for _, kv := range fixed {
		fmt.Fprintf(&b, "%s %s\n", kv[0], kv[1])
	}
	for _, kv := range defaults {
		if overridden[strings.ToLower(kv[0])] {
			continue
		}
		fmt.Fprintf(&b, "%s %s\n", kv[0], kv[1])
	}
	if opt.ExtraConfig != "" {
		b.WriteString("# SSHDOptions.ExtraConfig\n")
		b.WriteString(opt.ExtraConfig)
		if !strings.HasSuffix(opt.ExtraConfig, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// topLevelKeywords returns the lower-cased keywords that an sshd_config
// fragment sets before its first Match block.
func topLevelKeywords(cfg string) map[string]bool {
	kw := map[string]bool{}
	for _, line := range strings.Split(cfg, "\n") {
		fields := strings.Fields(strings.TrimSpace(line))
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		// "Keyword=value" is valid sshd_config too.
		k := strings.ToLower(strings.SplitN(fields[0], "=", 2)[0])
		if k == "match" {
			break
		}
		if k != "" {
			kw[k] = true
		}
	}
	return kw
}

// quote double-quotes a path for sshd_config, which splits on spaces.
func quote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

var versionRE = regexp.MustCompile(`OpenSSH_(\d+)\.(\d+)`)

// sshdVersion returns sshd's major and minor version, or zeros if it
// cannot tell (then only options every supported version knows are used).
func sshdVersion(bin string) [2]int {
	// `sshd -V` prints the version and exits; older builds print it
	// with a usage error, which is fine: only the text matters.
	out, _ := exec.Command(bin, "-V").CombinedOutput() //nolint:errcheck // see above
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return [2]int{}
	}
	major, _ := strconv.Atoi(string(m[1])) // the regexp allows only digits
	minor, _ := strconv.Atoi(string(m[2]))
	return [2]int{major, minor}
}

// Log returns what sshd has logged so far, for assertions and failure
// messages (e.g. "Accepted publickey for root" or "Accepted certificate ID").
func (s *SSHD) Log() string { return readOrErr(s.LogFile) }

// readOrErr returns a file's contents, or the read error as text: it only
// feeds diagnostics, which must not fail in turn.
func readOrErr(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	return string(b)
}

// Client returns an SSHClient that logs in to this sshd as User with
// ClientKeyFile, checking the host key against KnownHostsFile.
func (s *SSHD) Client(t testing.TB) *SSHClient {
	t.Helper()
	c := NewSSHClient(t, "127.0.0.1", s.Port)
	c.User = s.User
	c.KeyFile = s.ClientKeyFile
	c.KnownHostsFile = s.KnownHostsFile
	return c
}

// Stop ends sshd and every process of its sessions. It is registered with
// t.Cleanup and safe to call again, e.g. to test a target going away.
func (s *SSHD) Stop() {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	if s.stopErr != nil {
		s.t.Errorf("stop sshd %s: %v", s.Addr, s.stopErr)
	}
}

// stop kills the sessions first, while the listener still runs: their
// processes are found through it and it reaps them (an init that does not
// reap would keep them as zombies). Then the listener gets SIGTERM, and a
// last sweep catches anything started in between.
func (s *SSHD) stop() error {
	if s.cancel == nil {
		return nil // never started
	}
	seen := s.processes()
	if err := killUntilGone(func() []procID { return liveProcs(append(seen, s.processes()...)) }); err != nil {
		return err
	}
	s.cancel() // SIGTERM; SIGKILL after sshdStopTimeout
	select {
	case <-s.exited:
	case <-time.After(2 * sshdStopTimeout):
		return fmt.Errorf("sshd pid %d did not exit after SIGTERM and SIGKILL", s.PID)
	}
	// Children that stayed in the listener's process group.
	if err := syscall.Kill(-s.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill sshd process group %d: %w", s.PID, err)
	}
	return killUntilGone(func() []procID { return liveProcs(append(seen, s.processes()...)) })
}

// killUntilGone sends SIGKILL to what list returns until it returns
// nothing, for at most sshdStopTimeout.
func killUntilGone(list func() []procID) error {
	deadline := time.Now().Add(sshdStopTimeout)
	for {
		left := list()
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("session processes still running: %v", left)
		}
		for _, p := range left {
			if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("kill session process %d: %w", p.pid, err)
			}
		}
		time.Sleep(10 * time.Millisecond) // let the kills land and the reaper run
	}
}

// processes lists sshd's live descendants and every process that carries
// this instance's session tag.
func (s *SSHD) processes() []procID {
	return findProcs(s.PID, s.tag())
}
