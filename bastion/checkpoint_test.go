package bastion

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/bastion-dev/bastion/recorder"
)

func TestCheckpointsSignTheHead(t *testing.T) {
	ctx := context.Background()
	st, err := recorder.OpenBolt(filepath.Join(t.TempDir(), "c.db"), recorder.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	signer := newSigner(t)
	s := &Server{store: st, auditKey: signer}
	if err := s.Checkpoint(ctx); err != nil { // empty trail: nothing to sign
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := st.AppendAudit(ctx, recorder.AuditRecord{Type: "x", Outcome: recorder.OutcomeSuccess}); err != nil {
			t.Fatal(err)
		}
		if err := s.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Checkpoint(ctx); err != nil { // nothing new: no second checkpoint
			t.Fatal(err)
		}
	}
	all, err := st.ListAudit(ctx, recorder.AuditFilter{})
	if err != nil || len(all) != 4 {
		t.Fatalf("records %d %v", len(all), err)
	}
	if n, err := VerifyCheckpoints(all, signer.PublicKey()); err != nil || n != 2 {
		t.Fatalf("verify with the audit key: %d %v", n, err)
	}
	if _, err := VerifyCheckpoints(all, newSigner(t).PublicKey()); !errors.Is(err, recorder.ErrAuditBroken) {
		t.Fatalf("verify with another key: %v", err)
	}
	all[0].Detail["head"] = all[2].Hash // a checkpoint moved to another head
	if _, err := VerifyCheckpoints(all, signer.PublicKey()); !errors.Is(err, recorder.ErrAuditBroken) {
		t.Fatalf("moved checkpoint: %v", err)
	}
}

func newSigner(t *testing.T) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
