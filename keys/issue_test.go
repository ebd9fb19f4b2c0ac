package keys

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func validRequest() UserCertRequest {
	return UserCertRequest{
		User:   "alice",
		Groups: []string{"sre", "audit", "sre"},
		TTL:    8 * time.Hour,
		MaxTTL: 24 * time.Hour,
		Serial: 42,
		Now:    testNow,
	}
}

func TestIssueUserCertFields(t *testing.T) {
	ca := newEd25519(t)
	user := newEd25519(t)

	cert, err := IssueUserCert(ca, user.PublicKey(), validRequest())
	if err != nil {
		t.Fatalf("IssueUserCert: %v", err)
	}
	if cert.CertType != ssh.UserCert {
		t.Errorf("CertType %d, want user", cert.CertType)
	}
	if !slices.Equal(cert.ValidPrincipals, []string{"alice"}) {
		t.Errorf("ValidPrincipals %q", cert.ValidPrincipals)
	}
	if cert.KeyId != "user=alice serial=42" || cert.Serial != 42 {
		t.Errorf("KeyId %q serial %d", cert.KeyId, cert.Serial)
	}
	if want := uint64(testNow.Add(-time.Minute).Unix()); cert.ValidAfter != want {
		t.Errorf("ValidAfter %d, want %d", cert.ValidAfter, want)
	}
	if want := uint64(testNow.Add(8 * time.Hour).Unix()); cert.ValidBefore != want {
		t.Errorf("ValidBefore %d, want %d", cert.ValidBefore, want)
	}
	wantExt := map[string]string{"permit-pty": "", GroupsExtension: "audit,sre"}
	if !maps.Equal(cert.Extensions, wantExt) {
		t.Errorf("Extensions %q, want %q", cert.Extensions, wantExt)
	}
	if len(cert.CriticalOptions) != 0 {
		t.Errorf("CriticalOptions %q, want none", cert.CriticalOptions)
	}
	if !sameKey(cert.SignatureKey, ca.PublicKey()) || !sameKey(cert.Key, user.PublicKey()) {
		t.Error("certificate does not bind the user key to the CA")
	}

	// The certificate must survive the wire format: parse what a client would send.
	parsed, err := ssh.ParsePublicKey(cert.Marshal())
	if err != nil {
		t.Fatalf("parse issued certificate: %v", err)
	}
	checker := ssh.CertChecker{
		IsUserAuthority: func(k ssh.PublicKey) bool { return sameKey(k, ca.PublicKey()) },
		Clock:           fixedClock(testNow),
	}
	if err := checker.CheckCert("alice", parsed.(*ssh.Certificate)); err != nil {
		t.Fatalf("x/crypto rejects the issued certificate: %v", err)
	}
}

func TestIssueUserCertNoGroupsStillCarriesExtension(t *testing.T) {
	req := validRequest()
	req.Groups = nil
	cert, err := IssueUserCert(newEd25519(t), newEd25519(t).PublicKey(), req)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := cert.Extensions[GroupsExtension]; !ok || v != "" {
		t.Fatalf("GroupsExtension = %q (present %v), want present and empty", v, ok)
	}
}

func TestIssueUserCertRefusals(t *testing.T) {
	ca := newEd25519(t)
	user := newEd25519(t)
	weak, _ := newRSA(t, 1024)
	userCert, err := IssueUserCert(ca, user.PublicKey(), validRequest())
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		ca      ssh.Signer
		pub     ssh.PublicKey
		edit    func(*UserCertRequest)
		wantErr []string // all must appear in the error
	}{
		{"TTL above MaxTTL names both", ca, user.PublicKey(), func(r *UserCertRequest) { r.TTL = 48 * time.Hour }, []string{"48h0m0s", "24h0m0s"}},
		{"zero TTL", ca, user.PublicKey(), func(r *UserCertRequest) { r.TTL = 0 }, []string{"must be > 0"}},
		{"negative TTL", ca, user.PublicKey(), func(r *UserCertRequest) { r.TTL = -time.Hour }, []string{"must be > 0"}},
		{"MaxTTL unset", ca, user.PublicKey(), func(r *UserCertRequest) { r.MaxTTL = 0 }, []string{"max_ttl"}},
		{"zero serial", ca, user.PublicKey(), func(r *UserCertRequest) { r.Serial = 0 }, []string{"serial"}},
		{"zero Now", ca, user.PublicKey(), func(r *UserCertRequest) { r.Now = time.Time{} }, []string{"not set"}},
		{"Now before 1970", ca, user.PublicKey(), func(r *UserCertRequest) { r.Now = time.Unix(30, 0) }, []string{"invalid validity window"}},
		{"bad user", ca, user.PublicKey(), func(r *UserCertRequest) { r.User = "Root" }, []string{"lower-case"}},
		{"bad group", ca, user.PublicKey(), func(r *UserCertRequest) { r.Groups = []string{"sre,admin"} }, []string{"group name"}},
		{"empty group", ca, user.PublicKey(), func(r *UserCertRequest) { r.Groups = []string{""} }, []string{"empty"}},
		{"weak user key", ca, weak.PublicKey(), nil, []string{"weak", "1024"}},
		{"certificate as key", ca, userCert, nil, []string{"already a certificate"}},
		{"nil key", ca, nil, nil, []string{"no public key"}},
		{"nil CA", nil, user.PublicKey(), nil, []string{"no CA"}},
		{"weak CA", weak, user.PublicKey(), nil, []string{"CA key", "1024"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := validRequest()
			if tt.edit != nil {
				tt.edit(&req)
			}
			cert, err := IssueUserCert(tt.ca, tt.pub, req)
			if err == nil {
				t.Fatalf("IssueUserCert succeeded (%v), want an error", cert.KeyId)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestIssueTargetCert(t *testing.T) {
	ca := newEd25519(t)
	bastionKey := newEd25519(t)

	cert, err := IssueTargetCert(ca, bastionKey.PublicKey(), "deploy", "bastion user=alice session=01J", testNow, time.Minute)
	if err != nil {
		t.Fatalf("IssueTargetCert: %v", err)
	}
	if cert.CertType != ssh.UserCert || !slices.Equal(cert.ValidPrincipals, []string{"deploy"}) || cert.KeyId != "bastion user=alice session=01J" {
		t.Errorf("cert type %d principals %q key id %q", cert.CertType, cert.ValidPrincipals, cert.KeyId)
	}
	if cert.ValidAfter != uint64(testNow.Add(-30*time.Second).Unix()) || cert.ValidBefore != uint64(testNow.Add(time.Minute).Unix()) {
		t.Errorf("window [%d, %d]", cert.ValidAfter, cert.ValidBefore)
	}
	if cert.Serial == 0 {
		t.Error("serial is zero")
	}
	if !maps.Equal(cert.Extensions, map[string]string{"permit-pty": ""}) || len(cert.CriticalOptions) != 0 {
		t.Errorf("extensions %q options %q", cert.Extensions, cert.CriticalOptions)
	}
	// A target sshd (modelled by x/crypto's checker) trusting the target CA accepts it.
	checker := ssh.CertChecker{IsUserAuthority: func(k ssh.PublicKey) bool { return sameKey(k, ca.PublicKey()) }, Clock: fixedClock(testNow)}
	if _, err := checker.Authenticate(testMeta{user: "deploy", remote: tcpAddr("10.0.0.1")}, cert); err != nil {
		t.Fatalf("target would reject the certificate: %v", err)
	}
	if _, err := checker.Authenticate(testMeta{user: "deploy", remote: tcpAddr("10.0.0.1")}, mustParse(t, cert)); err != nil {
		t.Fatalf("target would reject the certificate after the wire: %v", err)
	}
	checker.Clock = fixedClock(testNow.Add(time.Minute))
	if _, err := checker.Authenticate(testMeta{user: "deploy"}, cert); err == nil {
		t.Fatal("target accepts the certificate after its minute")
	}

	tests := []struct {
		name, principal, keyID string
		ttl                    time.Duration
		wantErr                string
	}{
		{"windows-style user", "Administrator", "id", time.Minute, ""},
		{"empty principal", "", "id", time.Minute, "1-64"},
		{"flag-like principal", "-oProxyCommand", "id", time.Minute, "must not start"},
		{"comma in principal", "a,b", "id", time.Minute, "contains"},
		{"newline in key id", "deploy", "alice\nfake log line", time.Minute, "non-printable"},
		{"empty key id", "deploy", "", time.Minute, "key id"},
		{"zero ttl", "deploy", "id", 0, "TTL"},
		{"ttl above cap", "deploy", "id", 2 * time.Hour, "TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := IssueTargetCert(ca, bastionKey.PublicKey(), tt.principal, tt.keyID, testNow, tt.ttl)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("IssueTargetCert: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("IssueTargetCert error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestIssueHostCert(t *testing.T) {
	ca := newEd25519(t)
	hostKey := newEd25519(t)
	validity := 365 * 24 * time.Hour

	cert, err := IssueHostCert(ca, hostKey.PublicKey(), []string{"bastion.corp", "10.0.0.2"}, testNow, validity)
	if err != nil {
		t.Fatalf("IssueHostCert: %v", err)
	}
	if cert.CertType != ssh.HostCert || !slices.Equal(cert.ValidPrincipals, []string{"bastion.corp", "10.0.0.2"}) {
		t.Errorf("type %d principals %q", cert.CertType, cert.ValidPrincipals)
	}
	if cert.ValidBefore != uint64(testNow.Add(validity).Unix()) || cert.ValidAfter != uint64(testNow.Add(-5*time.Minute).Unix()) {
		t.Errorf("window [%d, %d]", cert.ValidAfter, cert.ValidBefore)
	}
	if len(cert.Extensions) != 0 || len(cert.CriticalOptions) != 0 {
		t.Errorf("extensions %q options %q, want none", cert.Extensions, cert.CriticalOptions)
	}
	checker := ssh.CertChecker{
		IsHostAuthority: func(k ssh.PublicKey, _ string) bool { return sameKey(k, ca.PublicKey()) },
		Clock:           fixedClock(testNow),
	}
	if err := checker.CheckHostKey("bastion.corp:22", tcpAddr("10.0.0.2"), mustParse(t, cert)); err != nil {
		t.Fatalf("client would reject the host certificate: %v", err)
	}

	for _, tt := range []struct {
		name       string
		principals []string
		validity   time.Duration
	}{
		{"no principals", nil, validity},
		{"empty principal", []string{""}, validity},
		{"space in principal", []string{"bastion corp"}, validity},
		{"comma in principal", []string{"a,b"}, validity},
		{"zero validity", []string{"bastion.corp"}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := IssueHostCert(ca, hostKey.PublicKey(), tt.principals, testNow, tt.validity); err == nil {
				t.Fatal("IssueHostCert succeeded, want an error")
			}
		})
	}
}

func mustParse(t *testing.T, cert *ssh.Certificate) *ssh.Certificate {
	t.Helper()
	k, err := ssh.ParsePublicKey(cert.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return k.(*ssh.Certificate)
}
