package bastion

import (
	"errors"
	"io"
	"sync"
)

// Buffer sizes of copyStream. A session's streams spend nearly all their
// life blocked in Read waiting for the next keystroke or prompt, and
// io.Copy would hold its 32 KiB buffer through every wait: with three
// streams per session (target stdout, stderr, client input) that was most
// of an idle session's memory. copyStream waits on a small buffer of its
// own and borrows a large one from a pool only while data keeps coming.
const (
	idleCopyBuf = 1 << 10  // holds a keystroke echo, a prompt or a line
	busyCopyBuf = 32 << 10 // io.Copy's size: one SSH packet of the usual maximum
)

// busyBufs lends busyCopyBuf buffers to streams that are moving data. A
// buffer goes back as soon as one Read leaves it partly empty, so idle
// sessions hold none. Nothing downstream keeps a reference to what it is
// given (io.Writer's contract: the masker, the recorder and the SSH
// channel copy what they keep), so a buffer carries nothing from one
// session to the next beyond bytes that are overwritten before use.
var busyBufs = sync.Pool{New: func() any {
	b := make([]byte, busyCopyBuf)
	return &b
}}

// errInvalidWrite is io.Copy's answer to a writer that claims more than it
// was given.
var errInvalidWrite = errors.New("invalid write result")

// copyStream copies src to dst until EOF or an error, as io.Copy does
// (same result, same errors), without holding a large buffer while src has
// nothing to read (readBuffer).
func copyStream(dst io.Writer, src io.Reader) (written int64, err error) {
	var rb readBuffer
	defer rb.release()
	for {
		buf := rb.next()
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			if nw < 0 || nr < nw {
				nw = 0
				if werr == nil {
					werr = errInvalidWrite
				}
			}
			written += int64(nw)
			if werr != nil {
				return written, werr
			}
			if nr != nw {
				return written, io.ErrShortWrite
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return written, nil
			}
			return written, rerr
		}
		rb.used(nr)
	}
}

// readBuffer is the buffer of a read loop that mostly waits: a small one of
// its own, and a pooled large one while data keeps coming. A Read that
// fills the small buffer means more is waiting: the next Reads use a large
// buffer, which goes back as soon as a Read does not fill it (the source
// had no more at that moment), so the loop is back on the small buffer
// before it blocks for long. The zero value is ready; call release when
// the loop ends.
type readBuffer struct {
	small []byte
	big   *[]byte
}

// next returns the buffer for the next Read.
func (r *readBuffer) next() []byte {
	if r.big != nil {
		return *r.big
	}
	if r.small == nil {
		r.small = make([]byte, idleCopyBuf)
	}
	return r.small
}

// used tells how many bytes the last Read returned (its data was already
// consumed: the buffer may change).
func (r *readBuffer) used(n int) {
	switch {
	case r.big == nil && n == len(r.small):
		r.big = busyBufs.Get().(*[]byte)
	case r.big != nil && n < len(*r.big):
		r.release()
	}
}

// release gives the large buffer back, if one is held.
func (r *readBuffer) release() {
	if r.big != nil {
		busyBufs.Put(r.big)
		r.big = nil
	}
}
