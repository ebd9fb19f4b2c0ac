package keys

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyCallback returns a callback that checks a target's host key against the known_hosts file at path (supports @cert-authority
// and @revoked lines via knownhosts). Errors are clear and distinguish: unknown host ("host key for 10.0.0.5:22 is not in /etc/bastion/known_hosts;
// add it with `ssh-keyscan -p 22 10.0.0.5 >> ...` after checking its fingerprint SHA256:..."), changed key ("HOST KEY MISMATCH ... possible
// man-in-the-middle"), revoked key. A missing/unreadable file is an error at construction. Never InsecureIgnoreHostKey.
//
// The file is read once, here; build a new callback to pick up edits. Host
// keys must also pass CheckKeyStrength. A host certificate is accepted when
// an @cert-authority line vouches for it; when none does, the certified key is
// checked as a plain key, as OpenSSH does ("no matching CA found, retry with
// plain key"), so a target that gained a host certificate keeps working with
// its pinned key. Host-certificate validity is checked against the wall clock,
// because x/crypto's knownhosts offers no clock hook.
func HostKeyCallback(path string) (ssh.HostKeyCallback, error) {
	check, db, err := loadKnownHosts(path)
	if err != nil {
		return nil, err
	}
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		if key == nil {
			return fmt.Errorf("host %s presented no host key", hostname)
		}
		if err := CheckKeyStrength(key); err != nil {
			return fmt.Errorf("host key for %s is too weak (%w); configure the target with an ed25519 host key", hostname, err)
		}
		if remote == nil {
			// knownhosts dereferences remote; a nil one would panic.
			remote = &net.TCPAddr{}
		}
		cert, isCert := key.(*ssh.Certificate)
		plain := key
		if isCert {
			plain = cert.Key
		}
		// x/crypto's knownhosts matches @cert-authority lines as if they were
		// host keys, so a host presenting a CA's public key as its own would
		// pass. Possessing that key means possessing the CA, but the check
		// should not depend on that argument.
		if line, ok := db.caKeyLine(plain); ok {
			return fmt.Errorf("host %s presented the host CA key from %s:%d as its own host key; refusing to connect", hostname, path, line)
		}
		err := check(hostname, remote, key)
		if err == nil {
			return nil
		}
		if !isCert {
			return db.explain(err, hostname, key)
		}
		plainErr := check(hostname, remote, cert.Key)
		if plainErr == nil {
			return nil
		}
		var revoked *knownhosts.RevokedError
		if errors.As(plainErr, &revoked) || len(db.pinned(plainErr)) > 0 {
			return db.explain(plainErr, hostname, cert.Key)
		}
		// Unknown as a plain key: the certificate path is the one to explain.
		return fmt.Errorf("host certificate for %s (key %s, signed by CA %s) was not accepted using %s: %v; if that CA is trusted for this host, add `@cert-authority <host pattern> <CA public key>` to %s",
			hostname, ssh.FingerprintSHA256(cert.Key), ssh.FingerprintSHA256(cert.SignatureKey), path, err, path)
	}, nil
}

// knownHostsFile is what HostKeyCallback needs to know about the file beyond
// what x/crypto's knownhosts exposes: which lines are @cert-authority lines.
type knownHostsFile struct {
	path    string
	caLines map[int]ssh.PublicKey // line number -> CA key
}

// loadKnownHosts builds the knownhosts callback and our own index of the same
// bytes. The file is read before and after knownhosts reads it; if it changed
// meanwhile (an operator appending a line) the load is retried, so the line
// numbers in our messages are the ones knownhosts saw.
func loadKnownHosts(path string) (ssh.HostKeyCallback, *knownHostsFile, error) {
	const attempts = 3
	for range attempts {
		before, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("load known_hosts %s: %w; create it with the targets' host keys (ssh-keyscan, after checking fingerprints)", path, err)
		}
		check, err := knownhosts.New(path)
		if err != nil {
			return nil, nil, fmt.Errorf("load known_hosts %s: %w", path, err)
		}
		after, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("load known_hosts %s: %w", path, err)
		}
		if bytes.Equal(before, after) {
			return check, indexKnownHosts(path, before), nil
		}
	}
	return nil, nil, fmt.Errorf("load known_hosts %s: the file kept changing while being read; retry when edits are done", path)
}

// indexKnownHosts records the @cert-authority lines, numbering lines exactly
// as knownhosts.Read does (every line counts, comments and blanks included).
// Lines knownhosts would skip as malformed are skipped here too.
func indexKnownHosts(path string, data []byte) *knownHostsFile {
	f := &knownHostsFile{path: path, caLines: map[int]ssh.PublicKey{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if !bytes.HasPrefix(line, []byte("@cert-authority")) {
			continue
		}
		marker, _, key, _, _, err := ssh.ParseKnownHosts(line)
		if err == nil && marker == "cert-authority" {
			f.caLines[n] = key
		}
	}
	return f
}

func (f *knownHostsFile) caKeyLine(key ssh.PublicKey) (int, bool) {
	for n, ca := range f.caLines {
		if sameKey(ca, key) {
			return n, true
		}
	}
	return 0, false
}

// pinned returns the host keys a knownhosts KeyError says were expected,
// without the @cert-authority entries knownhosts mixes in.
func (f *knownHostsFile) pinned(err error) []knownhosts.KnownKey {
	var keyErr *knownhosts.KeyError
	if !errors.As(err, &keyErr) {
		return nil
	}
	var out []knownhosts.KnownKey
	for _, k := range keyErr.Want {
		if _, isCA := f.caLines[k.Line]; isCA && k.Filename == f.path {
			continue
		}
		out = append(out, k)
	}
	return out
}

// explain turns a knownhosts error about a plain key into an operator message
// that says which case it is and what to do.
func (f *knownHostsFile) explain(err error, hostname string, key ssh.PublicKey) error {
	path := f.path
	fp := ssh.FingerprintSHA256(key)
	var revoked *knownhosts.RevokedError
	if errors.As(err, &revoked) {
		return fmt.Errorf("host key %s for %s is REVOKED (%s:%d); refusing to connect; the target must get a new host key: %w",
			fp, hostname, revoked.Revoked.Filename, revoked.Revoked.Line, err)
	}
	var keyErr *knownhosts.KeyError
	if !errors.As(err, &keyErr) {
		return fmt.Errorf("check host key for %s against %s: %w", hostname, path, err)
	}
	host, port := hostname, "22"
	if h, p, splitErr := net.SplitHostPort(hostname); splitErr == nil {
		host, port = h, p
	}
	keyscan := fmt.Sprintf("`ssh-keyscan -p %s %s >> %s`", port, host, path)
	want := f.pinned(err)
	if len(want) == 0 {
		if len(keyErr.Want) > 0 {
			// Only @cert-authority lines match this host.
			return fmt.Errorf("host %s presented the plain host key %s, but %s expects hosts matching it to present a host certificate (@cert-authority line %d); give the target a certificate, or pin this key with %s after checking its fingerprint: %w",
				hostname, fp, path, keyErr.Want[0].Line, keyscan, err)
		}
		return fmt.Errorf("host key for %s is not in %s; add it with %s after checking its fingerprint %s: %w",
			hostname, path, keyscan, fp, err)
	}
	expected := make([]string, 0, len(want))
	for _, k := range want {
		expected = append(expected, fmt.Sprintf("%s %s (%s:%d)", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
	}
	return fmt.Errorf("HOST KEY MISMATCH for %s: it presented %s %s but %s expects %s; this is a possible man-in-the-middle attack; do not connect until the target's owner confirms a key change, then update %s: %w",
		hostname, key.Type(), fp, path, strings.Join(expected, ", "), path, err)
}
