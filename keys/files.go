package keys

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"golang.org/x/crypto/ssh"
)

// maxKeyFileSize bounds how much of a key file is read. The largest OpenSSH
// private key in practice (RSA 16384) is well under 16 KiB; the bound keeps a
// misconfigured path (a log file, a device) from being read into memory.
const maxKeyFileSize = 1 << 20

// LoadOrCreateSigner reads the OpenSSH-format private key `name` inside root (an *os.Root for data_dir),
// or creates an ed25519 key there (file mode 0600, plus `name.pub` 0644) when it does not exist.
// Refuses a key file whose mode is group/world readable (clear error telling the operator to chmod 600).
//
// Creation is atomic: the key is written to a temporary file and hard-linked
// into place, so a crash never leaves a half-written CA key, and two processes
// racing to create the key end up sharing one key rather than each believing
// its own. A loaded key must also pass CheckKeyStrength.
func LoadOrCreateSigner(root *os.Root, name string) (ssh.Signer, error) {
	if root == nil {
		return nil, errors.New("load key: no data directory")
	}
	display := root.Name() + string(os.PathSeparator) + name
	f, err := root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		signer, cerr := createSigner(root, name, display)
		if !errors.Is(cerr, fs.ErrExist) {
			return signer, cerr
		}
		// Another process created it between our Open and our Link: use theirs.
		f, err = root.Open(name)
	}
	if err != nil {
		return nil, fmt.Errorf("open key %s: %w", display, err)
	}
	defer f.Close()
	return readSigner(f, display)
}

// LoadSigner reads an OpenSSH private key file at an absolute/relative path (e.g. a target's identity_file); same mode check.
func LoadSigner(path string) (ssh.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open key %s: %w", path, err)
	}
	defer f.Close()
	return readSigner(f, path)
}

// readSigner checks the open file's mode (through the descriptor, so the file
// checked is the file read), then parses and strength-checks the key.
func readSigner(f *os.File, display string) (ssh.Signer, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat key %s: %w", display, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("key %s is not a regular file (mode %v)", display, st.Mode())
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("private key %s has mode %04o, so other users may read it; run `chmod 600 %s` (and check who may already have copied it)", display, perm, display)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", display, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("key %s is larger than %d bytes; is the path right?", display, maxKeyFileSize)
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			return nil, fmt.Errorf("key %s is passphrase-protected; the bastion needs an unencrypted key file (mode 0600)", display)
		}
		return nil, fmt.Errorf("parse key %s (want an OpenSSH private key): %w", display, err)
	}
	if err := CheckKeyStrength(signer.PublicKey()); err != nil {
		return nil, fmt.Errorf("key %s: %w; replace it with `ssh-keygen -t ed25519`", display, err)
	}
	return signer, nil
}

// createSigner generates an ed25519 key and publishes it as name (0600) and
// name.pub (0644). It returns an error wrapping fs.ErrExist if name appeared
// meanwhile.
func createSigner(root *os.Root, name, display string) (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key %s: %w", display, err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "bastion "+name)
	if err != nil {
		return nil, fmt.Errorf("encode key %s: %w", display, err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("create signer for %s: %w", display, err)
	}

	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("create key %s: %w", display, err)
	}
	tmp := name + ".tmp-" + hex.EncodeToString(nonce[:])
	if err := writeFile(root, tmp, pem.EncodeToMemory(block), 0o600); err != nil {
		if rerr := root.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
		return nil, fmt.Errorf("write key %s: %w", display, err)
	}
	// Link fails if name exists, unlike Rename, which would replace a key that
	// another process created and may already be using.
	linkErr := root.Link(tmp, name)
	if err := root.Remove(tmp); err != nil && linkErr == nil {
		return nil, fmt.Errorf("remove temporary key file %s: %w", tmp, err)
	}
	if linkErr != nil {
		return nil, fmt.Errorf("install key %s: %w", display, linkErr)
	}

	// The .pub file is derived data: replace whatever stale one is there.
	if err := writeFile(root, name+".pub", ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644); err != nil {
		return nil, fmt.Errorf("write public key %s.pub: %w", display, err)
	}
	return signer, nil
}

// writeFile writes data to name inside root with exactly mode perm (the
// umask cannot widen it, and Chmod makes sure it does not narrow a .pub file
// that others must read), and syncs it so the key survives a crash.
func writeFile(root *os.Root, name string, data []byte, perm os.FileMode) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if perm&0o077 == 0 {
		// Secret files are always new files: never reuse an existing inode
		// whose mode or owner we did not set.
		flags |= os.O_EXCL
	}
	f, err := root.OpenFile(name, flags, perm)
	if err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
