package bastion

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"charm.land/ssh"
	"golang.org/x/term"

	"github.com/bastion-dev/bastion/bastion/menu"
	"github.com/bastion-dev/bastion/policy"
)

// approvalsItem is the menu entry an approver picks to decide requests. A
// target of that name is shadowed in the menu only while requests wait;
// `ssh bastion approvals` is the builtin of the same name anyway.
const approvalsItem = "approvals"

// menu shows the full-screen target menu (package menu) until the user
// leaves: each target picked runs, and the menu comes back with its exit
// status. Approvers with requests waiting see them in the header and get
// an "approvals" entry that opens the approvals prompt. A terminal that
// says it can do nothing (TERM=dumb) gets the line menu instead.
func (st *session) menu() exitResult {
	if st.pty.Term == "dumb" {
		return st.lineMenu()
	}
	notice := ""
	last := exitResult{}
	for shown := false; ; shown = true {
		cfg := st.srv.config()
		targets := cfg.TargetsFor(st.id.Groups)
		pending := st.pendingCount()
		if len(targets) == 0 && pending == 0 {
			if shown {
				return last // an approver with no targets decided the last request
			}
			st.errorf("you may reach no targets; ask an admin to add one of your groups (%s) to a role", strings.Join(st.id.Groups, ","))
			return exitResult{code: 1}
		}
		items := make([]menu.Item, 0, len(targets)+1)
		for _, t := range targets {
			items = append(items, menu.Item{Name: t.Name, Kind: t.Kind, Description: t.Description,
				NeedsApproval: cfg.DecideSession(st.id.Groups, t.Name).Action == policy.ActionApprove})
		}
		if pending > 0 {
			items = append(items, menu.Item{Name: approvalsItem, Kind: "bastion",
				Description: fmt.Sprintf("%d approval request(s) waiting for your decision", pending)})
		}
		name, err := st.runMenu(notice, pending, items)
		if err != nil {
			if st.ctx.Err() != nil {
				return last
			}
			return exitResult{code: 1, reason: "menu: " + err.Error()}
		}
		switch {
		case name == "":
			return exitResult{}
		case name == approvalsItem && pending > 0:
			st.approvalsPrompt()
			notice = ""
			continue
		}
		last = st.runTarget(name, "")
		if st.ctx.Err() != nil {
			return last
		}
		notice = fmt.Sprintf("[%s ended with exit status %d]", name, last.code)
	}
}

// runMenu shows the menu once and returns the name picked ("" to leave).
// It borrows the session's input one byte at a time, so that the target
// picked gets every keystroke typed after Enter.
func (st *session) runMenu(notice string, pending int, items []menu.Item) (string, error) {
	ctx, cancel := context.WithCancel(st.ctx)
	defer cancel()
	resize := make(chan [2]int, 1)
	win := st.attachResize(func(w ssh.Window) {
		// Only the latest size matters: replace one the menu has not read.
		for {
			select {
			case resize <- [2]int{w.Width, w.Height}:
				return
			default:
				select {
				case <-resize:
				default:
				}
			}
		}
	})
	defer st.detachResize()
	return menu.Run(ctx, menu.Options{
		In: st.input.readLimited(ctx), Out: flushing{st.stdout}, Width: win.Width, Height: win.Height, Resize: resize,
		User: st.id.User, Groups: st.id.Groups, Expires: st.id.ValidBefore, Pending: pending, Notice: notice,
		Items: items, NoColor: st.noColor() || monochrome(st.pty.Term), Term: st.pty.Term, Now: st.srv.now,
	})
}

// monochrome reports whether a terminal type has no colours.
func monochrome(term string) bool {
	return term == "" || term == "dumb" || term == "vt100" || term == "vt102" || term == "vt220"
}

// pendingCount is how many approval requests wait for this user's decision.
func (st *session) pendingCount() int {
	list, err := st.srv.approvals.pending(st.ctx, st.id)
	if err != nil {
		st.srv.log.Warn("list pending approvals for the menu", "user", st.id.User, "err", err)
		return 0
	}
	return len(list)
}

// approvalsPrompt lists the requests waiting for this approver and reads
// approve ID [comment] / deny ID reason lines until an empty line.
func (st *session) approvalsPrompt() {
	ctx, cancel := context.WithCancel(st.ctx)
	defer cancel()
	st.builtinApprovals("")
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{st.input.readLimited(ctx), st.stdout}, "approvals> ")
	win := st.attachResize(func(w ssh.Window) { _ = t.SetSize(w.Width, w.Height) })
	defer st.detachResize()
	_ = t.SetSize(win.Width, win.Height)
	fmt.Fprintf(t, "approve ID [comment] · deny ID reason · approvals · Enter to go back\n")
	for {
		line, err := t.ReadLine()
		if err != nil {
			return
		}
		word, rest := splitFirstWord(strings.TrimSpace(line))
		switch word {
		case "":
			return
		case "approvals", "approve", "deny":
			st.menuApproval(word, rest)
		default:
			fmt.Fprintf(t, "type approve ID, deny ID reason, or Enter to go back\n")
		}
	}
}

// flushing writes the menu's frames to the session's output at once: the
// masker may hold the tail of a write back until more output comes, and a
// frame's last cells must not wait for the next key.
type flushing struct{ w *output }

func (f flushing) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.w.Flush()
	}
	return n, err
}

// lineMenu is the plain target menu: a numbered list and a line editor,
// for terminals that cannot show the full-screen one.
func (st *session) lineMenu() exitResult {
	notice := fmt.Sprintf("bastion: signed in as %s (groups %s), certificate valid until %s",
		st.id.User, strings.Join(st.id.Groups, ","), st.id.ValidBefore.Local().Format("2006-01-02 15:04"))
	last := exitResult{}
	var seen uint64
	for {
		targets := st.srv.config().TargetsFor(st.id.Groups)
		// Approvers see what waits for them each time the menu is drawn.
		waiting := st.approvalNotice(&seen, true, "approvals")
		if len(targets) == 0 && waiting == "" {
			st.errorf("you may reach no targets; ask an admin to add one of your groups (%s) to a role", strings.Join(st.id.Groups, ","))
			return exitResult{code: 1}
		}
		line, err := st.menuPrompt(joinLines(notice, waiting), targets)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return last
			}
			return exitResult{code: 1, reason: "menu: " + err.Error()}
		}
		choice := strings.TrimSpace(line)
		switch choice {
		case "":
			notice = ""
			continue
		case "q", "quit", "exit":
			return exitResult{}
		}
		// The approver's words work here as over ssh: approvals, approve
		// ID [comment], deny ID reason.
		if word, rest := splitFirstWord(choice); word == "approvals" || word == "approve" || word == "deny" {
			st.menuApproval(word, rest)
			notice = ""
			continue
		}
		name := choice
		if n, err := strconv.Atoi(choice); err == nil && n >= 1 && n <= len(targets) {
			name = targets[n-1].Name
		}
		last = st.runTarget(name, "")
		if st.ctx.Err() != nil {
			return last
		}
		notice = fmt.Sprintf("[%s ended with exit status %d]", name, last.code)
	}
}

// menuApproval runs an approver's word typed at the menu.
func (st *session) menuApproval(word, rest string) {
	switch word {
	case "approvals":
		st.builtinApprovals(rest)
	case "approve":
		st.builtinDecide(rest, true)
	case "deny":
		id, reason := splitFirstWord(rest)
		if r, after := splitReason(reason); r != "" {
			reason = strings.TrimSpace(r + " " + after)
		}
		st.builtinDecide(id+" --reason "+strconvQuote(reason), false)
	}
}

// joinLines joins the non-empty lines.
func joinLines(lines ...string) string {
	var out []string
	for _, l := range lines {
		if l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// menuPrompt shows the list and reads one line. The line editor borrows
// the input only for the length of one prompt, so the target that is chosen
// gets every keystroke after Enter.
func (st *session) menuPrompt(notice string, targets []policy.Target) (string, error) {
	ctx, cancel := context.WithCancel(st.ctx)
	defer cancel()
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{st.input.readLimited(ctx), st.stdout}, "target> ")
	win := st.attachResize(func(w ssh.Window) { _ = t.SetSize(w.Width, w.Height) })
	defer st.detachResize()
	_ = t.SetSize(win.Width, win.Height)
	if notice != "" {
		fmt.Fprintf(t, "\n%s\n", notice)
	}
	fmt.Fprintf(t, "\n")
	for i, tg := range targets {
		fmt.Fprintf(t, "  %2d) %-20s %-8s %s\n", i+1, tg.Name, tg.Kind, tg.Description)
	}
	if len(targets) == 0 {
		fmt.Fprintf(t, "  (no targets you may reach)\n")
	}
	fmt.Fprintf(t, "\nType a number or a name and Enter; q to leave.\n")
	return t.ReadLine()
}
