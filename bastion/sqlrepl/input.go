package sqlrepl

import (
	"bytes"
	"context"
	"io"
)

// Keystrokes. In PTY mode the client's terminal is raw, so Ctrl-C is not a
// signal but the byte 0x03 in the input.
const (
	ctrlC = 0x03
)

// chunk is the result of one Read of the client's input.
type chunk struct {
	b   []byte
	err error
}

// keyboard owns the client's input in PTY mode. The line editor reads it
// while a prompt is up; while a statement runs, nothing reads a line, and the
// REPL itself watches the input for Ctrl-C. Reads are made on demand only
// (ask), at most one at a time, so that input the REPL does not need is left
// to whoever reads In after Run returns; type-ahead during a statement is
// kept for the next prompt.
//
// All methods but the reading goroutine run on Run's goroutine.
type keyboard struct {
	src     io.Reader
	got     chan chunk // buffered: the reader never blocks on a gone REPL
	reading bool       // a Read is outstanding
	pending []byte     // read, not yet consumed
	err     error      // the input ended (sticky)
	intr    bool       // a Ctrl-C was handed to the line editor as Enter
}

func newKeyboard(src io.Reader) *keyboard {
	return &keyboard{src: src, got: make(chan chunk, 1)}
}

// ask starts a Read of the client's input unless one is outstanding. The
// goroutine ends when the Read returns, which the caller of Run makes happen
// by ending In with the session.
func (k *keyboard) ask() {
	if k.reading || k.err != nil {
		return
	}
	k.reading = true
	go func() {
		buf := make([]byte, 512)
		n, err := k.src.Read(buf)
		k.got <- chunk{b: buf[:n], err: err}
	}()
}

// take records a finished Read.
func (k *keyboard) take(c chunk) {
	k.reading = false
	k.pending = append(k.pending, c.b...)
	if c.err != nil {
		k.err = c.err
	}
}

// takeInterrupt removes everything up to and including the first Ctrl-C in
// the pending input and reports whether there was one: what was typed before
// it is what the user cancelled.
func (k *keyboard) takeInterrupt() bool {
	i := bytes.IndexByte(k.pending, ctrlC)
	if i < 0 {
		return false
	}
	k.pending = k.pending[i+1:]
	return true
}

// lineReader is the view of the keyboard that term.Terminal reads. It hands
// out one byte per Read so that the editor never holds input beyond the line
// it returns, and it turns Ctrl-C into Enter with intr set: x/term's
// Terminal answers Ctrl-C with io.EOF, the same as Ctrl-D, but Ctrl-C must
// only discard the line.
type lineReader struct {
	ctx context.Context
	k   *keyboard
}

func (r lineReader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	k := r.k
	for len(k.pending) == 0 {
		if k.err != nil {
			return 0, io.EOF
		}
		k.ask()
		select {
		case c := <-k.got:
			k.take(c)
		case <-r.ctx.Done():
			return 0, io.EOF
		}
	}
	c := k.pending[0]
	k.pending = k.pending[1:]
	if c == ctrlC {
		k.intr = true
		c = '\r'
	}
	b[0] = c
	return 1, nil
}
