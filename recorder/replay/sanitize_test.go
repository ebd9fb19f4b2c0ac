package replay

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func sanitize(s string) string {
	var z Sanitizer
	out := z.Append(nil, []byte(s))
	return string(z.Flush(out))
}

func TestSanitizer(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain text", "hello, world\r\n", "hello, world\r\n"},
		{"utf-8 text", "grüße ✓ 日本 🙂\n", "grüße ✓ 日本 🙂\n"},
		{"tab bell backspace", "a\tb\x07c\bd", "a\tb\x07c\bd"},
		{"SGR kept", "\x1b[1;31mred\x1b[0m \x1b[38;2;1;2;3mrgb\x1b[38:5:1m", "\x1b[1;31mred\x1b[0m \x1b[38;2;1;2;3mrgb\x1b[38:5:1m"},
		{"cursor and erase kept", "\x1b[H\x1b[2J\x1b[10;5H\x1b[K\x1b[3A\x1b[2C\x1b[1P\x1b[2@\x1b[5X", "\x1b[H\x1b[2J\x1b[10;5H\x1b[K\x1b[3A\x1b[2C\x1b[1P\x1b[2@\x1b[5X"},
		{"scroll region and save/restore kept", "\x1b[1;20r\x1b7\x1b8\x1b[s\x1b[u\x1bM\x1bD", "\x1b[1;20r\x1b7\x1b8\x1b[s\x1b[u\x1bM\x1bD"},
		{"charset kept", "\x1b(0qqq\x1b(B", "\x1b(0qqq\x1b(B"},
		{"cursor style kept", "\x1b[2 q", "\x1b[2 q"},
		{"full reset kept", "\x1bc", "\x1bc"},
		{"OSC 52 clipboard BEL", "a\x1b]52;c;cm0gLXJmIC8K\x07b", "ab"},
		{"OSC 52 clipboard ST", "a\x1b]52;c;cm0gLXJmIC8K\x1b\\b", "ab"},
		{"OSC 0 title", "\x1b]0;pwned\x07x", "x"},
		{"OSC 2 title", "\x1b]2;pwned\x1b\\x", "x"},
		{"OSC 8 hyperlink keeps text", "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\ here", "click here"},
		{"DCS DECRQSS", "\x1bP$qm\x1b\\after", "after"},
		{"DCS with ESC inside ends at ST", "\x1bPq#0;2;0;0;0\x1b\\ok", "ok"},
		{"APC", "\x1b_Gf=100;AAAA\x1b\\ok", "ok"},
		{"PM", "\x1b^secret\x1b\\ok", "ok"},
		{"SOS", "\x1bXsecret\x1b\\ok", "ok"},
		{"DA primary", "\x1b[c\x1b[0c", ""},
		{"DA secondary and tertiary", "\x1b[>c\x1b[=c", ""},
		{"DSR cursor position", "a\x1b[6nb\x1b[5n\x1b[?6n", "ab"},
		{"window ops", "\x1b[21t\x1b[8;100;100t\x1b[14t", ""},
		{"DECRQM", "\x1b[?2004$p\x1b[4$p", ""},
		{"XTVERSION", "\x1b[>0q", ""},
		{"kitty keyboard", "\x1b[>1u\x1b[?u\x1b[<u", ""},
		{"modify keys", "\x1b[>4;2m", ""},
		{"media copy", "\x1b[5i\x1b[4i", ""},
		{"DECID", "\x1bZ", ""},
		{"ENQ answerback", "a\x05b", "ab"},
		{"ESC % leaves UTF-8", "\x1b%@x\x1b%Gy", "xy"},
		{"mouse modes dropped", "\x1b[?1000h\x1b[?1006h\x1b[?2004h", ""},
		{"mode list filtered", "\x1b[?25;1000;7h", "\x1b[?25;7h"},
		{"alt screen kept by default", "\x1b[?1049h", "\x1b[?1049h"},
		{"ANSI modes filtered", "\x1b[4h\x1b[2h\x1b[12l", "\x1b[4h"},
		{"C1 CSI DSR", "a\u009b6nb", "ab"},
		{"C1 CSI SGR becomes 7-bit", "\u009b31mx", "\x1b[31mx"},
		{"C1 OSC ended by C1 ST", "a\u009d52;c;AAAA\u009cb", "ab"},
		{"C1 OSC ended by BEL", "a\u009d0;t\x07b", "ab"},
		{"C1 DCS", "\u0090$qm\u009cok", "ok"},
		{"C1 APC", "\u009fx\u009cok", "ok"},
		{"other C1 dropped", "a\u0085b\u0084c", "abc"},
		{"invalid UTF-8 replaced", "a\x9b6nb\xffc", "a\uFFFD6nb\uFFFDc"},
		{"CAN aborts sequence", "\x1b[6\x18n", "n"},
		{"ESC restarts sequence", "\x1b[6\x1b[1mx", "\x1b[1mx"},
		{"C0 inside CSI takes effect", "\x1b[1\n2J", "\n\x1b[12J"},
		{"unterminated OSC dropped at end", "ok\x1b]52;c;AAAA", "ok"},
		{"overlong CSI dropped", "\x1b[" + strings.Repeat("1;", 200) + "mx", "x"},
		{"multibyte 0x9b continuation is text", "\u26c0\u26dd", "\u26c0\u26dd"},
		{"dangling ESC dropped", "x\x1b", "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sanitize(tt.in); got != tt.want {
				t.Errorf("sanitize(%q) = %q; want %q", tt.in, got, tt.want)
			}
			// Split at every point: a sequence cut across two recorded
			// events is handled as if it came in one.
			for i := 0; i <= len(tt.in); i++ {
				var z Sanitizer
				out := z.Append(nil, []byte(tt.in[:i]))
				out = z.Append(out, []byte(tt.in[i:]))
				if got := string(z.Flush(out)); got != tt.want {
					t.Fatalf("split at %d: got %q; want %q", i, got, tt.want)
				}
			}
		})
	}
}

func TestSanitizerDropAltScreen(t *testing.T) {
	z := Sanitizer{DropAltScreen: true}
	got := string(z.Append(nil, []byte("\x1b[?1049h\x1b[?47l\x1b[?1047;25h\x1b[?1048h\x1bc")))
	if want := "\x1b[?25h\x1b[?1048h\x1b[0m\x1b[H\x1b[2J"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestWriter(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, p := range []string{"a\x1b]5", "2;c;AAAA\x07b", "\x1b[3", "1mc\x1b"} {
		if n, err := w.Write([]byte(p)); err != nil || n != len(p) {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "ab\x1b[31mc"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

// checkSafe is the fuzz oracle, written apart from the sanitizer: the
// output is valid UTF-8 without C1 controls or ENQ, and every escape in it
// is a complete sequence of the kinds that only draw.
func checkSafe(out []byte) error {
	if !utf8.Valid(out) {
		return fmt.Errorf("invalid UTF-8")
	}
	for _, r := range string(out) {
		if r >= 0x80 && r <= 0x9f {
			return fmt.Errorf("C1 control U+%04X", r)
		}
		if r == 0x05 {
			return fmt.Errorf("ENQ")
		}
	}
	for i := 0; i < len(out); i++ {
		if out[i] != 0x1b {
			continue
		}
		if i+1 >= len(out) {
			return fmt.Errorf("ESC at the end")
		}
		c := out[i+1]
		switch {
		case c == '[':
			j := i + 2
			for j < len(out) && out[j] >= 0x20 && out[j] <= 0x3f {
				j++
			}
			if j >= len(out) || out[j] < 0x40 || out[j] > 0x7e {
				return fmt.Errorf("unfinished CSI at %d", i)
			}
			body, final := string(out[i+2:j]), out[j]
			if err := checkCSI(body, final); err != nil {
				return fmt.Errorf("CSI %q%c: %w", body, final, err)
			}
			i = j
		case c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_' || c == 'Z' || c == '%' || c == ' ':
			return fmt.Errorf("ESC %c at %d", c, i)
		case c >= 0x20 && c <= 0x2f:
			if i+2 >= len(out) {
				return fmt.Errorf("unfinished ESC %c", c)
			}
			i += 2
		case c < 0x20:
			return fmt.Errorf("ESC then control %#x", c)
		default:
			i++
		}
	}
	return nil
}

func checkCSI(body string, final byte) error {
	switch {
	case strings.HasPrefix(body, "?") && (final == 'h' || final == 'l'):
		for m := range strings.SplitSeq(body[1:], ";") {
			switch m {
			case "1", "3", "9", "1000", "1001", "1002", "1003", "1004", "1005", "1006", "1015", "1016", "2004", "2026":
				return fmt.Errorf("reporting mode %s", m)
			}
		}
		return nil
	case strings.ContainsAny(body, "<=>?$\"'*"):
		if strings.HasPrefix(body, "?") && (final == 'J' || final == 'K') {
			return nil
		}
		return fmt.Errorf("private or intermediate form")
	case strings.Contains(body, "!") && final != 'p':
		return fmt.Errorf("! form")
	case strings.Contains(body, " ") && !strings.ContainsRune("q@A", rune(final)):
		return fmt.Errorf("space form")
	}
	if strings.ContainsRune("cntxiyqpwvz{|}~", rune(final)) && !(final == 'q' && strings.HasSuffix(body, " ")) && !(final == 'p' && strings.HasSuffix(body, "!")) {
		return fmt.Errorf("report or query final %c", final)
	}
	return nil
}

// plainText reports whether s is text a terminal shows as it is: valid
// UTF-8 without controls other than tab, newline and carriage return.
func plainText(s []byte) bool {
	if !utf8.Valid(s) {
		return false
	}
	for _, r := range string(s) {
		if (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || (r >= 0x7f && r <= 0x9f) {
			return false
		}
	}
	return true
}

func FuzzSanitizer(f *testing.F) {
	for _, s := range []string{
		"plain", "\x1b]52;c;AAAA\x07", "\x1b[6n", "\u009b6n", "\x1bP$qm\x1b\\", "\x1b]8;;http://x\x1b\\t\x1b]8;;\x1b\\",
		"\x1b[?1000;25h", "\x1b[1;31mred", "\x1b(0q", "\xe2\x9b\x80", "\x1b[21t", "\x1b%@\xc2\x9b6n",
	} {
		f.Add([]byte(s), uint(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint) {
		var whole Sanitizer
		out := whole.Flush(whole.Append(nil, in))
		if err := checkSafe(out); err != nil {
			t.Fatalf("sanitize(%q) = %q: %v", in, out, err)
		}
		cut := int(split % uint(len(in)+1))
		var parts Sanitizer
		got := parts.Append(nil, in[:cut])
		got = parts.Flush(parts.Append(got, in[cut:]))
		if !bytes.Equal(got, out) {
			t.Fatalf("split at %d: %q; whole: %q", cut, got, out)
		}
		var again Sanitizer
		if twice := again.Flush(again.Append(nil, out)); !bytes.Equal(twice, out) {
			t.Fatalf("not idempotent: %q then %q", out, twice)
		}
		if plainText(in) && !bytes.Equal(out, in) {
			t.Fatalf("plain text %q changed to %q", in, out)
		}
		// The player's variant keeps the same promises.
		player := Sanitizer{DropAltScreen: true}
		pout := player.Flush(player.Append(nil, in))
		if err := checkSafe(pout); err != nil {
			t.Fatalf("player sanitize(%q) = %q: %v", in, pout, err)
		}
		if plainText(in) && !bytes.Equal(pout, in) {
			t.Fatalf("player: plain text %q changed to %q", in, pout)
		}
	})
}
