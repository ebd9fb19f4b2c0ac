package menu

// The menu on a real screen: tmux runs this test binary as a helper
// process whose terminal is a tmux pane; the test types with send-keys and
// reads the screen with capture-pane, as a person would see it.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/term"
)

const helperEnv = "BASTION_MENU_SCREEN_HELPER"

// TestMenuScreenHelper is the helper process: the menu on its own terminal.
func TestMenuScreenHelper(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("the helper process of TestMenuOnScreen")
	}
	fd := int(os.Stdin.Fd())
	old, err := term.MakeRaw(fd)
	if err != nil {
		t.Fatal(err)
	}
	w, h, _ := term.GetSize(fd)
	resize := make(chan [2]int, 4)
	winch := make(chan os.Signal, 4)
	signal.Notify(winch, syscall.SIGWINCH)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-winch:
				if w, h, err := term.GetSize(fd); err == nil {
					resize <- [2]int{w, h}
				}
			}
		}
	}()
	name, err := Run(ctx, Options{
		In: os.Stdin, Out: os.Stdout, Width: w, Height: h, Resize: resize,
		User: "alice", Groups: []string{"ops", "dba"}, Expires: testNow.Add(7 * time.Hour),
		Pending: 2, Notice: "[web-2 ended with exit status 0]",
		Items: testItems(), Now: func() time.Time { return testNow },
		NoColor: os.Getenv("NO_COLOR") != "", Term: os.Getenv("TERM"),
	})
	cancel()
	_ = term.Restore(fd, old)
	fmt.Printf("CHOSE:%s ERR:%v\n", name, err)
}

// screen is one tmux server with one pane running the helper.
type screen struct {
	t    *testing.T
	sock string
}

func (s *screen) tmux(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", s.sock, "-f", os.DevNull}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (s *screen) capture() string { return s.tmux("capture-pane", "-p", "-t", "menu") }

// waitFor polls the screen until ok holds, and fails with the screen.
func (s *screen) waitFor(what string, ok func(string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sc := s.capture()
		if ok(sc) {
			return sc
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("screen never showed %s:\n%s", what, sc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *screen) keys(k ...string) { s.tmux(append([]string{"send-keys", "-t", "menu"}, k...)...) }

func startScreen(t *testing.T, cols, rows int, env ...string) *screen {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux is missing; make deps installs it")
		}
		t.Skip("tmux is not installed (apt-get install tmux)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := &screen{t: t, sock: filepath.Join(t.TempDir(), "tmux.sock")}
	cmd := fmt.Sprintf("env %s=1 %s %q -test.run='^TestMenuScreenHelper$'; sleep 60",
		helperEnv, strings.Join(env, " "), exe)
	s.tmux("new-session", "-d", "-s", "menu", "-x", fmt.Sprint(cols), "-y", fmt.Sprint(rows), cmd)
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", s.sock, "kill-server").Run() })
	return s
}

// TestMenuOnScreen: what the screen shows, at 90×24, while filtering (rows
// that go away are gone, not left half-erased), after a resize, and on the
// way out.
func TestMenuOnScreen(t *testing.T) {
	s := startScreen(t, 90, 24, "TERM=xterm-256color")
	sc := s.waitFor("the header", func(sc string) bool { return strings.Contains(sc, "alice · groups ops,dba · expires in 7h00m") })
	for _, want := range []string{"[web-2 ended with exit status 0]", "2 approval requests are waiting for you", "db-prod", "queue", "7/7", "? help"} {
		if !strings.Contains(sc, want) {
			t.Errorf("first screen lacks %q:\n%s", want, sc)
		}
	}

	s.keys("w", "e", "b", "-")
	sc = s.waitFor("the filtered list", func(sc string) bool { return strings.Contains(sc, "2/7") })
	for _, gone := range []string{"db-prod", "queue", "jump", "Jump host", "Message queue", "Production"} {
		if strings.Contains(sc, gone) {
			t.Errorf("%q still on screen after filtering for web-:\n%s", gone, sc)
		}
	}
	for _, want := range []string{"web-1", "web-2"} {
		if !strings.Contains(sc, want) {
			t.Errorf("filtered screen lacks %q:\n%s", want, sc)
		}
	}

	// Narrower and shorter: everything re-flows, nothing is wider than the pane.
	s.tmux("resize-window", "-t", "menu", "-x", "40", "-y", "10")
	sc = s.waitFor("the narrow layout", func(sc string) bool {
		return strings.Contains(sc, "web-1") && strings.Contains(sc, "expires in 7h0…")
	})
	for i, line := range strings.Split(sc, "\n") {
		if n := len([]rune(line)); n > 40 {
			t.Errorf("line %d is %d cells wide at 40 columns: %q", i, n, line)
		}
	}

	s.keys("BSpace", "BSpace", "BSpace", "BSpace")
	s.waitFor("the whole list again", func(sc string) bool { return strings.Contains(sc, "7/7") })
	s.keys("Down", "Enter")
	s.waitFor("the choice", func(sc string) bool { return strings.Contains(sc, "CHOSE:w-e-b ERR:<nil>") })
}

// TestMenuOnScreenNoColor: with NO_COLOR the menu sends no colour at all.
func TestMenuOnScreenNoColor(t *testing.T) {
	s := startScreen(t, 80, 24, "TERM=xterm-256color", "NO_COLOR=1")
	s.waitFor("the header", func(sc string) bool { return strings.Contains(sc, "alice") })
	out := s.tmux("capture-pane", "-p", "-e", "-t", "menu") // with attributes
	for _, m := range regexp.MustCompile(`\x1b\[([0-9;:]*)m`).FindAllStringSubmatch(out, -1) {
		for _, p := range strings.FieldsFunc(m[1], func(r rune) bool { return r == ';' || r == ':' }) {
			// 30–38, 90–97 foreground; 40–48, 100–107 background. 39 and
			// 49 (the default colours) are resets, not colours.
			if n, _ := strconv.Atoi(p); n >= 30 && n <= 38 || n >= 40 && n <= 48 || n >= 90 && n <= 97 || n >= 100 && n <= 107 {
				t.Fatalf("colour (SGR %s) on a NO_COLOR screen:\n%q", m[1], out)
			}
		}
	}
	s.keys("q")
	s.waitFor("the exit", func(sc string) bool { return strings.Contains(sc, "CHOSE: ERR:<nil>") })
}

// TestMenuOnScreenTinyAndHuge: at 20×4 the menu still shows the filter and
// a target, within the width; grown to 250×80 it shows everything.
func TestMenuOnScreenTinyAndHuge(t *testing.T) {
	s := startScreen(t, 20, 4, "TERM=xterm-256color")
	sc := s.waitFor("a target", func(sc string) bool { return strings.Contains(sc, "db-prod") })
	for i, line := range strings.Split(sc, "\n") {
		if n := len([]rune(line)); n > 20 {
			t.Errorf("line %d is %d cells wide at 20 columns: %q", i, n, line)
		}
	}
	s.tmux("resize-window", "-t", "menu", "-x", "250", "-y", "80")
	sc = s.waitFor("the full layout", func(sc string) bool {
		return strings.Contains(sc, "2 approval requests are waiting for you") && strings.Contains(sc, "Message queue")
	})
	s.keys("q")
	s.waitFor("the exit", func(sc string) bool { return strings.Contains(sc, "CHOSE: ERR:<nil>") })
}
