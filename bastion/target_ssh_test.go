package bastion

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/bastion-dev/bastion/policy"
)

// TestBannerConnTurnedAway holds bannerConn to RFC 4253 section 4.2: lines
// before the one that starts with "SSH-" are not the banner, and a
// connection that ended before the banner (and before maxPreBanner bytes)
// was turned away; the read sizes must not matter.
func TestBannerConnTurnedAway(t *testing.T) {
	long := strings.Repeat("x", maxPreBanner) + "\r\n"
	for _, c := range []struct {
		name     string
		sent     string
		wantAway bool
		wantSaid string
	}{
		{"nothing", "", true, ""},
		{"sshd past MaxStartups", "Exceeded MaxStartups\r\n", true, "Exceeded MaxStartups"},
		{"text without a newline", "go away", true, "go away"},
		{"banner", "SSH-2.0-OpenSSH_9.2\r\n", false, ""},
		{"lines, then the banner", "hello\r\nworld\r\nSSH-2.0-x\r\n", false, ""},
		{"banner cut short", "SSH-", false, ""},
		{"SSH- inside a line is no banner", "not SSH-2.0\r\n", true, "not SSH-2.0"},
		{"escape sequences dropped", "\x1b[31mbusy\x1b[0m\r\n\r\nretry\n", true, "[31mbusy[0m; retry"},
		{"more than maxPreBanner is talking", long, false, ""},
	} {
		for _, size := range []int{1, 3, len(c.sent) + 1} {
			server, client := net.Pipe()
			go func() {
				_, _ = io.WriteString(server, c.sent)
				_ = server.Close()
			}()
			conn := &bannerConn{Conn: client}
			buf := make([]byte, size)
			for {
				if _, err := conn.Read(buf); err != nil {
					break
				}
			}
			said, away := conn.turnedAway()
			if away != c.wantAway || said != c.wantSaid {
				t.Errorf("%s, reads of %d: turnedAway() = %q, %v; want %q, %v", c.name, size, said, away, c.wantSaid, c.wantAway)
			}
		}
	}
}

// TestRetryPause: the pause doubles from targetRetryPause up to
// targetRetryMax, the jitter spreads it over [0.5, 1.5) of that, and all
// the pauses of one dial fit well inside its bound.
func TestRetryPause(t *testing.T) {
	for _, c := range []struct {
		attempt int
		jitter  float64
		want    time.Duration
	}{
		{1, 0.5, 100 * time.Millisecond},
		{2, 0.5, 200 * time.Millisecond},
		{5, 0.5, 1600 * time.Millisecond},
		{6, 0.5, 1600 * time.Millisecond},
		{64, 0.5, 1600 * time.Millisecond},
		{1, 0, 50 * time.Millisecond},
		{3, 0.999, 599 * time.Millisecond},
	} {
		if got := retryPause(c.attempt, c.jitter).Truncate(time.Millisecond); got != c.want {
			t.Errorf("retryPause(%d, %v) = %v, want %v", c.attempt, c.jitter, got, c.want)
		}
	}
	var most time.Duration
	for a := 1; a < targetDialAttempts; a++ {
		most += retryPause(a, 1)
	}
	if most > targetDialTimeout/2 {
		t.Errorf("the pauses of %d attempts add up to %v, more than half of the dial's bound %v", targetDialAttempts, most, targetDialTimeout)
	}
}

// TestHandshakeTarget: one attempt against servers that are not sshd. A
// refusal before the banner is a *turnedAwayError (with what the server
// said); a server that spoke SSH and then closed is not; one that never
// answers is ended by the context's bound, as a timeout the user reads as
// such.
func TestHandshakeTarget(t *testing.T) {
	for _, c := range []struct {
		name      string
		serve     func(net.Conn)
		wantAway  string // what the turnedAwayError says the target said
		wantUser  string // userFacingDialError
		wantNoRef bool   // not a turnedAwayError
	}{
		{
			name:     "MaxStartups",
			serve:    func(c net.Conn) { _, _ = io.WriteString(c, "Exceeded MaxStartups\r\n") },
			wantAway: "Exceeded MaxStartups",
			wantUser: `the target turned the connection away once before it answered (it said "Exceeded MaxStartups"); it is busy: try again in a moment`,
		},
		{
			name:     "silent close",
			serve:    func(net.Conn) {},
			wantUser: "the target turned the connection away once before it answered; it is busy: try again in a moment",
		},
		{
			name:      "banner, then close",
			serve:     func(c net.Conn) { _, _ = io.WriteString(c, "SSH-2.0-OpenSSH_9.2\r\n") },
			wantNoRef: true,
			wantUser:  "the target closed the connection",
		},
		{
			name:      "never answers",
			serve:     func(c net.Conn) { _, _ = io.Copy(io.Discard, c) },
			wantNoRef: true,
			wantUser:  "the target did not answer in time",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				c.serve(conn)
				_ = conn.Close()
			}()
			t.Cleanup(func() { _ = ln.Close(); <-done })
			_, priv, err := ed25519.GenerateKey(nil)
			if err != nil {
				t.Fatal(err)
			}
			signer, err := gossh.NewSignerFromKey(priv)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			target := policy.Target{Name: "web-1", Address: ln.Addr().String(), User: "root"}
			_, _, _, err = handshakeTarget(ctx, target, gossh.InsecureIgnoreHostKey(), signer)
			if err == nil {
				t.Fatal("handshake succeeded")
			}
			var turned *turnedAwayError
			if errors.As(err, &turned) == c.wantNoRef {
				t.Fatalf("err %v: turned away %v, want %v", err, !c.wantNoRef, c.wantNoRef)
			}
			if turned != nil && turned.said != c.wantAway {
				t.Errorf("the target said %q, want %q", turned.said, c.wantAway)
			}
			if got := userFacingDialError(err); got != c.wantUser {
				t.Errorf("user reads %q, want %q (err %v)", got, c.wantUser, err)
			}
		})
	}
}
