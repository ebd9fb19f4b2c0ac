package bastion

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"

	"charm.land/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/bastion-dev/bastion/keys"
	"github.com/bastion-dev/bastion/recorder"
)

const (
	// permPublicKey is where the SSH library looks for the key that
	// authenticated (it re-parses it into the session's PublicKey()). Setting it
	// from the permissions of the successful attempt, not from a key seen in an
	// earlier probe, is the CVE-2024-45337 clean-up.
	permPublicKey = "gliderlabs/ssh.PublicKey"
	// permIdentity carries the verified identity from authentication to the
	// session handler, inside the permissions of the successful attempt.
	permIdentity = "identity@bastion"
)

// clientCiphers are the ciphers offered to clients: AES-GCM only. OpenSSH
// picks the first cipher of its own list that the server offers, and that
// is ChaCha20-Poly1305 whenever it is offered; x/crypto has no amd64
// assembly for ChaCha20, so every byte of a session would cost the bastion
// several times what AES-GCM costs with AES-NI (which bench/ measures).
// AES-GCM is also the FIPS 140-approved AEAD, which PCI DSS assessors ask
// about. Every OpenSSH since 6.2 and PuTTY since 0.76 offers it.
func clientCiphers() []string {
	return []string{gossh.CipherAES128GCM, gossh.CipherAES256GCM}
}

// serverConfig is called once per connection.
//
// OpenSSH offers a key before its certificate. A banner for the refused
// plain key would therefore greet every successful login, so that refusal is
// kept back and told through keyboard-interactive, which a client tries only
// after every key failed. Refusals of certificates are told at once.
func (s *Server) serverConfig(_ ssh.Context) *gossh.ServerConfig {
	var mu sync.Mutex
	var heldBack error // a plain-key refusal of this connection, not yet told
	return &gossh.ServerConfig{
		Config: gossh.Config{Ciphers: clientCiphers()},
		PublicKeyCallback: func(meta gossh.ConnMetadata, key gossh.PublicKey) (*gossh.Permissions, error) {
			if meta.User() == LoginUser {
				perms, err := s.authenticateLogin(meta, key)
				if err != nil {
					s.logRefusal(meta, err)
					return nil, s.banner(err)
				}
				return perms, nil
			}
			perms, err := s.authenticate(meta, key)
			var r *keys.Refusal
			if errors.As(err, &r) && r.Reason == keys.ReasonNotCertificate {
				mu.Lock()
				heldBack = err
				mu.Unlock()
				return nil, err
			}
			if err != nil {
				return nil, s.banner(err)
			}
			return perms, nil
		},
		KeyboardInteractiveCallback: func(meta gossh.ConnMetadata, _ gossh.KeyboardInteractiveChallenge) (*gossh.Permissions, error) {
			mu.Lock()
			err := heldBack
			mu.Unlock()
			if err != nil {
				s.auditAuthFailure(meta, keys.ReasonNotCertificate, err)
			}
			if err == nil {
				err = &keys.Refusal{Reason: "no-password-auth",
					Message: "this bastion accepts only SSH certificates; passwords are never accepted; get a certificate with `ssh login@" + s.hostName + "` or ask an admin for `bastion keys sign`",
					Err:     errors.New("keyboard-interactive attempted")}
				s.logRefusal(meta, err)
			}
			return nil, s.banner(err)
		},
		// No password callback: that method is never offered.
	}
}

// authenticate decides, at once, whether key may log in. It never accepts a
// key provisionally and parks the error for later.
func (s *Server) authenticate(meta gossh.ConnMetadata, key gossh.PublicKey) (*gossh.Permissions, error) {
	id, err := s.verifier.Authenticate(meta, key)
	if err != nil {
		s.logRefusal(meta, err)
		return nil, err
	}
	// The SSH login name is only a routing hint (a target name, or the
	// user's local name that a stock client sends by default): who the user
	// is comes from the certificate alone.
	idJSON, err := json.Marshal(id)
	if err != nil {
		err = fmt.Errorf("encode identity: %w", err)
		s.logRefusal(meta, err)
		return nil, err
	}
	perms := &gossh.Permissions{Extensions: map[string]string{
		permPublicKey: encodeKey(key),
		permIdentity:  string(idJSON),
	}}
	if cert, ok := key.(*gossh.Certificate); ok {
		for k, v := range cert.Extensions {
			if k != permPublicKey && k != permIdentity {
				perms.Extensions[k] = v
			}
		}
	}
	s.log.Info("authenticated", "user", id.User, "login", meta.User(), "serial", id.Serial,
		"groups", id.Groups, "key", id.KeyFingerprint, "client", addrString(meta.RemoteAddr()))
	return perms, nil
}

// logRefusal and banner are the one way authentication says no: the
// operator's log gets the real cause, the user gets the safe message of a
// keys.Refusal as an SSH banner, and anything else a generic message.
func (s *Server) logRefusal(meta gossh.ConnMetadata, err error) {
	reason := "error"
	var r *keys.Refusal
	if errors.As(err, &r) {
		reason = r.Reason
	}
	s.log.Warn("authentication refused", "login", meta.User(), "client", addrString(meta.RemoteAddr()),
		"reason", reason, "err", err)
	if reason == keys.ReasonNotCertificate {
		// OpenSSH offers the plain key before its certificate on every
		// login: that offer is not a failed login (the keyboard-interactive
		// fallback audits it when no certificate follows).
		return
	}
	s.auditAuthFailure(meta, reason, err)
}

// auditAuthFailure records a failed authentication (PCI DSS 10.2.1.4).
func (s *Server) auditAuthFailure(meta gossh.ConnMetadata, reason string, err error) {
	s.audit(recorder.AuditRecord{Type: "auth.failure", Outcome: recorder.OutcomeFailure, Reason: reason,
		Client: addrString(meta.RemoteAddr()), Detail: map[string]string{"login": meta.User(), "error": err.Error()}})
}

func (s *Server) banner(err error) error {
	msg := "authentication failed; ask your bastion administrator for help"
	var r *keys.Refusal
	if errors.As(err, &r) {
		msg = r.Message
	}
	return &gossh.BannerError{Err: err, Message: "bastion: " + msg + "\r\n"}
}

// identityOf returns the identity that authenticated this session's
// connection, after checking that the key the session reports is the very key
// that authenticated and that its certificate is still good (not revoked, not
// expired since login).
func (s *Server) identityOf(sess ssh.Session) (*keys.Identity, error) {
	perms := sess.Permissions()
	if perms.Permissions == nil {
		return nil, errors.New("session has no authentication record")
	}
	raw, ok := perms.Extensions[permIdentity]
	if !ok {
		return nil, errors.New("session has no identity")
	}
	var id keys.Identity
	if err := json.Unmarshal([]byte(raw), &id); err != nil {
		return nil, fmt.Errorf("decode identity: %w", err)
	}
	key := sess.PublicKey()
	if key == nil || encodeKey(key) != perms.Extensions[permPublicKey] {
		return nil, errors.New("the session's key is not the key that authenticated")
	}
	again, err := s.verifier.Authenticate(sessionMeta{sess}, key)
	if err != nil {
		return nil, err
	}
	if again.Serial != id.Serial || again.KeyFingerprint != id.KeyFingerprint || again.User != id.User {
		return nil, errors.New("the session's certificate differs from the one that authenticated")
	}
	return &id, nil
}

// sessionMeta adapts a session to gossh.ConnMetadata for re-verification.
type sessionMeta struct{ sess ssh.Session }

func (m sessionMeta) User() string { return m.sess.User() }
func (m sessionMeta) SessionID() []byte {
	return []byte(m.sess.Context().SessionID())
}
func (m sessionMeta) ClientVersion() []byte { return []byte(m.sess.Context().ClientVersion()) }
func (m sessionMeta) ServerVersion() []byte { return []byte(m.sess.Context().ServerVersion()) }
func (m sessionMeta) RemoteAddr() net.Addr  { return m.sess.RemoteAddr() }
func (m sessionMeta) LocalAddr() net.Addr   { return m.sess.LocalAddr() }

func addrString(a net.Addr) string {
	if a == nil {
		return "unknown"
	}
	return a.String()
}

// encodeKey is how a key travels in permission extensions (the SSH
// library's own convention for permPublicKey).
func encodeKey(k gossh.PublicKey) string { return base64.StdEncoding.EncodeToString(k.Marshal()) }

func decodeKey(s string) (gossh.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decode key: %w", err)
	}
	return gossh.ParsePublicKey(b)
}
