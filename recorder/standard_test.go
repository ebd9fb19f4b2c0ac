package recorder

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestExportStandard: a recording with "b" events, exported standard,
// holds only standard event types, its output is the text asciinema's
// decoder makes of the bytes printed (what the recorder wrote before it
// kept binary output), and every other event is copied as it was.
func TestExportStandard(t *testing.T) {
	fragments := []string{"plain ", "é", "\xe2\x82", "\xac", "\xff", "\x80", "\x00", "\x1b[0m", "\xf0\x9f", "\x98\x80",
		"\xed\xa0", "\x80", "\r\n", "\"\\"}
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 120 {
		s, _ := openTestStore(t)
		h := newHarness(t, s, nil)
		var reads [][]byte
		var others []Event
		for i := range 1 + rng.IntN(10) {
			var p []byte
			for range 1 + rng.IntN(4) {
				p = append(p, fragments[rng.IntN(len(fragments))]...)
			}
			reads = append(reads, p)
			h.rec.Output(p)
			if rng.IntN(4) == 0 {
				label := "mark" + string(rune('a'+i))
				h.rec.Marker(label)
				others = append(others, Event{0, EventMarker, label})
			}
		}
		if err := h.rec.Close(t.Context(), nil, StateClosed, ""); err != nil {
			t.Fatal(err)
		}
		var raw, std bytes.Buffer
		if err := s.WriteRecording(t.Context(), "sess1", &raw); err != nil {
			t.Fatal(err)
		}
		if err := ExportStandard(&std, bytes.NewReader(raw.Bytes())); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		var d utf8Decoder
		var want []byte
		for _, p := range reads {
			want = d.decode(want, p, false)
		}
		want = d.decode(want, nil, true)

		dec := NewDecoder(bytes.NewReader(std.Bytes()))
		var text strings.Builder
		var gotOthers []Event
		for {
			ev, err := dec.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("round %d: decode the standard export: %v", round, err)
			}
			switch ev.Type {
			case EventOutput:
				text.WriteString(ev.Data)
			case EventMarker, EventResize, EventInput:
				gotOthers = append(gotOthers, ev)
			default:
				t.Fatalf("round %d: standard export has a %q event", round, ev.Type)
			}
		}
		if text.String() != string(want) {
			t.Fatalf("round %d: standard export's output %q, want %q (reads %q)", round, text.String(), want, reads)
		}
		if !slices.Equal(gotOthers, others) {
			t.Fatalf("round %d: other events %v, want %v", round, gotOthers, others)
		}
		if !bytes.Contains(raw.Bytes(), []byte(`,"b","`)) && !bytes.Equal(std.Bytes(), raw.Bytes()) {
			t.Fatalf("round %d: a recording without binary output changed on export:\n%s\n%s", round, raw.Bytes(), std.Bytes())
		}
	}
}

func TestExportStandardRefusesDamage(t *testing.T) {
	const hdr = `{"version":2,"width":80,"height":24}` + "\n"
	for _, tt := range []struct{ in, want string }{
		{"", "no header"},
		{`{"version":3}` + "\n", "version 3"},
		{hdr + `[0.1,"o","ok"]` + "\n" + `[0.2,"b","not base64!"]` + "\n", "line 3: binary output event data is not standard base64"},
		{hdr + "[0.1,\n", "line 2"},
	} {
		err := ExportStandard(io.Discard, strings.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ExportStandard(%q) = %v, want an error with %q", tt.in, err, tt.want)
		}
	}
}

// TestExportStandardTimes: an "o" event made of a "b" event keeps its time.
func TestExportStandardTimes(t *testing.T) {
	in := `{"version":2,"width":80,"height":24}` + "\n" + `[1.234567,"b","/w=="]` + "\n" + `[2.5,"o","x"]` + "\n"
	var out bytes.Buffer
	if err := ExportStandard(&out, strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	want := `{"version":2,"width":80,"height":24}` + "\n" + `[1.234567,"o","` + "\uFFFD" + `"]` + "\n" + `[2.5,"o","x"]` + "\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}
