package bastion

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	gossh "golang.org/x/crypto/ssh"
)

// chunkReader returns its chunks one Read at a time, as an SSH channel
// returns what has arrived, cut to the caller's buffer.
type chunkReader struct {
	chunks [][]byte
	sizes  []int // len(p) of each Read, to see which buffer was used
}

func (r *chunkReader) Read(p []byte) (int, error) {
	r.sizes = append(r.sizes, len(p))
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	if r.chunks[0] = r.chunks[0][n:]; len(r.chunks[0]) == 0 {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

func TestCopyStreamSwitchesBuffers(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 10_000) // 100 kB: a burst
	src := &chunkReader{chunks: [][]byte{[]byte("$ "), big, []byte("$ ")}}
	var dst bytes.Buffer
	n, err := copyStream(&dst, src)
	if err != nil || n != int64(len(big)+4) {
		t.Fatalf("copyStream = %d, %v; want %d, nil", n, err, len(big)+4)
	}
	if want := "$ " + string(big) + "$ "; dst.String() != want {
		t.Fatal("copied bytes differ from the source")
	}
	// Idle on the small buffer; a full small Read moves to the large one,
	// which stays while Reads fill it and goes back after one that does not.
	if src.sizes[0] != idleCopyBuf || src.sizes[1] != idleCopyBuf || src.sizes[2] != busyCopyBuf {
		t.Errorf("read sizes %v: want small, small, then large", src.sizes[:3])
	}
	if last := src.sizes[len(src.sizes)-1]; last != idleCopyBuf {
		t.Errorf("last read (waiting for more) used %d bytes, want the small buffer (%d)", last, idleCopyBuf)
	}
}

func TestCopyStreamAsIOCopy(t *testing.T) {
	data := bytes.Repeat([]byte("abcdefghij"), 7_000)
	for name, src := range map[string]func() io.Reader{
		"one byte":    func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
		"half":        func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
		"data+EOF":    func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
		"all at once": func() io.Reader { return bytes.NewReader(data) },
	} {
		var dst bytes.Buffer
		if n, err := copyStream(&dst, src()); err != nil || n != int64(len(data)) || !bytes.Equal(dst.Bytes(), data) {
			t.Errorf("%s: copyStream = %d, %v (equal %v)", name, n, err, bytes.Equal(dst.Bytes(), data))
		}
	}
	boom := errors.New("boom")
	if _, err := copyStream(io.Discard, iotest.ErrReader(boom)); err != boom {
		t.Errorf("read error: got %v, want %v", err, boom)
	}
	if _, err := copyStream(shortWriter{}, bytes.NewReader(data)); err != io.ErrShortWrite {
		t.Errorf("short write: got %v, want io.ErrShortWrite", err)
	}
}

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

func TestExitInfoResult(t *testing.T) {
	status := func(n uint32) *gossh.Request {
		return &gossh.Request{Type: "exit-status", Payload: binary.BigEndian.AppendUint32(nil, n)}
	}
	signal := func(s string) *gossh.Request {
		return &gossh.Request{Type: "exit-signal", Payload: gossh.Marshal(struct {
			Signal      string
			CoreDumped  bool
			Error, Lang string
		}{Signal: s})}
	}
	for _, c := range []struct {
		name string
		reqs []*gossh.Request
		want exitResult
	}{
		{"exit 0", []*gossh.Request{status(0)}, exitResult{}},
		{"exit 3", []*gossh.Request{status(3)}, exitResult{code: 3}},
		{"signal", []*gossh.Request{signal("TERM")}, exitResult{code: 128 + 15, signal: "TERM"}},
		{"status and signal", []*gossh.Request{status(1), signal("KILL")}, exitResult{code: 128 + 9, signal: "KILL"}},
		{"zero status wins", []*gossh.Request{signal("KILL"), status(0)}, exitResult{}},
		{"nothing", nil, exitResult{code: 255, reason: "target closed without an exit status"}},
	} {
		x := exitInfo{status: -1}
		for _, r := range c.reqs {
			if err := x.take(r); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		if got := x.result(); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
	x := exitInfo{status: -1}
	if err := x.take(&gossh.Request{Type: "exit-status", Payload: []byte{1}}); err == nil {
		t.Error("a short exit-status was taken")
	}
}
