// Package bastion is the SSH server: authentication, routing, the menu, the
// session lifecycle and the target connectors. It is the only package that
// touches the network.
//
// The life of one connection, in call order:
//
//  1. accept           Server.Serve hands the TCP connection to the SSH library.
//  2. authenticate     publicKeyCallback (auth.go) verifies the user certificate
//     with keys.Verifier; every refusal goes through refuse(),
//     which logs the reason and shows the user a banner.
//     Passwords and keyboard-interactive are never offered.
//  3. channels         only "session" channels are accepted; port forwarding,
//     agent forwarding, X11 and subsystems are refused.
//  4. session requests pty-req (recorded by ptyHandler), env, then shell or exec
//     starts handleSession in its own goroutine.
//  5. handleSession    (session.go) re-checks the key that authenticated, opens
//     the recording, routes (route.go) to a built-in word, the
//     menu or a target, and streams until one side ends.
//  6. end              exit status or signal back to the client, recording
//     closed, session row finalised.
package bastion

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"charm.land/ssh"
	"charm.land/wish/v2"
	gossh "golang.org/x/crypto/ssh"

	"github.com/bastion-dev/bastion/bastion/metrics"
	"github.com/bastion-dev/bastion/bastion/oidclogin"
	"github.com/bastion-dev/bastion/keys"
	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/policy/mask"
	"github.com/bastion-dev/bastion/recorder"
)

// Options are the dependencies of a Server. Everything it needs is passed in
// here: the server holds no global state.
type Options struct {
	Config      *policy.Config
	HostSigners []gossh.Signer // the bastion's host key, and its certificate signer when a host CA signed it
	UserCA      gossh.Signer   // only certificates signed by this key are accepted; it signs OIDC logins' certificates
	// OIDCClientSecret is the client secret for oidc (read by the caller
	// from client_secret_file or _env); OIDC login is on when
	// Config.OIDC.Issuer is set.
	OIDCClientSecret string
	// HTTPClient reaches the identity provider; nil means a default with timeouts.
	HTTPClient *http.Client
	TargetCA   gossh.Signer // signs one-minute certificates for targets with auth: ca; may be nil
	// AuditKey signs the head of the audit chain at intervals and at
	// shutdown (Checkpoint); nil signs nothing.
	AuditKey gossh.Signer
	Store    recorder.Store
	Logger   *slog.Logger
	Now      func() time.Time // nil means time.Now
	// HostName is how users reach the bastion, used in messages ("ssh -p 2222 127.0.0.1").
	HostName string
	// Metrics counts sessions by target kind and recording errors; nil
	// counts nothing (metrics.listen unset).
	Metrics *metrics.Metrics
}

// Server is the bastion's SSH server.
type Server struct {
	// current is the policy in force and the masker built from it; Reload
	// swaps both at once, and every decision reads them afresh.
	current  atomic.Pointer[policyState]
	store    recorder.Store
	log      *slog.Logger
	now      func() time.Time
	verifier *keys.Verifier
	targetCA gossh.Signer
	hostName string
	login    *loginState // nil when OIDC login is not configured
	auditKey gossh.Signer
	// The checkpoint goroutine (signing the audit chain's head) runs from
	// New until Shutdown or Close, which stop it once.
	stopCheckpoints context.CancelFunc
	checkpointsDone chan struct{}
	stopOnce        sync.Once
	acceptOnce      sync.Once     // closes accepting
	accepting       chan struct{} // see Accepting
	masker          *mask.Engine
	approvals       *broker
	metrics         *metrics.Metrics // nil-safe

	ssh  *ssh.Server
	ptys ptyRegistry

	// sessions counts running session handlers so that shutdown can wait for
	// their recordings to be finalised.
	sessions sync.WaitGroup

	// activeMu guards active, the sessions now running, so that a
	// revocation can end the ones it covers.
	activeMu sync.Mutex
	active   map[*session]struct{}
}

// New builds a server from its dependencies. It does not listen yet.
func New(opt Options) (*Server, error) {
	if opt.Config == nil || len(opt.HostSigners) == 0 || opt.UserCA == nil || opt.Store == nil {
		return nil, errors.New("bastion.New: Config, HostSigners, UserCA and Store are required")
	}
	s := &Server{
		accepting: make(chan struct{}),
		auditKey:  opt.AuditKey,
		store:     opt.Store,
		log:       opt.Logger,
		now:       opt.Now,
		targetCA:  opt.TargetCA,
		hostName:  opt.HostName,
		metrics:   opt.Metrics,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.hostName == "" {
		s.hostName = "bastion"
	}
	state, err := newPolicyState(opt.Config)
	if err != nil {
		return nil, err
	}
	s.current.Store(state)
	s.approvals = newBroker(opt.Store, s.config, s.now, s.audit)
	s.approvals.startHooks(s.log, s.hostName) // approvals.webhook; stopped in stopBackground
	if o := opt.Config.OIDC; o.Enabled() {
		s.login = &loginState{
			cfg: oidclogin.Config{
				Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: opt.OIDCClientSecret,
				UsernameClaim: o.UsernameClaim, GroupsClaim: o.GroupsClaim, RequireMFA: o.RequireMFA,
				AllowedDomains: o.AllowedDomains, RequiredGroups: o.RequiredGroups,
				HTTPClient: opt.HTTPClient, Now: s.now,
			},
			userCA:  opt.UserCA,
			limit:   newLoginLimiter(12*time.Second, 5, s.now),
			lockout: newLockout(lockoutAttempts, lockoutDuration, s.now),
		}
	}
	s.verifier = &keys.Verifier{
		CA:   opt.UserCA.PublicKey(),
		Host: s.hostName,
		Now:  s.now,
		IsRevoked: func(serial uint64, user string, issuedAt time.Time) (bool, error) {
			// Revocation is a security decision: a store error refuses
			// (keys.Verifier fails closed on a non-nil error).
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return s.store.IsRevoked(ctx, serial, user, issuedAt)
		},
	}

	srv := &ssh.Server{
		Version:     "bastion",
		HostSigners: hostSigners(opt.HostSigners),
		PtyCallback: func(ctx ssh.Context, _ ssh.Pty) bool {
			// The certificate decides, as in OpenSSH: ours carry permit-pty.
			_, ok := ctx.Permissions().Extensions["permit-pty"]
			return ok
		},
		// The library would fill PublicKeyCallback from a PublicKeyHandler
		// that can only answer yes or no; we set the callback ourselves so
		// that a refusal can carry a banner (see refuse).
		ServerConfigCallback: s.serverConfig,
		PtyHandler:           s.ptys.handle,
		Handler: chain(s.handleSession,
			s.recoverMiddleware,
			s.logMiddleware,
		),
		// Sessions enforce idle_timeout and max_duration themselves, with a
		// warning and a reason (limits.go); the connection-level timeouts
		// are only a backstop for connections that never open a session.
		IdleTimeout: time.Duration(opt.Config.Session.IdleTimeout) + 2*time.Minute,
		MaxTimeout:  time.Duration(opt.Config.Session.MaxDuration) + 2*time.Minute,
		// 30 s is generous for a human-driven handshake and bounds how long
		// an unauthenticated connection can hold a slot.
		HandshakeTimeout: 30 * time.Second,
		ChannelHandlers: map[string]ssh.ChannelHandler{
			"session":      ssh.DefaultSessionHandler,
			"direct-tcpip": refuseChannel("port forwarding is disabled on this bastion"),
			"default":      refuseChannel("this channel type is not allowed on this bastion"),
		},
		RequestHandlers: map[string]ssh.RequestHandler{
			"default": refuseRequest,
		},
		SubsystemHandlers: map[string]ssh.SubsystemHandler{},
		ConnectionFailedCallback: func(conn net.Conn, err error) {
			s.log.Info("connection failed", "client", conn.RemoteAddr().String(), "err", err)
		},
	}
	s.ssh = srv
	cctx, cancel := context.WithCancel(context.Background())
	s.stopCheckpoints, s.checkpointsDone = cancel, make(chan struct{})
	go func() { defer close(s.checkpointsDone); s.runCheckpoints(cctx) }()
	return s, nil
}

// stopBackground stops the checkpoint goroutine, which signs the head one
// last time.
func (s *Server) stopBackground() {
	s.stopOnce.Do(func() {
		s.stopCheckpoints()
		<-s.checkpointsDone
		s.approvals.stopHooks()
	})
}

// Serve accepts connections on ln until Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	err := s.ssh.Serve(&acceptSignal{Listener: ln, once: &s.acceptOnce, accepting: s.accepting})
	if errors.Is(err, ssh.ErrServerClosed) {
		return nil
	}
	return err
}

// Accepting is closed once Serve has taken up its listener and waits for
// connections. The ssh library's Shutdown must not run before that: it
// would not close a listener Serve has not taken up yet (Serve would then
// accept forever), and its WaitGroup would race with Serve's.
func (s *Server) Accepting() <-chan struct{} { return s.accepting }

// acceptSignal tells, on the first Accept, that the library has tracked
// the listener (it does so before it first accepts).
type acceptSignal struct {
	net.Listener
	once      *sync.Once
	accepting chan struct{}
}

func (l *acceptSignal) Accept() (net.Conn, error) {
	l.once.Do(func() { close(l.accepting) })
	return l.Listener.Accept()
}

// Shutdown stops accepting, lets open sessions finish until ctx is done, then
// closes them and waits (bounded) for their recordings to be finalised.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.ssh.Shutdown(ctx)
	if err != nil {
		// Deadline passed with sessions still open: close them. Their
		// handlers see the channel close and finalise their recordings.
		_ = s.ssh.Close()
	}
	done := make(chan struct{})
	go func() { s.sessions.Wait(); close(done) }()
	// Sign the head last, after the sessions' final records.
	defer s.stopBackground()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("shutdown: sessions still finalising after 10s")
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Close closes every listener and connection at once.
func (s *Server) Close() error {
	err := s.ssh.Close()
	s.stopBackground()
	return err
}

// chain applies wish middlewares, outermost (and safest) first.
func chain(h ssh.Handler, outermostFirst ...wish.Middleware) ssh.Handler {
	for i := len(outermostFirst) - 1; i >= 0; i-- {
		h = outermostFirst[i](h)
	}
	return h
}

// recoverMiddleware keeps one session's bug from taking the server down, and
// ends that session with a failure status instead of leaving it hanging.
func (s *Server) recoverMiddleware(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("session panic", "panic", r, "user", sess.User(), "client", sess.RemoteAddr().String())
				_, _ = fmt.Fprintln(sess.Stderr(), "bastion: internal error; the session was ended and the operator was notified")
				_ = sess.Exit(1)
			}
		}()
		next(sess)
	}
}

// logMiddleware logs the start and end of each session channel. The log
// calls are functions of their own: their arguments would otherwise sit in
// a frame that every session's stack keeps for its whole life (see
// proxySSH).
func (s *Server) logMiddleware(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		start := s.logSessionStart(sess)
		next(sess)
		s.logSessionEnd(sess, start)
	}
}

//go:noinline
func (s *Server) logSessionStart(sess ssh.Session) time.Time {
	s.log.Info("session start", "login", sess.User(), "client", sess.RemoteAddr().String(), "command", sess.RawCommand())
	return s.now()
}

//go:noinline
func (s *Server) logSessionEnd(sess ssh.Session, start time.Time) {
	s.log.Info("session end", "login", sess.User(), "client", sess.RemoteAddr().String(), "duration", s.now().Sub(start).String())
}

func refuseChannel(msg string) ssh.ChannelHandler {
	return func(_ *ssh.Server, _ *gossh.ServerConn, ch gossh.NewChannel, _ ssh.Context) {
		_ = ch.Reject(gossh.Prohibited, msg)
	}
}

// refuseRequest answers every global request (tcpip-forward among them) no.
func refuseRequest(_ ssh.Context, _ *ssh.Server, _ *gossh.Request) (bool, []byte) {
	return false, nil
}

// ptyRegistry remembers the pty-req of each session channel. The SSH library
// would otherwise either emulate a PTY (rewriting \n to \r\n in our output,
// which corrupts a proxied terminal stream) or allocate a local one. We want
// neither: the PTY lives on the target.
type ptyRegistry struct {
	mu   sync.Mutex
	ptys map[ssh.Session]ssh.Pty
}

func (r *ptyRegistry) handle(_ ssh.Context, sess ssh.Session, p ssh.Pty) (func() error, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ptys == nil {
		r.ptys = make(map[ssh.Session]ssh.Pty)
	}
	r.ptys[sess] = p
	return func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.ptys, sess)
		return nil
	}, nil
}

func (r *ptyRegistry) get(sess ssh.Session) (ssh.Pty, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.ptys[sess]
	return p, ok
}

func hostSigners(in []gossh.Signer) []ssh.Signer {
	out := make([]ssh.Signer, len(in))
	for i, s := range in {
		out[i] = s
	}
	return out
}

// Revoked is told of each revocation made through the admin socket and ends
// the open sessions it covers, with a message, at once. (Sessions opened later
// are refused at authentication, and again in identityOf.)
func (s *Server) Revoked(r recorder.Revocation) {
	s.activeMu.Lock()
	var hit []*session
	for st := range s.active {
		if revokes(r, st.id) {
			hit = append(hit, st)
		}
	}
	s.activeMu.Unlock()
	s.log.Info("revocation", "serial", r.Serial, "user", r.User, "by", r.By, "open_sessions_ended", len(hit))
	for _, st := range hit {
		st.end("your certificate was revoked by the operator; the session was ended")
	}
}

// revokes reports whether revocation r covers the certificate of id. A
// revocation by user covers certificates issued before it (ValidAfter is the
// issue time less the one-minute backdate).
func revokes(r recorder.Revocation, id *keys.Identity) bool {
	if r.Serial != 0 {
		return r.Serial == id.Serial
	}
	return r.User == id.User && id.ValidAfter.Add(time.Minute).Before(r.At)
}

func (s *Server) track(st *session, on bool) {
	s.activeMu.Lock()
	defer s.activeMu.Unlock()
	if s.active == nil {
		s.active = make(map[*session]struct{})
	}
	if on {
		s.active[st] = struct{}{}
	} else {
		delete(s.active, st)
	}
}

// audit appends a record to the trail; a failure is logged, never fatal to
// the action being audited (the recording is the primary evidence).
func (s *Server) audit(r recorder.AuditRecord) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.store.AppendAudit(ctx, r); err != nil {
		s.log.Error("audit", "type", r.Type, "err", err)
	}
}

// policyState is a policy and what is compiled from it.
type policyState struct {
	cfg    *policy.Config
	masker *mask.Engine
}

func newPolicyState(cfg *policy.Config) (*policyState, error) {
	m := cfg.Masking
	rules := make([]mask.Rule, len(m.Rules))
	for i, r := range m.Rules {
		rules[i] = mask.Rule{Name: r.Name, Pattern: r.Pattern, Replacement: r.Replacement}
	}
	engine, err := mask.New(mask.Options{Detectors: m.Detectors, Rules: rules, Columns: m.Columns})
	if err != nil {
		return nil, fmt.Errorf("masking: %w", err)
	}
	return &policyState{cfg: cfg, masker: engine}, nil
}

// config is the policy in force.
func (s *Server) config() *policy.Config { return s.current.Load().cfg }

// maskEngine is the masker of the policy in force.
func (s *Server) maskEngine() *mask.Engine { return s.current.Load().masker }

// Reload puts a new policy in force: roles, rules, targets, masking,
// approvals and session limits apply to the next decision of every
// session, open ones included. listen, data_dir and oidc take effect at
// the next start. A policy that does not compile is refused and the old
// one stays.
func (s *Server) Reload(cfg *policy.Config) error {
	state, err := newPolicyState(cfg)
	if err != nil {
		return fmt.Errorf("reload refused, the old policy stays in force: %w", err)
	}
	s.current.Store(state)
	s.log.Info("policy reloaded", "targets", len(cfg.Targets), "roles", len(cfg.Roles), "rules", len(cfg.Rules))
	s.audit(recorder.AuditRecord{Type: "policy.reload", Outcome: recorder.OutcomeSuccess,
		Detail: map[string]string{"file": cfg.Path, "targets": fmt.Sprint(len(cfg.Targets)), "rules": fmt.Sprint(len(cfg.Rules))}})
	return nil
}
