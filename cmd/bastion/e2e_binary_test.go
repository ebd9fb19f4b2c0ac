package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bastion-dev/bastion/recorder"
)

// TestBinaryOutputRecordedExactly: bytes that are not text, printed by a
// real target through the real client, are in the recording as they were
// ("b" events), searchable, and covered by the audit digest; the standard
// export turns them into "o" events that any asciicast player knows.
func TestBinaryOutputRecordedExactly(t *testing.T) {
	w := newWorld(t, worldOpts{})
	rng := rand.New(rand.NewPCG(11, 12))
	input := make([]byte, 300<<10)
	for i := range input {
		input[i] = byte(rng.Uint32())
	}
	const needle = "\xffneedle-in-binary\xfe"
	input = append(input[:len(input)/2], append([]byte(needle), input[len(input)/2:]...)...)
	input = append(input, "text at the end\n"...)

	cmd := w.client.Command(context.Background(), "web-1", "cat")
	cmd.Stdin = bytes.NewReader(input)
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("cat through the bastion: %v", err)
	}
	if !bytes.Equal(got, input) {
		t.Fatalf("client got %d bytes, not the %d sent", len(got), len(input))
	}
	m := w.lastSession(t)

	output := func(cast string) (out []byte, types map[string]int) {
		types = map[string]int{}
		dec := recorder.NewDecoder(strings.NewReader(cast))
		for {
			ev, err := dec.Next()
			if errors.Is(err, io.EOF) {
				return out, types
			}
			if err != nil {
				t.Fatal(err)
			}
			types[ev.Type]++
			if ev.IsOutput() {
				out = append(out, ev.Data...)
			}
		}
	}
	rec, types := output(w.recording(t, m.ID))
	if !bytes.Equal(rec, input) || types[recorder.EventBinary] == 0 {
		t.Fatalf("recording holds %d bytes of output in events %v, want the %d printed, in \"b\" events", len(rec), types, len(input))
	}

	std, errOut, code := w.bastion("export", m.ID, "--standard")
	if code != 0 {
		t.Fatalf("export --standard: exit %d: %s", code, errOut)
	}
	text, types := output(std)
	if types[recorder.EventBinary] != 0 || !utf8.Valid(text) || !bytes.HasSuffix(text, []byte("text at the end\n")) ||
		!bytes.Contains(text, []byte("\uFFFDneedle-in-binary\uFFFD")) {
		t.Fatalf("standard export: events %v, %d bytes of output, valid UTF-8 %v", types, len(text), utf8.Valid(text))
	}

	if got := w.sessions(t, "--grep", needle); len(got) != 1 || got[0].ID != m.ID {
		t.Errorf("sessions --grep of bytes in binary output found %+v", got)
	}
	if out, errOut, code := w.bastion("audit", "verify"); code != 0 || !strings.Contains(out, "intact") {
		t.Errorf("audit verify: exit %d: %s%s", code, out, errOut)
	}
}
