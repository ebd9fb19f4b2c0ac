package bastion

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"
)

type nopSink struct {
	mu sync.Mutex
	in []byte
}

func (n *nopSink) Output([]byte) {}
func (n *nopSink) Input(p []byte) {
	n.mu.Lock()
	n.in = append(n.in, p...)
	n.mu.Unlock()
}

// TestPumpKeepsTypeAhead: keys typed after Enter in the menu, in the same
// packet, reach the next consumer, and a stopped consumer steals nothing.
func TestPumpKeepsTypeAhead(t *testing.T) {
	pr, pw := io.Pipe()
	sink := &nopSink{}
	p := newInputPump(pr, sink)
	go func() { _, _ = pw.Write([]byte("web-1\recho hi\r")); _ = pw.Close() }()

	menuCtx, stopMenu := context.WithCancel(context.Background())
	menu := p.readLimited(menuCtx)
	var line []byte
	b := make([]byte, 64)
	for {
		n, err := menu.Read(b)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("limited reader returned %d bytes", n)
		}
		line = append(line, b[0])
		if b[0] == '\r' {
			break
		}
	}
	stopMenu()
	if n, err := menu.Read(b); n != 0 || err != io.EOF {
		t.Fatalf("stopped consumer read %d, %v", n, err)
	}
	rest, err := io.ReadAll(p.reader(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	if string(line) != "web-1\r" || string(rest) != "echo hi\r" {
		t.Fatalf("menu got %q, target got %q", line, rest)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if string(sink.in) != "web-1\recho hi\r" {
		t.Fatalf("recorded input %q", sink.in)
	}
}

// TestPumpStoppedConsumerHandsBackChunk: a consumer stopped while waiting
// does not swallow the next chunk.
func TestPumpStoppedConsumerHandsBackChunk(t *testing.T) {
	pr, pw := io.Pipe()
	p := newInputPump(pr, &nopSink{})
	ctx, stop := context.WithCancel(context.Background())
	old := p.reader(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := make([]byte, 16)
		for {
			if _, err := old.Read(b); err != nil {
				return
			}
		}
	}()
	stop()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stopped consumer still reading")
	}
	go func() { _, _ = pw.Write([]byte("next")); _ = pw.Close() }()
	got, err := io.ReadAll(p.reader(context.Background()))
	if err != nil || string(got) != "next" {
		t.Fatalf("next consumer got %q, %v", got, err)
	}
}
