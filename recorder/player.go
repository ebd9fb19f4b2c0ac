package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// PlayOptions tune Play.
type PlayOptions struct {
	// Speed scales the pace: 2 plays twice as fast. Zero means 1;
	// negative is an error.
	Speed float64
	// IdleLimit caps each pause between two outputs (before scaling by
	// Speed), so a session left idle for an hour replays in moments.
	// Zero means the recording's idle_time_limit if it has one, else no
	// cap, as asciinema does.
	IdleLimit time.Duration
	// From skips ahead: output recorded before this time is written at
	// once, without its pauses, so the screen is as it was at From.
	From time.Duration
	// Sleep waits for d or until ctx is done; nil means a timer. Tests
	// inject a fake to check the pace without sleeping.
	Sleep func(ctx context.Context, d time.Duration) error
}

// sleepCtx waits for d unless ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Play writes what the terminal printed (the "o" and "b" events) of the
// asciicast v2 stream r to w at the recorded pace. Input, markers and
// unknown event types are not printed (markers are for navigation, input
// was already echoed as output). Resize
// events are ignored: the viewer's terminal keeps its own size, and asking it
// to resize by escape sequence works on few terminals and surprises on the
// rest. Time spent between outputs, markers included, counts as one pause.
func Play(ctx context.Context, r io.Reader, w io.Writer, opt PlayOptions) error {
	speed := opt.Speed
	switch {
	case speed == 0:
		speed = 1
	case speed < 0 || math.IsNaN(speed):
		return fmt.Errorf("play: speed %v must be greater than 0", opt.Speed)
	}
	if opt.IdleLimit < 0 {
		return fmt.Errorf("play: idle limit %s must not be negative", opt.IdleLimit)
	}
	if opt.From < 0 {
		return fmt.Errorf("play: start time %s must not be negative", opt.From)
	}
	from := opt.From.Seconds()
	sleep := opt.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	dec := NewDecoder(r)
	h, err := dec.Header()
	if err != nil {
		return fmt.Errorf("play: %w", err)
	}
	limit := opt.IdleLimit
	if limit == 0 && h.IdleTimeLimit > 0 {
		limit = time.Duration(h.IdleTimeLimit * float64(time.Second))
	}
	var prev float64 // time of the previous output
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("play: %w", err)
		}
		ev, err := dec.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("play: %w", err)
		}
		if !ev.IsOutput() {
			continue
		}
		if ev.Time < from {
			prev = max(ev.Time, prev)
			if _, err := io.WriteString(w, ev.Data); err != nil {
				return fmt.Errorf("play: write output: %w", err)
			}
			continue
		}
		prev = max(prev, from)
		gap := time.Duration(max(ev.Time-prev, 0) * float64(time.Second))
		prev = max(ev.Time, prev)
		if limit > 0 {
			gap = min(gap, limit)
		}
		if d := time.Duration(float64(gap) / speed); d > 0 {
			if err := sleep(ctx, d); err != nil {
				return fmt.Errorf("play: %w", err)
			}
		}
		if _, err := io.WriteString(w, ev.Data); err != nil {
			return fmt.Errorf("play: write output: %w", err)
		}
	}
}
