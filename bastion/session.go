package bastion

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"charm.land/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/bastion-dev/bastion/keys"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/recorder"
)

// The life of one session channel, in call order:
//
//  1. handleSession    identity re-checked, PTY and environment read
//  2. recording opened (a session that cannot be recorded does not start)
//  3. input pump and monitor (window changes, recording failure, limits)
//     started; both end with the channel
//  4. route            built-in word, menu, target list or a target
//  5. finish           recording closed and the row finalised, then the exit
//                      status (or signal) sent after all output was written

// exitResult is how a session (or one target visit) ended.
type exitResult struct {
	code   int
	signal string // non-empty when the target was killed by a signal (no SIG prefix)
	reason string // why it ended abnormally, for the session row; empty when normal
}

// envAllowList names the client variables passed on to targets. Anything else
// (LD_PRELOAD, BASH_ENV, …) could change what a target runs.
func envAllowed(key string) bool {
	return key == "LANG" || key == "TERM" || strings.HasPrefix(key, "LC_")
}

// session is one session channel in progress.
type session struct {
	srv  *Server
	sess ssh.Session
	id   *keys.Identity
	rec  *recorder.Recorder

	ctx    context.Context // done when the connection ends, the recording failed (terminate mode), or end was called
	cancel context.CancelFunc

	initialTarget string

	endMu     sync.Mutex
	endReason string // why end was called; empty while the session runs its course

	start        time.Time
	lastActivity atomic.Int64 // unix nanoseconds of the last byte in either direction

	pty    ssh.Pty
	hasPty bool
	env    []string // allow-listed client environment, KEY=VALUE

	stdout *output // to the client: masked, recorded
	stderr *output
	input  *inputPump

	winMu    sync.Mutex
	win      ssh.Window
	onResize func(ssh.Window) // the current consumer's resize hook, under winMu

	leaveMetric func() // lowers the active-sessions gauge of the target being visited

	watch sessionWatch // see there: served by one goroutine at a time
}

// handleSession serves one session channel, from the identity check to
// the end of the recording.
//
// The goroutine running it waits in the session (route) for the session's
// whole life, and its stack keeps every frame below that wait: the setup
// is a function of its own (openSession) so that its locals are not among
// them (see proxySSH).
func (s *Server) handleSession(sess ssh.Session) {
	s.sessions.Add(1)
	defer s.sessions.Done()

	if perms := sess.Permissions(); perms.Permissions != nil && perms.Extensions[permLogin] != "" {
		s.handleLogin(sess)
		return
	}
	st, closeSession := s.openSession(sess)
	if st == nil {
		return
	}
	defer closeSession()
	res := st.route()
	if reason := st.ended(); reason != "" {
		res.reason = reason
		if res.code == 0 {
			res.code = 1
		}
	}
	st.finish(res)
	if st.ended() != "" {
		// Nothing more may happen on a connection whose certificate
		// was revoked.
		if conn, ok := sess.Context().Value(ssh.ContextKeyConn).(gossh.Conn); ok {
			_ = conn.Close()
		}
	}
}

// openSession checks the identity, starts the recording and the session's
// watch, and audits the start. It returns nil when the session could not
// start (the client has been told), and otherwise the session and what
// ends it once it is finished.
//
//go:noinline
func (s *Server) openSession(sess ssh.Session) (*session, func()) {
	id, err := s.identityOf(sess)
	if err != nil {
		s.log.Warn("session refused", "login", sess.User(), "client", sess.RemoteAddr().String(), "err", err)
		_, _ = fmt.Fprintf(sess.Stderr(), "bastion: your certificate is no longer accepted (%s); get a new one and reconnect\r\n", refusalMessage(err))
		_ = sess.Exit(1)
		return nil, nil
	}
	pty, hasPty := s.ptys.get(sess)
	var env []string
	for _, kv := range sess.Environ() {
		if k, _, ok := strings.Cut(kv, "="); ok && envAllowed(k) && k != "TERM" {
			env = append(env, kv)
		}
	}

	now := s.now()
	sid, err := recorder.NewSessionID(now, rand.Reader)
	if err != nil {
		s.endUnrecorded(sess, fmt.Errorf("session id: %w", err))
		return nil, nil
	}
	width, height, term := 80, 24, ""
	if hasPty {
		width, height, term = pty.Window.Width, pty.Window.Height, pty.Term
	}
	initialTarget := ""
	if _, ok := s.config().Target(sess.User()); ok && sess.User() != id.User {
		initialTarget = sess.User()
	} else if w, _ := splitFirstWord(sess.RawCommand()); w != "" {
		if _, ok := s.config().Target(w); ok {
			initialTarget = w
		}
	}
	title := id.User + "@" + s.hostName
	if initialTarget != "" {
		title = id.User + " → " + initialTarget
	}
	ctx, cancel := context.WithCancel(sess.Context())
	rec, err := recorder.NewRecorder(ctx, recorder.RecorderConfig{
		Store: s.store,
		Meta: recorder.SessionMeta{
			ID: sid, User: id.User, Serial: id.Serial, ClientAddr: sess.RemoteAddr().String(),
			Target: initialTarget, Start: now, State: recorder.StateActive,
			Width: width, Height: height, Term: term, Title: title,
		},
		FlushInterval: time.Duration(s.config().Recording.FlushInterval),
		RecordInput:   s.config().Recording.Input,
		Now:           s.now,
		Logger:        s.log.With("session", sid),
	})
	if err != nil {
		s.endUnrecorded(sess, err)
		cancel()
		return nil, nil
	}

	st := &session{
		srv: s, sess: sess, id: id, rec: rec, ctx: ctx, cancel: cancel,
		pty: pty, hasPty: hasPty, env: env, win: pty.Window, start: now, initialTarget: initialTarget,
	}
	st.touch()
	terminate := s.config().Recording.OnFailure != "continue"
	failed := func() bool {
		if !terminate {
			return false
		}
		select {
		case <-rec.Failed():
			return true
		default:
			return false
		}
	}
	unmasked := s.config().Unmasked(id.Groups)
	st.stdout = newOutput(sess, rec.Output, failed, st.touch, s.maskEngine(), unmasked)
	st.stderr = newOutput(sess.Stderr(), rec.Output, failed, st.touch, s.maskEngine(), unmasked)
	st.input = newInputPump(sess, activitySink{st})
	var winCh <-chan ssh.Window
	if hasPty {
		_, winCh, _ = sess.Pty()
	}
	done := make(chan struct{})
	st.startMonitor(winCh, terminate, done)
	s.track(st, true)
	st.auditStart()

	if ssh.AgentRequested(sess) {
		// The library accepts the request on its own; we never open an
		// agent channel, and say so: a bastion must not expose the user's
		// agent to targets.
		st.errorf("agent forwarding is disabled on this bastion; your agent was not forwarded")
	}
	s.log.Info("session recording", "session", sid, "user", id.User, "target", initialTarget, "pty", hasPty)
	return st, func() {
		s.track(st, false)
		close(done)
		cancel()
	}
}

// end stops the session from outside (a revocation): the user is told why,
// the target side is closed, and the session finishes with reason.
func (st *session) end(reason string) {
	st.endMu.Lock()
	first := st.endReason == ""
	if first {
		st.endReason = reason
	}
	st.endMu.Unlock()
	if !first {
		return
	}
	st.stderr.Notice("\r\nbastion: " + reason + "\r\n")
	st.cancel()
}

func (st *session) ended() string {
	st.endMu.Lock()
	defer st.endMu.Unlock()
	return st.endReason
}

// endUnrecorded refuses a session that could not be recorded: PCI DSS 10.2
// wants every access to cardholder systems logged, so none goes unrecorded.
func (s *Server) endUnrecorded(sess ssh.Session, err error) {
	s.log.Error("session not started: recording unavailable", "client", sess.RemoteAddr().String(), "err", err)
	_, _ = fmt.Fprint(sess.Stderr(), "bastion: session recording is unavailable, so no session can start; please tell the bastion operator\r\n")
	_ = sess.Exit(1)
}

// sessionWatch is what watches a session from the side, for its whole
// life:
//
//   - window changes, drained until the channel closes, which may be after
//     the handler returned: the SSH library blocks its request loop until
//     each one is taken, so a consumer that stopped reading would freeze
//     signals and EOF too (resized);
//   - the recording, which ends the session when it fails in terminate
//     mode (recordingFailed);
//   - the session limits, checked every tick until done (checkLimits).
//
// One goroutine serves it, because an idle session is mostly goroutine
// stacks: the monitor goroutine, except while proxySSH runs, whose loop
// serves it meanwhile (pauseMonitor, resumeMonitor). Whatever may block
// on the client or the store runs in a goroutine of its own, so that
// neither the monitor nor that loop waits on it.
type sessionWatch struct {
	winCh     <-chan ssh.Window // nil without a PTY and once closed
	first     bool              // no window change taken yet
	failed    <-chan struct{}   // nil once reported, and after done
	ticks     <-chan time.Time  // nil once the limits ended the session, and after done
	ticker    *time.Ticker
	lim       limits
	terminate bool
	done      <-chan struct{} // closed when the handler returned; nil once seen
	pause     chan chan struct{}
}

// startMonitor starts the monitor goroutine; done is closed when the
// session's handler returns.
func (st *session) startMonitor(winCh <-chan ssh.Window, terminate bool, done <-chan struct{}) {
	lim := st.newLimits()
	t := time.NewTicker(lim.tick)
	st.watch = sessionWatch{winCh: winCh, first: true, failed: st.rec.Failed(), ticks: t.C, ticker: t,
		lim: lim, terminate: terminate, done: done, pause: make(chan chan struct{})}
	go st.monitor()
}

// monitor serves st.watch until the handler returned and the window
// changes ended, or until pauseMonitor takes it over.
func (st *session) monitor() {
	w := &st.watch
	for w.done != nil || w.winCh != nil {
		select {
		case win, ok := <-w.winCh:
			st.windowChanged(win, ok)
		case <-w.failed:
			st.recordingFailedOnce()
		case <-w.ticks:
			st.limitsTick()
		case ack := <-w.pause:
			close(ack)
			return
		case <-w.done:
			w.done, w.failed, w.ticks = nil, nil, nil
			w.ticker.Stop()
		}
	}
}

// pauseMonitor stops the monitor goroutine; the caller serves st.watch
// (windowChanged, recordingFailedOnce, limitsTick) until resumeMonitor.
// Only the session's handler calls it, before done.
func (st *session) pauseMonitor() {
	ack := make(chan struct{})
	st.watch.pause <- ack
	<-ack
}

// resumeMonitor hands st.watch back to a monitor goroutine.
func (st *session) resumeMonitor() { go st.monitor() }

func (st *session) windowChanged(win ssh.Window, ok bool) {
	w := &st.watch
	if !ok {
		w.winCh = nil
		return
	}
	st.resized(win, w.first)
	w.first = false
}

func (st *session) recordingFailedOnce() {
	st.watch.failed = nil
	go st.recordingFailed(st.watch.terminate)
}

func (st *session) limitsTick() {
	w := &st.watch
	end, warning := st.checkLimits(&w.lim)
	switch {
	case end != "":
		w.ticks = nil
		w.ticker.Stop()
		go st.end(end)
	case warning != "":
		go st.stderr.Notice(warning)
	}
}

// recordingFailed reports a failed recording, and ends the session in
// terminate mode.
func (st *session) recordingFailed(terminate bool) {
	st.srv.log.Error("recording failed", "user", st.id.User, "err", st.rec.Err(), "terminate", terminate)
	st.srv.metrics.RecordingError()
	// The store may be what failed; if this record cannot be written
	// the log line above and the metric still tell.
	st.srv.audit(recorder.AuditRecord{Type: "recording.failure", Outcome: recorder.OutcomeFailure, Reason: fmt.Sprint(st.rec.Err()),
		User: st.id.User, Serial: st.id.Serial, Client: st.sess.RemoteAddr().String(), Session: st.rec.ID(),
		Detail: map[string]string{"terminate": fmt.Sprint(terminate)}})
	if terminate {
		// Straight to the channel: this message cannot be recorded.
		_, _ = fmt.Fprint(st.sess.Stderr(), "\r\nbastion: the session recording failed, so the session was ended (recording.on_failure: terminate)\r\n")
		st.cancel()
	}
}

// resized takes one window change: recorded, and passed to the current
// consumer. The first is skipped when it is the size from pty-req, which
// the recording's header already has.
func (st *session) resized(w ssh.Window, first bool) {
	if first && w == st.pty.Window {
		return
	}
	st.winMu.Lock()
	st.win = w
	hook := st.onResize
	st.winMu.Unlock()
	st.rec.Resize(w.Width, w.Height)
	if hook != nil {
		hook(w)
	}
}

// attachResize makes fn receive window changes from now on and returns the
// current size, so that the consumer can apply the size it starts with before
// any resize (a resize sent before the target's pty-req is lost otherwise).
func (st *session) attachResize(fn func(ssh.Window)) ssh.Window {
	st.winMu.Lock()
	defer st.winMu.Unlock()
	st.onResize = fn
	return st.win
}

func (st *session) detachResize() {
	st.winMu.Lock()
	st.onResize = nil
	st.winMu.Unlock()
}

func (st *session) window() ssh.Window {
	st.winMu.Lock()
	defer st.winMu.Unlock()
	return st.win
}

// visit marks the recording where the session enters a target, and
// puts the access into the trail with the resource reached (PCI DSS
// 10.2.1.1 and 10.2.2.6): a target.access record for every visit, and an
// exec.command record for a command run on an ssh or command target (SQL
// statements get one record each from the REPL).
func (st *session) visit(target string) {
	st.rec.Marker("enter " + target)
	st.rec.AddTarget(target)
	t, _ := st.srv.config().Target(target)
	st.leaveMetric = st.srv.metrics.EnterTarget(t.Kind)
	detail := targetResource(t)
	base := recorder.AuditRecord{Outcome: recorder.OutcomeSuccess, User: st.id.User, Serial: st.id.Serial,
		Client: st.sess.RemoteAddr().String(), KeyFingerprint: st.id.KeyFingerprint, Session: st.rec.ID(), Target: target}
	access := base
	access.Type, access.Detail = "target.access", detail
	records := []recorder.AuditRecord{access}
	if cmd := st.commandFor(target); cmd != "" && (t.Kind == "ssh" || t.Kind == "command") {
		exec := base
		exec.Type = "exec.command"
		exec.Detail = map[string]string{"kind": t.Kind}
		if t.Kind == "ssh" {
			// As runTarget does: a leading --reason is for approvers,
			// not part of what runs.
			var reason string
			if reason, cmd = splitReason(cmd); reason != "" {
				exec.Detail["reason_given"], _ = st.srv.maskEngine().MaskText(reason)
			}
		}
		exec.Detail["command"], _ = st.srv.maskEngine().MaskText(cmd)
		records = append(records, exec)
	}
	st.srv.auditAll(records...)
}

// auditAll appends records to the trail in one commit (one disk sync on
// the session's path instead of one each); like audit, a failure is
// logged and the action goes on.
func (s *Server) auditAll(rs ...recorder.AuditRecord) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.store.AppendAudits(ctx, rs); err != nil {
		s.log.Error("audit", "type", rs[0].Type, "records", len(rs), "err", err)
	}
}

// commandFor is the command the session's exec request runs on target:
// what follows the target's name (`ssh bastion web-1 uname -a`), or the
// whole command when the login names the target (`ssh web-1@bastion
// uname -a`). The menu and shells have none.
func (st *session) commandFor(target string) string {
	raw := strings.TrimLeft(st.sess.RawCommand(), " \t")
	if st.loginIsTarget() && st.sess.User() == target {
		return raw
	}
	if w, rest := splitFirstWord(raw); w == target {
		return rest
	}
	return ""
}

// targetResource describes what a visit reaches, for the trail: kind,
// address and database, never a credential (DSNs hold no password; policy
// refuses one at load).
func targetResource(t policy.Target) map[string]string {
	d := map[string]string{"kind": t.Kind}
	switch t.Kind {
	case "ssh":
		d["address"], d["target_user"] = t.Address, t.User
	case "postgres":
		if u, err := url.Parse(t.DSN); err == nil && u.Host != "" {
			d["address"], d["database"] = u.Host, strings.TrimPrefix(u.Path, "/")
		} else {
			for _, kv := range strings.Fields(t.DSN) {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "host":
					d["address"] = v
				case "dbname":
					d["database"] = v
				}
			}
		}
	case "mysql":
		if _, rest, ok := strings.Cut(t.DSN, "("); ok {
			addr, db, _ := strings.Cut(rest, ")")
			d["address"] = addr
			db, _, _ = strings.Cut(strings.TrimPrefix(db, "/"), "?")
			d["database"] = db
		}
	case "sqlite":
		d["database"] = t.Path
	case "command":
		if len(t.Argv) > 0 {
			d["argv0"] = t.Argv[0]
		}
	}
	return d
}

func (st *session) leave(target string, res exitResult) {
	// The target's output has ended: nothing it sent may stay held.
	st.flushOutput()
	if st.leaveMetric != nil {
		st.leaveMetric()
		st.leaveMetric = nil
	}
	label := fmt.Sprintf("leave %s exit=%d", target, res.code)
	if res.signal != "" {
		label = fmt.Sprintf("leave %s signal=%s", target, res.signal)
	}
	st.rec.Marker(label)
}

// finish closes the recording, then reports the exit to the client. All
// output was written synchronously before, so exit-status follows the last
// byte of stdout and stderr, and EOF precedes it as OpenSSH's sshd does.
func (st *session) finish(res exitResult) {
	code := res.code
	st.flushOutput()
	counts := st.stdout.Counts()
	counts.Add(st.stderr.Counts())
	st.rec.SetMasked(counts)
	// The session's own context may be done already (client gone): the
	// final writes get their own bound.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stop := recorder.AuditRecord{Type: "recording.stop", Outcome: recorder.OutcomeSuccess, User: st.id.User,
		Serial: st.id.Serial, Client: st.sess.RemoteAddr().String(), Session: st.rec.ID()}
	if err := st.rec.Close(ctx, &code, recorder.StateClosed, res.reason); err != nil {
		st.srv.log.Error("recording close failed", "user", st.id.User, "err", err)
		st.srv.metrics.RecordingError()
		stop.Outcome, stop.Reason = recorder.OutcomeFailure, err.Error()
	}
	// After the client has its exit status: the trail's disk sync does
	// not delay it.
	defer st.auditEnd(res, counts, stop)
	_ = st.sess.CloseWrite()
	if res.signal != "" {
		payload := gossh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}{Signal: res.signal})
		_, _ = st.sess.SendRequest("exit-signal", false, payload)
		_ = st.sess.Close()
		return
	}
	_ = st.sess.Exit(code)
}

// auditStart and auditEnd put the session into the audit trail. The end
// record carries the SHA-256 of the closed recording as the store returns
// it, so that `bastion audit verify` can tell a recording changed after
// the fact (the chain protects the digest, the digest the recording).
func (st *session) auditStart() {
	cmd, _ := st.srv.maskEngine().MaskText(st.sess.RawCommand())
	rc := st.srv.config().Recording
	st.srv.auditAll(recorder.AuditRecord{Type: "session.start", Outcome: recorder.OutcomeSuccess, User: st.id.User,
		Serial: st.id.Serial, Client: st.sess.RemoteAddr().String(), KeyFingerprint: st.id.KeyFingerprint,
		Session: st.rec.ID(), Target: st.initialTarget,
		Detail: map[string]string{"login": st.sess.User(), "command": cmd, "pty": fmt.Sprint(st.hasPty)}},
		recorder.AuditRecord{Type: "recording.start", Outcome: recorder.OutcomeSuccess, User: st.id.User,
			Serial: st.id.Serial, Client: st.sess.RemoteAddr().String(), KeyFingerprint: st.id.KeyFingerprint, Session: st.rec.ID(),
			Detail: map[string]string{"input": fmt.Sprint(rc.Input), "on_failure": rc.OnFailure}})
}

func (st *session) auditEnd(res exitResult, counts map[string]int64, stop recorder.AuditRecord) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	detail := map[string]string{"exit": fmt.Sprint(res.code)}
	if res.signal != "" {
		detail["signal"] = res.signal
	}
	for k, v := range counts {
		detail["masked."+k] = fmt.Sprint(v)
	}
	m, err := st.srv.store.Session(ctx, st.rec.ID())
	if err == nil {
		detail["bytes_out"], detail["bytes_in"] = fmt.Sprint(m.BytesOut), fmt.Sprint(m.BytesIn)
	}
	// The digest reads the whole recording back: its deadline grows with
	// the session's output, so that a long session still gets one.
	dctx, dcancel := context.WithTimeout(context.Background(), digestTimeout(m.BytesOut+m.BytesIn))
	defer dcancel()
	h := sha256.New()
	if err := st.srv.store.WriteRecording(dctx, st.rec.ID(), h); err != nil {
		st.srv.log.Error("digest of the recording", "session", st.rec.ID(), "err", err)
	} else {
		detail[recorder.DetailRecordingDigest] = hex.EncodeToString(h.Sum(nil))
	}
	outcome := recorder.OutcomeSuccess
	if res.reason != "" {
		outcome = recorder.OutcomeFailure
	}
	st.srv.auditAll(stop, recorder.AuditRecord{Type: "session.end", Outcome: outcome, Reason: res.reason, User: st.id.User,
		Serial: st.id.Serial, Client: st.sess.RemoteAddr().String(), KeyFingerprint: st.id.KeyFingerprint,
		Session: st.rec.ID(), Target: m.Target, Detail: detail})
}

// digestTimeout bounds the digest of a recording of n raw bytes: a minute,
// plus a second for every 16 MB (a byte is up to six of JSON, hashed and
// decoded at a few hundred MB/s on a busy small machine).
func digestTimeout(n int64) time.Duration {
	return time.Minute + time.Duration(max(n, 0)/(16<<20))*time.Second
}

// flushOutput emits what the maskers hold once a source has ended.
func (st *session) flushOutput() {
	for _, o := range []*output{st.stdout, st.stderr} {
		if err := o.Flush(); err != nil {
			st.srv.log.Debug("flush output", "user", st.id.User, "err", err)
		}
	}
}

// refusalMessage is the user-safe text of an authentication error.
func refusalMessage(err error) string {
	if r, ok := err.(*keys.Refusal); ok {
		return r.Message
	}
	return "it could not be verified"
}

// splitFirstWord splits a raw command into its first word and the rest,
// keeping the rest byte for byte: the target's shell parses it, as OpenSSH's
// sshd hands the command string to the user's shell.
func splitFirstWord(raw string) (first, rest string) {
	raw = strings.TrimLeft(raw, " \t")
	i := strings.IndexAny(raw, " \t")
	if i < 0 {
		return raw, ""
	}
	return raw[:i], strings.TrimLeft(raw[i:], " \t")
}
