package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-runewidth"

	"github.com/bastion-dev/bastion/recorder"
)

// Size is a terminal size in cells.
type Size struct{ Width, Height int }

// Options configure Play.
type Options struct {
	// Speed is the starting speed; 0 means 1. See CheckSpeed.
	Speed float64
	// IdleLimit caps every wait between two outputs (before Speed), so an
	// hour left idle passes in moments; 0 keeps the recorded pauses.
	IdleLimit time.Duration
	// From is where playback starts, as recorded time.
	From time.Duration
	// User and Target are shown on the status line.
	User, Target string
	// NoColor draws the status line without reverse video (NO_COLOR).
	NoColor bool
	// Size is the viewer's terminal; Resize brings later sizes (nil: none).
	Size   Size
	Resize <-chan Size
	// Keys returns the viewer's keyboard. Its Read must return once ctx
	// is done, so that Play can stop the goroutine reading it.
	Keys func(ctx context.Context) io.Reader
	// Out is the viewer's terminal, in raw mode.
	Out io.Writer
}

// statusEvery is how often the status line follows the clock while the
// player waits for the next output.
const statusEvery = 250 * time.Millisecond

// Play plays src on a terminal until the viewer quits or ctx ends (which
// returns ctx's error). It takes the terminal's alternate screen and gives
// it back, whatever happens.
//
// The status line sits on the bottom row, below a scroll region that keeps
// line-by-line output off it; a recording that addresses that row draws
// over it until the next redraw. The status is drawn between recorded
// events with save/restore cursor (ESC 7 / ESC 8), which shares the
// terminal's one save slot with the recording: only a recording that saves
// in one event and restores in a later one can be misplaced by it.
func Play(ctx context.Context, src Source, opt Options) error {
	if opt.Speed == 0 {
		opt.Speed = 1
	}
	if err := CheckSpeed(opt.Speed); err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	if opt.IdleLimit < 0 || opt.From < 0 {
		return errors.New("replay: idle limit and start time must not be negative")
	}
	if opt.Out == nil {
		return errors.New("replay: no terminal to play on")
	}
	p := &player{src: src, index: src.Index(), opt: opt, size: opt.Size,
		san: Sanitizer{DropAltScreen: true}}
	p.st = State{Speed: opt.Speed, Length: Length(p.index)}
	if p.size.Width <= 0 || p.size.Height <= 0 {
		p.size = Size{80, 24}
	}
	keys, stopKeys := readKeys(ctx, opt.Keys)
	defer stopKeys()
	if err := p.write(setupScreen(p.size)); err != nil {
		return err
	}
	defer func() { _ = p.write([]byte(restoreScreen)) }()
	// The cursor starts before the first chunk, which peek loads when it
	// is needed: a start far into the recording never reads it.
	p.ci = -1
	if err := p.seek(ctx, min(opt.From.Seconds(), p.st.Length)); err != nil {
		return err
	}
	p.keys = keys
	return p.run(ctx)
}

type player struct {
	src   Source
	index []recorder.ChunkInfo
	opt   Options
	st    State
	size  Size
	san   Sanitizer

	pos   float64 // the recorded time on screen
	ended bool

	// The cursor: the next event is evs[ei] of chunk ci.
	ci  int
	evs []recorder.Event
	ei  int

	buf        []byte
	lastStatus time.Time

	// keys brings the viewer's keys; nil when there is no keyboard (or
	// it went away), in which case the player plays to the end and returns.
	keys <-chan Key
}

// readKeys reads the viewer's keyboard in a goroutine that the returned
// stop function ends (by cancelling the reader's context) and waits for.
func readKeys(ctx context.Context, open func(context.Context) io.Reader) (<-chan Key, func()) {
	if open == nil {
		return nil, func() {}
	}
	kctx, cancel := context.WithCancel(ctx)
	ch := make(chan Key, 64)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(ch)
		r := open(kctx)
		var dec KeyDecoder
		buf := make([]byte, 256)
		for {
			n, err := r.Read(buf)
			for _, k := range dec.Feed(buf[:n]) {
				select {
				case ch <- k:
				case <-kctx.Done():
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	return ch, func() { cancel(); wg.Wait() }
}

func setupScreen(sz Size) []byte {
	// Alternate screen, cleared; a scroll region above the status row.
	return fmt.Appendf(nil, "\x1b[?1049h\x1b[0m\x1b[H\x1b[2J\x1b[1;%dr\x1b[H", max(sz.Height-1, 1))
}

// restoreScreen undoes what a recording may have left set, then leaves the
// alternate screen: the viewer's terminal is as it was.
const restoreScreen = "\x1b[r\x1b[0m\x1b[4l\x1b[?6l\x1b[?7h\x1b(B\x1b[?25h\x1b[?1049l"

func (p *player) write(b []byte) error {
	if _, err := p.opt.Out.Write(b); err != nil {
		return fmt.Errorf("replay: write to terminal: %w", err)
	}
	return nil
}

// peek returns the next event to show, loading chunks as needed; ok is
// false at the end of the recording.
func (p *player) peek(ctx context.Context) (recorder.Event, bool, error) {
	for {
		for p.ei < len(p.evs) {
			if ev := p.evs[p.ei]; ev.IsOutput() {
				return ev, true, nil
			}
			p.ei++
		}
		if p.ci+1 >= len(p.index) {
			return recorder.Event{}, false, nil
		}
		evs, err := p.src.Events(ctx, p.ci+1, 0)
		if err != nil {
			return recorder.Event{}, false, fmt.Errorf("replay: %w", err)
		}
		p.ci, p.evs, p.ei = p.ci+1, evs, 0
	}
}

// seek shows the screen as it was at target, without waiting.
func (p *player) seek(ctx context.Context, target float64) error {
	plan := PlanSeek(p.index, target, p.pos)
	if plan.Tail {
		return p.seekTail(ctx, target)
	}
	p.buf = p.buf[:0]
	if plan.Reset {
		evs, err := p.src.Events(ctx, plan.Chunk, plan.Offset)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		p.ci, p.evs, p.ei = plan.Chunk, evs, 0
		p.san.Reset()
		p.buf = append(p.buf, "\x1b[0m\x1b[H\x1b[2J"...)
	}
	for {
		ev, ok, err := p.peek(ctx)
		if err != nil {
			return err
		}
		if !ok || ev.Time > target {
			break
		}
		p.buf = p.san.Append(p.buf, []byte(ev.Data))
		p.ei++
		if len(p.buf) >= 1<<20 {
			if err := p.write(p.buf); err != nil {
				return err
			}
			p.buf = p.buf[:0]
		}
	}
	return p.arrive(ctx, target)
}

// arrive ends a seek at target: the status line, and what is buffered.
func (p *player) arrive(ctx context.Context, target float64) error {
	p.pos = target
	_, more, err := p.peek(ctx)
	if err != nil {
		return err
	}
	p.ended = !more
	p.buf = p.appendStatus(p.buf)
	return p.write(p.buf)
}

// tailMaxBytes bounds the output seekTail renders.
const tailMaxBytes = 4 << 20

// seekTail shows the screen at target when no keyframe is near (output
// that scrolls and never clears the screen, such as a log being followed):
// it clears the screen and renders the last lines of output before target,
// twice a screen's height of them, read backwards from target's chunk.
// That rebuilds what scrolled output leaves on a screen; like a keyframe,
// it does not restore colours or modes set before it.
func (p *player) seekTail(ctx context.Context, target float64) error {
	c := max(sort.Search(len(p.index), func(i int) bool { return p.index[i].Start > target })-1, 0)
	need := 2 * max(p.size.Height, 24)
	var pieces [][]byte // newest first
	lines, total := 0, 0
	for j := c; j >= 0 && lines < need && total < tailMaxBytes; j-- {
		evs, err := p.src.Events(ctx, j, 0)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		n := len(evs)
		if j == c {
			n = sort.Search(len(evs), func(k int) bool { return evs[k].Time > target })
			p.ci, p.evs, p.ei = c, evs, n
		}
		var data []byte
		for _, ev := range evs[:n] {
			if ev.IsOutput() {
				data = append(data, ev.Data...)
			}
		}
		cut := len(data)
		for cut > 0 && lines < need {
			cut--
			if data[cut] == '\n' {
				lines++
			}
		}
		if lines >= need {
			data = data[cut+1:] // from just after the need-th line end back
		}
		pieces = append(pieces, data)
		total += len(data)
	}
	p.san.Reset()
	p.buf = append(p.buf[:0], "\x1b[0m\x1b[H\x1b[2J"...)
	for k := len(pieces) - 1; k >= 0; k-- {
		p.buf = p.san.Append(p.buf, pieces[k])
	}
	return p.arrive(ctx, target)
}

// run is the playing loop: wait for the next output at the recorded pace,
// show it, and answer keys and resizes meanwhile.
func (p *player) run(ctx context.Context) error {
	ticker := time.NewTicker(statusEvery)
	defer ticker.Stop()
	for {
		if p.keys == nil {
			p.st.Paused = false // nobody can resume
			if p.ended {
				return nil
			}
		}
		if p.st.Paused || p.ended {
			_, quit, err := p.waitEvent(ctx, nil, nil, func() float64 { return p.pos })
			if quit || err != nil {
				return err
			}
			continue
		}
		ev, ok, err := p.peek(ctx)
		if err != nil {
			return err
		}
		if !ok {
			p.ended, p.pos = true, max(p.pos, p.st.Length)
			if err := p.status(true); err != nil {
				return err
			}
			continue
		}
		if wait := p.waitFor(ev.Time - p.pos); wait > 0 {
			from, start, gap := p.pos, time.Now(), ev.Time-p.pos
			// virtual is where the clock has got to between two outputs.
			virtual := func() float64 {
				return from + gap*min(float64(time.Since(start))/float64(wait), 1)
			}
			t := time.NewTimer(wait)
			fired, quit, err := p.waitEvent(ctx, t.C, ticker.C, virtual)
			t.Stop()
			if quit || err != nil {
				return err
			}
			if !fired {
				continue // a key moved, paused or sped up the clock: plan again
			}
		}
		if err := p.showDue(ctx); err != nil {
			return err
		}
	}
}

// waitFor is how long to wait for an output gap seconds of recorded time
// away, after the idle limit and the speed.
func (p *player) waitFor(gap float64) time.Duration {
	d := time.Duration(max(gap, 0) * float64(time.Second))
	if p.opt.IdleLimit > 0 {
		d = min(d, p.opt.IdleLimit)
	}
	return time.Duration(float64(d) / p.st.Speed)
}

// waitEvent waits for the timer (nil: for a key), answering keys, resizes
// and ticks meanwhile. fired is true when the timer fired; it returns
// early when a key changed the position, the speed or the pause, and quit
// is true when the viewer quit or ctx ended.
func (p *player) waitEvent(ctx context.Context, timer, tick <-chan time.Time, virtual func() float64) (fired, quit bool, err error) {
	for {
		select {
		case <-ctx.Done():
			return false, true, ctx.Err()
		case <-timer:
			return true, false, nil
		case <-tick:
			if err := p.statusAt(virtual(), false); err != nil {
				return false, true, err
			}
		case sz := <-p.opt.Resize:
			if sz.Width > 0 && sz.Height > 0 {
				p.size = sz
			}
			if err := p.statusAt(virtual(), true); err != nil {
				return false, true, err
			}
		case k, ok := <-p.keys:
			if !ok {
				p.keys = nil // the keyboard is gone: play on to the end
				return false, false, nil
			}
			pos := virtual()
			speed, paused := p.st.Speed, p.st.Paused
			a := p.st.Apply(k, pos)
			switch {
			case a.Quit:
				return false, true, nil
			case a.Seek:
				if err := p.seek(ctx, a.To); err != nil {
					return false, true, err
				}
				return false, false, nil
			case p.st.Paused != paused || p.st.Speed != speed:
				// The clock goes on from where it had got to.
				p.pos = pos
				if err := p.status(true); err != nil {
					return false, true, err
				}
				return false, false, nil
			}
		}
	}
}

// showDue writes the next output and every one due at the same moment.
func (p *player) showDue(ctx context.Context) error {
	p.buf = p.buf[:0]
	for len(p.buf) < 256<<10 {
		ev, ok, err := p.peek(ctx)
		if err != nil {
			return err
		}
		if !ok || (len(p.buf) > 0 && p.waitFor(ev.Time-p.pos) >= time.Millisecond) {
			break
		}
		p.buf = p.san.Append(p.buf, []byte(ev.Data))
		p.pos = max(p.pos, ev.Time)
		p.ei++
	}
	if time.Since(p.lastStatus) >= statusEvery {
		p.buf = p.appendStatus(p.buf)
	}
	return p.write(p.buf)
}

// status draws the status line now (force) or if it is due.
func (p *player) status(force bool) error { return p.statusAt(p.pos, force) }

func (p *player) statusAt(pos float64, force bool) error {
	if !force && time.Since(p.lastStatus) < statusEvery {
		return nil
	}
	old := p.pos
	p.pos = pos
	b := p.appendStatus(nil)
	p.pos = old
	return p.write(b)
}

// appendStatus draws the status line on the bottom row and puts the cursor
// back where the recording had it.
func (p *player) appendStatus(b []byte) []byte {
	p.lastStatus = time.Now()
	line := StatusLine(p.st, p.pos, p.ended, p.opt.User, p.opt.Target, p.size.Width)
	b = fmt.Appendf(b, "\x1b7\x1b[%d;1H\x1b[0m", p.size.Height)
	if !p.opt.NoColor {
		b = append(b, "\x1b[7m"...)
	}
	b = append(b, line...)
	return append(b, "\x1b[0m\x1b8"...)
}

// StatusLine is the text of the status line, padded or cut to one cell
// less than width (writing the last cell of the last row scrolls some
// terminals).
func StatusLine(st State, pos float64, ended bool, user, target string, width int) string {
	state := "PLAY "
	switch {
	case ended:
		state = "END  "
	case st.Paused:
		state = "PAUSE"
	}
	long := st.Length >= 3600
	s := fmt.Sprintf(" %s %s / %s  %s -> %s  %sx  space:pause +/-:speed <-/->:5s q:quit",
		state, clock(pos, long), clock(st.Length, long), printable(user), printable(target),
		strconv.FormatFloat(st.Speed, 'f', -1, 64))
	w := max(width-1, 1)
	s = runewidth.Truncate(s, w, "")
	return s + strings.Repeat(" ", max(w-runewidth.StringWidth(s), 0))
}

// clock formats seconds as m:ss, or h:mm:ss for a recording of an hour or
// more.
func clock(sec float64, long bool) string {
	t := int64(max(sec, 0))
	if long {
		return fmt.Sprintf("%d:%02d:%02d", t/3600, t/60%60, t%60)
	}
	return fmt.Sprintf("%02d:%02d", t/60, t%60)
}

// printable keeps names (from certificates and the configuration) from
// carrying control characters onto the viewer's terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return '?'
		}
		return r
	}, s)
}
