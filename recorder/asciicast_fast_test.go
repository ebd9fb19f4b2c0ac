package recorder

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
)

// referenceEvent is how encoding/json writes an event line.
func referenceEvent(t testing.TB, e Event) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	data := e.Data
	if e.Type == EventBinary {
		data = base64.StdEncoding.EncodeToString([]byte(data))
	}
	if err := enc.Encode([3]any{roundMicro(e.Time), e.Type, data}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestEncodeEventMatchesJSON(t *testing.T) {
	for _, e := range []Event{
		{0, "o", ""},
		{0.000001, "o", "plain"},
		{1.5, "o", "\x00\x01\x1f\x7f\"\\/<>&\b\f\n\r\t"},
		{12345.678901, "i", "€ 日本 \u2028 \u2029 \u2027 🙂"},
		{1e-7, "o", "tiny time"},
		{1e22, "o", "huge time"},
		{3.0000004, "r", "80x24"},
		{2, "o", "invalid \xff utf-8 \xe2\x80"},
	} {
		var got bytes.Buffer
		if err := encodeEvent(&got, e); err != nil {
			t.Fatal(err)
		}
		if want := referenceEvent(t, e); !bytes.Equal(got.Bytes(), want) {
			t.Errorf("event %+v:\n got %q\nwant %q", e, got.Bytes(), want)
		}
	}
}

func FuzzEncodeEvent(f *testing.F) {
	f.Add(1.25, "o", "a\x00b\u2028\"")
	f.Add(0.0, "m", "\xe2\x80\xa8\xe2\x80")
	f.Add(2.5, "b", "\xff\x00binary\xfe")
	f.Fuzz(func(t *testing.T, sec float64, typ, data string) {
		e := Event{Time: sec, Type: typ, Data: data}
		var got bytes.Buffer
		if err := encodeEvent(&got, e); err != nil {
			return // encoding/json refuses it too (NaN)
		}
		if want := referenceEvent(t, e); !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("event %+v:\n got %q\nwant %q", e, got.Bytes(), want)
		}
	})
}
