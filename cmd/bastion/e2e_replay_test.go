package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/bastion-dev/bastion/internal/testharness"
	"github.com/bastion-dev/bastion/recorder"
)

// hostileCommand prints two markers around the sequences a hostile session
// would send an auditor's terminal: a clipboard write, a title, a device
// status query, and a keyframe (home and clear) in between.
const hostileCommand = `printf 'marker-one\n\033]52;c;cm0gLXJmIC8K\007\033]0;pwned\007\033[6n'; sleep 1; printf '\033[H\033[2Jmarker-two\n'`

// replayWorld records one hostile session of alice and gives carol, an
// auditor, a certificate of her own.
func replayWorld(t *testing.T) (w *world, id string, auditor testharness.SSHClient) {
	t.Helper()
	w = newWorld(t, worldOpts{roles: "  - { name: auditor, groups: [audit], audit: true }\n"})
	if res := w.client.Run(t, "web-1", hostileCommand); res.ExitCode != 0 {
		t.Fatalf("record: %+v", res)
	}
	id = w.lastSession(t).ID
	key, _ := testharness.KeyPair(t, t.TempDir(), "ed25519")
	w.sign("carol", "audit", "1h", key)
	auditor = *w.client
	auditor.KeyFile, auditor.CertFile = key, key+"-cert.pub"
	return w, id, auditor
}

func TestReplayOverSSH(t *testing.T) {
	w, id, carol := replayWorld(t)

	// Not an auditor: a clear refusal, nothing shown.
	res := w.client.Run(t, "replay", id)
	if res.ExitCode != 1 || !strings.Contains(res.Stderr, "only auditors may replay") || strings.Contains(res.Stdout, "marker") {
		t.Fatalf("replay by a non-auditor: %+v", res)
	}

	// Without a PTY: plain output, sanitised.
	res = carol.Run(t, "replay", id, "--speed", "16")
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, "marker-one") || !strings.Contains(res.Stdout, "marker-two") {
		t.Fatalf("plain replay: %+v", res)
	}
	for _, bad := range []string{"\x1b]52", "\x1b]0;", "\x1b[6n"} {
		if strings.Contains(res.Stdout, bad) {
			t.Errorf("plain replay passed %q on: %q", bad, res.Stdout)
		}
	}
	if res := carol.Run(t, "replay", id, "--speed", "99"); res.ExitCode != 2 || !strings.Contains(res.Stderr, "--speed") {
		t.Errorf("replay --speed 99: %+v", res)
	}
	if res := carol.Run(t, "replay", "nosuchsession"); res.ExitCode != 1 || !strings.Contains(res.Stderr, "sessions") {
		t.Errorf("replay of an unknown id: %+v", res)
	}

	// With a PTY: the player, slowed down so that a loaded machine still
	// pauses it before the end. It pauses, seeks to the end and back to
	// the start, follows a resize and quits.
	p := carol.RunPTY(t, 100, 30, "-t", "replay", id, "--from", "0.1s", "--speed", "0.25")
	p.Expect(t, `marker-one`, 10*time.Second)
	p.Expect(t, `PLAY  00:0\d / 00:0\d  alice -> web-1  0\.25x`, 10*time.Second)
	p.Send(" ")
	p.Expect(t, `PAUSE 00:0\d / 00:0\d`, 10*time.Second)
	p.Send("\x1b[C")
	p.Expect(t, `marker-two`, 10*time.Second)
	p.Expect(t, `END   00:0\d / 00:0\d`, 10*time.Second)
	p.Send("\x1b[D") // back to the start, before the first output
	p.Expect(t, `PAUSE 00:00 / 00:0\d`, 10*time.Second)
	p.Send(" ")
	p.Expect(t, `marker-one`, 10*time.Second)
	if err := p.Resize(90, 20); err != nil {
		t.Fatal(err)
	}
	p.Expect(t, `\x1b\[20;1H`, 10*time.Second) // the status line moved to the new bottom row
	p.Send("q")
	if code, err := p.Wait(10 * time.Second); err != nil || code != 0 {
		t.Fatalf("player exit %d %v; output %q", code, err, p.Output())
	}
	out := p.Output()
	for _, bad := range []string{"\x1b]52", "\x1b]0;", "\x1b[6n"} {
		if strings.Contains(out, bad) {
			t.Errorf("player passed %q on", bad)
		}
	}
	if !strings.Contains(out, "\x1b[7m") || !strings.Contains(out, "\x1b[?1049l") {
		t.Errorf("player output lacks the reverse-video status line or the screen restore: %q", out)
	}

	// Every replay over SSH is in the audit trail, joined to the session
	// it showed; the refused one as a failure of alice's.
	w.stop()
	w.stop = nil
	st, err := recorder.OpenBolt(filepath.Join(w.cfg.DataDir, storeFile), recorder.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.ListAudit(t.Context(), recorder.AuditFilter{Type: "audit.read", Session: id})
	if err != nil {
		t.Fatal(err)
	}
	var viaSSH int
	for _, r := range recs {
		if r.Detail["what"] == "replay" && r.Detail["via"] == "ssh" && r.Outcome == recorder.OutcomeSuccess {
			if r.User != "carol" || r.Detail["viewer_session"] == "" {
				t.Errorf("replay audit record %+v", r)
			}
			viaSSH++
		}
	}
	if viaSSH != 2 { // the plain replay and the player; not the refusals
		t.Errorf("%d replay records via ssh; want 2: %+v", viaSSH, recs)
	}
	refused, err := st.ListAudit(t.Context(), recorder.AuditFilter{Type: "audit.read", User: "alice", Outcome: recorder.OutcomeFailure})
	if err != nil {
		t.Fatal(err)
	}
	if len(refused) != 1 || refused[0].Detail["what"] != "replay" || refused[0].Reason != "not an auditor" {
		t.Errorf("refused replay records: %+v", refused)
	}
}

// TestReplayHelperProcess is not a test: run by TestReplayOnHostPlayer as
// the bastion command in a terminal of its own.
func TestReplayHelperProcess(t *testing.T) {
	if os.Getenv("BASTION_REPLAY_HELPER") != "1" {
		t.Skip("helper process for TestReplayOnHostPlayer")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	e := &env{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, getenv: os.Getenv,
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	os.Exit(run(context.Background(), e, args))
}

func TestReplayOnHostPlayer(t *testing.T) {
	w, id, _ := replayWorld(t)
	w.stop() // the store file itself: replay seeks by its chunk index
	w.stop = nil

	// To a pipe: plain and sanitised; --raw gives the bytes as recorded.
	out, errOut, code := w.bastion("replay", id, "--speed", "1000")
	if code != 0 || !strings.Contains(out, "marker-two") || strings.Contains(out, "\x1b]52") || strings.Contains(out, "\x1b[6n") {
		t.Fatalf("replay to a pipe: exit %d %q %s", code, out, errOut)
	}
	out, _, code = w.bastion("replay", id, "--speed", "1000", "--raw")
	if code != 0 || !strings.Contains(out, "\x1b]52;c;cm0gLXJmIC8K") {
		t.Fatalf("replay --raw: exit %d %q", code, out)
	}

	// In a terminal: the player, with NO_COLOR honoured.
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestReplayHelperProcess$", "--",
		"replay", id, "--config", w.cfgPath, "--speed", "2", "--idle-limit", "100ms")
	cmd.Env = append(os.Environ(), "BASTION_REPLAY_HELPER=1", "NO_COLOR=1")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	ptyOut, err := runInPTYKeys(cmd, 100, 30, func(send func(string), expect func(string)) {
		expect(`marker-one`)
		expect(`marker-two`)
		expect(`END   00:0\d / 00:0\d  alice -> web-1  2x`)
		send("-")
		expect(`END   00:0\d / 00:0\d  alice -> web-1  1x`)
		send("q")
	})
	if err != nil {
		t.Fatalf("player: %v\n%q", err, ptyOut)
	}
	for _, bad := range []string{"\x1b]52", "\x1b]0;", "\x1b[6n", "\x1b[7m"} {
		if strings.Contains(ptyOut, bad) {
			t.Errorf("player output has %q: %q", bad, ptyOut)
		}
	}
}

// runInPTYKeys runs cmd in a terminal of cols×rows, lets script type into
// it and wait for what it shows (a regular expression, matched after the
// previous match), and returns all it printed once it exited.
func runInPTYKeys(cmd *exec.Cmd, cols, rows int, script func(send func(string), expect func(string))) (string, error) {
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)})
	if err != nil {
		return "", err
	}
	defer f.Close()
	var out testharness.SyncBuffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&out, f); close(copied) }()
	var failed error
	seen := 0
	expect := func(re string) {
		rx := regexp.MustCompile(re)
		deadline := time.Now().Add(15 * time.Second)
		for failed == nil {
			all := out.String()
			if loc := rx.FindStringIndex(all[seen:]); loc != nil {
				seen += loc[1]
				return
			}
			if time.Now().After(deadline) {
				failed = fmt.Errorf("no match for %q within 15s", re)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	send := func(s string) {
		if failed == nil {
			if _, err := f.Write([]byte(s)); err != nil {
				failed = fmt.Errorf("send %q: %w", s, err)
			}
		}
	}
	script(send, expect)
	if failed != nil && cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
	werr := cmd.Wait()
	select {
	case <-copied:
	case <-time.After(5 * time.Second):
	}
	if failed != nil {
		return out.String(), failed
	}
	return out.String(), werr
}
