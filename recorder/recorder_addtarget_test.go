package recorder

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestAddTargetListsVisitedTargetsForFilters(t *testing.T) {
	st, err := OpenBolt(filepath.Join(t.TempDir(), "b.db"), BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	r, err := NewRecorder(ctx, RecorderConfig{Store: st, Meta: SessionMeta{ID: "menu1", User: "alice", Start: start, State: StateActive, Width: 80, Height: 24},
		FlushInterval: time.Second, Now: func() time.Time { return start }})
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range []string{"web-1", "db", "web-1"} {
		r.AddTarget(tg)
	}
	if err := r.Close(ctx, nil, StateClosed, ""); err != nil {
		t.Fatal(err)
	}
	m, err := st.Session(ctx, "menu1")
	if err != nil || m.Target != "web-1,db" {
		t.Fatalf("target %q (%v), want web-1,db", m.Target, err)
	}
	for _, c := range []struct {
		target string
		want   int
	}{{"web-1", 1}, {"db", 1}, {"web", 0}, {"web-1,db", 0}} {
		list, err := st.ListSessions(ctx, SessionFilter{Target: c.target})
		if err != nil || len(list) != c.want {
			t.Errorf("filter %q: %d sessions (%v), want %d", c.target, len(list), err, c.want)
		}
	}
}
