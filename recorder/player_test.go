package recorder

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

const playCast = `{"version":2,"width":80,"height":24}
[0.5,"o","a"]
[1,"m","marker"]
[3,"o","b"]
[3.5,"i","typed"]
[4,"r","100x30"]
[10,"o","c"]
[10,"b","ZP8="]
`

// sleepLog is a fake Sleep that records the pauses instead of taking them.
type sleepLog struct{ d []time.Duration }

func (s *sleepLog) sleep(_ context.Context, d time.Duration) error {
	s.d = append(s.d, d)
	return nil
}

func TestPlayPace(t *testing.T) {
	sec := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	withIdle := strings.Replace(playCast, `"height":24`, `"height":24,"idle_time_limit":1`, 1)
	tests := []struct {
		name  string
		cast  string
		opt   PlayOptions
		pause []time.Duration
	}{
		{"original pace", playCast, PlayOptions{}, []time.Duration{sec(0.5), sec(2.5), sec(7)}},
		{"double speed", playCast, PlayOptions{Speed: 2}, []time.Duration{sec(0.25), sec(1.25), sec(3.5)}},
		{"half speed", playCast, PlayOptions{Speed: 0.5}, []time.Duration{sec(1), sec(5), sec(14)}},
		{"idle limit", playCast, PlayOptions{IdleLimit: 2 * time.Second}, []time.Duration{sec(0.5), sec(2), sec(2)}},
		{"idle limit then speed", playCast, PlayOptions{Speed: 2, IdleLimit: 2 * time.Second}, []time.Duration{sec(0.25), sec(1), sec(1)}},
		{"header idle limit", withIdle, PlayOptions{}, []time.Duration{sec(0.5), sec(1), sec(1)}},
		{"option overrides header", withIdle, PlayOptions{IdleLimit: 3 * time.Second}, []time.Duration{sec(0.5), sec(2.5), sec(3)}},
		{"from skips the pauses before it", playCast, PlayOptions{From: 2 * time.Second}, []time.Duration{sec(1), sec(7)}},
		{"from past the end", playCast, PlayOptions{From: time.Hour}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log sleepLog
			tt.opt.Sleep = log.sleep
			var out bytes.Buffer
			if err := Play(t.Context(), strings.NewReader(tt.cast), &out, tt.opt); err != nil {
				t.Fatal(err)
			}
			if out.String() != "abcd\xff" {
				t.Errorf("output %q, want only the output events %q", out.String(), "abcd\xff")
			}
			if !slices.Equal(log.d, tt.pause) {
				t.Errorf("pauses %v, want %v", log.d, tt.pause)
			}
		})
	}
}

func TestPlayErrors(t *testing.T) {
	stop := errors.New("stopped")
	tests := []struct {
		name string
		cast string
		opt  PlayOptions
		want string
	}{
		{"negative speed", playCast, PlayOptions{Speed: -1}, "speed -1 must be greater than 0"},
		{"negative idle", playCast, PlayOptions{IdleLimit: -time.Second}, "must not be negative"},
		{"bad header", "{}\n", PlayOptions{}, "line 1"},
		{"bad event", `{"version":2,"width":80,"height":24}` + "\n" + `[0,"o","a"]` + "\n" + "[x]\n", PlayOptions{}, "line 3"},
		{"sleep fails", playCast, PlayOptions{Sleep: func(context.Context, time.Duration) error { return stop }}, "stopped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opt.Sleep == nil {
				tt.opt.Sleep = (&sleepLog{}).sleep
			}
			err := Play(t.Context(), strings.NewReader(tt.cast), &bytes.Buffer{}, tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestPlayCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	// The default sleep must give up on a cancelled context at once.
	err := Play(ctx, strings.NewReader(playCast), &bytes.Buffer{}, PlayOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if err := sleepCtx(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("sleepCtx = %v, want context.Canceled", err)
	}
}

// TestPlayStoredRecording replays what the store exports.
func TestPlayStoredRecording(t *testing.T) {
	s, _ := openTestStore(t)
	h := newHarness(t, s, nil)
	h.clock.Set(t0.Add(time.Second))
	h.rec.Output([]byte("$ ls\r\n"))
	h.rec.Marker("m")
	h.clock.Set(t0.Add(3 * time.Second))
	h.rec.Output([]byte("a b c\r\n"))
	if err := h.rec.Close(t.Context(), nil, StateClosed, ""); err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	if err := s.WriteRecording(t.Context(), "sess1", &file); err != nil {
		t.Fatal(err)
	}
	var log sleepLog
	var out bytes.Buffer
	if err := Play(t.Context(), &file, &out, PlayOptions{Sleep: log.sleep}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "$ ls\r\na b c\r\n" || !slices.Equal(log.d, []time.Duration{time.Second, 2 * time.Second}) {
		t.Errorf("played %q with pauses %v", out.String(), log.d)
	}
}
