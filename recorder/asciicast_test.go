package recorder

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	h := Header{Version: 2, Width: 120, Height: 40, Timestamp: 1700000000, Title: "alice@web-1",
		Env: map[string]string{"TERM": "xterm-256color", "SHELL": "/bin/bash"}, IdleTimeLimit: 2.5}
	events := []Event{
		{Time: 0, Type: EventOutput, Data: "$ "},
		{Time: 0.000001, Type: EventInput, Data: "ls\r"},
		{Time: 1.5, Type: EventOutput, Data: "a <b> & \"c\"\r\n\x1b[0m\u00e9\U0001F600\x00"},
		{Time: 2.25, Type: EventResize, Data: "100x30"},
		{Time: 3600.123456, Type: EventMarker, Data: "approval granted"},
	}
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	if err := enc.WriteHeader(h); err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if err := enc.WriteEvent(ev); err != nil {
			t.Fatal(err)
		}
	}
	if !utf8.Valid(buf.Bytes()) {
		t.Fatal("encoded stream is not valid UTF-8")
	}
	if bytes.Contains(buf.Bytes(), []byte(`\u003c`)) {
		t.Errorf("encoder escapes HTML characters, which only bloats recordings:\n%s", buf.Bytes())
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 1+len(events) {
		t.Fatalf("got %d lines, want %d", len(lines), 1+len(events))
	}
	// Each line is standalone JSON of the right shape.
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first["version"] != float64(2) {
		t.Fatalf("header line %q: %v", lines[0], err)
	}
	var arr []any
	if err := json.Unmarshal([]byte(lines[3]), &arr); err != nil || len(arr) != 3 || arr[0] != 1.5 || arr[1] != "o" {
		t.Fatalf("event line %q decodes to %v, %v", lines[3], arr, err)
	}

	dec := NewDecoder(&buf)
	got, err := dec.Header()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, h) {
		t.Errorf("header = %+v, want %+v", got, h)
	}
	for i, want := range events {
		ev, err := dec.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev != want {
			t.Errorf("event %d = %+v, want %+v", i, ev, want)
		}
	}
	if _, err := dec.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after last event: err = %v, want io.EOF", err)
	}
}

func TestEventTimeMicroseconds(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, `[0,"o","x"]`},
		{1.23456789, `[1.234568,"o","x"]`},
		{0.0000004, `[0,"o","x"]`},
		{0.000001, `[0.000001,"o","x"]`},
		{86400.5, `[86400.5,"o","x"]`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(Event{Time: tt.in, Type: "o", Data: "x"})
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("time %v encodes as %s, want %s", tt.in, b, tt.want)
		}
	}
}

func TestEncodeInvalidUTF8Replaced(t *testing.T) {
	var buf bytes.Buffer
	if err := NewEncoder(&buf).WriteEvent(Event{Time: 1, Type: "o", Data: "a\xffb"}); err != nil {
		t.Fatal(err)
	}
	if !utf8.Valid(buf.Bytes()) {
		t.Fatalf("line %q is not valid UTF-8", buf.Bytes())
	}
	var ev Event
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &ev); err != nil || ev.Data != "a\uFFFDb" {
		t.Errorf("decoded %+v, %v; want data %q", ev, err, "a\uFFFDb")
	}
}

func TestDecoderErrors(t *testing.T) {
	const hdr = `{"version":2,"width":80,"height":24}` + "\n"
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "line 1: empty asciicast stream"},
		{"not json", "hello\n", "line 1: asciicast header is not a JSON object"},
		{"version 1", `{"version":1,"width":80,"height":24}`, "version 1 is not supported"},
		{"no size", `{"version":2}`, "width and height must be positive"},
		{"negative idle", `{"version":2,"width":80,"height":24,"idle_time_limit":-1}`, "idle_time_limit -1 is negative"},
		{"object event", hdr + `{"t":1}` + "\n", "line 2: event is not a JSON array"},
		{"two elements", hdr + `[1,"o"]` + "\n", "line 2: event has 2 elements"},
		{"string time", hdr + "\n" + `["1","o","x"]` + "\n", "line 3: event time is not a number"},
		{"negative time", hdr + `[-1,"o","x"]`, "line 2: event time -1"},
		{"empty type", hdr + `[1,"","x"]`, "line 2: event type is empty"},
		{"numeric data", hdr + `[1,"o",5]`, "line 2: event data is not a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec := NewDecoder(strings.NewReader(tt.in))
			var err error
			for err == nil {
				_, err = dec.Next()
			}
			if err == io.EOF || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestDecoderCRLFAndNoFinalNewline(t *testing.T) {
	in := "{\"version\":2,\"width\":80,\"height\":24}\r\n[0.5,\"o\",\"a\"]\r\n\r\n[1,\"o\",\"b\"]"
	dec := NewDecoder(strings.NewReader(in))
	var got []string
	for {
		ev, err := dec.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Data)
	}
	if strings.Join(got, ",") != "a,b" {
		t.Errorf("events = %q, want [a b]", got)
	}
}

func TestDecoderLineTooLong(t *testing.T) {
	in := io.MultiReader(strings.NewReader(`{"version":2,"width":80,"height":24}`+"\n"+`[1,"o","`),
		io.LimitReader(repeatReader('a'), MaxLineBytes+1))
	_, err := NewDecoder(in).Next()
	if err == nil || !strings.Contains(err.Error(), "line 2: longer than") {
		t.Errorf("err = %v, want a line-too-long error for line 2", err)
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// FuzzDecoder feeds arbitrary streams to the decoder: it must never panic,
// and every event it accepts must encode and decode back to itself.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte(`{"version":2,"width":80,"height":24,"timestamp":1,"env":{"TERM":"xterm"}}` + "\n" + `[0.1,"o","hi\u001b[0m"]` + "\n" + `[0.2,"r","80x25"]` + "\n"))
	f.Add([]byte(`{"version":2,"width":80,"height":24}` + "\n" + `[1e308,"m",""]` + "\n" + `[1,"o","\ud800"]`))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte("{\"version\":2,\"width\":1,\"height\":1}\n[0,\"o\",\"\xff\"]\n[0,\"o\"]\n"))
	f.Add([]byte("\n\n"))
	f.Add([]byte(`{"version":2,"width":80,"height":24}` + "\n" + `[0.5,"b","/wA="]` + "\n" + `[0.6,"b","!"]` + "\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		dec := NewDecoder(bytes.NewReader(in))
		if _, err := dec.Header(); err != nil {
			return
		}
		for range 1000 {
			ev, err := dec.Next()
			if err != nil {
				return
			}
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatalf("accepted event %+v does not encode: %v", ev, err)
			}
			var back Event
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("re-encoded event %s does not decode: %v", b, err)
			}
			data := strings.ToValidUTF8(ev.Data, "\uFFFD")
			if ev.Type == EventBinary {
				data = ev.Data // base64 keeps every byte
			}
			if back.Type != ev.Type || back.Time != roundMicro(ev.Time) || back.Data != data {
				t.Fatalf("event %+v came back as %+v", ev, back)
			}
		}
	})
}
