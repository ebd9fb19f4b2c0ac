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

	"github.com/bastion-dev/bastion/policy"
)

// menu is the first, plain target menu: a numbered list and a line editor.
// The full-screen menu is issue 7's; this one already returns to the list
// after each target, as that one will.
func (st *session) menu() exitResult {
	notice := fmt.Sprintf("bastion: signed in as %s (groups %s), certificate valid until %s",
		st.id.User, strings.Join(st.id.Groups, ","), st.id.ValidBefore.Local().Format("2006-01-02 15:04"))
	last := exitResult{}
	for {
		targets := st.srv.config().TargetsFor(st.id.Groups)
		if len(targets) == 0 {
			st.errorf("you may reach no targets; ask an admin to add one of your groups (%s) to a role", strings.Join(st.id.Groups, ","))
			return exitResult{code: 1}
		}
		line, err := st.menuPrompt(notice, targets)
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
	fmt.Fprintf(t, "\nType a number or a name and Enter; q to leave.\n")
	return t.ReadLine()
}
