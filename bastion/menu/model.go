package menu

import (
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// approvalMark flags targets that need an approver. It is two cells wide on
// every terminal that renders it; the help screen says what it means.
const approvalMark = "⏳"

// model is the menu's state. It is pure: Update changes it only from the
// message it is given, so tests drive it without a terminal. Everything that
// touches the outside (input bytes, resizes, time) reaches it as a message.
type model struct {
	user    string
	groups  []string
	expires time.Time
	pending int
	notice  string
	items   []Item
	now     func() time.Time
	st      styles

	width, height int

	filter  []rune
	matches []match
	cursor  int // index into matches
	offset  int // first match shown in the list
	help    bool

	chosen string // set with done when Enter picked a target
	done   bool
}

// styles are the few looks the menu uses. With NoColor they carry
// attributes only (bold, reverse), never a colour.
type styles struct {
	header, dim, selected, mark, notice, prompt lipgloss.Style
}

func newStyles(noColor bool) styles {
	s := lipgloss.NewStyle()
	if noColor {
		return styles{
			header: s.Bold(true), dim: s, selected: s.Reverse(true),
			mark: s, notice: s.Bold(true), prompt: s.Bold(true),
		}
	}
	// Basic ANSI colours only: they follow the user's palette, and every
	// colour terminal has them.
	return styles{
		header:   s.Bold(true).Foreground(lipgloss.Cyan),
		dim:      s.Foreground(lipgloss.BrightBlack),
		selected: s.Reverse(true).Bold(true),
		mark:     s.Foreground(lipgloss.Yellow),
		notice:   s.Foreground(lipgloss.Yellow).Bold(true),
		prompt:   s.Foreground(lipgloss.Cyan).Bold(true),
	}
}

func newModel(o Options) *model {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	m := &model{
		user: o.User, groups: o.Groups, expires: o.Expires, pending: o.Pending,
		notice: o.Notice, items: o.Items, now: now, st: newStyles(o.NoColor),
		width: o.Width, height: o.Height,
	}
	if m.width <= 0 {
		m.width = 80
	}
	if m.height <= 0 {
		m.height = 24
	}
	m.refilter()
	return m
}

// tickMsg makes the header's relative expiry time current.
type tickMsg struct{}

// eofMsg says the input ended: the menu leaves as if the user pressed q.
type eofMsg struct{}

func (m *model) Init() tea.Cmd { return nil }

func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if m.done {
		return m, nil
	}
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		if msg.Width > 0 && msg.Height > 0 {
			m.width, m.height = msg.Width, msg.Height
		}
	case eofMsg:
		return m.leave("")
	case tea.KeyPressMsg:
		return m.key(msg)
	}
	m.scroll()
	return m, nil
}

// leave ends the menu with name ("" for none).
func (m *model) leave(name string) (tea.Model, tea.Cmd) {
	m.chosen, m.done = name, true
	return m, tea.Quit
}

func (m *model) key(k tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	s := k.String()
	switch s {
	case "ctrl+c", "ctrl+d":
		return m.leave("")
	}
	if m.help {
		// Any key closes the help; it is not also acted on, so that a
		// stray key cannot connect somewhere.
		m.help = false
		return m, nil
	}
	switch s {
	case "enter", "ctrl+j", "ctrl+m":
		if len(m.matches) == 0 {
			return m, nil
		}
		return m.leave(m.items[m.matches[m.cursor].index].Name)
	case "up", "ctrl+p", "shift+tab":
		m.move(-1)
	case "down", "ctrl+n", "tab":
		m.move(1)
	case "pgup", "alt+v":
		m.move(-m.listRows())
	case "pgdown", "ctrl+v":
		m.move(m.listRows())
	case "home":
		m.cursor = 0
	case "end":
		m.cursor = len(m.matches) - 1
	case "esc":
		m.setFilter(nil)
	case "backspace", "ctrl+h":
		if len(m.filter) > 0 {
			m.setFilter(m.filter[:len(m.filter)-1])
		}
	case "ctrl+u":
		m.setFilter(nil)
	case "ctrl+w", "alt+backspace":
		m.setFilter(deleteWord(m.filter))
	case "?":
		m.help = true
	case "q":
		if len(m.filter) == 0 {
			return m.leave("")
		}
		m.typeText(k.Text)
	default:
		if k.Text != "" && k.Mod&^tea.ModShift == 0 {
			m.typeText(k.Text)
		}
	}
	m.scroll()
	return m, nil
}

func (m *model) typeText(t string) {
	f := append([]rune(nil), m.filter...)
	for _, r := range t {
		if r >= ' ' && r != 0x7f {
			f = append(f, r)
		}
	}
	m.setFilter(f)
}

// deleteWord removes the last word and the separators after it, as Ctrl-W
// does in a shell.
func deleteWord(f []rune) []rune {
	i := len(f)
	for i > 0 && isSeparator(f[i-1]) {
		i--
	}
	for i > 0 && !isSeparator(f[i-1]) {
		i--
	}
	return f[:i]
}

// setFilter changes the filter and puts the cursor on the best match: the
// one Enter should pick for what was typed.
func (m *model) setFilter(f []rune) {
	m.filter = f
	m.refilter()
	m.cursor, m.offset = 0, 0
}

func (m *model) refilter() {
	m.matches = filterItems(m.items, m.filter)
	if m.cursor >= len(m.matches) {
		m.cursor = max(0, len(m.matches)-1)
	}
}

// move moves the cursor by d, stopping at either end: wrapping would make a
// held key race past the target that was wanted.
func (m *model) move(d int) {
	m.cursor = min(max(m.cursor+d, 0), max(len(m.matches)-1, 0))
}

// scroll keeps the cursor inside the visible part of the list.
func (m *model) scroll() {
	rows := m.listRows()
	if m.cursor < m.offset {
		m.offset = m.cursor
	}
	if m.cursor >= m.offset+rows {
		m.offset = m.cursor - rows + 1
	}
	m.offset = min(max(m.offset, 0), max(len(m.matches)-rows, 0))
}

// layout says which optional lines fit. The filter line and at least one
// list row always show; then, by importance, the header, the notice, the
// pending approvals and the key hints, each only if a row is left for it.
type layout struct {
	header, notice, pending, footer, gap bool
	rows                                 int // list rows
}

func (m *model) layout() layout {
	var l layout
	left := m.height - 1 // the filter line
	minRows := 1
	if m.height >= 8 {
		minRows = 3
	}
	left -= minRows
	take := func(want bool) bool {
		if want && left > 0 {
			left--
			return true
		}
		return false
	}
	l.header = take(true)
	l.notice = take(m.notice != "")
	l.pending = take(m.pending > 0)
	l.footer = take(m.height >= 6)
	l.gap = take(m.height >= 12)
	l.rows = max(minRows+left, 1)
	return l
}

func (m *model) listRows() int { return m.layout().rows }

// View draws the whole screen; bubbletea's renderer sends only the cells
// that changed, which keeps a keystroke to a few bytes on a slow link.
func (m *model) View() tea.View {
	l := m.layout()
	w := m.width
	if m.height < 2 {
		// One row: the selection is all that is worth showing.
		v := tea.NewView(strings.Join(m.listLines(1), ""))
		v.AltScreen, v.DisableBracketedPasteMode = true, true
		return v
	}
	var lines []string
	if l.header {
		lines = append(lines, m.st.header.Render(fit(m.headerText(), w)))
	}
	if l.notice {
		lines = append(lines, m.st.notice.Render(fit(m.notice, w)))
	}
	if l.pending {
		lines = append(lines, m.st.notice.Render(fit(m.pendingText(), w)))
	}
	if l.gap {
		lines = append(lines, "")
	}
	promptY := len(lines)
	prompt := "> "
	filter := string(m.filter)
	count := fmt.Sprintf(" %d/%d", len(m.matches), len(m.items))
	line := prompt + filter
	if ansi.StringWidth(line)+ansi.StringWidth(count) < w {
		line += strings.Repeat(" ", w-ansi.StringWidth(line)-ansi.StringWidth(count)) + count
	}
	// Long filters show their end, where the typing happens.
	if ansi.StringWidth(prompt+filter) >= w {
		filter = ansi.TruncateLeft(filter, ansi.StringWidth(prompt+filter)-w+1, "")
		line = prompt + filter
	}
	cursorX := min(ansi.StringWidth(prompt+filter), w-1)
	if w > len(prompt) {
		lines = append(lines, m.st.prompt.Render(prompt)+fit(strings.TrimPrefix(line, prompt), w-len(prompt)))
	} else {
		lines = append(lines, fit(line, w))
	}

	if m.help {
		lines = append(lines, m.helpLines(l.rows)...)
	} else {
		lines = append(lines, m.listLines(l.rows)...)
	}
	if l.footer {
		for len(lines) < m.height-1 {
			lines = append(lines, "")
		}
		lines = append(lines, m.st.dim.Render(fit("↑↓ move · enter connect · type to filter · esc clear · ? help · q quit", w)))
	}
	if len(lines) > m.height {
		lines = lines[:m.height]
	}
	v := tea.NewView(strings.Join(lines, "\n"))
	v.AltScreen = true
	// Pasted text arrives as plain keys: bracketed paste would only add
	// sequences for the target's terminal to inherit if anything went wrong.
	v.DisableBracketedPasteMode = true
	if !m.help && promptY < m.height {
		v.Cursor = tea.NewCursor(max(cursorX, 0), promptY)
	}
	return v
}

func (m *model) headerText() string {
	parts := []string{m.user}
	if len(m.groups) > 0 {
		parts = append(parts, "groups "+strings.Join(m.groups, ","))
	}
	if !m.expires.IsZero() {
		parts = append(parts, expiry(m.expires.Sub(m.now())))
	}
	return strings.Join(parts, " · ")
}

func (m *model) pendingText() string {
	if m.pending == 1 {
		return "1 approval request is waiting for you"
	}
	return fmt.Sprintf("%d approval requests are waiting for you", m.pending)
}

// expiry says when the certificate ends, relative to now: a person reads
// "expires in 7h12m" faster than a timestamp in some time zone.
func expiry(d time.Duration) string {
	if d <= 0 {
		return "certificate expired " + short(-d) + " ago"
	}
	return "expires in " + short(d)
}

func short(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd%dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
}

// listLines draws the visible part of the list. Columns shrink with the
// width: the name always shows, the kind and the description only when
// there is room for them to be useful.
func (m *model) listLines(rows int) []string {
	w := m.width
	if len(m.items) == 0 {
		return []string{fit("no targets you may reach; ask an admin", w)}
	}
	if len(m.matches) == 0 {
		return []string{m.st.dim.Render(fit("no target matches "+string(m.filter)+" (esc clears)", w))}
	}
	nameW, kindW := 0, 0
	for _, mt := range m.matches {
		it := m.items[mt.index]
		nameW = max(nameW, ansi.StringWidth(it.Name))
		kindW = max(kindW, ansi.StringWidth(it.Kind))
	}
	const lead = 5 // "> " + mark (2 cells) + space
	nameW = min(nameW, max(w-lead, 1))
	showKind := kindW > 0 && w >= lead+nameW+2+kindW+2
	descW := w - lead - nameW - 2
	if showKind {
		descW -= kindW + 2
	}
	showDesc := descW >= 8

	var out []string
	for i := m.offset; i < len(m.matches) && i < m.offset+rows; i++ {
		it := m.items[m.matches[i].index]
		sel := i == m.cursor
		cur := "  "
		if sel {
			cur = "> "
		}
		mark := "   "
		if it.NeedsApproval {
			mark = approvalMark + " "
		}
		row := cur + mark + pad(fit(it.Name, nameW), nameW)
		if showKind {
			row += "  " + pad(it.Kind, kindW)
		}
		if showDesc && it.Description != "" {
			row += "  " + fit(it.Description, descW)
		}
		row = fit(row, w)
		if sel {
			out = append(out, m.st.selected.Render(pad(row, w)))
			continue
		}
		if it.NeedsApproval {
			// Style the mark alone; the rest of the row stays plain.
			row = cur + m.st.mark.Render(approvalMark) + strings.TrimPrefix(row, cur+approvalMark)
		}
		out = append(out, row)
	}
	return out
}

func (m *model) helpLines(rows int) []string {
	help := []string{
		"type        filter the targets (fuzzy)",
		"↑ ↓  ^P ^N  move",
		"PgUp PgDn   move a page",
		"enter       connect to the selected target",
		"backspace   delete a character; ^W a word",
		"esc  ^U     clear the filter",
		"q           leave (when the filter is empty)",
		"^C  ^D      leave",
		approvalMark + "          needs an approver's consent",
		"",
		"any key closes this help",
	}
	if len(help) > rows {
		help = help[:rows]
	}
	for i := range help {
		help[i] = fit(help[i], m.width)
	}
	return help
}

// fit cuts s to w cells, marking the cut with an ellipsis.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	return ansi.Truncate(s, w, "…")
}

func pad(s string, w int) string {
	if n := ansi.StringWidth(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}
