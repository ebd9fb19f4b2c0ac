package menu

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

var testNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func testItems() []Item {
	return []Item{
		{Name: "db-prod", Kind: "postgres", Description: "Production database", NeedsApproval: true},
		{Name: "w-e-b", Kind: "ssh", Description: "a decoy with the letters apart"},
		{Name: "web-1", Kind: "ssh", Description: "Web frontend one"},
		{Name: "web-2", Kind: "ssh", Description: "Web frontend two"},
		{Name: "mysql-web", Kind: "mysql", Description: "Shop database"},
		{Name: "jump", Kind: "ssh", Description: "Jump host"},
		{Name: "queue", Kind: "ssh", Description: "Message queue"},
	}
}

func newTestModel(w, h int, items []Item) *model {
	return newModel(Options{
		Width: w, Height: h, User: "alice", Groups: []string{"ops", "dev"},
		Expires: testNow.Add(7*time.Hour + 12*time.Minute), Items: items,
		Now: func() time.Time { return testNow },
	})
}

// keyOf builds the key message the input decoder would produce for a
// keystroke name ("enter", "ctrl+c") or a typed character.
func keyOf(s string) tea.KeyPressMsg {
	switch s {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "pgdown":
		return tea.KeyPressMsg{Code: tea.KeyPgDown}
	case "pgup":
		return tea.KeyPressMsg{Code: tea.KeyPgUp}
	case "backspace":
		return tea.KeyPressMsg{Code: tea.KeyBackspace}
	}
	if c, ok := strings.CutPrefix(s, "ctrl+"); ok {
		return tea.KeyPressMsg{Code: rune(c[0]), Mod: tea.ModCtrl}
	}
	r := []rune(s)[0]
	return tea.KeyPressMsg{Code: r, Text: s}
}

// press sends keys; a key of more than one rune that is not a name is
// typed letter by letter.
func press(m *model, keys ...string) tea.Cmd {
	var cmd tea.Cmd
	for _, k := range keys {
		if len([]rune(k)) > 1 && keyOf(k).Text != "" {
			for _, r := range k {
				if _, c := m.Update(keyOf(string(r))); c != nil {
					cmd = c
				}
			}
			continue
		}
		if _, c := m.Update(keyOf(k)); c != nil {
			cmd = c
		}
	}
	return cmd
}

func names(m *model) []string {
	var out []string
	for _, mt := range m.matches {
		out = append(out, m.items[mt.index].Name)
	}
	return out
}

func TestFilterOrder(t *testing.T) {
	tests := []struct {
		filter string
		want   []string
	}{
		{"", []string{"db-prod", "w-e-b", "web-1", "web-2", "mysql-web", "jump", "queue"}},
		{"web", []string{"web-1", "web-2", "mysql-web", "w-e-b"}},
		{"WEB", []string{"web-1", "web-2", "mysql-web", "w-e-b"}},
		{"w2", []string{"web-2"}},
		{"db", []string{"db-prod"}},
		{"postgres", []string{"db-prod"}}, // kind, substring
		{"frontend", []string{"web-1", "web-2"}},
		{"zzz", nil},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			got := filterItems(testItems(), []rune(tt.filter))
			var gotNames []string
			for _, mt := range got {
				gotNames = append(gotNames, testItems()[mt.index].Name)
			}
			if strings.Join(gotNames, ",") != strings.Join(tt.want, ",") {
				t.Errorf("filter %q = %v, want %v", tt.filter, gotNames, tt.want)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	tests := []struct {
		name       string
		keys       []string
		wantDone   bool
		wantChosen string
		wantFilter string
		wantCursor int
	}{
		{name: "enter picks the first", keys: []string{"enter"}, wantDone: true, wantChosen: "db-prod"},
		{name: "enter on filtered list", keys: []string{"web", "enter"}, wantDone: true, wantChosen: "web-1"},
		{name: "down on filtered list", keys: []string{"web", "down", "enter"}, wantDone: true, wantChosen: "web-2"},
		{name: "ctrl+n ctrl+p", keys: []string{"ctrl+n", "ctrl+n", "ctrl+p", "enter"}, wantDone: true, wantChosen: "w-e-b"},
		{name: "up stops at the top", keys: []string{"up", "up"}, wantCursor: 0},
		{name: "down stops at the bottom", keys: []string{"down", "down", "down", "down", "down", "down", "down", "down", "down"}, wantCursor: 6},
		{name: "down stops at the bottom of a filtered list", keys: []string{"web", "down", "down", "down", "down", "down"}, wantFilter: "web", wantCursor: 3},
		{name: "pgdown pgup", keys: []string{"pgdown", "pgdown", "pgup", "pgup"}, wantCursor: 0},
		{name: "q leaves on an empty filter", keys: []string{"q"}, wantDone: true},
		{name: "q is filter text after other text", keys: []string{"u", "q"}, wantFilter: "uq"},
		{name: "q leaves after esc", keys: []string{"web", "esc", "q"}, wantDone: true},
		{name: "q first leaves even if a target starts with q", keys: []string{"que"}, wantDone: true},
		{name: "q later is text", keys: []string{"s", "q", "enter"}, wantDone: true, wantChosen: "mysql-web"},
		{name: "esc clears", keys: []string{"web", "down", "esc"}, wantCursor: 0},
		{name: "backspace", keys: []string{"web", "backspace"}, wantFilter: "we"},
		{name: "backspace on empty", keys: []string{"backspace"}},
		{name: "ctrl+u", keys: []string{"web", "ctrl+u"}},
		{name: "ctrl+w", keys: []string{"web-", "ctrl+w"}},
		{name: "ctrl+c leaves", keys: []string{"web", "ctrl+c"}, wantDone: true},
		{name: "ctrl+d leaves", keys: []string{"ctrl+d"}, wantDone: true},
		{name: "enter with no match does nothing", keys: []string{"zzz", "enter"}, wantFilter: "zzz"},
		{name: "help then any key closes it", keys: []string{"?", "q"}},
		{name: "help does not connect", keys: []string{"?", "enter"}},
		{name: "ctrl+c leaves from help", keys: []string{"?", "ctrl+c"}, wantDone: true},
		{name: "typing resets the cursor to the best match", keys: []string{"down", "down", "w", "enter"}, wantDone: true, wantChosen: "w-e-b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestModel(80, 24, testItems())
			cmd := press(m, tt.keys...)
			if m.done != tt.wantDone || m.chosen != tt.wantChosen {
				t.Fatalf("done=%v chosen=%q, want %v %q", m.done, m.chosen, tt.wantDone, tt.wantChosen)
			}
			if tt.wantDone {
				if cmd == nil {
					t.Fatal("no command on leaving")
				}
				if _, ok := cmd().(tea.QuitMsg); !ok {
					t.Fatal("leaving does not quit the program")
				}
				return
			}
			if string(m.filter) != tt.wantFilter {
				t.Errorf("filter %q, want %q", string(m.filter), tt.wantFilter)
			}
			if m.cursor != tt.wantCursor {
				t.Errorf("cursor %d, want %d", m.cursor, tt.wantCursor)
			}
		})
	}
}

func TestEOFLeaves(t *testing.T) {
	m := newTestModel(80, 24, testItems())
	m.Update(eofMsg{})
	if !m.done || m.chosen != "" {
		t.Fatalf("done=%v chosen=%q", m.done, m.chosen)
	}
}

func manyItems(n int) []Item {
	var items []Item
	for i := range n {
		items = append(items, Item{Name: "host-" + string(rune('a'+i%26)) + strings.Repeat("x", i%7),
			Kind: "ssh", Description: strings.Repeat("description ", i%5+1), NeedsApproval: i%3 == 0})
	}
	return items
}

// checkScreen asserts the view fits the terminal and shows the selection.
func checkScreen(t *testing.T, m *model) {
	t.Helper()
	v := m.View()
	lines := strings.Split(v.Content, "\n")
	if len(lines) > m.height {
		t.Fatalf("%d lines on a %d-row terminal", len(lines), m.height)
	}
	for i, l := range lines {
		if w := ansi.StringWidth(l); w > m.width {
			t.Fatalf("line %d is %d cells wide on a %d-column terminal: %q", i, w, m.width, ansi.Strip(l))
		}
	}
	if len(m.matches) == 0 || m.help || m.width < 8 {
		return
	}
	name := m.items[m.matches[m.cursor].index].Name
	want := ansi.Truncate(name, m.width-5, "…")
	found := false
	for _, l := range lines {
		if s := ansi.Strip(l); (strings.HasPrefix(s, "> ") || m.height < 2) && strings.Contains(s, want) {
			found = true
		}
	}
	if !found {
		t.Fatalf("selection %q not visible at %dx%d:\n%s", name, m.width, m.height, ansi.Strip(v.Content))
	}
	if v.Cursor != nil && (v.Cursor.X >= m.width || v.Cursor.Y >= m.height) {
		t.Fatalf("cursor %v outside %dx%d", v.Cursor.Position, m.width, m.height)
	}
}

func TestResizeKeepsSelectionVisible(t *testing.T) {
	sizes := [][2]int{{80, 24}, {20, 5}, {200, 60}, {1, 1}, {10, 2}, {40, 3}, {80, 24}}
	m := newTestModel(80, 24, manyItems(100))
	m.notice = "[web-1 ended with exit status 0]"
	m.pending = 2
	press(m, "down", "down", "pgdown", "pgdown", "down")
	for _, s := range sizes {
		m.Update(tea.WindowSizeMsg{Width: s[0], Height: s[1]})
		checkScreen(t, m)
		for range 37 {
			press(m, "down")
			checkScreen(t, m)
		}
		press(m, "pgup")
		checkScreen(t, m)
		press(m, "x")
		checkScreen(t, m)
		press(m, "backspace")
	}
	// Help and an empty list at a tiny size.
	m.Update(tea.WindowSizeMsg{Width: 20, Height: 5})
	press(m, "?")
	checkScreen(t, m)
	press(m, "esc", "zzzz")
	checkScreen(t, m)
}

func TestViewContent(t *testing.T) {
	m := newTestModel(80, 24, testItems())
	m.notice = "[web-1 ended with exit status 0]"
	m.pending = 1
	s := ansi.Strip(m.View().Content)
	for _, want := range []string{"alice", "groups ops,dev", "expires in 7h12m", "[web-1 ended with exit status 0]",
		"1 approval request", "db-prod", "postgres", "Production database", approvalMark, "q quit"} {
		if !strings.Contains(s, want) {
			t.Errorf("screen lacks %q:\n%s", want, s)
		}
	}
	press(m, "?")
	if s := ansi.Strip(m.View().Content); !strings.Contains(s, "needs an approver") {
		t.Errorf("help lacks the approval mark:\n%s", s)
	}
}

func TestNoColor(t *testing.T) {
	m := newModel(Options{Width: 80, Height: 24, Items: testItems(), NoColor: true, User: "alice"})
	press(m, "down")
	c := m.View().Content
	for _, seq := range strings.Split(c, "\x1b[")[1:] {
		// Allowed: reset, bold, reverse (attributes, not colours).
		params, _, _ := strings.Cut(seq, "m")
		for _, p := range strings.Split(params, ";") {
			switch p {
			case "", "0", "1", "7", "22", "27":
			default:
				t.Fatalf("colour parameter %q in a NoColor screen: %q", p, c)
			}
		}
	}
}

func TestExpiry(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{7*time.Hour + 12*time.Minute + 30*time.Second, "expires in 7h12m"},
		{42 * time.Second, "expires in 42s"},
		{5 * time.Minute, "expires in 5m"},
		{50 * time.Hour, "expires in 2d2h"},
		{-2 * time.Hour, "certificate expired 2h00m ago"},
	}
	for _, tt := range tests {
		if got := expiry(tt.d); got != tt.want {
			t.Errorf("expiry(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
