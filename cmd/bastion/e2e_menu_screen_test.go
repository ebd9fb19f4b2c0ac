package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMenuOnScreenThroughSSH runs `ssh -t bastion` in a tmux pane, as a
// person would, and reads what the screen shows: the header, the targets
// with the approval mark, filtering, a resize, a target session, the
// return to the menu with the exit status, and leaving.
func TestMenuOnScreenThroughSSH(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux is missing; make deps installs it")
		}
		t.Skip("tmux is not installed (apt-get install tmux)")
	}
	w := newWorld(t, worldOpts{extra: `rules:
  - { name: change-window, targets: ["web-ca"], access: session, action: approve }
`})
	sock := filepath.Join(t.TempDir(), "tmux.sock")
	tmux := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("tmux", append([]string{"-S", sock, "-f", os.DevNull}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	argv := w.client.Args("-t")
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	tmux("new-session", "-d", "-s", "m", "-x", "100", "-y", "30",
		"env TERM=xterm-256color "+strings.Join(quoted, " ")+"; echo SSH-EXIT=$?; sleep 60")
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", sock, "kill-server").Run() })
	screen := func(what string, ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			sc := tmux("capture-pane", "-p", "-t", "m")
			if ok(sc) {
				return sc
			}
			if time.Now().After(deadline) {
				t.Fatalf("the screen never showed %s:\n%s", what, sc)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	has := func(s ...string) func(string) bool {
		return func(sc string) bool {
			for _, x := range s {
				if !strings.Contains(sc, x) {
					return false
				}
			}
			return true
		}
	}

	sc := screen("the menu", has("alice · groups sre · expires in", "web-1", "the web server", "? help"))
	if !strings.Contains(sc, "⏳ web-ca") && !strings.Contains(sc, "⏳web-ca") {
		t.Errorf("web-ca needs approval but has no mark:\n%s", sc)
	}
	tmux("send-keys", "-t", "m", "c", "a")
	sc = screen("the filtered list", has("> ca", "web-ca"))
	if strings.Contains(sc, "web-1 ") || strings.Contains(sc, "the web server") {
		t.Errorf("web-1 still on screen after filtering for ca:\n%s", sc)
	}
	tmux("send-keys", "-t", "m", "BSpace", "BSpace")
	tmux("resize-window", "-t", "m", "-x", "50", "-y", "12")
	sc = screen("the narrow menu", has("web-1", "expires in"))
	for i, line := range strings.Split(sc, "\n") {
		if n := len([]rune(line)); n > 50 {
			t.Errorf("line %d is %d cells wide at 50 columns: %q", i, n, line)
		}
	}

	tmux("send-keys", "-t", "m", "w", "e", "b", "-", "1", "Enter")
	tmux("send-keys", "-t", "m", "echo in-$((40+2))", "Enter")
	screen("a shell on web-1", has("in-42"))
	tmux("send-keys", "-t", "m", "exit 3", "Enter")
	screen("the menu again with the exit status", has("[web-1 ended with exit status 3]"))
	tmux("send-keys", "-t", "m", "q")
	screen("ssh ending", has("SSH-EXIT=0"))

	m := w.lastSession(t)
	if cast := w.recording(t, m.ID); !strings.Contains(cast, `"m","enter web-1"`) {
		t.Errorf("the recording does not mark the visit to web-1")
	}
}
