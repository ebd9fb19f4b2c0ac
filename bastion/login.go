package bastion

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"charm.land/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/bastion-dev/bastion/bastion/oidclogin"
	"github.com/bastion-dev/bastion/keys"
	"github.com/bastion-dev/bastion/recorder"
)

// LoginUser is the SSH user name that runs the OIDC device flow: `ssh
// login@bastion > ~/.ssh/id_ed25519-cert.pub` with any sound key gets a
// certificate for that very key.
const LoginUser = "login"

// permLogin marks a connection authenticated for login only: it may run
// the device flow and nothing else (no targets, no forwarding).
const permLogin = "login@bastion"

// PCI DSS 8.3.4: lock an account after at most 10 failed attempts, for at
// least 30 minutes.
const (
	lockoutAttempts = 10
	lockoutDuration = 30 * time.Minute
)

// loginState is the server's part of OIDC logins.
type loginState struct {
	cfg     oidclogin.Config
	userCA  gossh.Signer
	limit   *loginLimiter
	lockout *lockout

	mu   sync.Mutex
	prov *oidclogin.Provider // discovered on first use, so a provider that is down at start does not stop the server
}

func (l *loginState) provider(ctx context.Context) (*oidclogin.Provider, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.prov != nil {
		return l.prov, nil
	}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	p, err := oidclogin.NewProvider(dctx, l.cfg)
	if err != nil {
		return nil, err
	}
	l.prov = p
	return p, nil
}

// authenticateLogin accepts any key of sound strength for the login user:
// the key is what the certificate will be issued for.
func (s *Server) authenticateLogin(meta gossh.ConnMetadata, key gossh.PublicKey) (*gossh.Permissions, error) {
	if s.login == nil {
		return nil, &keys.Refusal{Reason: "login-disabled",
			Message: "OIDC login is not configured on this bastion; ask an admin for a certificate (`bastion keys sign`)",
			Err:     errors.New("login attempted without oidc configuration")}
	}
	plain := key
	if cert, ok := key.(*gossh.Certificate); ok {
		plain = cert.Key
	}
	if err := keys.CheckKeyStrength(plain); err != nil {
		return nil, &keys.Refusal{Reason: keys.ReasonWeakKey,
			Message: "this key is too weak for a certificate; create one with `ssh-keygen -t ed25519` and log in with it",
			Err:     err}
	}
	return &gossh.Permissions{Extensions: map[string]string{
		permPublicKey: encodeKey(key),
		permLogin:     encodeKey(plain),
	}}, nil
}

// handleLogin runs the device flow for a login connection and prints the
// certificate on stdout. Everything else goes to stderr, so that
// `ssh login@bastion > id_ed25519-cert.pub` leaves just the certificate.
func (s *Server) handleLogin(sess ssh.Session) {
	ctx := sess.Context()
	_, _, hasPty := sess.Pty()
	nl := "\n"
	if hasPty {
		nl = "\r\n"
	}
	say := func(format string, args ...any) { fmt.Fprintf(sess.Stderr(), format+nl, args...) }
	client := sess.RemoteAddr().String()
	host, _, _ := net.SplitHostPort(client)
	key, err := decodeKey(sess.Permissions().Extensions[permLogin])
	if err != nil || sess.PublicKey() == nil {
		s.log.Error("login session without its key", "client", client, "err", err)
		say("bastion: internal error; please try again")
		_ = sess.Exit(1)
		return
	}
	fp := gossh.FingerprintSHA256(key)
	audit := func(typ, outcome, reason string, id *oidclogin.Identity, serial uint64, detail map[string]string) {
		r := recorder.AuditRecord{Type: typ, Outcome: outcome, Reason: reason, Client: client, KeyFingerprint: fp, Serial: serial, Detail: detail}
		if id != nil {
			r.User, r.Issuer, r.Subject = id.Principal, id.Issuer, id.Subject
		}
		actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := s.store.AppendAudit(actx, r); err != nil {
			s.log.Error("audit", "type", typ, "err", err)
		}
	}
	fail := func(reason, msg string, id *oidclogin.Identity) {
		s.log.Warn("login failed", "client", client, "reason", reason, "key", fp)
		audit("login.failure", recorder.OutcomeFailure, reason, id, 0, nil)
		say("bastion: %s", msg)
		_ = sess.Exit(1)
	}

	if sess.RawCommand() != "" {
		fail("command-refused", "the login user runs only the login; use `ssh "+LoginUser+"@"+s.hostName+"` without a command", nil)
		return
	}
	if !s.login.limit.allow(host) {
		fail("rate-limited", "too many login attempts from your address; wait a minute and try again", nil)
		return
	}
	audit("login.start", recorder.OutcomeSuccess, "", nil, 0, nil)
	prov, err := s.login.provider(ctx)
	if err != nil {
		s.log.Error("identity provider unavailable", "issuer", s.login.cfg.Issuer, "err", err)
		fail("provider-unavailable", "the identity provider cannot be reached right now; try again later or tell the operator", nil)
		return
	}
	da, err := prov.Start(ctx)
	if err != nil {
		s.log.Error("device authorization failed", "issuer", s.login.cfg.Issuer, "err", err)
		fail("device-auth-failed", "the identity provider refused to start a login; try again later or tell the operator", nil)
		return
	}
	say("To log in, open %s and enter the code %s", da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		say("or open %s", da.VerificationURIComplete)
	}
	if hasPty {
		if qr, err := oidclogin.QR(da.CompleteURI()); err == nil {
			say("%s", strings.ReplaceAll(strings.TrimRight(qr, "\n"), "\n", nl))
		}
	}
	say("Waiting for you to finish in the browser (the code expires at %s)...", da.Expiry.Local().Format("15:04:05"))

	id, err := prov.Wait(ctx, da)
	if err != nil {
		var le *oidclogin.LoginError
		if errors.As(err, &le) {
			var who *oidclogin.Identity
			if le.Principal != "" {
				who = &oidclogin.Identity{Principal: le.Principal}
				if locked, until := s.login.lockout.fail(le.Principal); locked {
					s.log.Warn("principal locked after failed logins", "user", le.Principal, "until", until)
					audit("login.lockout", recorder.OutcomeFailure, "too many failed logins", who, 0,
						map[string]string{"until": until.UTC().Format(time.RFC3339)})
				}
			}
			fail(le.Reason, le.Message, who)
			return
		}
		if ctx.Err() != nil {
			fail("cancelled", "login cancelled", nil)
			return
		}
		s.log.Error("login failed", "client", client, "err", err)
		fail("provider-error", "the login could not be completed; try again, or tell the operator if it keeps failing", nil)
		return
	}
	if locked, until := s.login.lockout.locked(id.Principal); locked {
		fail("locked", fmt.Sprintf("%s is locked after too many failed logins until %s; ask an admin if this was not you",
			id.Principal, until.Local().Format("15:04")), id)
		return
	}

	ttl := time.Duration(s.config().Certificates.TTL)
	maxTTL := time.Duration(s.config().Certificates.MaxTTL)
	if ttl > maxTTL {
		ttl = maxTTL
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	serial, err := s.store.NextSerial(sctx)
	if err != nil {
		s.log.Error("allocate serial", "err", err)
		fail("store-error", "the bastion could not issue a certificate; tell the operator", id)
		return
	}
	now := s.now()
	cert, err := keys.IssueUserCert(s.login.userCA, key, keys.UserCertRequest{
		User: id.Principal, Groups: id.Groups, TTL: ttl, MaxTTL: maxTTL, Serial: serial, Now: now})
	if err != nil {
		s.log.Error("issue certificate", "user", id.Principal, "err", err)
		fail("issue-failed", "the bastion could not issue a certificate for this login; tell the operator", id)
		return
	}
	validBefore := time.Unix(int64(cert.ValidBefore), 0)
	if err := s.store.RecordCert(sctx, recorder.CertRecord{Serial: serial, User: id.Principal, Groups: id.Groups,
		KeyFingerprint: fp, IssuedAt: now, ValidBefore: validBefore, IssuedBy: "oidc " + id.Issuer}); err != nil {
		s.log.Error("record certificate", "serial", serial, "err", err)
		fail("store-error", "the bastion could not record the certificate; tell the operator", id)
		return
	}
	s.login.lockout.succeed(id.Principal)
	audit("cert.issued", recorder.OutcomeSuccess, "", id, serial, map[string]string{
		"by": "oidc", "groups": strings.Join(id.Groups, ","), "valid_before": validBefore.UTC().Format(time.RFC3339)})
	audit("login.success", recorder.OutcomeSuccess, "", id, serial, nil)
	s.log.Info("login", "user", id.Principal, "groups", id.Groups, "serial", serial, "key", fp, "client", client, "subject", id.Subject)

	if _, err := sess.Write(keys.AuthorizedKeyLine(cert)); err != nil {
		s.log.Warn("login: certificate not delivered", "user", id.Principal, "err", err)
	}
	groups := strings.Join(id.Groups, ",")
	if groups == "" {
		groups = "none"
	}
	say("Signed in as %s (groups %s); certificate serial %d valid until %s.", id.Principal, groups, serial,
		validBefore.Local().Format("2006-01-02 15:04"))
	_ = sess.CloseWrite()
	_ = sess.Exit(0)
}
