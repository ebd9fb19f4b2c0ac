package main

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bastion-dev/bastion/recorder"
)

// referenceContains is the slow, obviously right answer: decode every
// event with the recorder's decoder and search all output at once.
func referenceContains(t *testing.T, cast, text string) bool {
	t.Helper()
	dec := recorder.NewDecoder(strings.NewReader(cast))
	var all strings.Builder
	for {
		ev, err := dec.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reference decode: %v", err)
		}
		if ev.IsOutput() {
			all.WriteString(ev.Data)
		}
	}
	return strings.Contains(all.String(), text)
}

const castHeader = `{"version":2,"width":80,"height":24}` + "\n"

func TestOutputContains(t *testing.T) {
	lines := castHeader +
		`[0.1,"o","hello \u001b[1mbold\u001b[0m\r\n"]` + "\n" +
		`[0.2,"i","typed-secret"]` + "\n" +
		`[0.3,"m","enter marker-word"]` + "\n" +
		`[0.4,"o","quote \" back \\ slash \u003ctag\u003e \u00e9t\u00e9 \ud83d\udd12 lock"]` + "\n" +
		`[0.5, "o", "spaced-out line"]` + "\n" + // not the recorder's spelling: encoding/json reads it
		`[0.6,"o","spl"]` + "\n" + `[0.7,"o","it-"]` + "\n" + `[0.8,"o","word"]` + "\n" +
		`[0.9,"r","100x40"]` + "\n" +
		`[1.0,"o","tab\there"]` + "\n" +
		`[1.1,"o",""]` + "\n" +
		`[1.2,"o","lone \ud800 surrogate"]` + "\n" +
		`[1.3,"b","/3NlY3JldP4="]` + "\n" + // \xffsecret\xfe
		`[1.4, "b", "/2JpbmFyeS1zcGFj/g=="]` + "\n" + // \xffbinary-spac\xfe, not the recorder's spelling
		`[1.5,"o","ed"]` + "\n"
	cases := []struct {
		text string
		want bool
	}{
		{"hello \x1b[1mbold", true},
		{"bold\x1b[0m\r\nquote", true}, // spans events 1 and 4 (input and marker between)
		{"typed-secret", false},        // input is not output
		{"marker-word", false},         // nor are markers
		{`quote " back \ slash <tag>`, true},
		{"été 🔒 lock", true},
		{"spaced-out", true},
		{"split-word", true}, // spans three events
		{"100x40", false},
		{"tab\there", true},
		{"lone \uFFFD surrogate", true},
		{"absent", false},
		{"\xffsecret\xfe", true}, // binary output, decoded
		{"secret", true},
		{"/3NlY3JldP4=", false},     // its base64 is not output
		{"binary-spac\xfeed", true}, // across a "b" and an "o" event
		{"g", true},
	}
	for _, c := range cases {
		t.Run(c.text, func(t *testing.T) {
			if ref := referenceContains(t, lines, c.text); ref != c.want {
				t.Fatalf("the reference says %v; the case is wrong", ref)
			}
			got, err := outputContains(strings.NewReader(lines), c.text)
			if err != nil || got != c.want {
				t.Fatalf("outputContains(%q) = %v, %v; want %v", c.text, got, err, c.want)
			}
		})
	}
}

// Random output written by the recorder's own encoder, searched for
// random pieces of it and for near misses: the fast reader agrees with
// the decoder every time.
func TestOutputContainsAgreesWithDecoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	alphabet := []string{"a", "b", "\r\n", "\x1b[", "\"", "\\", "é", "🔒", "\u2028", "\x00", "\t", " ", "\xff", "\x80"}
	for round := range 200 {
		var buf bytes.Buffer
		buf.WriteString(castHeader)
		enc := recorder.NewEncoder(&buf)
		var out strings.Builder
		for i := range 1 + rng.IntN(8) {
			var data strings.Builder
			for range rng.IntN(6) {
				data.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			typ := []string{"o", "o", "o", "i", "m"}[rng.IntN(5)]
			if typ == "o" && !utf8.ValidString(data.String()) {
				typ = "b" // as the recorder writes output that is not text
			}
			if err := enc.WriteEvent(recorder.Event{Time: float64(i), Type: typ, Data: data.String()}); err != nil {
				t.Fatal(err)
			}
			if typ == "o" || typ == "b" {
				out.WriteString(data.String())
			}
		}
		cast := buf.String()
		var needles []string
		if s := out.String(); len(s) > 0 {
			i := rng.IntN(len(s))
			needles = append(needles, s[i:min(len(s), i+1+rng.IntN(6))])
		}
		for range 3 {
			var n strings.Builder
			for range 1 + rng.IntN(3) {
				n.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			needles = append(needles, n.String())
		}
		for _, needle := range needles {
			want := strings.Contains(out.String(), needle)
			if ref := referenceContains(t, cast, needle); ref != want {
				t.Fatalf("round %d: reference disagrees with the data", round)
			}
			got, err := outputContains(strings.NewReader(cast), needle)
			if err != nil || got != want {
				t.Fatalf("round %d: outputContains(%q) = %v, %v; want %v\n%s", round, needle, got, err, want, cast)
			}
		}
	}
}

func TestOutputContainsRefusesDamage(t *testing.T) {
	for _, cast := range []string{
		"", // no header
		castHeader + `[0.1,"o","unterminated` + "\n",
		castHeader + `not json` + "\n",
		castHeader + `[0.1,"b","not base64!"]` + "\n",
	} {
		if _, err := outputContains(strings.NewReader(cast), "needle"); err == nil {
			t.Errorf("damaged recording %q searched without error", cast)
		}
	}
}
