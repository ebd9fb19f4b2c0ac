// Package menu is the bastion's full-screen target menu: a header saying who
// you are, the targets you may reach, a fuzzy filter, and Enter to connect.
//
// It runs bubbletea on the session's own streams and nothing else: no
// /dev/tty, no signals, no terminal queries. The input is the delicate part.
// The menu borrows the session's shared input and the target takes it next,
// so the menu reads one byte at a time and only when it needs one: after the
// key that ends the menu (Enter, q, Ctrl-C) it has read nothing more, and
// type-ahead reaches the target.
//
// What it draws is tested on a real screen: screen_test.go runs it in a
// tmux pane and reads the pane back.
package menu

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
)

// Item is one target the user may reach.
type Item struct {
	Name, Kind, Description string
	NeedsApproval           bool // shown with a mark: connecting asks an approver first
}

// Options is what Run shows and where.
type Options struct {
	In     io.Reader     // raw keystrokes from the client's PTY; ends (io.EOF) when the menu must stop
	Out    io.Writer     // the client's terminal (masked and recorded downstream)
	Width  int           // initial size; 0 means 80×24
	Height int           //
	Resize <-chan [2]int // later sizes (cols, rows); may be nil

	User    string
	Groups  []string
	Expires time.Time // the certificate's end; zero hides it
	Pending int       // approvals waiting for this user (header notice when > 0)
	Notice  string    // e.g. "[web-1 ended with exit status 0]", shown under the header
	Items   []Item

	NoColor bool   // NO_COLOR, or a terminal without colour: attributes only
	Term    string // the client's TERM, for the renderer; "" means xterm-256color
	Now     func() time.Time
}

// escTimeout is how long a lone ESC waits for the rest of a sequence before
// it counts as the Esc key. Escape sequences from a terminal arrive in one
// packet, so this only delays a real Esc press.
const escTimeout = 50 * time.Millisecond

// tickEvery redraws the header so the relative expiry stays true.
const tickEvery = 30 * time.Second

// Run shows the menu until the user picks a target (returns its name) or
// leaves (returns "", nil on q, Ctrl-C, Ctrl-D or the end of In). When ctx
// is done the menu closes and Run returns "", ctx.Err().
//
// When Run returns, the alternate screen has been left and the cursor shown,
// no goroutine of Run's is left, and In is not being read, with one
// exception: if ctx was cancelled while a Read on In was blocked, that Read
// ends when In ends; In is expected to end with ctx (Run waits up to a
// second for it).
func Run(ctx context.Context, o Options) (string, error) {
	if o.In == nil || o.Out == nil {
		return "", errors.New("menu: In and Out are required")
	}
	m := newModel(o)
	term := o.Term
	if term == "" {
		term = "xterm-256color"
	}
	profile := colorprofile.ANSI
	if o.NoColor {
		profile = colorprofile.ASCII
	}
	p := tea.NewProgram(&runner{m: m},
		// No input for bubbletea itself: it would read ahead of the model
		// (stealing the target's type-ahead) and send terminal queries whose
		// replies it then waits for. Keys come through inputLoop instead.
		tea.WithInput(nil),
		// Without a tty input, bubbletea's renderer takes the terminal to
		// map LF to CR LF (ONLCR) and moves down with a bare LF. Over SSH
		// nothing does: the client's terminal is raw, and the bastion has
		// no pty. So the mapping is done here.
		tea.WithOutput(onlcr{o.Out}),
		// Not the server process's environment, and not its signals.
		tea.WithEnvironment([]string{"TERM=" + term}),
		tea.WithoutSignalHandler(),
		tea.WithColorProfile(profile),
		tea.WithWindowSize(m.width, m.height),
	)

	done := make(chan struct{}) // closed when the program has ended
	var wg sync.WaitGroup
	in := &byteReader{in: o.In, res: make(chan readResult, 1)}
	wg.Add(1)
	go func() {
		defer wg.Done()
		inputLoop(ctx, p, in, done)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(tickEvery)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				// Quit, not Kill: a graceful stop restores the screen.
				p.Quit()
				return
			case s, ok := <-o.Resize:
				if !ok {
					o.Resize = nil
					continue
				}
				p.Send(tea.WindowSizeMsg{Width: s[0], Height: s[1]})
			case <-tick.C:
				p.Send(tickMsg{})
			}
		}
	}()

	_, err := p.Run()
	close(done)
	wg.Wait()
	if in.inflight {
		// Only after ctx was cancelled: the Read ends when In does.
		select {
		case <-in.res:
		case <-time.After(time.Second):
		}
	}
	if ctx.Err() != nil && !m.done {
		return "", ctx.Err()
	}
	if err != nil {
		return "", err
	}
	return m.chosen, nil
}

// onlcr writes to w with every LF as CR LF, as a tty's ONLCR would.
type onlcr struct{ w io.Writer }

func (o onlcr) Write(p []byte) (int, error) {
	if bytes.IndexByte(p, '\n') < 0 {
		return o.w.Write(p)
	}
	if _, err := o.w.Write(bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n"))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// runner wraps the model for the program: it answers inputLoop once each key
// has been handled, so that the loop reads the next byte only when the menu
// is still open.
type runner struct{ m *model }

// inputMsg carries one key from inputLoop; ack receives whether the menu
// ended with it.
type inputMsg struct {
	msg tea.Msg
	ack chan<- bool
}

func (r *runner) Init() tea.Cmd  { return r.m.Init() }
func (r *runner) View() tea.View { return r.m.View() }
func (r *runner) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if im, ok := msg.(inputMsg); ok {
		_, cmd := r.m.Update(im.msg)
		im.ack <- r.m.done // buffered: never blocks the event loop
		return r, cmd
	}
	_, cmd := r.m.Update(msg)
	return r, cmd
}

// readResult is one Read of one byte.
type readResult struct {
	b   byte
	n   int
	err error
}

// byteReader reads In one byte per Read, so that it never holds bytes
// the menu has not used (a consumer view of the session's input gives back
// what does not fit). A Read that outlives a wait (a lone ESC) stays in
// flight and is picked up by the next wait, so no byte is dropped.
type byteReader struct {
	in       io.Reader
	res      chan readResult // buffered 1: the reading goroutine never blocks
	inflight bool
}

var errWaited = errors.New("no byte within the wait")

// next returns the next byte, waiting at most wait (0: no limit) or until
// ctx is done.
func (r *byteReader) next(ctx context.Context, wait time.Duration) (byte, error) {
	if !r.inflight {
		r.inflight = true
		go func() {
			var b [1]byte
			for {
				n, err := r.in.Read(b[:])
				if n > 0 || err != nil {
					r.res <- readResult{b[0], n, err}
					return
				}
			}
		}()
	}
	var timer <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	select {
	case res := <-r.res:
		r.inflight = false
		if res.n > 0 {
			return res.b, nil // an error with it shows again on the next Read
		}
		return 0, res.err
	case <-timer:
		return 0, errWaited
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
