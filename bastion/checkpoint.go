package bastion

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/bastion-dev/bastion/recorder"
)

// CheckpointInterval is how often the head of the audit chain is signed.
const CheckpointInterval = 5 * time.Minute

// Checkpoint signs the head of the audit chain with the audit key and
// appends the signature as an audit.checkpoint record. The hash chain shows
// that no record was changed, dropped or reordered after a later one was
// written; the signature shows that nobody without the audit key rebuilt
// the chain from some point on. Nothing new since the last checkpoint means
// nothing to sign.
func (s *Server) Checkpoint(ctx context.Context) error {
	if s.auditKey == nil {
		return nil
	}
	last, err := s.store.ListAudit(ctx, recorder.AuditFilter{Limit: 1})
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if len(last) == 0 || last[0].Type == CheckpointType {
		return nil
	}
	head := last[0].Hash
	sig, err := s.auditKey.Sign(rand.Reader, []byte(head))
	if err != nil {
		return fmt.Errorf("checkpoint: sign: %w", err)
	}
	_, err = s.store.AppendAudit(ctx, recorder.AuditRecord{Type: CheckpointType, Outcome: recorder.OutcomeSuccess,
		Detail: map[string]string{"head": head, "head_seq": fmt.Sprint(last[0].Seq), "signature": base64.StdEncoding.EncodeToString(gossh.Marshal(sig)),
			"key": gossh.FingerprintSHA256(s.auditKey.PublicKey())}})
	return err
}

// CheckpointType is the audit record type of a signed chain head.
const CheckpointType = "audit.checkpoint"

// VerifyCheckpoints checks every audit.checkpoint record of a trail whose
// hash chain has already been verified: each signs the hash of the record
// right before it, with key. It returns how many it checked.
func VerifyCheckpoints(records []recorder.AuditRecord, key gossh.PublicKey) (int, error) {
	n := 0
	for _, r := range records {
		if r.Type != CheckpointType {
			continue
		}
		if r.Detail["head"] != r.Prev {
			return n, fmt.Errorf("checkpoint %d signs %q, not the record before it: %w", r.Seq, r.Detail["head"], recorder.ErrAuditBroken)
		}
		raw, err := base64.StdEncoding.DecodeString(r.Detail["signature"])
		var sig gossh.Signature
		if err == nil {
			err = gossh.Unmarshal(raw, &sig)
		}
		if err == nil {
			err = key.Verify([]byte(r.Detail["head"]), &sig)
		}
		if err != nil {
			return n, fmt.Errorf("checkpoint %d: the signature does not verify with the audit key %s (%v): %w",
				r.Seq, gossh.FingerprintSHA256(key), err, recorder.ErrAuditBroken)
		}
		n++
	}
	return n, nil
}

// runCheckpoints signs the chain head every CheckpointInterval until ctx
// ends, then once more (at shutdown).
func (s *Server) runCheckpoints(ctx context.Context) {
	t := time.NewTicker(CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.Checkpoint(fctx); err != nil && !errors.Is(err, context.Canceled) {
				s.log.Error("audit checkpoint at shutdown", "err", err)
			}
			return
		case <-t.C:
			if err := s.Checkpoint(ctx); err != nil {
				s.log.Error("audit checkpoint", "err", err)
			}
		}
	}
}
