package testharness

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"
)

// KeyKinds returns the kinds KeyPair accepts, strongest first, as a fresh
// slice so that table-driven tests can range over every kind.
func KeyKinds() []string {
	return []string{"ed25519", "ecdsa", "rsa2048", "rsa1024"}
}

// KeyPair writes a fresh key pair of the given kind to dir, in the files
// ssh-keygen would write: an OpenSSH private key (mode 0600) at privPath
// and its authorized_keys line at privPath+".pub".
//
// kind is one of KeyKinds ("ecdsa" is P-256). rsa1024 exists for refusal
// tests: ssh-keygen will not make keys that weak on some systems, so every
// kind is generated with Go's crypto and encoded with ssh.MarshalPrivateKey.
// Each call writes new files, so several keys may share one dir.
func KeyPair(t testing.TB, dir, kind string) (privPath string, pub ssh.PublicKey) {
	t.Helper()
	priv, err := generateKey(kind)
	if err != nil {
		t.Fatalf("generate %s key: %v", kind, err)
	}
	f, err := os.CreateTemp(dir, "id_"+kind+"_*")
	if err != nil {
		t.Fatalf("create key file in %s: %v", dir, err)
	}
	privPath = f.Name()
	if err := f.Close(); err != nil {
		t.Fatalf("close %s: %v", privPath, err)
	}
	pub, err = writeKeyFiles(privPath, priv, "testharness-"+kind+"@"+filepath.Base(privPath))
	if err != nil {
		t.Fatalf("write %s key pair: %v", kind, err)
	}
	return privPath, pub
}

// writeKeyFiles writes priv in OpenSSH format to privPath (0600) and its
// authorized_keys line, with comment, to privPath+".pub".
func writeKeyFiles(privPath string, priv crypto.Signer, comment string) (ssh.PublicKey, error) {
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("make signer: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	if err := os.WriteFile(privPath, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, fmt.Errorf("write private key %s: %w", privPath, err)
	}
	pub := signer.PublicKey()
	line := bytes.TrimSuffix(ssh.MarshalAuthorizedKey(pub), []byte("\n"))
	line = append(line, []byte(" "+comment+"\n")...)
	if err := os.WriteFile(privPath+".pub", line, 0o644); err != nil {
		return nil, fmt.Errorf("write public key %s.pub: %w", privPath, err)
	}
	return pub, nil
}

// generateKey makes the private key for one of KeyKinds.
func generateKey(kind string) (crypto.Signer, error) {
	switch kind {
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case "ecdsa":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa2048":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "rsa1024":
		return rsa.GenerateKey(rand.Reader, 1024)
	default:
		return nil, fmt.Errorf("unknown key kind %q: use one of %v", kind, KeyKinds())
	}
}
