package bastion

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
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
// credential the bastion holds. The user never sees it.
func (st *session) dialSSHTarget(ctx context.Context, t policy.Target) (*gossh.Client, error) {
	hostKeys, err := keys.HostKeyCallback(t.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", t.Name, err)
	}
	signer, err := st.targetSigner(t)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", t.Name, err)
	}
	d := net.Dialer{Timeout: targetDialTimeout}
	dctx, cancel := context.WithTimeout(ctx, targetDialTimeout)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", t.Address)
	if err != nil {
		return nil, fmt.Errorf("target %s: connect %s: %w", t.Name, t.Address, err)
	}
	// The handshake gets the same bound as the dial; cleared afterwards.
	_ = conn.SetDeadline(time.Now().Add(targetDialTimeout))
	cc, chans, reqs, err := gossh.NewClientConn(conn, t.Address, &gossh.ClientConfig{
		User:            t.User,
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: hostKeys,
		ClientVersion:   "SSH-2.0-bastion",
		Timeout:         targetDialTimeout,
	})
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("target %s: %w", t.Name, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return gossh.NewClient(cc, chans, reqs), nil
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
func (st *session) proxySSH(t policy.Target, command string) exitResult {
	client, err := st.dialSSHTarget(st.ctx, t)
	if err != nil {
		st.srv.log.Warn("target connect failed", "user", st.id.User, "target", t.Name, "err", err)
		st.errorf("cannot reach %s: %v", t.Name, userFacingDialError(err))
		return exitResult{code: 255, reason: "target unreachable"}
	}
	defer client.Close()

	ts, err := client.NewSession()
	if err != nil {
		st.errorf("cannot open a session on %s: %v", t.Name, err)
		return exitResult{code: 255, reason: "target session refused"}
	}
	defer ts.Close()

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
		defer st.detachResize()
		if err := ts.RequestPty(st.pty.Term, win.Height, win.Width, st.pty.Modes); err != nil {
			st.errorf("%s refused a terminal: %v", t.Name, err)
			return exitResult{code: 255, reason: "pty refused"}
		}
		mu.Lock()
		started = true
		// A resize that arrived between attachResize and RequestPty.
		if now := st.window(); now != win {
			_ = ts.WindowChange(now.Height, now.Width)
		}
		mu.Unlock()
	}

	stdin, err := ts.StdinPipe()
	if err != nil {
		return st.internalError("stdin pipe", err)
	}
	stdout, err := ts.StdoutPipe()
	if err != nil {
		return st.internalError("stdout pipe", err)
	}
	stderr, err := ts.StderrPipe()
	if err != nil {
		return st.internalError("stderr pipe", err)
	}
	if command == "" {
		err = ts.Shell()
	} else {
		err = ts.Start(command)
	}
	if err != nil {
		st.errorf("%s refused to start the session: %v", t.Name, err)
		return exitResult{code: 255, reason: "start refused"}
	}

	sigs := make(chan ssh.Signal, 8)
	st.sess.Signals(sigs)
	defer st.sess.Signals(nil)

	inCtx, stopInput := context.WithCancel(st.ctx)
	defer stopInput()
	go func() {
		// Client EOF becomes target EOF; a target that ended stops this
		// consumer through inCtx, leaving the pump to the next one.
		_, _ = io.Copy(stdin, st.input.reader(inCtx))
		_ = stdin.Close()
	}()

	var drained sync.WaitGroup
	drained.Add(2)
	copyOut := func(dst io.Writer, src io.Reader) {
		defer drained.Done()
		if _, err := io.Copy(dst, src); err != nil {
			// The client or the recording went away: end the target side
			// so that the other copy and Wait return too.
			_ = ts.Close()
		}
	}
	go copyOut(st.stdout, stdout)
	go copyOut(st.stderr, stderr)
	outputDone := make(chan struct{})
	go func() { drained.Wait(); close(outputDone) }()

	waitErr := make(chan error, 1)
	go func() {
		// Drain, then report: exit-status is read only after stdout and
		// stderr reached the client.
		<-outputDone
		waitErr <- ts.Wait()
	}()

	for {
		select {
		case sig := <-sigs:
			_ = ts.Signal(gossh.Signal(sig))
		case err := <-waitErr:
			res := targetExit(err)
			if res.reason != "" {
				// The target went away without an exit status: say so,
				// or the client's 255 looks like ssh failing on its own.
				st.errorf("the connection to %s was lost (%s)", t.Name, res.reason)
			}
			return res
		case <-st.ctx.Done():
			// The client's connection ended, or the recording failed.
			_ = ts.Close()
			_ = client.Close()
			select {
			case err := <-waitErr:
				res := targetExit(err)
				res.reason = "client disconnected or recording failed"
				return res
			case <-time.After(teardownTimeout):
				return exitResult{code: 255, reason: "teardown timed out"}
			}
		}
	}
}

// targetExit maps the target's Wait result to what the client will see.
func targetExit(err error) exitResult {
	if err == nil {
		return exitResult{}
	}
	var ee *gossh.ExitError
	if errors.As(err, &ee) {
		if sig := ee.Signal(); sig != "" {
			return exitResult{code: 128 + signalNumber(sig), signal: sig}
		}
		return exitResult{code: ee.ExitStatus()}
	}
	var missing *gossh.ExitMissingError
	if errors.As(err, &missing) {
		return exitResult{code: 255, reason: "target closed without an exit status"}
	}
	return exitResult{code: 255, reason: "target connection lost: " + err.Error()}
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
	if errors.Is(err, io.EOF) {
		return "the target closed the connection"
	}
	if strings.Contains(err.Error(), "unable to authenticate") {
		return "the target refused the bastion's credential; tell the operator"
	}
	// Anything else is about the bastion's own setup (credential files,
	// CA): the operator's log has it, the user gets no paths.
	return "the bastion's connection to it is misconfigured; the operator's log has the details"
}
