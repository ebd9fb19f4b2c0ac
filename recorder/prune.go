package recorder

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Prune removes the sessions, with their recordings, that ended before
// cutoff (now minus recording.retention), and writes one session.pruned
// audit record for each into the trail before it goes: the chain is never
// cut, and verification knows why a recording is missing. Active sessions
// are never pruned. It returns the ids removed.
func (s *BoltStore) Prune(ctx context.Context, cutoff time.Time) ([]string, error) {
	var old []SessionMeta
	if err := s.enter(ctx); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
			var m SessionMeta
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("decode session %s: %w", k, err)
			}
			if m.State != StateActive && !m.End.IsZero() && m.End.Before(cutoff) {
				old = append(old, m)
			}
			return nil
		})
	})
	s.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	var ids []string
	for _, m := range old {
		if _, err := s.AppendAudit(ctx, AuditRecord{Type: "session.pruned", Outcome: OutcomeSuccess, User: m.User,
			Session: m.ID, Target: m.Target, Reason: "older than recording.retention",
			Detail: map[string]string{"start": m.Start.UTC().Format(time.RFC3339), "end": m.End.UTC().Format(time.RFC3339),
				"cutoff": cutoff.UTC().Format(time.RFC3339)}}); err != nil {
			return ids, err
		}
		if err := s.deleteSession(ctx, m.ID); err != nil {
			return ids, err
		}
		ids = append(ids, m.ID)
	}
	return ids, nil
}

func (s *BoltStore) deleteSession(ctx context.Context, id string) error {
	if err := s.enter(ctx); err != nil {
		return fmt.Errorf("delete session %s: %w", id, err)
	}
	defer s.mu.RUnlock()
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketSessions).Delete([]byte(id)); err != nil {
			return fmt.Errorf("delete session %s: %w", id, err)
		}
		if err := deleteChunkIndex(tx, id); err != nil {
			return err
		}
		if ev := tx.Bucket(bucketEvents); ev.Bucket([]byte(id)) != nil {
			if err := ev.DeleteBucket([]byte(id)); err != nil {
				return fmt.Errorf("delete recording %s: %w", id, err)
			}
		}
		return nil
	})
}
