package keys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// testNow is the fixed "now" of every certificate-window test.
var testNow = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func newEd25519(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seededEd25519 gives the same key on every run, so fuzz seeds stay valid.
func seededEd25519(t testing.TB, seed byte) ssh.Signer {
	t.Helper()
	b := make([]byte, ed25519.SeedSize)
	for i := range b {
		b[i] = seed
	}
	s, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(b))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newECDSA(t testing.TB, c elliptic.Curve) ssh.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newRSA(t testing.TB, bits int) (ssh.Signer, *rsa.PrivateKey) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return s, k
}

// signRaw signs an arbitrary certificate template, bypassing IssueUserCert's
// rules, to build the malformed certificates a verifier must refuse.
func signRaw(t testing.TB, ca ssh.Signer, c *ssh.Certificate) *ssh.Certificate {
	t.Helper()
	if err := c.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	return c
}

// testMeta is an ssh.ConnMetadata for a connection that never existed.
type testMeta struct {
	user   string
	remote net.Addr
}

func (m testMeta) User() string          { return m.user }
func (m testMeta) SessionID() []byte     { return []byte("session") }
func (m testMeta) ClientVersion() []byte { return []byte("SSH-2.0-test") }
func (m testMeta) ServerVersion() []byte { return []byte("SSH-2.0-bastion") }
func (m testMeta) RemoteAddr() net.Addr  { return m.remote }
func (m testMeta) LocalAddr() net.Addr   { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2222} }

func tcpAddr(s string) *net.TCPAddr {
	return &net.TCPAddr{IP: net.ParseIP(s), Port: 50000}
}

// fakeKey is a public key of a type x/crypto no longer parses (DSA) or that
// we do not accept, to test the allow-list without the real algorithm.
type fakeKey struct{ typ string }

func (k fakeKey) Type() string    { return k.typ }
func (k fakeKey) Marshal() []byte { return ssh.Marshal(struct{ Name string }{k.typ}) }
func (k fakeKey) Verify(data []byte, sig *ssh.Signature) error {
	return errors.New("fake key verifies nothing")
}
