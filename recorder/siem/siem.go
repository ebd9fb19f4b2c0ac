// Package siem forwards the audit trail to a SIEM or a syslog collector as
// RFC 5424 messages, each record as it is appended (audit.syslog in the
// configuration).
//
// The message is built with github.com/leodido/go-syslog/v4's rfc5424
// builder rather than by hand: it escapes structured-data values (", \ and
// ]) and checks every header field against the RFC's grammar, which is
// where hand-written syslog goes wrong, and the same module's parser lets
// the tests read back exactly what a collector receives. Framing is ours
// and small: one datagram per message over UDP and unix datagram sockets,
// octet counting (RFC 6587 3.4.1, "LEN SP MSG") over TCP and unix stream
// sockets, which survives newlines inside a message.
//
// The SIEM copy is best effort; the bbolt trail is the evidence. A slow or
// unreachable collector never blocks the bastion: records wait in a bounded
// queue, the sender reconnects with exponential backoff, and whatever does
// not fit is dropped, counted (Dropped) and logged — the trail still holds
// it, and `bastion audit --since` can send it again by other means.
package siem

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/bastion-dev/bastion/recorder"
)

// SDID is the structured-data element of every message. 32473 is the
// private enterprise number RFC 5612 reserves for documentation and
// examples; SIEM parsers match on the element name.
const SDID = "bastion@32473"

// Defaults of Config.
const (
	DefaultQueue   = 4096
	DefaultAppName = "bastion"
	// writeTimeout bounds one write: a collector that stops reading
	// must not hold the sender forever.
	writeTimeout = 5 * time.Second
	maxBackoff   = 30 * time.Second
	minBackoff   = 100 * time.Millisecond
)

// Facilities maps the facility names audit.syslog.facility accepts to
// their RFC 5424 codes.
var Facilities = map[string]uint8{
	"kern": 0, "user": 1, "daemon": 3, "auth": 4, "syslog": 5, "authpriv": 10,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// Config says where the records go.
type Config struct {
	// Network is udp, tcp or unix (a local socket such as /dev/log:
	// datagram first, then stream).
	Network string
	// Address is host:port for udp and tcp, a socket path for unix.
	Address string
	// AppName is the APP-NAME header field; default "bastion".
	AppName string
	// Facility is a name from Facilities; default auth.
	Facility string
	// Hostname is the HOSTNAME field; default os.Hostname.
	Hostname string
	// Queue bounds the records waiting to be sent; default DefaultQueue.
	Queue int
}

// Sink sends audit records to one collector. Observe queues; Run, which
// its owner starts once and stops through its context, sends.
type Sink struct {
	cfg      Config
	facility uint8
	pid      string
	log      *slog.Logger
	queue    chan recorder.AuditRecord
	dropped  atomic.Uint64
	sent     atomic.Uint64
	// dial is net.Dialer.DialContext; tests do not replace it (they use
	// real loopback listeners), it only keeps Run readable.
	dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// New checks cfg and returns a sink that has not started sending.
func New(cfg Config, log *slog.Logger) (*Sink, error) {
	switch cfg.Network {
	case "udp", "tcp", "unix":
	default:
		return nil, fmt.Errorf("audit.syslog.network: want udp, tcp or unix, got %q", cfg.Network)
	}
	if cfg.Address == "" {
		return nil, errors.New("audit.syslog.address: required (host:port, or a socket path for unix)")
	}
	if cfg.AppName == "" {
		cfg.AppName = DefaultAppName
	}
	if cfg.Facility == "" {
		cfg.Facility = "auth"
	}
	fac, ok := Facilities[cfg.Facility]
	if !ok {
		return nil, fmt.Errorf("audit.syslog.facility: unknown facility %q; use auth, authpriv, daemon, user or local0..local7", cfg.Facility)
	}
	if cfg.Hostname == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "-"
		}
		cfg.Hostname = h
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if log == nil {
		log = slog.Default()
	}
	var d net.Dialer
	return &Sink{cfg: cfg, facility: fac, pid: strconv.Itoa(os.Getpid()), log: log,
		queue: make(chan recorder.AuditRecord, cfg.Queue), dial: d.DialContext}, nil
}

// Observe queues r for sending and returns at once; when the queue is
// full the record is dropped and counted. Pass it to BoltStore.OnAudit.
func (s *Sink) Observe(r recorder.AuditRecord) {
	select {
	case s.queue <- r:
	default:
		if s.dropped.Add(1) == 1 {
			s.log.Warn("syslog: queue full, audit records are being dropped from the SIEM copy (the store keeps them)",
				"collector", s.cfg.Address, "queue", s.cfg.Queue)
		}
	}
}

// Dropped is how many records were not sent: queue full, or a message
// that could not be built.
func (s *Sink) Dropped() uint64 { return s.dropped.Load() }

// Sent is how many records reached the collector's socket.
func (s *Sink) Sent() uint64 { return s.sent.Load() }

// Format renders r as an RFC 5424 message: MSGID is the record type, the
// structured data holds the PCI DSS 10.2.2 fields, and MSG is the record's
// JSON (its Prev and Hash included, so that a SIEM can check the chain),
// with every non-ASCII character \u-escaped so that MSG is plain ASCII and
// needs no BOM.
func (s *Sink) Format(r recorder.AuditRecord) (string, error) {
	sev := uint8(6) // informational
	if r.Outcome != recorder.OutcomeSuccess {
		sev = 4 // warning
	}
	js, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("syslog: encode record %d: %w", r.Seq, err)
	}
	m := &rfc5424.SyslogMessage{}
	m.SetPriority(s.facility*8 + sev)
	m.SetVersion(1)
	// TIME-SECFRAC has at most six digits (RFC 5424 6.2.3): microseconds
	// here, the record's nanoseconds in the structured data and MSG.
	m.SetTimestamp(r.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00"))
	if m.Timestamp == nil {
		return "", fmt.Errorf("syslog: record %d: timestamp %s was not accepted by the builder", r.Seq, r.Time)
	}
	m.SetHostname(headerField(s.cfg.Hostname, 255))
	m.SetAppname(headerField(s.cfg.AppName, 48))
	m.SetProcID(s.pid)
	m.SetMsgID(headerField(r.Type, 32))
	for _, p := range sdParams(r) {
		if p[1] == "" {
			continue
		}
		v := strings.ToValidUTF8(p[1], "\uFFFD")
		// SetParameter takes the value as it appears on the wire
		// (RFC 5424 6.3.3: ", \ and ] escaped) and silently drops one that
		// does not parse, so escape it and check that it was kept.
		m.SetParameter(SDID, p[0], sdEscaper.Replace(v))
		if got := (*m.StructuredData)[SDID][p[0]]; got != v {
			return "", fmt.Errorf("syslog: record %d: structured-data %s=%q was not accepted by the builder", r.Seq, p[0], v)
		}
	}
	m.SetMessage(asciiJSON(js))
	out, err := m.String()
	if err != nil {
		return "", fmt.Errorf("syslog: build message for record %d (%s): %w", r.Seq, r.Type, err)
	}
	return out, nil
}

// sdEscaper escapes a structured-data parameter value (RFC 5424 6.3.3).
var sdEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`)

// sdParams are the structured-data parameters of r: the PCI DSS 10.2.2
// fields under stable names (docs/AUDIT.md lists them).
func sdParams(r recorder.AuditRecord) [][2]string {
	serial := ""
	if r.Serial != 0 {
		serial = strconv.FormatUint(r.Serial, 10)
	}
	return [][2]string{
		{"seq", strconv.FormatUint(r.Seq, 10)}, {"type", r.Type}, {"outcome", r.Outcome}, {"reason", r.Reason},
		{"user", r.User}, {"serial", serial}, {"issuer", r.Issuer}, {"subject", r.Subject},
		{"client", r.Client}, {"key_fingerprint", r.KeyFingerprint}, {"target", r.Target}, {"session", r.Session},
		{"time", r.Time.UTC().Format(time.RFC3339Nano)}, {"hash", r.Hash},
	}
}

// headerField makes s fit a header field: printable US-ASCII without
// spaces, at most n bytes, "-" when nothing is left.
func headerField(s string, n int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < n; i++ {
		if c := s[i]; c > ' ' && c < 0x7f {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

// asciiJSON escapes every non-ASCII character of a JSON text as \uXXXX
// (surrogate pairs above the BMP): the same JSON value, in ASCII.
func asciiJSON(js []byte) string {
	var b strings.Builder
	b.Grow(len(js))
	for i := 0; i < len(js); {
		c := js[i]
		if c < utf8.RuneSelf {
			b.WriteByte(c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(js[i:])
		i += size
		if r >= 0x10000 {
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
			continue
		}
		fmt.Fprintf(&b, `\u%04x`, r)
	}
	return b.String()
}

// conn is an open connection and how it frames messages.
type conn struct {
	c      net.Conn
	stream bool // octet counting; otherwise one datagram per message
}

func (s *Sink) connect(ctx context.Context) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	switch s.cfg.Network {
	case "udp":
		c, err := s.dial(dctx, "udp", s.cfg.Address)
		if err != nil {
			return nil, err
		}
		return &conn{c: c}, nil
	case "tcp":
		c, err := s.dial(dctx, "tcp", s.cfg.Address)
		if err != nil {
			return nil, err
		}
		return &conn{c: c, stream: true}, nil
	default: // unix: /dev/log is a datagram socket; some collectors listen on a stream one
		if c, err := s.dial(dctx, "unixgram", s.cfg.Address); err == nil {
			return &conn{c: c}, nil
		}
		c, err := s.dial(dctx, "unix", s.cfg.Address)
		if err != nil {
			return nil, err
		}
		return &conn{c: c, stream: true}, nil
	}
}

func (c *conn) send(msg string) error {
	if err := c.c.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	if c.stream {
		msg = strconv.Itoa(len(msg)) + " " + msg
	}
	_, err := c.c.Write([]byte(msg))
	return err
}

// Run sends queued records until ctx ends, reconnecting with exponential
// backoff after a failure; the record that failed is sent again once the
// connection is back. When ctx ends it sends what is queued for up to two
// seconds more (the server.stop record), then closes the connection.
func (s *Sink) Run(ctx context.Context) {
	var (
		c       *conn
		pending string
		backoff = minBackoff
		down    time.Time // when the current outage began; zero while connected
	)
	defer func() {
		if c != nil {
			_ = c.c.Close()
		}
	}()
	for {
		if pending == "" {
			select {
			case r := <-s.queue:
				msg, err := s.Format(r)
				if err != nil {
					s.dropped.Add(1)
					s.log.Error("syslog: record not sent", "seq", r.Seq, "err", err)
					continue
				}
				pending = msg
			case <-ctx.Done():
				s.drain(c)
				return
			}
		}
		if c == nil {
			var err error
			if c, err = s.connect(ctx); err != nil {
				c = nil
				if down.IsZero() {
					down = time.Now()
					s.log.Warn("syslog: collector unreachable; retrying with backoff, records wait in the queue",
						"network", s.cfg.Network, "address", s.cfg.Address, "err", err)
				}
				if !sleep(ctx, backoff) {
					s.dropped.Add(1) // pending
					s.drain(nil)
					return
				}
				backoff = min(2*backoff, maxBackoff)
				continue
			}
			if !down.IsZero() {
				s.log.Info("syslog: collector reachable again", "address", s.cfg.Address,
					"down_for", time.Since(down).Round(time.Millisecond).String(), "dropped_total", s.Dropped())
				down = time.Time{}
			}
		}
		if err := c.send(pending); err != nil {
			_ = c.c.Close()
			c = nil
			if down.IsZero() {
				down = time.Now()
				s.log.Warn("syslog: send failed; reconnecting", "address", s.cfg.Address, "err", err)
			}
			if !sleep(ctx, backoff) {
				s.dropped.Add(1) // pending
				s.drain(nil)
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		s.sent.Add(1)
		pending, backoff = "", minBackoff
	}
}

// drain sends what is queued at shutdown, for two seconds at most; what is
// left is counted as dropped.
func (s *Sink) drain(c *conn) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		select {
		case r := <-s.queue:
			if time.Now().After(deadline) {
				s.dropped.Add(1)
				continue
			}
			if c == nil {
				ctx, cancel := context.WithDeadline(context.Background(), deadline)
				nc, err := s.connect(ctx)
				cancel()
				if err != nil {
					s.dropped.Add(1)
					continue
				}
				c = nc
				defer c.c.Close()
			}
			msg, err := s.Format(r)
			if err == nil {
				err = c.send(msg)
			}
			if err != nil {
				s.dropped.Add(1)
				continue
			}
			s.sent.Add(1)
		default:
			if n := s.Dropped(); n > 0 {
				s.log.Warn("syslog: stopped; records dropped from the SIEM copy since start (the store keeps them)", "dropped", n)
			}
			return
		}
	}
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
