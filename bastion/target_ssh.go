package bastion

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"charm.land/ssh"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/bastion-dev/bastion/keys"
	"github.com/bastion-dev/bastion/policy"
)

// Timeouts of the target side. A target that accepts TCP but never finishes
// the handshake, or never acknowledges a close, must not hold a session.
const (
	targetDialTimeout  = 10 * time.Second
	teardownTimeout    = 5 * time.Second
	targetCertLifetime = time.Minute
)

// dialSSHTarget connects and authenticates to an ssh target with the
// credential the bastion holds. The user never sees it. The connection's
// incoming channels and global requests must be served (targetEvents).
func (st *session) dialSSHTarget(ctx context.Context, t policy.Target) (gossh.Conn, <-chan gossh.NewChannel, <-chan *gossh.Request, error) {
	hostKeys, err := keys.HostKeyCallback(t.KnownHosts)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("target %s: %w", t.Name, err)
	}
	signer, err := st.targetSigner(t)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("target %s: %w", t.Name, err)
	}
	// The dial, the handshake and any retries share one bound.
	dctx, cancel := context.WithTimeout(ctx, targetDialTimeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		cc, chans, reqs, err := handshakeTarget(dctx, t, hostKeys, signer)
		var turned *turnedAwayError
		if err == nil || !errors.As(err, &turned) {
			return cc, chans, reqs, err
		}
		turned.attempts = attempt
		if attempt == targetDialAttempts {
			return nil, nil, nil, fmt.Errorf("target %s: %w", t.Name, turned)
		}
		// sshd turns new connections away while more than MaxStartups
		// are unauthenticated (10 by default): it writes "Exceeded
		// MaxStartups" and closes, before its identification line. Under
		// a burst of logins, all of them through the bastion, a target
		// does that to some. No SSH was spoken on that connection, so
		// another is safe; the pause grows and is spread at random, so
		// that the sessions it turned away do not all come back at once.
		pause := retryPause(attempt, mrand.Float64())
		st.srv.log.Info("target turned the connection away before its SSH banner; trying again", "target", t.Name,
			"attempt", attempt, "pause", pause, "said", turned.said, "err", turned.err)
		select {
		case <-time.After(pause):
		case <-dctx.Done():
			return nil, nil, nil, fmt.Errorf("target %s: %w", t.Name, turned)
		}
	}
}

// Retries of a target that closes the connection before its SSH
// identification line (handshakeTarget's turnedAwayError). Six attempts,
// with pauses from 100 ms doubling to 1.6 s (4.65 s in all at most), fit
// in targetDialTimeout even when each attempt takes a while on a busy
// target.
const (
	targetDialAttempts = 6
	targetRetryPause   = 100 * time.Millisecond
	targetRetryMax     = 1600 * time.Millisecond
)

// retryPause is the pause after the given failed attempt (1, 2, ...):
// targetRetryPause doubled per attempt up to targetRetryMax, scaled by
// 0.5 + jitter (jitter in [0, 1)).
func retryPause(attempt int, jitter float64) time.Duration {
	d := targetRetryPause
	for i := 1; i < attempt && d < targetRetryMax; i++ {
		d *= 2
	}
	d = min(d, targetRetryMax)
	return time.Duration(float64(d) * (0.5 + jitter))
}

// handshakeTarget makes one connection to the target and logs in. A
// connection the target closed or reset before its SSH identification
// line comes back as a *turnedAwayError.
func handshakeTarget(ctx context.Context, t policy.Target, hostKeys gossh.HostKeyCallback, signer gossh.Signer) (gossh.Conn, <-chan gossh.NewChannel, <-chan *gossh.Request, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", t.Address)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("target %s: connect %s: %w", t.Name, t.Address, err)
	}
	conn := &bannerConn{Conn: raw}
	// The handshake is bounded by closing the connection, not by a
	// deadline on it: a deadline would also have to be cleared after the
	// handshake, and the connection's reader could hit it in between.
	// stop reports whether the close was still to come.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	cc, chans, reqs, err := gossh.NewClientConn(conn, t.Address, &gossh.ClientConfig{
		User:            t.User,
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: hostKeys,
		ClientVersion:   "SSH-2.0-bastion",
	})
	if !stop() {
		// The bound ran out (or the session ended) during the handshake,
		// and the connection is closed: whatever NewClientConn made of
		// that, this is the reason.
		if cc != nil {
			_ = cc.Close()
		}
		return nil, nil, nil, fmt.Errorf("target %s: handshake: %w", t.Name, context.Cause(ctx))
	}
	if err != nil {
		_ = conn.Close()
		if said, ok := conn.turnedAway(); ok && connectionLost(err) {
			return nil, nil, nil, &turnedAwayError{err: err, said: said, attempts: 1}
		}
		return nil, nil, nil, fmt.Errorf("target %s: %w", t.Name, err)
	}
	return cc, chans, reqs, nil
}

// turnedAwayError is a connection the target closed before its SSH
// identification line, attempts times in a row. said is what the target
// wrote before it closed (sshd: "Exceeded MaxStartups"), if anything.
type turnedAwayError struct {
	err      error
	said     string
	attempts int
}

func (e *turnedAwayError) Error() string {
	if e.said == "" {
		return fmt.Sprintf("closed the connection %s before its SSH banner: %v", times(e.attempts), e.err)
	}
	return fmt.Sprintf("closed the connection %s before its SSH banner, saying %q: %v", times(e.attempts), e.said, e.err)
}

func (e *turnedAwayError) Unwrap() error { return e.err }

// connectionLost reports whether err is the connection going away under
// the handshake. x/crypto/ssh closes the connection when a write fails, so
// its reader may report the close (net.ErrClosed) instead of the reset.
func connectionLost(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// times is "once" or "N times".
func times(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

// maxPreBanner bounds what bannerConn keeps of the lines a server may send
// before its identification line (RFC 4253 section 4.2). A server that
// sends more is talking, not turning the connection away.
const maxPreBanner = 512

// bannerConn watches the target's first bytes for its SSH identification
// line, "SSH-" at the start of a line, and keeps what came before it.
// x/crypto/ssh reads the identification line itself, byte by byte, before
// it starts any goroutine that reads the connection, so pre is touched only
// by that one reader until banner is set; after that Read costs one atomic
// load.
type bannerConn struct {
	net.Conn
	banner atomic.Bool
	pre    []byte
}

func (c *bannerConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.banner.Load() {
		c.watch(p[:n])
	}
	return n, err
}

// watch appends the bytes read to pre until the identification line starts.
func (c *bannerConn) watch(b []byte) {
	for _, ch := range b {
		c.pre = append(c.pre, ch)
		line := c.pre[bytes.LastIndexByte(c.pre[:len(c.pre)-1], '\n')+1:]
		// More than maxPreBanner bytes is not a refusal either: stop.
		if bytes.HasPrefix(line, []byte("SSH-")) || len(c.pre) > maxPreBanner {
			c.banner.Store(true)
			return
		}
	}
}

// turnedAway reports whether the target never sent its identification
// line (nor more than maxPreBanner bytes), and what it sent instead, as
// printable text. Call it only after the handshake returned.
func (c *bannerConn) turnedAway() (string, bool) {
	if c.banner.Load() {
		return "", false
	}
	return printable(c.pre), true
}

// printable is a target's text for a log line and the user's message:
// trimmed, lines joined with "; ", and anything else outside printable
// ASCII dropped, so a target cannot write escape sequences to the user.
func printable(b []byte) string {
	var out strings.Builder
	for line := range strings.Lines(string(b)) {
		line = strings.Map(func(r rune) rune {
			if r < 0x20 || r > 0x7e {
				return -1
			}
			return r
		}, line)
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		if out.Len() > 0 {
			out.WriteString("; ")
		}
		out.WriteString(line)
	}
	return out.String()
}

// targetSigner returns the held key, or a fresh key with a one-minute
// certificate from the target CA: nothing long-lived to steal.
func (st *session) targetSigner(t policy.Target) (gossh.Signer, error) {
	if t.Auth != "ca" {
		s, err := keys.LoadSigner(t.IdentityFile)
		if err != nil {
			return nil, fmt.Errorf("load identity_file: %w", err)
		}
		return s, nil
	}
	if st.srv.targetCA == nil {
		return nil, errors.New("auth: ca needs the target CA, which is not loaded")
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate session key: %w", err)
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	keyID := fmt.Sprintf("bastion user=%s serial=%d session=%s", st.id.User, st.id.Serial, st.rec.ID())
	cert, err := keys.IssueTargetCert(st.srv.targetCA, signer.PublicKey(), t.User, keyID, st.srv.now(), targetCertLifetime)
	if err != nil {
		return nil, fmt.Errorf("sign target certificate: %w", err)
	}
	return gossh.NewCertSigner(cert, signer)
}

// proxySSH runs the client's shell or command on an ssh target and streams
// both ways until one side ends.
//
// It drives the target's connection itself instead of through x/crypto's
// Client and Session: those run five goroutines per session (global
// requests, channel opens, forwardings, exit status, and the wait for the
// output) that an idle session would keep for its whole life, and
// goroutine stacks are much of what an idle session costs. Here one
// goroutine serves the target's requests while the session is set up,
// and the loop at the end serves them once it runs (targetEvents).
//
// For the same reason the setup (sshProxy.start) and the loop
// (sshProxy.watch) are functions of their own: the session's goroutine waits in the loop for
// the session's whole life, and its stack keeps every frame below it. The
// setup's locals in that frame made the stack 16 KiB per idle session; the
// frames it waits under now fit in 8 (TestIdleSessionMemory).
func (st *session) proxySSH(t *policy.Target, command string) exitResult {
	p := &sshProxy{st: st, target: t.Name}
	defer p.close()
	if res, ok := p.start(t, command); !ok {
		return res
	}
	return p.watch()
}

// sshProxy is one session on an ssh target: what the loop needs and what
// must be undone when it ends.
type sshProxy struct {
	st        *session
	target    string
	ts        targetSession
	ev        *targetEvents
	sigs      chan ssh.Signal
	closeConn func()   // closes the target's connection
	undo      []func() // run by close, last first
}

// defers registers f to run at close, before those registered earlier,
// as a defer in start would have.
func (p *sshProxy) defers(f func()) { p.undo = append(p.undo, f) }

// close undoes what start did, last first.
func (p *sshProxy) close() {
	for i := len(p.undo) - 1; i >= 0; i-- {
		p.undo[i]()
	}
}

// start dials the target, opens the session and starts the copies. When
// it fails, the client has been told, and res is the session's result.
//
//go:noinline
func (p *sshProxy) start(t *policy.Target, command string) (res exitResult, ok bool) {
	st := p.st
	conn, chans, global, err := st.dialSSHTarget(st.ctx, *t)
	if err != nil {
		st.srv.log.Warn("target connect failed", "user", st.id.User, "target", t.Name, "err", err)
		st.errorf("cannot reach %s: %v", t.Name, userFacingDialError(err))
		return exitResult{code: 255, reason: "target unreachable"}, false
	}
	ev := &targetEvents{chans: chans, global: global, output: make(chan struct{}), info: exitInfo{status: -1}}
	p.ev = ev
	// Requests the target sends during the setup below (OpenSSH sends
	// hostkeys-00 at once) are answered meanwhile.
	attach := make(chan (<-chan *gossh.Request), 1)
	p.closeConn = func() { _ = conn.Close() }
	takeOver := ev.serveSetup(attach, st.ctx.Done(), p.closeConn)
	p.defers(func() {
		// Closed first: it unblocks a reply the setup goroutine may be
		// writing to a target that stopped reading.
		p.closeConn()
		takeOver()
		// Until the library has closed them: a target must not find the
		// connection stuck on a request nobody reads while it closes.
		go drainTarget(chans, global, ev.reqs)
	})

	ch, chReqs, err := conn.OpenChannel("session", nil)
	if err != nil {
		st.errorf("cannot open a session on %s: %v", t.Name, err)
		return exitResult{code: 255, reason: "target session refused"}, false
	}
	ts := targetSession{ch}
	p.ts = ts
	p.defers(func() { _ = ts.Close() })
	// From now on the target's requests on the session (exit-status among
	// them) are read, as x/crypto's Session reads them from its start.
	attach <- chReqs

	for _, kv := range st.env {
		k, v, _ := strings.Cut(kv, "=")
		// A target that does not AcceptEnv refuses; OpenSSH carries on too.
		if err := ts.Setenv(k, v); err != nil {
			st.srv.log.Debug("target refused env", "target", t.Name, "key", k)
		}
	}
	if st.hasPty {
		var mu sync.Mutex
		started := false
		win := st.attachResize(func(w ssh.Window) {
			mu.Lock()
			defer mu.Unlock()
			if started {
				// WindowChange does not wait for a reply: a target that
				// never answers cannot stall the session.
				_ = ts.WindowChange(w.Height, w.Width)
			}
		})
		p.defers(st.detachResize)
		if err := ts.RequestPty(st.pty.Term, win.Height, win.Width, st.pty.Modes); err != nil {
			st.errorf("%s refused a terminal: %v", t.Name, err)
			return exitResult{code: 255, reason: "pty refused"}, false
		}
		mu.Lock()
		started = true
		// A resize that arrived between attachResize and RequestPty.
		if now := st.window(); now != win {
			_ = ts.WindowChange(now.Height, now.Width)
		}
		mu.Unlock()
	}

	if command == "" {
		err = ts.Shell()
	} else {
		err = ts.Start(command)
	}
	if err != nil {
		st.errorf("%s refused to start the session: %v", t.Name, err)
		return exitResult{code: 255, reason: "start refused"}, false
	}

	p.sigs = make(chan ssh.Signal, 8)
	st.sess.Signals(p.sigs)
	p.defers(func() { st.sess.Signals(nil) })

	inCtx, stopInput := context.WithCancel(st.ctx)
	p.defers(stopInput)
	go func() {
		// Client EOF becomes target EOF; a target that ended stops this
		// consumer through inCtx, leaving the pump to the next one.
		_, _ = copyStream(ch, st.input.reader(inCtx))
		_ = ch.CloseWrite()
	}()

	// The last of the two output copies to finish tells the loop, which
	// reports the exit only then (drain, then report).
	var copying atomic.Int32
	copying.Store(2)
	copyOut := func(dst io.Writer, src io.Reader) {
		defer func() {
			if copying.Add(-1) == 0 {
				close(ev.output)
			}
		}()
		if _, err := copyStream(dst, src); err != nil {
			// The client or the recording went away: end the target side
			// so that the other copy and the exit report end too.
			_ = ts.Close()
		}
	}
	go copyOut(st.stdout, ch)
	go copyOut(st.stderr, ch.Stderr())

	takeOver()
	// While the target runs, the loop watches the session too (see
	// sessionWatch): one goroutine fewer per proxied session.
	st.pauseMonitor()
	p.defers(st.resumeMonitor)
	return exitResult{}, true
}

// watch serves the session and the target's connection until the target
// reports the session's end, or the client goes away.
func (p *sshProxy) watch() exitResult {
	st, ts, ev, sigs := p.st, p.ts, p.ev, p.sigs
	w := &st.watch
	ctxDone := st.ctx.Done()
	var teardown <-chan time.Time
	for {
		select {
		case sig := <-sigs:
			_ = ts.Signal(gossh.Signal(sig))
		case win, ok := <-w.winCh:
			st.windowChanged(win, ok)
		case <-w.failed:
			st.recordingFailedOnce()
		case <-w.ticks:
			st.limitsTick()
		case nc, ok := <-ev.chans:
			ev.channelOpen(nc, ok)
		case r, ok := <-ev.global:
			ev.globalRequest(r, ok)
		case r, ok := <-ev.reqs:
			ev.sessionRequest(r, ok)
		case <-ev.outputC():
			ev.drained = true
		case <-ctxDone:
			// The client's connection ended, or the recording failed.
			_ = ts.Close()
			p.closeConn()
			ctxDone, sigs = nil, nil
			timer := time.NewTimer(teardownTimeout)
			defer timer.Stop()
			teardown = timer.C
		case <-teardown:
			return exitResult{code: 255, reason: "teardown timed out"}
		}
		res, ok := ev.result()
		if !ok {
			continue
		}
		if teardown != nil {
			res.reason = "client disconnected or recording failed"
		} else if res.reason != "" {
			// The target went away without an exit status: say so,
			// or the client's 255 looks like ssh failing on its own.
			st.errorf("the connection to %s was lost (%s)", p.target, res.reason)
		}
		return res
	}
}

// targetEvents is what an ssh target sends besides the session's data:
// global requests are refused and channel opens rejected (x/crypto's
// Client does the same), and the session channel's requests yield its
// exit, which counts once the session's output was copied to the client.
// One goroutine at a time serves it: serveSetup's, then proxySSH's loop.
type targetEvents struct {
	chans  <-chan gossh.NewChannel // nil once closed
	global <-chan *gossh.Request   // nil once closed
	reqs   <-chan *gossh.Request   // the session channel's; nil until open and once closed
	// output is closed when the target's stdout and stderr have been
	// copied to the client; drained records that it was seen.
	output  chan struct{}
	drained bool

	info  exitInfo
	ended bool  // the session channel closed: its exit is known
	bad   error // a malformed exit report, which ends the wait at once as in x/crypto
}

// serveSetup serves the target's requests in a goroutine of its own until
// the returned function is called, which waits for that goroutine to end
// (so that the caller's loop can take over) and may be called again.
// attach delivers the session channel's requests once it is open. When
// cancel is done while the goroutine is still busy (writing a reply to a
// target that does not read), abort closes the connection to end it.
func (e *targetEvents) serveSetup(attach chan (<-chan *gossh.Request), cancel <-chan struct{}, abort func()) (takeOver func()) {
	handover, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		for {
			select {
			case nc, ok := <-e.chans:
				e.channelOpen(nc, ok)
			case r, ok := <-e.global:
				e.globalRequest(r, ok)
			case e.reqs = <-attach:
			case r, ok := <-e.reqs:
				e.sessionRequest(r, ok)
			case <-handover:
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(handover)
			select {
			case <-ended:
			case <-cancel:
				abort()
				<-ended
			}
			// The session channel may have opened just as the goroutine ended.
			select {
			case e.reqs = <-attach:
			default:
			}
		})
	}
}

func (e *targetEvents) channelOpen(nc gossh.NewChannel, ok bool) {
	if !ok {
		e.chans = nil
		return
	}
	_ = nc.Reject(gossh.UnknownChannelType, fmt.Sprintf("unknown channel type: %v", nc.ChannelType()))
}

func (e *targetEvents) globalRequest(r *gossh.Request, ok bool) {
	if !ok {
		e.global = nil
		return
	}
	// Keepalives and hostkeys-00@openssh.com: no, as x/crypto's Client
	// answers (and OpenSSH's client for keepalives).
	_ = r.Reply(false, nil)
}

func (e *targetEvents) sessionRequest(r *gossh.Request, ok bool) {
	if !ok {
		e.reqs, e.ended = nil, true
		return
	}
	if e.bad == nil {
		e.bad = e.info.take(r)
	} else if r.WantReply {
		_ = r.Reply(false, nil)
	}
}

// outputC is output until it was seen closed, then nil.
func (e *targetEvents) outputC() <-chan struct{} {
	if e.drained {
		return nil
	}
	return e.output
}

// result is the session's end once it is known and its output drained.
func (e *targetEvents) result() (exitResult, bool) {
	switch {
	case !e.drained:
		return exitResult{}, false
	case e.bad != nil:
		return exitResult{code: 255, reason: "target connection lost: " + e.bad.Error()}, true
	case e.ended:
		return e.info.result(), true
	}
	return exitResult{}, false
}

// drainTarget answers what a closing connection still delivers, until the
// library closes the channels: channel opens and global requests as the
// session did, the session channel's requests (the exit is known by now)
// with no.
func drainTarget(chans <-chan gossh.NewChannel, global, reqs <-chan *gossh.Request) {
	e := &targetEvents{chans: chans, global: global}
	for e.chans != nil || e.global != nil || reqs != nil {
		select {
		case nc, ok := <-e.chans:
			e.channelOpen(nc, ok)
		case r, ok := <-e.global:
			e.globalRequest(r, ok)
		case r, ok := <-reqs:
			if !ok {
				reqs = nil
				continue
			}
			_ = r.Reply(false, nil)
		}
	}
}

// exitInfo is what a target said about how its session ended, read as
// x/crypto's Session.Wait reads it.
type exitInfo struct {
	status int // -1 until exit-status
	signal string
}

// take reads one request of the session channel; an error means a
// malformed exit report.
func (x *exitInfo) take(r *gossh.Request) error {
	switch r.Type {
	case "exit-status":
		if len(r.Payload) < 4 {
			return errors.New("ssh: malformed exit-status request")
		}
		x.status = int(binary.BigEndian.Uint32(r.Payload))
	case "exit-signal":
		var sig struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}
		if err := gossh.Unmarshal(r.Payload, &sig); err != nil {
			return err
		}
		x.signal = sig.Signal
	default:
		// keepalive@openssh.com and the like, answered as OpenSSH does.
		if r.WantReply {
			_ = r.Reply(false, nil)
		}
	}
	return nil
}

// result maps the target's report to what the client will see: an exit
// status of 0 wins, then a signal (as 128+N), then the status.
func (x exitInfo) result() exitResult {
	switch {
	case x.status == 0:
		return exitResult{}
	case x.signal != "":
		return exitResult{code: 128 + signalNumber(x.signal), signal: x.signal}
	case x.status == -1:
		return exitResult{code: 255, reason: "target closed without an exit status"}
	}
	return exitResult{code: x.status}
}

// targetSession is a session channel on a target with the requests
// proxySSH sends on it, marshalled as x/crypto's Session does (RFC 4254).
type targetSession struct{ gossh.Channel }

// Setenv sends an env request (RFC 4254 §6.4).
func (s targetSession) Setenv(name, value string) error {
	ok, err := s.SendRequest("env", true, gossh.Marshal(&struct{ Name, Value string }{name, value}))
	if err == nil && !ok {
		err = errors.New("ssh: setenv failed")
	}
	return err
}

// RequestPty sends a pty-req (RFC 4254 §6.2) for h rows and w columns.
func (s targetSession) RequestPty(term string, h, w int, modes gossh.TerminalModes) error {
	// The modes in opcode order: the same request for the same modes.
	ops := make([]uint8, 0, len(modes))
	for k := range modes {
		ops = append(ops, k)
	}
	slices.Sort(ops)
	var tm []byte
	for _, k := range ops {
		tm = append(tm, gossh.Marshal(&struct {
			Key byte
			Val uint32
		}{k, modes[k]})...)
	}
	tm = append(tm, 0) // TTY_OP_END
	req := struct {
		Term     string
		Columns  uint32
		Rows     uint32
		Width    uint32
		Height   uint32
		Modelist string
	}{term, uint32(w), uint32(h), uint32(w * 8), uint32(h * 8), string(tm)}
	ok, err := s.SendRequest("pty-req", true, gossh.Marshal(&req))
	if err == nil && !ok {
		err = errors.New("ssh: pty-req failed")
	}
	return err
}

// WindowChange sends a window-change (RFC 4254 §6.7); it waits for no reply.
func (s targetSession) WindowChange(h, w int) error {
	_, err := s.SendRequest("window-change", false, gossh.Marshal(&struct {
		Columns, Rows, Width, Height uint32
	}{uint32(w), uint32(h), uint32(w * 8), uint32(h * 8)}))
	return err
}

// Signal sends a signal request (RFC 4254 §6.9).
func (s targetSession) Signal(sig gossh.Signal) error {
	_, err := s.SendRequest("signal", false, gossh.Marshal(&struct{ Signal string }{string(sig)}))
	return err
}

// Start runs cmd (an exec request, RFC 4254 §6.5).
func (s targetSession) Start(cmd string) error {
	ok, err := s.SendRequest("exec", true, gossh.Marshal(&struct{ Command string }{cmd}))
	if err == nil && !ok {
		err = fmt.Errorf("ssh: command %v failed", cmd)
	}
	return err
}

// Shell starts the login shell (a shell request, RFC 4254 §6.5).
func (s targetSession) Shell() error {
	ok, err := s.SendRequest("shell", true, nil)
	if err == nil && !ok {
		err = errors.New("ssh: could not start shell")
	}
	return err
}

// userFacingDialError tells the user what went wrong on the target side
// without leaking the bastion's credential paths.
func userFacingDialError(err error) string {
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) {
		if len(ke.Want) == 0 {
			return "its host key is not known to the bastion, so the bastion refused to connect; ask the operator to add the target's host key to its known_hosts"
		}
		return "HOST KEY MISMATCH: the target presented a different host key than the bastion expects (possible man-in-the-middle); the bastion refused to connect; tell the operator"
	}
	var rk *knownhosts.RevokedError
	if errors.As(err, &rk) {
		return "its host key is revoked, so the bastion refused to connect; tell the operator"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "the target did not answer in time"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return "the connection to the target failed (" + oe.Err.Error() + ")"
	}
	var turned *turnedAwayError
	if errors.As(err, &turned) {
		said := ""
		if turned.said != "" {
			said = fmt.Sprintf(" (it said %q)", turned.said)
		}
		return fmt.Sprintf("the target turned the connection away %s before it answered%s; it is busy: try again in a moment", times(turned.attempts), said)
	}
	if connectionLost(err) {
		return "the target closed the connection"
	}
	if strings.Contains(err.Error(), "unable to authenticate") {
		return "the target refused the bastion's credential; tell the operator"
	}
	// Anything else is about the bastion's own setup (credential files,
	// CA): the operator's log has it, the user gets no paths.
	return "the bastion's connection to it is misconfigured; the operator's log has the details"
}
