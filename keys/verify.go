package keys

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Refusal reasons: stable machine words for logs, metrics and alerts. New
// reasons may be added; existing ones never change meaning.
const (
	ReasonNotCertificate        = "not-certificate"         // a plain public key, or no key
	ReasonUnknownAuthority      = "unknown-authority"       // signed by a key other than our user CA
	ReasonExpired               = "expired"                 // now >= ValidBefore
	ReasonNotYetValid           = "not-yet-valid"           // now < ValidAfter
	ReasonRevoked               = "revoked"                 // IsRevoked said so
	ReasonWeakKey               = "weak-key"                // CheckKeyStrength refused the key or the CA
	ReasonBadPrincipal          = "bad-principal"           // not exactly one principal, or one that fails ValidPrincipal
	ReasonNotUserCertificate    = "not-user-certificate"    // a host certificate presented for login
	ReasonSourceAddress         = "source-address"          // the source-address critical option excludes the client
	ReasonRevocationCheckFailed = "revocation-check-failed" // IsRevoked returned an error: fail closed
	ReasonBadSignature          = "bad-signature"           // claims our CA but the signature does not verify
	ReasonUnsupportedOption     = "unsupported-option"      // a critical option we do not enforce (anything but source-address)
	ReasonBadGroups             = "bad-groups"              // GroupsExtension is malformed
	ReasonInvalidCertificate    = "invalid-certificate"     // ssh.CertChecker refused for a reason not classified above
)

// Refusal is an authentication refusal: Reason is a stable machine word ("not-certificate", "unknown-authority", "expired",
// "not-yet-valid", "revoked", "weak-key", "bad-principal", "not-user-certificate", "source-address", "revocation-check-failed", "bad-signature"),
// Message is what the user may see (safe: no internals, tells what to do next, e.g. "your certificate expired at 2026-12-01T10:00Z; get a new one with `ssh login@<bastion>` or ask an admin for `bastion keys sign`"),
// Err is the detailed cause for the operator log. Implements error and Unwrap.
//
// See the Reason* constants for the full list, including reasons added since.
type Refusal struct {
	Reason, Message string
	Err             error
}

// Error is the operator-facing text: reason and detailed cause. Show users
// Message instead.
func (r *Refusal) Error() string {
	if r.Err == nil {
		return "refused (" + r.Reason + ")"
	}
	return "refused (" + r.Reason + "): " + r.Err.Error()
}

// Unwrap returns the detailed cause.
func (r *Refusal) Unwrap() error { return r.Err }

// Identity is who a certificate says the user is.
type Identity struct {
	User                    string   // the certificate's sole principal
	Groups                  []string // from GroupsExtension, sorted
	Serial                  uint64
	KeyID                   string
	KeyFingerprint          string // ssh.FingerprintSHA256 of the certified key (cert.Key)
	ValidAfter, ValidBefore time.Time
}

// Verifier authenticates user certificates issued by our user CA. It fails closed: any error in the revocation check refuses.
//
// A Verifier is not modified by Authenticate, so one value may serve all
// connections concurrently provided IsRevoked and Now are safe to call concurrently.
type Verifier struct {
	CA ssh.PublicKey // our user CA public key; only certificates signed by exactly this key are accepted
	// IsRevoked is asked about every certificate that passed all other
	// checks; issuedAt is when IssueUserCert signed it (ValidAfter plus the
	// backdate), so a revocation of a user can spare certificates issued
	// after it. nil means "nothing revoked".
	IsRevoked func(serial uint64, user string, issuedAt time.Time) (bool, error)
	Now       func() time.Time // nil means time.Now

	// Host is the bastion's address as users type it ("bastion.corp" or
	// "bastion.corp -p 2222"), used only to make refusal messages copy-pasteable.
	// Empty means the placeholder "<bastion>".
	Host string
}

// Authenticate verifies key as presented on connection meta. It must use ssh.CertChecker.Authenticate (NOT bare CheckCert: that
// accepts host certs and skips source-address). The SSH login name meta.User() may be the principal OR something else (a target name,
// or "login"): the certificate's principal is its sole ValidPrincipals entry and Authenticate checks against that principal by
// wrapping meta so User() returns it. Certificates with zero or more than one principal are refused ("bad-principal").
// Returns a *Refusal (as error) for every refusal; plain public keys -> "not-certificate".
//
// Checks run in this order, so the reason names the first problem: key type,
// authority, signature (everything after it is about a certificate we really
// issued), key strength, principal, critical options, source-address,
// validity window, groups, then ssh.CertChecker.Authenticate as the final
// authority on everything it knows, then revocation. meta.RemoteAddr() must be
// a *net.TCPAddr when the certificate carries source-address; meta may be nil
// only for certificates without it.
func (v *Verifier) Authenticate(meta ssh.ConnMetadata, key ssh.PublicKey) (*Identity, error) {
	login := "ssh login@" + v.host()
	renew := "get a new one with `" + login + "` or ask an admin for `bastion keys sign`"

	cert, ok := key.(*ssh.Certificate)
	if !ok || cert == nil {
		typ := "no key"
		if ok {
			typ = "nil certificate"
		} else if key != nil {
			typ = key.Type() + " key " + ssh.FingerprintSHA256(key)
		}
		return nil, &Refusal{ReasonNotCertificate,
			"this bastion accepts only certificates from its CA, not plain keys; get one for this key with `" + login + "`, or ask an admin for `bastion keys sign`",
			fmt.Errorf("presented a plain public key (%s)", typ)}
	}
	if cert.Key == nil || cert.SignatureKey == nil || cert.Signature == nil {
		return nil, &Refusal{ReasonInvalidCertificate, "your certificate is malformed; " + renew,
			errors.New("certificate lacks key, signature key or signature")}
	}
	if cert.CertType != ssh.UserCert {
		return nil, &Refusal{ReasonNotUserCertificate,
			"you presented a host certificate; log in with your user certificate (usually ~/.ssh/id_ed25519-cert.pub)",
			fmt.Errorf("certificate type %d (want user certificate %d), key id %q, serial %d", cert.CertType, ssh.UserCert, cert.KeyId, cert.Serial)}
	}
	if v.CA == nil {
		return nil, &Refusal{ReasonUnknownAuthority, "the bastion cannot check certificates right now; tell an admin",
			errors.New("verifier has no user CA configured")}
	}
	if !sameKey(cert.SignatureKey, v.CA) {
		return nil, &Refusal{ReasonUnknownAuthority, "your certificate was not issued by this bastion's CA; " + renew,
			fmt.Errorf("certificate key id %q serial %d signed by %s %s, want user CA %s", cert.KeyId, cert.Serial,
				cert.SignatureKey.Type(), ssh.FingerprintSHA256(cert.SignatureKey), ssh.FingerprintSHA256(v.CA))}
	}
	if err := verifyCertSignature(cert); err != nil {
		return nil, &Refusal{ReasonBadSignature, "your certificate is damaged or was not signed by this bastion; " + renew,
			fmt.Errorf("certificate key id %q serial %d names our CA but: %w", cert.KeyId, cert.Serial, err)}
	}
	// From here on the certificate is one our CA signed.
	if err := CheckKeyStrength(cert); err != nil {
		return nil, &Refusal{ReasonWeakKey,
			"your key type is too weak for this bastion; create a new key with `ssh-keygen -t ed25519` and get a certificate for it with `" + login + "`",
			fmt.Errorf("certificate key id %q serial %d: %w", cert.KeyId, cert.Serial, err)}
	}
	if len(cert.ValidPrincipals) != 1 {
		return nil, &Refusal{ReasonBadPrincipal, "your certificate must name exactly one user; " + renew,
			fmt.Errorf("certificate key id %q serial %d has %d principals %q, want exactly 1", cert.KeyId, cert.Serial, len(cert.ValidPrincipals), cert.ValidPrincipals)}
	}
	principal := cert.ValidPrincipals[0]
	if err := ValidPrincipal(principal); err != nil {
		return nil, &Refusal{ReasonBadPrincipal, "your certificate names an invalid user; " + renew,
			fmt.Errorf("certificate key id %q serial %d: %w", cert.KeyId, cert.Serial, err)}
	}
	for opt := range cert.CriticalOptions {
		if opt != sourceAddressOption {
			return nil, &Refusal{ReasonUnsupportedOption, "your certificate carries a restriction this bastion cannot enforce; " + renew,
				fmt.Errorf("certificate key id %q serial %d has unsupported critical option %q", cert.KeyId, cert.Serial, opt)}
		}
	}
	var remote net.Addr
	if meta != nil {
		remote = meta.RemoteAddr()
	}
	if allowed, ok := cert.CriticalOptions[sourceAddressOption]; ok {
		if err := checkSourceAddress(remote, allowed); err != nil {
			return nil, &Refusal{ReasonSourceAddress,
				"your certificate does not allow logins from " + addrHost(remote) + "; connect from an allowed network or ask an admin",
				fmt.Errorf("certificate key id %q serial %d: %w", cert.KeyId, cert.Serial, err)}
		}
	}
	now := v.now()
	validAfter, validBefore := certTime(cert.ValidAfter), certTime(cert.ValidBefore)
	if int64(cert.ValidAfter) < 0 || now.Unix() < int64(cert.ValidAfter) {
		return nil, &Refusal{ReasonNotYetValid,
			"your certificate is not valid until " + formatTime(validAfter) + "; check your computer's clock, or wait until then",
			fmt.Errorf("certificate key id %q serial %d valid after %v, now %v", cert.KeyId, cert.Serial, validAfter, now.UTC())}
	}
	if cert.ValidBefore != ssh.CertTimeInfinity && (int64(cert.ValidBefore) < 0 || now.Unix() >= int64(cert.ValidBefore)) {
		return nil, &Refusal{ReasonExpired, "your certificate expired " + ago(now.Sub(validBefore)) + " (at " + formatTime(validBefore) + "); " + renew,
			fmt.Errorf("certificate key id %q serial %d expired at %v, now %v", cert.KeyId, cert.Serial, validBefore, now.UTC())}
	}
	groups, err := ParseGroups(cert.Extensions[GroupsExtension])
	if err != nil {
		return nil, &Refusal{ReasonBadGroups, "your certificate's group list is malformed; " + renew,
			fmt.Errorf("certificate key id %q serial %d: %w", cert.KeyId, cert.Serial, err)}
	}

	// The library check is the gate of record; the checks above only make its
	// verdict explainable. It sees the principal as the login name, because
	// the name typed after ssh routes the session and is not an identity claim.
	checker := ssh.CertChecker{
		IsUserAuthority: func(auth ssh.PublicKey) bool { return sameKey(auth, v.CA) },
		Clock:           func() time.Time { return now },
	}
	if _, err := checker.Authenticate(principalMeta{ConnMetadata: meta, principal: principal}, cert); err != nil {
		return nil, &Refusal{ReasonInvalidCertificate, "your certificate was not accepted; " + renew,
			fmt.Errorf("certificate key id %q serial %d: %w", cert.KeyId, cert.Serial, err)}
	}

	if v.IsRevoked != nil {
		revoked, err := v.IsRevoked(cert.Serial, principal, time.Unix(int64(cert.ValidAfter), 0).Add(userCertBackdate))
		if err != nil {
			return nil, &Refusal{ReasonRevocationCheckFailed,
				"the bastion could not check your certificate right now; try again in a minute, and tell an admin if this persists",
				fmt.Errorf("revocation check for serial %d user %q: %w", cert.Serial, principal, err)}
		}
		if revoked {
			return nil, &Refusal{ReasonRevoked,
				fmt.Sprintf("your certificate (serial %d) has been revoked; ask an admin before getting a new one with `%s`", cert.Serial, login),
				fmt.Errorf("certificate key id %q serial %d user %q is revoked", cert.KeyId, cert.Serial, principal)}
		}
	}

	return &Identity{
		User:           principal,
		Groups:         groups,
		Serial:         cert.Serial,
		KeyID:          cert.KeyId,
		KeyFingerprint: ssh.FingerprintSHA256(cert.Key),
		ValidAfter:     validAfter,
		ValidBefore:    validBefore,
	}, nil
}

const sourceAddressOption = "source-address"

func (v *Verifier) now() time.Time {
	if v.Now == nil {
		return time.Now()
	}
	return v.Now()
}

func (v *Verifier) host() string {
	if v.Host == "" {
		return "<bastion>"
	}
	return v.Host
}

// principalMeta presents the certificate's principal as the login name; every
// other method is the real connection's. A nil ConnMetadata is allowed for
// callers that only call User(), which is all CertChecker.Authenticate does.
type principalMeta struct {
	ssh.ConnMetadata
	principal string
}

func (m principalMeta) User() string { return m.principal }

func sameKey(a, b ssh.PublicKey) bool {
	return a != nil && b != nil && bytes.Equal(a.Marshal(), b.Marshal())
}

// verifyCertSignature checks the CA signature over the certificate body. It
// mirrors x/crypto's unexported bytesForSigning (the marshalled certificate
// minus the signature field, whose empty length prefix is the last 4 bytes),
// so a forged certificate is named as such before any other check speaks
// about its contents.
func verifyCertSignature(cert *ssh.Certificate) error {
	c := *cert
	c.Signature = nil
	body := c.Marshal()
	if len(body) < 4 {
		return errors.New("certificate too short")
	}
	if err := cert.SignatureKey.Verify(body[:len(body)-4], cert.Signature); err != nil {
		return fmt.Errorf("CA signature does not verify: %w", err)
	}
	return nil
}

// checkSourceAddress enforces the source-address critical option the way
// OpenSSH does: a comma-separated list of addresses and CIDR blocks, one of
// which must contain the client's IP. A malformed list refuses.
func checkSourceAddress(remote net.Addr, list string) error {
	tcp, ok := remote.(*net.TCPAddr)
	if !ok || tcp == nil {
		return fmt.Errorf("source-address %q required but client address %v is not a TCP address", list, remote)
	}
	for _, entry := range strings.Split(list, ",") {
		if ip := net.ParseIP(entry); ip != nil {
			if ip.Equal(tcp.IP) {
				return nil
			}
			continue
		}
		_, block, err := net.ParseCIDR(entry)
		if err != nil {
			return fmt.Errorf("malformed source-address entry %q: %w", entry, err)
		}
		if block.Contains(tcp.IP) {
			return nil
		}
	}
	return fmt.Errorf("client address %v is not in source-address %q", tcp, list)
}

func addrHost(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok && tcp != nil {
		return tcp.IP.String()
	}
	return "your address"
}

// certTime converts a certificate timestamp; CertTimeInfinity and other
// values beyond int64 map to the largest representable time.
func certTime(t uint64) time.Time {
	if t > 1<<62 {
		return time.Unix(1<<62, 0).UTC()
	}
	return time.Unix(int64(t), 0).UTC()
}

// ago says how long ago d was, the way a person would: "2h ago",
// "3m ago", "just now".
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	default:
		return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
	}
}

// formatTime is the user-facing timestamp format: minute precision, UTC,
// unambiguous across time zones.
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04Z") }
