// Package testharness starts the real parts that end-to-end tests drive: an
// OpenSSH sshd on a loopback port as the SSH target, the OpenSSH ssh client
// (plain or inside a real PTY), and throwaway key pairs.
//
// Everything lives under t.TempDir() and 127.0.0.1, and everything started is
// stopped by t.Cleanup, so tests can run in parallel and leave nothing behind.
// The client never reads ~/.ssh or an agent: each run is configured only by
// the fields of [SSHClient].
//
// The package is for tests only: every constructor takes a testing.TB and
// fails (or, where the tool is absent on a developer machine, skips) the
// test instead of returning errors.
package testharness

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
//
// Another process may take it before the caller binds it; StartSSHD retries
// with a fresh port for that reason, and other callers should expect it too.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free loopback port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("release free loopback port %d: %v", port, err)
	}
	return port
}

// installHint tells a developer how to get the OpenSSH tools the harness runs.
const installHint = "install OpenSSH with `make deps` (as root) or " +
	"`sudo apt-get install -y --no-install-recommends openssh-server openssh-client`"

// findTool returns the absolute path of an OpenSSH binary, looking in PATH
// and then in the sbin directories that a non-root PATH often lacks.
//
// sshd refuses to re-exec itself unless started by absolute path, hence Abs.
func findTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return filepath.Abs(p)
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New(name + " not found in PATH or sbin directories")
}

// requireTool finds an OpenSSH binary or ends the test.
//
// A developer who is not root may simply lack OpenSSH, so the test is
// skipped with the install hint. In CI (CI set) and as root, `make deps`
// installs it, so a missing binary is a broken setup and fails the test.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := findTool(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "" && os.Geteuid() != 0 {
		t.Skipf("%v: %s", err, installHint)
	}
	t.Fatalf("%v: %s", err, installHint)
	return ""
}

// WriteKnownHosts writes a known_hosts file in dir that trusts key for
// addr ("host:port"), e.g. the bastion's host key for SSHClient.KnownHostsFile.
func WriteKnownHosts(t testing.TB, dir, addr string, key ssh.PublicKey) string {
	t.Helper()
	return writeKnownHosts(t, dir, knownhosts.Line([]string{knownhosts.Normalize(addr)}, key))
}

// WriteKnownHostsCA writes a known_hosts file in dir that trusts every host
// certificate signed by ca for hosts matching pattern: the client side of a
// host CA. OpenSSH accepts wildcards such as "[127.0.0.1]:*"; x/crypto's
// knownhosts matches the port exactly, so for both use
// knownhosts.Normalize(addr).
func WriteKnownHostsCA(t testing.TB, dir, pattern string, ca ssh.PublicKey) string {
	t.Helper()
	return writeKnownHosts(t, dir, "@cert-authority "+pattern+" "+string(ssh.MarshalAuthorizedKey(ca)))
}

func writeKnownHosts(t testing.TB, dir, line string) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "known_hosts_*")
	if err != nil {
		t.Fatalf("create known_hosts in %s: %v", dir, err)
	}
	if _, err := fmt.Fprintln(f, strings.TrimSuffix(line, "\n")); err != nil {
		t.Fatalf("write %s: %v", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close %s: %v", f.Name(), err)
	}
	return f.Name()
}

// SyncBuffer collects output that other goroutines write (a server's log,
// an SSH client's copy loop) while the test reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
