package keys

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestHostKeyCallback(t *testing.T) {
	web := newEd25519(t)           // pinned for 10.0.0.5
	impostor := newEd25519(t)      // a different key claiming to be 10.0.0.5
	stranger := newEd25519(t)      // a host nobody pinned
	revoked := newEd25519(t)       // a key listed as @revoked
	hostCA := newEd25519(t)        // trusted for *.corp
	untrustedCA := newEd25519(t)   // trusted for nothing
	certified := newEd25519(t)     // host key of db-1.corp, certified by hostCA
	weakHost, _ := newRSA(t, 1024) // pinned but too weak

	// knownhosts checks host certificates against the wall clock.
	now := time.Now()
	hostCert := func(ca ssh.Signer, key ssh.PublicKey, names ...string) *ssh.Certificate {
		c, err := IssueHostCert(ca, key, names, now, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return mustParse(t, c)
	}
	expired, err := IssueHostCert(hostCA, certified.PublicKey(), []string{"db-1.corp"}, now.Add(-48*time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(t.TempDir(), "known_hosts")
	lines := []string{
		"# targets",
		knownhosts.Line([]string{"10.0.0.5:22"}, web.PublicKey()),
		knownhosts.Line([]string{"[10.0.0.6]:2200"}, web.PublicKey()),
		knownhosts.Line([]string{"legacy.corp:22"}, certified.PublicKey()),
		knownhosts.Line([]string{"10.0.0.7:22"}, weakHost.PublicKey()),
		strings.TrimSuffix(KnownHostsCALine("*.corp", hostCA.PublicKey()), "\n"),
		"@revoked * " + strings.TrimSpace(string(AuthorizedKeyLine(revoked.PublicKey()))),
		knownhosts.Line([]string{"10.0.0.8:22"}, revoked.PublicKey()),
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check, err := HostKeyCallback(path)
	if err != nil {
		t.Fatalf("HostKeyCallback: %v", err)
	}

	tests := []struct {
		name    string
		host    string
		key     ssh.PublicKey
		wantErr []string // nil: accepted
	}{
		{"pinned key", "10.0.0.5:22", web.PublicKey(), nil},
		{"pinned key on other port", "10.0.0.6:2200", web.PublicKey(), nil},
		{"unknown host", "10.0.0.9:22", stranger.PublicKey(), []string{
			"host key for 10.0.0.9:22 is not in " + path, "ssh-keyscan -p 22 10.0.0.9 >> " + path, ssh.FingerprintSHA256(stranger.PublicKey())}},
		{"unknown port of known host", "10.0.0.6:22", web.PublicKey(), []string{"is not in", "ssh-keyscan -p 22 10.0.0.6"}},
		{"changed key", "10.0.0.5:22", impostor.PublicKey(), []string{
			"HOST KEY MISMATCH", "man-in-the-middle", ssh.FingerprintSHA256(impostor.PublicKey()), ssh.FingerprintSHA256(web.PublicKey())}},
		{"revoked key", "10.0.0.8:22", revoked.PublicKey(), []string{"REVOKED", ssh.FingerprintSHA256(revoked.PublicKey())}},
		{"weak pinned key", "10.0.0.7:22", weakHost.PublicKey(), []string{"too weak", "1024"}},
		{"host cert from trusted CA", "db-1.corp:22", hostCert(hostCA, certified.PublicKey(), "db-1.corp"), nil},
		{"host cert for another name", "db-2.corp:22", hostCert(hostCA, certified.PublicKey(), "db-1.corp"), []string{"host certificate for db-2.corp:22", "not accepted"}},
		{"host cert outside the CA's pattern", "db-1.example:22", hostCert(hostCA, certified.PublicKey(), "db-1.example"), []string{"@cert-authority"}},
		{"expired host cert", "db-1.corp:22", mustParse(t, expired), []string{"host certificate", "expired"}},
		{"untrusted CA, key pinned", "legacy.corp:22", hostCert(untrustedCA, certified.PublicKey(), "legacy.corp"), nil},
		{"untrusted CA, key unknown", "new.example:22", hostCert(untrustedCA, stranger.PublicKey(), "new.example"), []string{"@cert-authority", ssh.FingerprintSHA256(untrustedCA.PublicKey())}},
		{"untrusted CA, pinned key differs", "10.0.0.5:22", hostCert(untrustedCA, impostor.PublicKey(), "10.0.0.5"), []string{"HOST KEY MISMATCH"}},
		{"certified key revoked", "x.corp:22", hostCert(hostCA, revoked.PublicKey(), "x.corp"), []string{"REVOKED"}},
		{"plain key where a certificate is expected", "db-1.corp:22", certified.PublicKey(), []string{"expects hosts matching it to present a host certificate", "ssh-keyscan -p 22 db-1.corp"}},
		{"CA key presented as host key", "db-1.corp:22", hostCA.PublicKey(), []string{"host CA key", ":6"}},
		{"no key", "10.0.0.5:22", nil, []string{"no host key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, _, err := net.SplitHostPort(tt.host)
			if err != nil {
				t.Fatal(err)
			}
			err = check(tt.host, &net.TCPAddr{IP: net.ParseIP(host), Port: 22}, tt.key)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("host key refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("host key accepted, want refusal")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}

	// A nil remote address (the x/crypto client always passes one, but the
	// callback must not crash on a caller that does not) uses the host name.
	if err := check("10.0.0.5:22", nil, web.PublicKey()); err != nil {
		t.Fatalf("nil remote address: %v", err)
	}
}

func TestHostKeyCallbackConstruction(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("10.0.0.5 ssh-ed25519 not-base64!\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name, path string
		ok         bool
	}{
		{"missing file", filepath.Join(dir, "nope"), false},
		{"directory", dir, false},
		{"malformed line", bad, false},
		{"empty file trusts nothing", empty, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cb, err := HostKeyCallback(tt.path)
			if !tt.ok {
				if err == nil || !strings.Contains(err.Error(), tt.path) {
					t.Fatalf("HostKeyCallback(%s) error = %v, want one naming the file", tt.path, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := cb("10.0.0.5:22", &net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 22}, newEd25519(t).PublicKey()); err == nil {
				t.Fatal("an empty known_hosts accepted a host key")
			}
		})
	}
}
