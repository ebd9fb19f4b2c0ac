package siem

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/octetcounting"
	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/bastion-dev/bastion/recorder"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// records are what the tests send: plain, failed, and with every
// character that needs escaping in structured data or JSON.
func records() []recorder.AuditRecord {
	t0 := time.Date(2026, 12, 1, 9, 30, 15, 123456789, time.UTC) // nanoseconds, as the store writes
	return []recorder.AuditRecord{
		{Seq: 1, Time: t0, Type: "session.start", Outcome: recorder.OutcomeSuccess, User: "alice", Serial: 7,
			Client: "127.0.0.1:50022", KeyFingerprint: "SHA256:abc", Target: "web-1", Session: "0123456789abc",
			Detail: map[string]string{"command": "uname -a"}, Prev: "", Hash: "h1"},
		{Seq: 2, Time: t0.Add(time.Millisecond), Type: "auth.failure", Outcome: recorder.OutcomeFailure, Reason: "revoked",
			Client: "10.0.0.9:4242", Hash: "h2", Prev: "h1"},
		{Seq: 3, Time: t0.Add(2 * time.Millisecond), Type: "sql.statement", Outcome: recorder.OutcomeSuccess, User: "zoë",
			Reason: `quote " backslash \ bracket ] done`, Target: "payments-db", Session: "s2",
			Detail: map[string]string{"statement": "SELECT 'a\nb' FROM t -- 🔒"}, Hash: "h3", Prev: "h2"},
	}
}

// checkMessage asserts that a parsed message carries r.
func checkMessage(t *testing.T, m syslog.Message, r recorder.AuditRecord) {
	t.Helper()
	sm, ok := m.(*rfc5424.SyslogMessage)
	if !ok {
		t.Fatalf("not an RFC 5424 message: %T", m)
	}
	if *sm.Facility != 4 || *sm.Appname != "bastion" || *sm.MsgID != r.Type || sm.Version != 1 {
		t.Fatalf("header: facility %d app %q msgid %q version %d", *sm.Facility, *sm.Appname, *sm.MsgID, sm.Version)
	}
	wantSev := uint8(6)
	if r.Outcome == recorder.OutcomeFailure {
		wantSev = 4
	}
	if *sm.Severity != wantSev {
		t.Fatalf("severity %d, want %d", *sm.Severity, wantSev)
	}
	if sm.Timestamp == nil || !sm.Timestamp.Equal(r.Time.Truncate(time.Microsecond)) {
		t.Fatalf("timestamp %s, want %s (sub-second, UTC)", sm.Timestamp, r.Time)
	}
	sd := (*sm.StructuredData)[SDID]
	for k, want := range map[string]string{"user": r.User, "outcome": r.Outcome, "reason": r.Reason, "client": r.Client,
		"target": r.Target, "session": r.Session, "key_fingerprint": r.KeyFingerprint, "type": r.Type, "hash": r.Hash} {
		if sd[k] != want {
			t.Fatalf("structured data %s = %q, want %q (all: %v)", k, sd[k], want, sd)
		}
	}
	var back recorder.AuditRecord
	if err := json.Unmarshal([]byte(*sm.Message), &back); err != nil {
		t.Fatalf("MSG is not the record's JSON: %v: %q", err, *sm.Message)
	}
	for i := range len(*sm.Message) {
		if (*sm.Message)[i] >= 0x80 {
			t.Fatalf("MSG holds a non-ASCII byte at %d: %q", i, *sm.Message)
		}
	}
	want, _ := json.Marshal(r)
	got, _ := json.Marshal(back)
	if string(got) != string(want) {
		t.Fatalf("record after the round trip:\n%s\nwant\n%s", got, want)
	}
}

func startSink(t *testing.T, cfg Config) *Sink {
	t.Helper()
	s, err := New(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func TestSyslogOverLoopback(t *testing.T) {
	cases := []struct {
		network string
		listen  func(t *testing.T) (addr string, msgs <-chan syslog.Message)
	}{
		{"udp", listenUDP},
		{"tcp", listenTCP},
		{"unix", listenUnixgram}, // a local socket like /dev/log
	}
	for _, c := range cases {
		t.Run(c.network, func(t *testing.T) {
			addr, msgs := c.listen(t)
			s := startSink(t, Config{Network: c.network, Address: addr})
			for _, r := range records() {
				s.Observe(r)
			}
			for _, r := range records() {
				select {
				case m := <-msgs:
					checkMessage(t, m, r)
				case <-time.After(10 * time.Second):
					t.Fatalf("record %d did not arrive", r.Seq)
				}
			}
			if s.Dropped() != 0 {
				t.Fatalf("dropped %d", s.Dropped())
			}
		})
	}
}

// A collector that is down at first gets the records once it is up: the
// sender retries with backoff and the queue holds them meanwhile.
func TestSyslogReconnects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens now
	s := startSink(t, Config{Network: "tcp", Address: addr})
	for _, r := range records() {
		s.Observe(r)
	}
	time.Sleep(500 * time.Millisecond) // a few failed attempts
	if s.Sent() != 0 {
		t.Fatalf("sent %d with no collector", s.Sent())
	}
	msgs := listenTCPAt(t, addr)
	for _, r := range records() {
		select {
		case m := <-msgs:
			checkMessage(t, m, r)
		case <-time.After(15 * time.Second):
			t.Fatalf("record %d did not arrive after the collector came up", r.Seq)
		}
	}
}

// A collector that accepts but never reads must not block the caller:
// Observe returns at once, the overflow is dropped and counted.
func TestSyslogSlowCollectorNeverBlocks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never read
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range held {
			_ = c.Close()
		}
		mu.Unlock()
	})
	s := startSink(t, Config{Network: "tcp", Address: ln.Addr().String(), Queue: 16})
	big := records()[0]
	big.Detail = map[string]string{"command": strings.Repeat("x", 64<<10)}
	start := time.Now()
	const n = 2000
	for i := range n {
		big.Seq = uint64(i + 1)
		s.Observe(big)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Observe of %d records took %s: it blocked", n, d)
	}
	if s.Dropped() == 0 {
		t.Fatalf("nothing dropped with a 16-record queue and a collector that never reads (sent %d)", s.Sent())
	}
	if s.Sent()+s.Dropped() > n {
		t.Fatalf("sent %d + dropped %d > %d", s.Sent(), s.Dropped(), n)
	}
}

func TestSyslogConfigRefused(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{Network: "http", Address: "x:1"}, "want udp, tcp or unix"},
		{Config{Network: "udp"}, "address: required"},
		{Config{Network: "udp", Address: "127.0.0.1:514", Facility: "mail2"}, "unknown facility"},
	}
	for _, c := range cases {
		if _, err := New(c.cfg, quietLog()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v): %v, want %q", c.cfg, err, c.want)
		}
	}
}

func listenUDP(t *testing.T) (string, <-chan syslog.Message) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return servePackets(t, pc)
}

func listenUnixgram(t *testing.T) (string, <-chan syslog.Message) {
	pc, err := net.ListenPacket("unixgram", filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	return servePackets(t, pc)
}

// servePackets parses each datagram as one RFC 5424 message.
func servePackets(t *testing.T, pc net.PacketConn) (string, <-chan syslog.Message) {
	t.Cleanup(func() { _ = pc.Close() })
	out := make(chan syslog.Message, 64)
	go func() {
		buf := make([]byte, 65536)
		p := rfc5424.NewParser()
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			m, err := p.Parse(append([]byte(nil), buf[:n]...))
			if err != nil {
				t.Errorf("parse datagram %q: %v", buf[:n], err)
				continue
			}
			out <- m
		}
	}()
	return pc.LocalAddr().String(), out
}

func listenTCP(t *testing.T) (string, <-chan syslog.Message) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln.Addr().String(), serveTCP(t, ln)
}

func listenTCPAt(t *testing.T, addr string) <-chan syslog.Message {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return serveTCP(t, ln)
}

// serveTCP parses every connection with the octet-counting parser
// (RFC 6587), as a collector does.
func serveTCP(t *testing.T, ln net.Listener) <-chan syslog.Message {
	out := make(chan syslog.Message, 64)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				p := octetcounting.NewParser(syslog.WithListener(func(res *syslog.Result) {
					if res.Error != nil {
						t.Errorf("parse octet-counted message: %v", res.Error)
						return
					}
					out <- res.Message
				}))
				p.Parse(bufio.NewReader(c))
			})
		}
	})
	return out
}
