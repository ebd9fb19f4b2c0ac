package keys

import (
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestAuthenticateAccepts(t *testing.T) {
	ca := newEd25519(t)
	rsa3072, _ := newRSA(t, 3072)
	userKeys := []struct {
		name string
		key  ssh.Signer
	}{
		{"ed25519", newEd25519(t)},
		{"ecdsa-p256", newECDSA(t, elliptic.P256())},
		{"rsa-3072", rsa3072},
	}
	// The SSH login name routes the session; it need not be the principal.
	logins := []string{"alice", "web-1", "login"}

	for _, uk := range userKeys {
		for _, login := range logins {
			t.Run(uk.name+"/"+login, func(t *testing.T) {
				cert, err := IssueUserCert(ca, uk.key.PublicKey(), validRequest())
				if err != nil {
					t.Fatal(err)
				}
				var revCalls []string
				v := &Verifier{
					CA: ca.PublicKey(),
					IsRevoked: func(serial uint64, user string, issuedAt time.Time) (bool, error) {
						revCalls = append(revCalls, user)
						// The issue time must come back exactly (to the
						// second): revoking a user spares later certificates.
						return serial != 42 || user != "alice" || !issuedAt.Equal(testNow.Truncate(time.Second)), nil
					},
					Now: fixedClock(testNow),
				}
				id, err := v.Authenticate(testMeta{user: login, remote: tcpAddr("192.0.2.7")}, mustParse(t, cert))
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				want := Identity{
					User:           "alice",
					Groups:         []string{"audit", "sre"},
					Serial:         42,
					KeyID:          "user=alice serial=42",
					KeyFingerprint: ssh.FingerprintSHA256(uk.key.PublicKey()),
					ValidAfter:     testNow.Add(-time.Minute),
					ValidBefore:    testNow.Add(8 * time.Hour),
				}
				if id.User != want.User || !slices.Equal(id.Groups, want.Groups) || id.Serial != want.Serial || id.KeyID != want.KeyID ||
					id.KeyFingerprint != want.KeyFingerprint || !id.ValidAfter.Equal(want.ValidAfter) || !id.ValidBefore.Equal(want.ValidBefore) {
					t.Fatalf("Identity = %+v, want %+v", *id, want)
				}
				if !slices.Equal(revCalls, []string{"alice"}) {
					t.Fatalf("IsRevoked calls %q, want one for alice", revCalls)
				}
			})
		}
	}
}

func TestAuthenticateDefaultClock(t *testing.T) {
	ca := newEd25519(t)
	req := validRequest()
	req.Now = time.Now()
	cert, err := IssueUserCert(ca, newEd25519(t).PublicKey(), req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&Verifier{CA: ca.PublicKey()}).Authenticate(testMeta{user: "alice"}, cert); err != nil {
		t.Fatalf("Authenticate with nil Now and nil IsRevoked: %v", err)
	}
}

func TestAuthenticateSourceAddress(t *testing.T) {
	ca := newEd25519(t)
	user := newEd25519(t)
	v := &Verifier{CA: ca.PublicKey(), Now: fixedClock(testNow)}
	tests := []struct {
		name   string
		option string
		remote *testMeta
		ok     bool
	}{
		{"in CIDR", "10.0.0.0/8", &testMeta{user: "alice", remote: tcpAddr("10.1.2.3")}, true},
		{"exact address in list", "192.0.2.1,198.51.100.7", &testMeta{user: "alice", remote: tcpAddr("198.51.100.7")}, true},
		{"IPv6 CIDR", "2001:db8::/32", &testMeta{user: "alice", remote: tcpAddr("2001:db8::5")}, true},
		{"outside CIDR", "10.0.0.0/8", &testMeta{user: "alice", remote: tcpAddr("192.168.1.5")}, false},
		{"malformed list refuses", "10.0.0.0/8,not-an-address", &testMeta{user: "alice", remote: tcpAddr("192.168.1.5")}, false},
		{"no remote address", "10.0.0.0/8", &testMeta{user: "alice"}, false},
		{"nil meta", "10.0.0.0/8", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert := signRaw(t, ca, userCertTemplate(user.PublicKey(), func(c *ssh.Certificate) {
				c.CriticalOptions = map[string]string{"source-address": tt.option}
			}))
			var meta ssh.ConnMetadata
			if tt.remote != nil {
				meta = *tt.remote
			}
			_, err := v.Authenticate(meta, mustParse(t, cert))
			if tt.ok {
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				return
			}
			var r *Refusal
			if !errors.As(err, &r) || r.Reason != ReasonSourceAddress {
				t.Fatalf("Authenticate error = %v, want a %q refusal", err, ReasonSourceAddress)
			}
		})
	}
}

// userCertTemplate is what IssueUserCert would produce for alice at testNow,
// with edit applied, for signing by signRaw.
func userCertTemplate(key ssh.PublicKey, edit func(*ssh.Certificate)) *ssh.Certificate {
	c := &ssh.Certificate{
		Key:             key,
		Serial:          42,
		CertType:        ssh.UserCert,
		KeyId:           "user=alice serial=42",
		ValidPrincipals: []string{"alice"},
		ValidAfter:      uint64(testNow.Add(-time.Minute).Unix()),
		ValidBefore:     uint64(testNow.Add(8 * time.Hour).Unix()),
		Permissions:     ssh.Permissions{Extensions: map[string]string{"permit-pty": "", GroupsExtension: "sre"}},
	}
	if edit != nil {
		edit(c)
	}
	return c
}

// signUnchecked signs like Certificate.SignCert but without its refusal of
// certificates that have no principals, to build one.
func signUnchecked(t *testing.T, ca ssh.Signer, c *ssh.Certificate) *ssh.Certificate {
	t.Helper()
	c.Nonce = make([]byte, 32)
	if _, err := rand.Read(c.Nonce); err != nil {
		t.Fatal(err)
	}
	c.SignatureKey = ca.PublicKey()
	c.Signature = nil
	body := c.Marshal()
	sig, err := ca.Sign(rand.Reader, body[:len(body)-4])
	if err != nil {
		t.Fatal(err)
	}
	c.Signature = sig
	return c
}

func TestAuthenticateRefusals(t *testing.T) {
	ca := newEd25519(t)
	otherCA := newEd25519(t)
	user := newEd25519(t)
	weak, _ := newRSA(t, 1024)
	good, err := IssueUserCert(ca, user.PublicKey(), validRequest())
	if err != nil {
		t.Fatal(err)
	}
	tampered := mustParse(t, good)
	tampered.ValidBefore += 3600 * 24 * 365

	errStore := errors.New("store unavailable")
	tests := []struct {
		name      string
		key       ssh.PublicKey
		now       time.Time
		caKey     ssh.PublicKey // nil: ca
		noCA      bool
		isRevoked func(uint64, string) (bool, error)
		reason    string
		message   string // substring of the user message
	}{
		{name: "plain key", key: user.PublicKey(), reason: ReasonNotCertificate, message: "ssh login@bastion.corp"},
		{name: "no key", key: nil, reason: ReasonNotCertificate},
		{name: "typed nil certificate", key: (*ssh.Certificate)(nil), reason: ReasonNotCertificate},
		{name: "wrong CA", key: signRaw(t, otherCA, userCertTemplate(user.PublicKey(), nil)), reason: ReasonUnknownAuthority},
		{name: "verifier without CA", key: good, noCA: true, reason: ReasonUnknownAuthority, message: "tell an admin"},
		{name: "tampered after signing", key: tampered, reason: ReasonBadSignature},
		{name: "expired at ValidBefore", key: good, now: testNow.Add(8 * time.Hour), reason: ReasonExpired, message: "expired just now (at 2026-12-01T17:00Z)"},
		{name: "expired hours ago", key: good, now: testNow.Add(10*time.Hour + 5*time.Minute), reason: ReasonExpired, message: "expired 2h ago (at 2026-12-01T17:00Z)"},
		{name: "not yet valid", key: good, now: testNow.Add(-time.Minute - time.Second), reason: ReasonNotYetValid, message: "2026-12-01T08:59Z"},
		{name: "revoked", key: good, isRevoked: func(s uint64, u string) (bool, error) { return s == 42 && u == "alice", nil }, reason: ReasonRevoked, message: "serial 42"},
		{name: "revocation check error fails closed", key: good, isRevoked: func(uint64, string) (bool, error) { return false, errStore }, reason: ReasonRevocationCheckFailed, message: "try again"},
		{name: "rsa-1024 user key", key: signRaw(t, ca, userCertTemplate(weak.PublicKey(), nil)), reason: ReasonWeakKey, message: "ssh-keygen -t ed25519"},
		{name: "host cert as user cert", key: signRaw(t, ca, userCertTemplate(user.PublicKey(), func(c *ssh.Certificate) { c.CertType = ssh.HostCert })), reason: ReasonNotUserCertificate},
		{name: "zero principals", key: signUnchecked(t, ca, userCertTemplate(user.PublicKey(), func(c *ssh.Certificate) { c.ValidPrincipals = nil })), reason: ReasonBadPrincipal},
		{name: "two principals", key: signRaw(t, ca, userCertTemplate(user.PublicKey(), func(c *ssh.Certificate) { c.ValidPrincipals = []string{"alice", "root"} })), reason: ReasonBadPrincipal},
		{name: "invalid principal", key: signRaw(t, ca, userCertTemplate(user.PublicKey(), func(c *ssh.Certificate) { c.ValidPrincipals = []string{"Alice Admin"} })), reason: ReasonBadPrincipal},
		{name: "source-address mismatch", key: signRaw(t, ca, userCertTemplate(user.PublicKey(), func(c *ssh.Certificate) {
			c.CriticalOptions = map[string]string{"source-address": "10.0.0.0/8"}
		})), reason: ReasonSourceAddress, message: "192.0.2.7"},
		{name: "unenforced critical option", key: signRaw(t, ca, userCertTemplate(user.PublicKey(), func(c *ssh.Certificate) {
			c.CriticalOptions = map[string]string{"force-command": "/bin/true"}
		})), reason: ReasonUnsupportedOption},
		{name: "malformed groups", key: signRaw(t, ca, userCertTemplate(user.PublicKey(), func(c *ssh.Certificate) { c.Extensions[GroupsExtension] = "sre,,admin" })), reason: ReasonBadGroups},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := testNow
			if !tt.now.IsZero() {
				now = tt.now
			}
			revokedCalled := false
			v := &Verifier{
				CA:   ca.PublicKey(),
				Now:  fixedClock(now),
				Host: "bastion.corp",
				IsRevoked: func(s uint64, u string, _ time.Time) (bool, error) {
					revokedCalled = true
					if tt.isRevoked != nil {
						return tt.isRevoked(s, u)
					}
					return false, nil
				},
			}
			if tt.noCA {
				v.CA = nil
			}
			key := tt.key
			if c, ok := key.(*ssh.Certificate); ok && c != nil && c != tampered {
				key = mustParse(t, c) // what a real client sends
			}

			id, err := v.Authenticate(testMeta{user: "web-1", remote: tcpAddr("192.0.2.7")}, key)
			if err == nil {
				t.Fatalf("Authenticate accepted (%+v), want %q refusal", id, tt.reason)
			}
			var r *Refusal
			if !errors.As(err, &r) {
				t.Fatalf("error %T %v is not a *Refusal", err, err)
			}
			if r.Reason != tt.reason {
				t.Fatalf("Reason %q (%v), want %q", r.Reason, r.Err, tt.reason)
			}
			if r.Err == nil || r.Message == "" {
				t.Fatalf("Refusal %+v lacks Err or Message", r)
			}
			if !strings.Contains(r.Message, tt.message) {
				t.Errorf("Message %q does not contain %q", r.Message, tt.message)
			}
			// The user sees no library internals.
			if strings.Contains(r.Message, "ssh:") || strings.Contains(r.Message, "knownhosts") {
				t.Errorf("Message %q leaks internals", r.Message)
			}
			if tt.isRevoked == nil && revokedCalled {
				t.Error("revocation store was queried for a certificate already refused")
			}
			if tt.reason == ReasonRevocationCheckFailed && !errors.Is(err, errStore) {
				t.Errorf("error %v does not wrap the store's error", err)
			}
		})
	}
}

func TestRefusalError(t *testing.T) {
	cause := errors.New("cause")
	r := &Refusal{Reason: ReasonExpired, Message: "m", Err: cause}
	if r.Error() != "refused (expired): cause" || !errors.Is(r, cause) {
		t.Fatalf("Error() = %q, Is(cause) = %v", r.Error(), errors.Is(r, cause))
	}
	if (&Refusal{Reason: ReasonRevoked}).Error() != "refused (revoked)" {
		t.Fatal("Error() without cause")
	}
}

var allReasons = []string{
	ReasonNotCertificate, ReasonUnknownAuthority, ReasonExpired, ReasonNotYetValid, ReasonRevoked, ReasonWeakKey,
	ReasonBadPrincipal, ReasonNotUserCertificate, ReasonSourceAddress, ReasonRevocationCheckFailed, ReasonBadSignature,
	ReasonUnsupportedOption, ReasonBadGroups, ReasonInvalidCertificate,
}

// FuzzAuthenticate feeds arbitrary public-key blobs to Authenticate. It must
// never panic, must answer every refusal with a *Refusal carrying a known
// reason, and may accept only a user certificate for a valid principal, inside
// its window, whose signature verifies under the CA key with crypto/ed25519
// directly (not through x/crypto/ssh). The seeds include accepted
// certificates, so acceptance is reachable and mutations of them are explored.
//
// Fuzz workers re-run this setup, and certificate nonces are random, so the
// oracle must not depend on remembering which certificates the seeds were.
func FuzzAuthenticate(f *testing.F) {
	ca := seededEd25519(f, 1)
	other := seededEd25519(f, 2)
	user := seededEd25519(f, 3)
	caRaw := ca.PublicKey().(ssh.CryptoPublicKey).CryptoPublicKey().(ed25519.PublicKey)

	good, err := IssueUserCert(ca, user.PublicKey(), validRequest())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good.Marshal())
	f.Add(user.PublicKey().Marshal())
	f.Add(signRaw(f, other, userCertTemplate(user.PublicKey(), nil)).Marshal())
	f.Add(signRaw(f, ca, userCertTemplate(user.PublicKey(), func(c *ssh.Certificate) { c.CertType = ssh.HostCert })).Marshal())
	f.Add(signRaw(f, ca, userCertTemplate(user.PublicKey(), func(c *ssh.Certificate) {
		c.CriticalOptions = map[string]string{"source-address": "10.0.0.0/8,::1"}
	})).Marshal())
	f.Add(signRaw(f, ca, userCertTemplate(user.PublicKey(), func(c *ssh.Certificate) { c.ValidBefore = ssh.CertTimeInfinity })).Marshal())
	flipped := good.Marshal()
	flipped[len(flipped)/2] ^= 0x01
	f.Add(flipped)
	f.Add([]byte{})

	v := &Verifier{
		CA:        ca.PublicKey(),
		Now:       fixedClock(testNow),
		IsRevoked: func(uint64, string, time.Time) (bool, error) { return false, nil },
	}
	meta := testMeta{user: "login", remote: tcpAddr("10.9.9.9")}
	f.Fuzz(func(t *testing.T, blob []byte) {
		key, err := ssh.ParsePublicKey(blob)
		if err != nil {
			return
		}
		id, err := v.Authenticate(meta, key)
		if err != nil {
			var r *Refusal
			if !errors.As(err, &r) || !slices.Contains(allReasons, r.Reason) || r.Message == "" || r.Err == nil {
				t.Fatalf("refusal %#v is not a *Refusal with a known reason, a message and a cause", err)
			}
			return
		}
		cert, ok := key.(*ssh.Certificate)
		if !ok || id == nil {
			t.Fatalf("accepted a %s that is not a certificate", key.Type())
		}
		body := certBody(cert)
		if cert.Signature == nil || cert.Signature.Format != ssh.KeyAlgoED25519 ||
			!ed25519.Verify(caRaw, body[:len(body)-4], cert.Signature.Blob) {
			t.Fatalf("accepted a certificate whose signature does not verify under the CA: %q", cert.KeyId)
		}
		if cert.CertType != ssh.UserCert || len(cert.ValidPrincipals) != 1 || id.User != cert.ValidPrincipals[0] || ValidPrincipal(id.User) != nil {
			t.Fatalf("accepted type %d principals %q as %q", cert.CertType, cert.ValidPrincipals, id.User)
		}
		if now := uint64(testNow.Unix()); now < cert.ValidAfter || (cert.ValidBefore != ssh.CertTimeInfinity && now >= cert.ValidBefore) {
			t.Fatalf("accepted a certificate outside its window [%d, %d)", cert.ValidAfter, cert.ValidBefore)
		}
	})
}

// certBody is the certificate without its signature: what the CA signed.
func certBody(c *ssh.Certificate) []byte {
	cc := *c
	cc.Signature = nil
	return cc.Marshal()
}
