package bastion

import (
	"io"
	"sync"

	"github.com/bastion-dev/bastion/policy/mask"
)

// output is one of the session's two output streams (stdout or stderr) on
// its way to the client and to the recording:
//
//	target ─► masker ─► recording ─► client            (everyone)
//	target ─┬──────────────────────► client            (unmask_roles)
//	        └► masker ─► recording
//
// The recording is always written before the client, so that nothing the
// user saw is missing from it, and it is always masked. A user whose role
// may see clear values gets the raw bytes on screen; everyone else gets the
// very bytes that were recorded.
type output struct {
	client   io.Writer
	rec      func(p []byte) // the recorder's Output
	failed   func() bool    // the recording failed and the session must not go on unrecorded
	activity func()         // counts a write as session activity (idle timeout)
	unmasked bool

	mu     sync.Mutex // one writer at a time per stream; Flush may come from another goroutine
	masker *mask.Stream
}

func newOutput(client io.Writer, rec func([]byte), failed func() bool, activity func(), engine *mask.Engine, unmasked bool) *output {
	o := &output{client: client, rec: rec, failed: failed, activity: activity, unmasked: unmasked}
	o.masker = engine.NewStream(maskedSink{o})
	return o
}

// maskedSink receives the masker's output: the recording, and the client
// unless the client sees clear values.
type maskedSink struct{ o *output }

func (m maskedSink) Write(p []byte) (int, error) {
	m.o.rec(p)
	if m.o.unmasked {
		return len(p), nil
	}
	return m.o.client.Write(p)
}

// Write masks p (holding a possible card number until it can be decided)
// and passes it on.
func (o *output) Write(p []byte) (int, error) {
	o.activity()
	return o.write(p)
}

// Notice writes a message of the bastion's own that must not count as
// activity (the idle warning would otherwise keep the session alive).
func (o *output) Notice(msg string) {
	_, _ = o.write([]byte(msg))
}

func (o *output) write(p []byte) (int, error) {
	if o.failed() {
		return 0, errRecordingFailed
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.unmasked {
		// Record first: the masker holds a candidate, but the recording
		// still gets every byte, in order, once decided.
		if _, err := o.masker.Write(p); err != nil {
			return 0, err
		}
		return o.client.Write(p)
	}
	return o.masker.Write(p)
}

// Flush decides and emits whatever the masker holds: call it when the
// source ended (a target session closed), never merely because it paused,
// or half a card number could escape in clear.
func (o *output) Flush() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.masker.Flush()
}

// Counts reports what was masked on this stream.
func (o *output) Counts() mask.Counts { return o.masker.Counts() }
