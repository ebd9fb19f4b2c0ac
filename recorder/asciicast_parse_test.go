package recorder

import (
	"encoding/json"
	"testing"
)

func TestParseEventLine(t *testing.T) {
	tests := []struct {
		name, line string
		want       Event
		fails      bool
	}{
		{"recorder's form", `[1.25,"o","hello"]`, Event{1.25, "o", "hello"}, false},
		{"escapes", `[0,"o","a\r\n\t\"\\\/\b\f\u001b[31m\u00e9"]`, Event{0, "o", "a\r\n\t\"\\/\b\f\x1b[31mé"}, false},
		{"surrogate pair", `[2,"o","\ud83d\ude42"]`, Event{2, "o", "🙂"}, false},
		{"lone surrogate as encoding/json has it", `[2,"o","\ud83d"]`, Event{2, "o", "\uFFFD"}, false},
		{"spaces take the general path", `[ 3 , "i" , "x" ]`, Event{3, "i", "x"}, false},
		{"exponent takes the general path", `[1e2,"o","x"]`, Event{100, "o", "x"}, false},
		{"negative time", `[-1,"o","x"]`, Event{}, true},
		{"empty type", `[1,"","x"]`, Event{}, true},
		{"two elements", `[1,"o"]`, Event{}, true},
		{"raw control in string", "[1,\"o\",\"a\x01\"]", Event{}, true},
		{"bad escape", `[1,"o","\x"]`, Event{}, true},
		{"unterminated", `[1,"o","abc]`, Event{}, true},
		{"not an array", `{"t":1}`, Event{}, true},
		{"binary output", `[1,"b","/wBh"]`, Event{1, "b", "\xff\x00a"}, false},
		{"binary output, general path", `[ 1 , "b" , "/wBh" ]`, Event{1, "b", "\xff\x00a"}, false},
		{"binary output that is not base64", `[1,"b","/wB"]`, Event{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEventLine([]byte(tt.line))
			if tt.fails {
				if err == nil {
					t.Fatalf("ParseEventLine(%s) = %+v; want an error", tt.line, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseEventLine(%s) = %+v, %v; want %+v", tt.line, got, err, tt.want)
			}
		})
	}
}

// FuzzParseEventLine holds the fast path to encoding/json's result: the
// same event, or an error where encoding/json gives one.
func FuzzParseEventLine(f *testing.F) {
	for _, s := range []string{`[1.25,"o","hello"]`, `[0,"o","\u001b[31m\r\n"]`, `[2,"o","\ud83d\ude42"]`, `[1,"o","\ud83d"]`,
		`[0.000001,"r","80x24"]`, `[10,"m","a\"b"]`, "[1,\"o\",\"\xff\"]", `[01,"o","x"]`, `[1.,"o","x"]`,
		`[1,"b","/wBh"]`, `[1,"b","/wB"]`, `[1,"b","\/wBh"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		got, err := ParseEventLine(line)
		var want Event
		werr := json.Unmarshal(line, &want)
		if (err == nil) != (werr == nil) {
			t.Fatalf("ParseEventLine(%q) = %+v, %v; encoding/json: %+v, %v", line, got, err, want, werr)
		}
		if err == nil && got != want {
			t.Fatalf("ParseEventLine(%q) = %+v; encoding/json: %+v", line, got, want)
		}
	})
}
