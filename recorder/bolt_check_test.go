package recorder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckStoreFileRefusesTruncation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	st, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkStoreFile(path); err != nil {
		t.Fatalf("intact store refused: %v", err)
	}
	cut := filepath.Join(dir, "cut.db")
	if err := os.WriteFile(cut, raw[:len(raw)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBolt(cut, BoltOptions{}); err == nil || !strings.Contains(err.Error(), "truncated") || !strings.Contains(err.Error(), cut) {
		t.Fatalf("truncated store: %v", err)
	}
}

func FuzzCheckStoreFile(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("not a database"))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "f.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_ = checkStoreFile(path) // never panics, whatever the header says
	})
}
