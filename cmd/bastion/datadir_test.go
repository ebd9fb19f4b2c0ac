package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/bastion/admin"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/recorder"
)

// TestOpenOpsWaitsForStartingServer: a server that has taken the store
// lock but not yet opened its admin socket (the gap in which it marks the
// last run's sessions interrupted) is waited for, not reported as a lock
// error; one whose socket never answers gets a bounded, clear error.
func TestOpenOpsWaitsForStartingServer(t *testing.T) {
	for _, c := range []struct {
		name       string
		socketFrom time.Duration // when the admin socket starts answering; 0: never
		wait       time.Duration
		wantErr    bool
	}{
		{name: "socket opens late", socketFrom: 1500 * time.Millisecond, wait: 10 * time.Second},
		{name: "socket never opens", wait: 1200 * time.Millisecond, wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := recorder.OpenBolt(filepath.Join(dir, storeFile), recorder.BoltOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			t.Cleanup(func() {
				cancel()
				if c.socketFrom > 0 {
					if err := <-served; err != nil {
						t.Errorf("admin server: %v", err)
					}
				}
			})
			if c.socketFrom > 0 {
				go func() {
					select {
					case <-time.After(c.socketFrom):
					case <-ctx.Done():
						served <- nil
						return
					}
					ln, err := admin.Listen(filepath.Join(dir, admin.SocketName))
					if err != nil {
						served <- err
						return
					}
					served <- admin.Serve(ctx, ln, admin.Handler(st, slog.New(slog.NewTextHandler(io.Discard, nil)), admin.Hooks{}))
				}()
			}
			start := time.Now()
			ops, done, err := openOpsWait(&policy.Config{DataDir: dir}, c.wait)
			took := time.Since(start)
			if c.wantErr {
				if err == nil {
					done()
					t.Fatal("openOps reached a store no server serves and another process holds")
				}
				if !errors.Is(err, recorder.ErrLocked) || !strings.Contains(err.Error(), "nothing answered") {
					t.Errorf("error %q: want the lock error and that nothing answered on the socket", err)
				}
				if took > c.wait+time.Second {
					t.Errorf("gave up after %v, want about %v", took, c.wait)
				}
				return
			}
			if err != nil {
				t.Fatalf("openOps while the server starts: %v", err)
			}
			defer done()
			if _, ok := ops.(*admin.Client); !ok {
				t.Fatalf("openOps returned %T, want the admin socket's client", ops)
			}
			if _, err := ops.ListSessions(context.Background(), recorder.SessionFilter{}); err != nil {
				t.Errorf("list sessions through the socket: %v", err)
			}
		})
	}
}
