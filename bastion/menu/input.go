package menu

import (
	"context"
	"errors"
	"unicode/utf8"

	tea "charm.land/bubbletea/v2"
	uv "github.com/charmbracelet/ultraviolet"
	"github.com/charmbracelet/x/ansi"
)

// inputLoop turns bytes from In into keys for the program, one key at a
// time: it sends a key, waits until the model has handled it, and stops
// reading as soon as the menu has ended. It ends at the end of In (which
// closes the menu), when the menu ends, or when ctx or done is.
func inputLoop(ctx context.Context, p *tea.Program, in *byteReader, done <-chan struct{}) {
	var dec uv.EventDecoder
	var buf []byte
	ack := make(chan bool, 1)
	expired := false
	for {
		for len(buf) > 0 {
			n, ev := dec.Decode(buf)
			if !expired && incomplete(buf, n, ev) {
				break
			}
			if n <= 0 {
				n = 1
			}
			buf = buf[n:]
			k, ok := ev.(uv.KeyPressEvent)
			if !ok {
				continue // unknown sequences, stray reports: nothing to do
			}
			p.Send(inputMsg{msg: tea.KeyPressMsg(k), ack: ack})
			select {
			case ended := <-ack:
				if ended {
					return
				}
			case <-done:
				return
			case <-ctx.Done():
				return
			}
		}
		wait := escTimeout
		if len(buf) == 0 {
			wait = 0
		}
		b, err := in.next(ctx, wait)
		switch {
		case errors.Is(err, errWaited):
			expired = true
			continue
		case err != nil:
			if ctx.Err() == nil {
				p.Send(eofMsg{})
			}
			return
		}
		expired = false
		buf = append(buf, b)
	}
}

// incomplete reports whether buf may be the start of a longer sequence, so
// that decoding should wait for more bytes (up to escTimeout).
func incomplete(buf []byte, n int, ev uv.Event) bool {
	if n <= 0 {
		return true
	}
	if _, ok := ev.(uv.UnknownEvent); ok && n == len(buf) {
		return true
	}
	if buf[0] == ansi.ESC && n <= 2 && n == len(buf) {
		return true // ESC, or ESC [ / ESC O: an arrow key may follow
	}
	if buf[0] >= 0x80 && !utf8.FullRune(buf) {
		return true
	}
	return false
}
