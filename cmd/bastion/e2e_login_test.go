package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/bastion-dev/bastion/bastion/devidp"
	"github.com/bastion-dev/bastion/internal/testharness"
	"github.com/bastion-dev/bastion/recorder"
)

// loginWorld is a world whose bastion logs users in through a real OpenID
// Provider (the development one, zitadel's op) running in-process.
func loginWorld(t *testing.T, oidcExtra string) (*world, *devidp.IdP) {
	t.Helper()
	idp, err := devidp.Start(context.Background(), devidp.Options{
		Addr: "127.0.0.1:0", ClientID: "bastion", ClientSecret: "s3cret", PollInterval: time.Second,
		Users: []devidp.User{
			{Username: "alice", Password: "pw-alice", Email: "alice@example.com", Groups: []string{"sre"}, MFA: true},
			{Username: "carol", Password: "pw-carol", Email: "carol@example.com", Groups: []string{"sre"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Close() })
	secret := filepath.Join(t.TempDir(), "secret")
	writeFile(t, secret, "s3cret\n")
	w := newWorld(t, worldOpts{extra: "oidc: { issuer: " + idp.Issuer() + ", client_id: bastion, client_secret_file: " + secret + oidcExtra + " }\n"})
	return w, idp
}

// sshLogin runs `ssh login@bastion` with key, plays the browser with act
// once the code appears on stderr, and returns stdout, stderr and the exit.
func sshLogin(t *testing.T, w *world, key string, act func(code string) error) (string, string, int) {
	t.Helper()
	cl := *w.client
	cl.KeyFile, cl.CertFile, cl.Host = key, "", "login@127.0.0.1"
	cmd := cl.Command(context.Background())
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	codeRE := regexp.MustCompile(`enter the code (\S+)`)
	sc := bufio.NewScanner(errPipe)
	acted := false
	for sc.Scan() {
		line := sc.Text()
		stderr.WriteString(line + "\n")
		if m := codeRE.FindStringSubmatch(line); m != nil && !acted {
			acted = true
			if err := act(m[1]); err != nil {
				t.Errorf("browser side: %v", err)
			}
		}
	}
	_ = cmd.Wait()
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

func TestLoginIssuesCertificateThatReachesTarget(t *testing.T) {
	w, idp := loginWorld(t, "")
	key, pub := testharness.KeyPair(t, t.TempDir(), "ed25519")
	out, errOut, code := sshLogin(t, w, key, func(c string) error {
		return idp.Approve(context.Background(), c, "alice", "pw-alice")
	})
	if code != 0 {
		t.Fatalf("login exit %d\n%s", code, errOut)
	}
	k, _, _, rest, err := gossh.ParseAuthorizedKey([]byte(out))
	if err != nil || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("stdout is not one certificate line: %q (%v)", out, err)
	}
	cert := k.(*gossh.Certificate)
	if !slices.Equal(cert.ValidPrincipals, []string{"alice"}) || cert.Permissions.Extensions["groups@bastion"] != "sre" ||
		!bytes.Equal(cert.Key.Marshal(), pub.Marshal()) {
		t.Fatalf("certificate %+v", cert)
	}
	if d := time.Until(time.Unix(int64(cert.ValidBefore), 0)); d > 8*time.Hour+time.Minute || d < 7*time.Hour {
		t.Fatalf("certificate lifetime %v, want certificates.ttl (8h)", d)
	}
	if !strings.Contains(errOut, "Signed in as alice") {
		t.Errorf("stderr lacks the summary: %s", errOut)
	}
	writeFile(t, key+"-cert.pub", out)
	cl := *w.client
	cl.KeyFile, cl.CertFile = key, key+"-cert.pub"
	if res := cl.Run(t, "web-1", "echo through-oidc"); res.ExitCode != 0 || res.Stdout != "through-oidc\n" {
		t.Fatalf("target with the OIDC certificate: %+v", res)
	}
	if res := cl.Run(t, "whoami"); !strings.Contains(res.Stdout, "alice") || !strings.Contains(res.Stdout, "serial:") {
		t.Fatalf("whoami: %+v", res)
	}

	// The audit trail has the login's steps, with the provider's subject.
	w.stop()
	w.stop = nil
	st, err := recorder.OpenBolt(filepath.Join(w.cfg.DataDir, storeFile), recorder.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.ListAudit(context.Background(), recorder.AuditFilter{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	byType := map[string]recorder.AuditRecord{}
	for _, r := range recs { // newest first: keep the newest of each type
		if _, seen := byType[r.Type]; !seen {
			byType[r.Type] = r
		}
	}
	issued, ok := byType["cert.issued"]
	if _, success := byType["login.success"]; !success || !ok || issued.Subject == "" || issued.Issuer == "" ||
		issued.Serial != cert.Serial || issued.KeyFingerprint != gossh.FingerprintSHA256(pub) || issued.Client == "" {
		t.Fatalf("audit records for the login: %+v", recs)
	}
}

func TestLoginRefusals(t *testing.T) {
	w, idp := loginWorld(t, ", require_mfa: true")
	cases := []struct {
		name string
		act  func(code string) error
		want string
	}{
		{"denied", func(c string) error { return idp.Deny(context.Background(), c, "alice", "pw-alice") }, "denied"},
		{"mfa required", func(c string) error { return idp.Approve(context.Background(), c, "carol", "pw-carol") }, "multi-factor"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key, _ := testharness.KeyPair(t, t.TempDir(), "ed25519")
			out, errOut, code := sshLogin(t, w, key, c.act)
			if code == 0 || out != "" || !strings.Contains(errOut, c.want) {
				t.Fatalf("exit %d stdout %q stderr %s", code, out, errOut)
			}
		})
	}
	t.Run("login grants nothing else", func(t *testing.T) {
		key, _ := testharness.KeyPair(t, t.TempDir(), "ed25519")
		cl := *w.client
		cl.KeyFile, cl.CertFile, cl.Host = key, "", "login@127.0.0.1"
		if res := cl.Run(t, "web-1", "echo nope"); res.ExitCode == 0 || strings.Contains(res.Stdout, "nope") {
			t.Fatalf("%+v", res)
		}
		if res := cl.Run(t, "-W", w.sshd.Addr); res.ExitCode == 0 {
			t.Fatalf("forwarding on a login connection: %+v", res)
		}
	})
}

func TestLoginWithoutOIDCConfigured(t *testing.T) {
	w := newWorld(t, worldOpts{})
	key, _ := testharness.KeyPair(t, t.TempDir(), "ed25519")
	cl := *w.client
	cl.KeyFile, cl.CertFile, cl.Host = key, "", "login@127.0.0.1"
	res := cl.Run(t)
	if res.ExitCode != 255 || !strings.Contains(res.Stderr, "not configured") {
		t.Fatalf("%+v", res)
	}
	_ = os.Remove(key)
}

func TestBastionLoginCommand(t *testing.T) {
	w, idp := loginWorld(t, "")
	dir := t.TempDir()
	key, _ := testharness.KeyPair(t, dir, "ed25519")
	kh := filepath.Join(dir, "known_hosts")

	pr, pw := io.Pipe()
	var stdout bytes.Buffer
	e := &env{stdout: &stdout, stderr: pw, stdin: strings.NewReader(""), getenv: func(string) string { return "" }}
	codeRE := regexp.MustCompile(`enter the code (\S+)`)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := codeRE.FindStringSubmatch(sc.Text()); m != nil {
				if err := idp.Approve(context.Background(), m[1], "alice", "pw-alice"); err != nil {
					t.Errorf("approve: %v", err)
				}
			}
		}
	}()
	code := run(context.Background(), e, []string{"login", "--bastion", fmt.Sprintf("127.0.0.1:%d", w.port), "-i", key, "--known-hosts", kh})
	_ = pw.Close()
	if code != 0 {
		t.Fatalf("bastion login: exit %d", code)
	}
	if !strings.Contains(stdout.String(), "You are alice (groups sre)") {
		t.Fatalf("summary %q", stdout.String())
	}
	khText, err := os.ReadFile(kh)
	if err != nil || !strings.HasPrefix(string(khText), "@cert-authority ") {
		t.Fatalf("known_hosts %q %v", khText, err)
	}
	// A stock client now trusts the bastion through its host CA alone and
	// logs in with the new certificate.
	cl := *w.client
	cl.KeyFile, cl.CertFile, cl.KnownHostsFile = key, key+"-cert.pub", kh
	if res := cl.Run(t, "web-1", "echo via-bastion-login"); res.ExitCode != 0 || res.Stdout != "via-bastion-login\n" {
		t.Fatalf("%+v", res)
	}
}
