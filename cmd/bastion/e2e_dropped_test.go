package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bastion-dev/bastion/keys"
)

// dropper stands in front of the sshd as sshd itself does past its
// MaxStartups: it turns the first drops connections away as soon as it has
// accepted them, writing say (sshd: "Exceeded MaxStartups\r\n") before it
// closes, and passes the later ones on to target (set once the sshd runs).
type dropper struct {
	ln       net.Listener
	target   atomic.Pointer[string]
	accepted atomic.Int64
	wg       sync.WaitGroup
}

func startDropper(t *testing.T, drops int64, say string) *dropper {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dropper{ln: ln}
	d.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if d.accepted.Add(1) <= drops {
				_, _ = io.WriteString(c, say)
				_ = c.Close()
				continue
			}
			d.wg.Go(func() { pipe(c, *d.target.Load()) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		d.wg.Wait()
	})
	return d
}

// pipe copies c to a new connection to target and back until either side
// ends.
func pipe(c net.Conn, target string) {
	defer c.Close()
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, c)
		_ = up.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(c, up)
	_ = c.Close()
	<-done
}

// TestTargetTurnedAwayIsRetried: a target that closes the connection
// before its SSH banner (sshd past MaxStartups, under a burst of logins),
// with or without a word, is dialled again, up to six times in all; a
// target that keeps doing it gets a clear error, with what it said, and a
// non-zero exit.
func TestTargetTurnedAwayIsRetried(t *testing.T) {
	const maxStartups = "Exceeded MaxStartups\r\n"
	for _, c := range []struct {
		name     string
		drops    int64
		say      string
		wantCode int
		wantOut  string
		wantErr  string
		accepted int64
	}{
		{"dropped twice without a word", 2, "", 0, "through\n", "", 3},
		{"past MaxStartups three times", 3, maxStartups, 0, "through\n", "", 4},
		{"past MaxStartups every time", 100, maxStartups, 255, "",
			`the target turned the connection away 6 times before it answered (it said "Exceeded MaxStartups"); it is busy: try again in a moment`, 6},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := startDropper(t, c.drops, c.say)
			// The dropper's port gets the sshd's host key in a
			// known_hosts of its own, once the sshd runs; the bastion
			// reads it at each dial.
			kh := filepath.Join(t.TempDir(), "known_hosts")
			writeFile(t, kh, "")
			u, err := user.Current()
			if err != nil {
				t.Fatal(err)
			}
			w := newWorld(t, worldOpts{extraTargets: fmt.Sprintf("  - { name: web-flaky, kind: ssh, address: %q, user: %q, auth: ca, known_hosts: %q }",
				d.ln.Addr().String(), u.Username, kh)})
			d.target.Store(&w.sshd.Addr)
			writeFile(t, kh, fmt.Sprintf("[127.0.0.1]:%d %s", d.ln.Addr().(*net.TCPAddr).Port, keys.AuthorizedKeyLine(w.sshd.HostKey)))
			cmd := w.client.Command(context.Background(), "web-flaky", "echo through")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err = cmd.Run()
			var ee interface{ ExitCode() int }
			code := 0
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.wantCode || stdout.String() != c.wantOut || !strings.Contains(stderr.String(), c.wantErr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr with %q",
					code, stdout.String(), stderr.String(), c.wantCode, c.wantOut, c.wantErr)
			}
			if got := d.accepted.Load(); got != c.accepted {
				t.Errorf("the target was dialled %d times, want %d", got, c.accepted)
			}
		})
	}
}
