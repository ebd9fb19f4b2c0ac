package bastion

import (
	"context"
	"errors"
	"io"
	"sync"
)

// errRecordingFailed ends a session whose recording can no longer be written
// while recording.on_failure is "terminate": output that cannot be recorded
// must not reach the client either.
var errRecordingFailed = errors.New("session recording failed")

// sink receives everything the client types (the recorder).
type sink interface {
	Input(p []byte)
}

// inputPump is the single reader of the client's channel. A session may hand
// its input to several consumers in turn (the menu, then a target, then the
// menu again); if each consumer read the channel itself, a consumer that has
// finished would still be blocked in Read and would steal the next keystroke.
// The pump owns the one Read loop and consumers borrow it, one at a time.
// Bytes a consumer did not take stay with the pump for the next one, so
// type-ahead after Enter in the menu reaches the target.
type inputPump struct {
	chunks chan []byte
	done   chan struct{} // closed when the client's input ended (EOF or error)
	wake   chan struct{} // signalled when pending was refilled

	mu      sync.Mutex
	pending []byte // read from the client, not yet taken by a consumer
}

// newInputPump starts the read loop. It ends when src returns an error, which
// happens at the latest when the session channel is closed, so the goroutine's
// owner is the channel itself.
func newInputPump(src io.Reader, rec sink) *inputPump {
	p := &inputPump{chunks: make(chan []byte), done: make(chan struct{}), wake: make(chan struct{}, 1)}
	go func() {
		defer close(p.done)
		// A small buffer while the user thinks, a large one while a paste
		// or a file streams in (readBuffer): an idle session holds 1 KiB.
		var rb readBuffer
		defer rb.release()
		for {
			buf := rb.next()
			n, err := src.Read(buf)
			if n > 0 {
				chunk := append([]byte(nil), buf[:n]...)
				rec.Input(chunk)
				// Unbuffered: back-pressure reaches the client's window when
				// no consumer reads, as it would with a direct copy.
				p.chunks <- chunk
			}
			if err != nil {
				return
			}
			rb.used(n)
		}
	}()
	return p
}

// reader returns a consumer view of the input that ends with io.EOF when the
// client's input ends or ctx is done. Only one reader may be in use at once.
func (p *inputPump) reader(ctx context.Context) io.Reader {
	return &pumpReader{p: p, ctx: ctx}
}

// readLimited returns a reader that hands out at most one byte per Read, for
// consumers (a line editor) that would otherwise buffer past the end of the
// line they want and lose the rest when they stop.
func (p *inputPump) readLimited(ctx context.Context) io.Reader {
	return &pumpReader{p: p, ctx: ctx, max: 1}
}

type pumpReader struct {
	p   *inputPump
	ctx context.Context
	max int // bytes per Read; 0 means as many as fit
}

func (r *pumpReader) Read(b []byte) (int, error) {
	if r.max > 0 && len(b) > r.max {
		b = b[:r.max]
	}
	for {
		if r.ctx.Err() != nil {
			return 0, io.EOF
		}
		if n := r.p.take(b); n > 0 {
			return n, nil
		}
		select {
		case c := <-r.p.chunks:
			if r.ctx.Err() != nil {
				// This consumer was stopped while the chunk was on its
				// way: it belongs to the next one.
				r.p.putBack(c)
				return 0, io.EOF
			}
			n := copy(b, c)
			if n < len(c) {
				r.p.putBack(c[n:])
			}
			return n, nil
		case <-r.p.wake:
		case <-r.p.done:
			if n := r.p.take(b); n > 0 {
				return n, nil
			}
			return 0, io.EOF
		case <-r.ctx.Done():
			return 0, io.EOF
		}
	}
}

func (p *inputPump) take(b []byte) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := copy(b, p.pending)
	p.pending = p.pending[n:]
	return n
}

func (p *inputPump) putBack(c []byte) {
	p.mu.Lock()
	p.pending = append(c[:len(c):len(c)], p.pending...)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}
