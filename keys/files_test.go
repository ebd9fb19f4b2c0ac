package keys

import (
	"crypto/rsa"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func openRoot(t *testing.T) (*os.Root, string) {
	t.Helper()
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root, dir
}

func TestLoadOrCreateSignerCreatesAndReloads(t *testing.T) {
	root, dir := openRoot(t)

	created, err := LoadOrCreateSigner(root, "user_ca")
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if created.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Fatalf("created key type %s, want ed25519", created.PublicKey().Type())
	}

	for name, want := range map[string]os.FileMode{"user_ca": 0o600, "user_ca.pub": 0o644} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s mode %04o, want %04o", name, got, want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("data dir holds %d entries, want only the key and .pub (no temporary files)", len(entries))
	}

	pubLine, err := os.ReadFile(filepath.Join(dir, "user_ca.pub"))
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(pubLine)
	if err != nil {
		t.Fatalf("parse .pub: %v", err)
	}
	if !sameKey(pub, created.PublicKey()) {
		t.Fatal(".pub file does not hold the created key's public key")
	}

	reloaded, err := LoadOrCreateSigner(root, "user_ca")
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !sameKey(reloaded.PublicKey(), created.PublicKey()) {
		t.Fatal("reloaded key differs from the created one")
	}
	// The reloaded signer must sign with the same private key.
	sig, err := reloaded.Sign(nil, []byte("data"))
	if err != nil {
		t.Fatal(err)
	}
	if err := created.PublicKey().Verify([]byte("data"), sig); err != nil {
		t.Fatalf("reloaded key's signature does not verify with the created key: %v", err)
	}

	viaPath, err := LoadSigner(filepath.Join(dir, "user_ca"))
	if err != nil {
		t.Fatalf("LoadSigner: %v", err)
	}
	if !sameKey(viaPath.PublicKey(), created.PublicKey()) {
		t.Fatal("LoadSigner read a different key")
	}
}

func TestLoadOrCreateSignerRefusals(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, root *os.Root, dir string)
		key     string
		wantErr string
	}{
		{
			name: "group and world readable key",
			setup: func(t *testing.T, root *os.Root, dir string) {
				if _, err := LoadOrCreateSigner(root, "host_key"); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(filepath.Join(dir, "host_key"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			key:     "host_key",
			wantErr: "chmod 600",
		},
		{
			name: "group readable only",
			setup: func(t *testing.T, root *os.Root, dir string) {
				if _, err := LoadOrCreateSigner(root, "host_key"); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(filepath.Join(dir, "host_key"), 0o640); err != nil {
					t.Fatal(err)
				}
			},
			key:     "host_key",
			wantErr: "mode 0640",
		},
		{
			name:    "path escaping the data dir",
			setup:   func(t *testing.T, root *os.Root, dir string) {},
			key:     "../outside",
			wantErr: "escapes",
		},
		{
			name: "garbage key file",
			setup: func(t *testing.T, root *os.Root, dir string) {
				writeTestFile(t, filepath.Join(dir, "k"), []byte("not a key"), 0o600)
			},
			key:     "k",
			wantErr: "want an OpenSSH private key",
		},
		{
			name: "directory in place of key",
			setup: func(t *testing.T, root *os.Root, dir string) {
				if err := os.Mkdir(filepath.Join(dir, "k"), 0o700); err != nil {
					t.Fatal(err)
				}
			},
			key:     "k",
			wantErr: "not a regular file",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, dir := openRoot(t)
			tt.setup(t, root, dir)
			_, err := LoadOrCreateSigner(root, tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("LoadOrCreateSigner error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
	if _, err := LoadOrCreateSigner(nil, "k"); err == nil {
		t.Fatal("LoadOrCreateSigner(nil root) succeeded")
	}
}

func TestLoadSignerRefusals(t *testing.T) {
	_, weak := newRSA(t, 1024)
	weakBlock, err := ssh.MarshalPrivateKey(weak, "weak")
	if err != nil {
		t.Fatal(err)
	}
	_, strong := newRSA(t, 2048)
	encBlock, err := ssh.MarshalPrivateKeyWithPassphrase(strong, "enc", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	strongBlock, err := ssh.MarshalPrivateKey(strong, "strong")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		data    []byte // nil: do not create the file
		mode    os.FileMode
		wantErr string // "" means it loads
	}{
		{"rsa 2048 0600", pem.EncodeToMemory(strongBlock), 0o600, ""},
		{"rsa 2048 0400", pem.EncodeToMemory(strongBlock), 0o400, ""},
		{"world readable", pem.EncodeToMemory(strongBlock), 0o604, "chmod 600"},
		{"weak rsa 1024", pem.EncodeToMemory(weakBlock), 0o600, "1024 bits is too weak"},
		{"passphrase protected", pem.EncodeToMemory(encBlock), 0o600, "passphrase-protected"},
		{"missing", nil, 0, "no such file"},
		{"too large", make([]byte, maxKeyFileSize+1), 0o600, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "identity")
			if tt.data != nil {
				writeTestFile(t, path, tt.data, tt.mode)
			}
			signer, err := LoadSigner(path)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("LoadSigner: %v", err)
				}
				if got := signer.PublicKey().(ssh.CryptoPublicKey).CryptoPublicKey().(*rsa.PublicKey); !got.Equal(&strong.PublicKey) {
					t.Fatal("LoadSigner returned a different key")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("LoadSigner error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func writeTestFile(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile's mode is filtered by the umask; tests need the exact mode.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestLoadOrCreateSignerReplacesStalePub(t *testing.T) {
	root, dir := openRoot(t)
	stale := newEd25519(t)
	writeTestFile(t, filepath.Join(dir, "host_key.pub"), AuthorizedKeyLine(stale.PublicKey()), 0o600)

	created, err := LoadOrCreateSigner(root, "host_key")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != string(AuthorizedKeyLine(created.PublicKey())) {
		t.Fatalf(".pub holds %q, want the new key", data)
	}
	st, err := os.Stat(filepath.Join(dir, "host_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Fatalf(".pub mode %04o, want 0644", st.Mode().Perm())
	}
}
