package main

import (
	"context"
	"strings"
	"testing"
)

// TestClientCipherIsAESGCM: a stock OpenSSH client, which prefers
// ChaCha20-Poly1305, ends up on AES-GCM, and a client that offers nothing
// else is refused with the reason.
func TestClientCipherIsAESGCM(t *testing.T) {
	w := newWorld(t, worldOpts{})
	cases := []struct {
		name     string
		ciphers  string // -o Ciphers=; empty keeps the client's default list
		wantCode int
		want     string // in ssh -v's stderr
	}{
		{"default client list", "", 0, "cipher: aes128-gcm@openssh.com"},
		{"AES-256-GCM only", "aes256-gcm@openssh.com", 0, "cipher: aes256-gcm@openssh.com"},
		{"ChaCha20 only", "chacha20-poly1305@openssh.com", 255, "no matching cipher found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := *w.client
			cl.ExtraOpts = []string{"-v"}
			if c.ciphers != "" {
				cl.ExtraOpts = append(cl.ExtraOpts, "-o", "Ciphers="+c.ciphers)
			}
			cmd := cl.Command(context.Background(), "web-1", "true")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			_ = cmd.Run()
			if got := cmd.ProcessState.ExitCode(); got != c.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", got, c.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), c.want) {
				t.Fatalf("ssh -v does not say %q:\n%s", c.want, stderr.String())
			}
		})
	}
}
