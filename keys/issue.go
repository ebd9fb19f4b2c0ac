package keys

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Backdating of ValidAfter, so a certificate is usable at once on a machine
// whose clock runs a little behind the issuer's.
const (
	userCertBackdate   = time.Minute
	targetCertBackdate = 30 * time.Second
	hostCertBackdate   = 5 * time.Minute
)

// MaxTargetCertTTL caps IssueTargetCert. A target certificate is a credential
// the bastion mints for itself on every connection; one that outlives the
// handshake by more than this is a standing credential, which is what the
// target CA exists to avoid.
const MaxTargetCertTTL = time.Hour

// maxKeyIDLen bounds KeyId values: sshd writes them to its log verbatim.
const maxKeyIDLen = 256

// permitPTY is the only extension the bastion grants: users get terminals,
// and nothing else (no agent, port or X11 forwarding, no ~/.ssh/rc).
const permitPTY = "permit-pty"

// UserCertRequest is what IssueUserCert needs to certify a user's key.
type UserCertRequest struct {
	User   string        // principal; must pass ValidPrincipal
	Groups []string      // each must match [A-Za-z0-9._-]+ ; stored sorted, comma-joined in GroupsExtension
	TTL    time.Duration // > 0, must be <= MaxTTL
	MaxTTL time.Duration // certificates.max_ttl; a TTL above it is an error that names both values
	Serial uint64        // unique, non-zero, chosen by the caller (the store hands out serials)
	Now    time.Time
}

// IssueUserCert signs pub into a user certificate: CertType UserCert, ValidPrincipals [User], KeyId "user=<u> serial=<n>",
// ValidAfter Now-1m, ValidBefore Now+TTL, Extensions {permit-pty:"", GroupsExtension: "a,b"} and nothing else, no critical options.
// Refuses a weak pub key (CheckKeyStrength) and a pub that is itself a certificate.
//
// GroupsExtension is always present, with the value "" when the user has no
// groups, so that a verifier can tell "no groups" from "not our certificate".
func IssueUserCert(ca ssh.Signer, pub ssh.PublicKey, req UserCertRequest) (*ssh.Certificate, error) {
	if err := checkIssueKeys(ca, pub); err != nil {
		return nil, fmt.Errorf("issue certificate for user %q: %w", req.User, err)
	}
	if err := ValidPrincipal(req.User); err != nil {
		return nil, fmt.Errorf("issue user certificate: %w", err)
	}
	groups, err := normalizeGroups(req.Groups)
	if err != nil {
		return nil, fmt.Errorf("issue certificate for user %q: %w", req.User, err)
	}
	if req.MaxTTL <= 0 {
		return nil, fmt.Errorf("issue certificate for user %q: maximum TTL is not set (certificates.max_ttl must be > 0)", req.User)
	}
	if req.TTL <= 0 {
		return nil, fmt.Errorf("issue certificate for user %q: TTL %v must be > 0", req.User, req.TTL)
	}
	if req.TTL > req.MaxTTL {
		return nil, fmt.Errorf("issue certificate for user %q: TTL %v exceeds the maximum %v (certificates.max_ttl); ask for %v or less", req.User, req.TTL, req.MaxTTL, req.MaxTTL)
	}
	if req.Serial == 0 {
		return nil, fmt.Errorf("issue certificate for user %q: serial must be non-zero", req.User)
	}
	after, before, err := window(req.Now, userCertBackdate, req.TTL)
	if err != nil {
		return nil, fmt.Errorf("issue certificate for user %q: %w", req.User, err)
	}
	cert := &ssh.Certificate{
		Key:             pub,
		Serial:          req.Serial,
		CertType:        ssh.UserCert,
		KeyId:           "user=" + req.User + " serial=" + strconv.FormatUint(req.Serial, 10),
		ValidPrincipals: []string{req.User},
		ValidAfter:      after,
		ValidBefore:     before,
		Permissions: ssh.Permissions{
			Extensions: map[string]string{
				permitPTY:       "",
				GroupsExtension: strings.Join(groups, ","),
			},
		},
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		return nil, fmt.Errorf("sign certificate for user %q: %w", req.User, err)
	}
	return cert, nil
}

// IssueTargetCert signs a short-lived (ttl, typically 1 minute; ValidAfter Now-30s) user certificate for the bastion's own key that a target sshd
// trusts through TrustedUserCAKeys. principal is the target's login user. KeyId names the bastion user and session id for the target's logs: keyID param.
//
// principal must be 1-64 characters of [A-Za-z0-9._@-] not starting with '-'
// (wider than ValidPrincipal because target accounts such as "ec2-user" or
// "Administrator" are not ours to name). keyID must be 1-256 printable ASCII
// characters, because the target's sshd logs it verbatim. ttl must be in
// (0, MaxTargetCertTTL]. The serial is random, so target logs can tell two
// connections apart. The only extension is permit-pty.
func IssueTargetCert(ca ssh.Signer, pub ssh.PublicKey, principal, keyID string, now time.Time, ttl time.Duration) (*ssh.Certificate, error) {
	if err := checkIssueKeys(ca, pub); err != nil {
		return nil, fmt.Errorf("issue target certificate for %q: %w", principal, err)
	}
	if err := validTargetPrincipal(principal); err != nil {
		return nil, fmt.Errorf("issue target certificate: %w", err)
	}
	if err := validKeyID(keyID); err != nil {
		return nil, fmt.Errorf("issue target certificate for %q: %w", principal, err)
	}
	if ttl <= 0 || ttl > MaxTargetCertTTL {
		return nil, fmt.Errorf("issue target certificate for %q: TTL %v must be > 0 and <= %v", principal, ttl, MaxTargetCertTTL)
	}
	after, before, err := window(now, targetCertBackdate, ttl)
	if err != nil {
		return nil, fmt.Errorf("issue target certificate for %q: %w", principal, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("issue target certificate for %q: %w", principal, err)
	}
	cert := &ssh.Certificate{
		Key:             pub,
		Serial:          serial,
		CertType:        ssh.UserCert,
		KeyId:           keyID,
		ValidPrincipals: []string{principal},
		ValidAfter:      after,
		ValidBefore:     before,
		Permissions:     ssh.Permissions{Extensions: map[string]string{permitPTY: ""}},
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		return nil, fmt.Errorf("sign target certificate for %q: %w", principal, err)
	}
	return cert, nil
}

// IssueHostCert signs the bastion host key into a host certificate for the given hostnames (principals), long-lived (validity param).
//
// Each principal is a host name or address, 1-253 characters of
// [A-Za-z0-9.:_*?-] (':' for IPv6, '*' and '?' for OpenSSH wildcards). The
// certificate is backdated by five minutes for clients with slow clocks, has
// a random serial, KeyId "host=<first principal>", and no extensions or
// critical options (OpenSSH defines none for host certificates).
func IssueHostCert(ca ssh.Signer, hostKey ssh.PublicKey, principals []string, now time.Time, validity time.Duration) (*ssh.Certificate, error) {
	if err := checkIssueKeys(ca, hostKey); err != nil {
		return nil, fmt.Errorf("issue host certificate: %w", err)
	}
	if len(principals) == 0 {
		return nil, errors.New("issue host certificate: no host names given; list the names clients use to reach the bastion")
	}
	for _, p := range principals {
		if err := validHostPrincipal(p); err != nil {
			return nil, fmt.Errorf("issue host certificate: %w", err)
		}
	}
	if validity <= 0 {
		return nil, fmt.Errorf("issue host certificate: validity %v must be > 0", validity)
	}
	after, before, err := window(now, hostCertBackdate, validity)
	if err != nil {
		return nil, fmt.Errorf("issue host certificate: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("issue host certificate: %w", err)
	}
	cert := &ssh.Certificate{
		Key:             hostKey,
		Serial:          serial,
		CertType:        ssh.HostCert,
		KeyId:           "host=" + principals[0],
		ValidPrincipals: append([]string(nil), principals...),
		ValidAfter:      after,
		ValidBefore:     before,
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		return nil, fmt.Errorf("sign host certificate: %w", err)
	}
	return cert, nil
}

// checkIssueKeys refuses to sign with a missing or weak CA, or to certify a
// missing, weak, or already-certified key.
func checkIssueKeys(ca ssh.Signer, pub ssh.PublicKey) error {
	if ca == nil {
		return errors.New("no CA signer")
	}
	if err := checkPlainKeyStrength(ca.PublicKey()); err != nil {
		return fmt.Errorf("CA key: %w", err)
	}
	if pub == nil {
		return errors.New("no public key to certify")
	}
	if _, ok := pub.(*ssh.Certificate); ok {
		return fmt.Errorf("the key to certify is already a certificate (%s); send the plain public key (the .pub file, not -cert.pub)", pub.Type())
	}
	if err := CheckKeyStrength(pub); err != nil {
		return fmt.Errorf("refusing weak key: %w; create a new one with `ssh-keygen -t ed25519`", err)
	}
	return nil
}

// window computes [now-backdate, now+ttl] in Unix seconds, refusing a zero or
// pre-1970 clock, which would wrap ValidAfter around to the far future.
func window(now time.Time, backdate, ttl time.Duration) (after, before uint64, err error) {
	if now.IsZero() {
		return 0, 0, errors.New("issue time is not set")
	}
	a := now.Add(-backdate).Unix()
	b := now.Add(ttl).Unix()
	if a < 0 || b <= a {
		return 0, 0, fmt.Errorf("issue time %v gives an invalid validity window", now)
	}
	return uint64(a), uint64(b), nil
}

// randomSerial returns a non-zero random serial for certificates whose serials
// are not tracked by the store (target and host certificates).
func randomSerial() (uint64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("random serial: %w", err)
		}
		if s := binary.BigEndian.Uint64(b[:]); s != 0 {
			return s, nil
		}
	}
}

func validTargetPrincipal(p string) error {
	if p == "" || len(p) > 64 {
		return fmt.Errorf("target login user %q must be 1-64 characters", p)
	}
	if p[0] == '-' {
		return fmt.Errorf("target login user %q must not start with '-'", p)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strings.IndexByte("._@-", c) >= 0) {
			return fmt.Errorf("target login user %q contains %q; only A-Z, a-z, 0-9, '.', '_', '@' and '-' are allowed", p, string(rune(c)))
		}
	}
	return nil
}

func validKeyID(id string) error {
	if id == "" || len(id) > maxKeyIDLen {
		return fmt.Errorf("key id must be 1-%d characters, got %d", maxKeyIDLen, len(id))
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("key id %q contains a non-printable character; it is written to the target's log", id)
		}
	}
	return nil
}

func validHostPrincipal(p string) error {
	if p == "" || len(p) > 253 {
		return fmt.Errorf("host name %q must be 1-253 characters", p)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strings.IndexByte(".:_*?-", c) >= 0) {
			return fmt.Errorf("host name %q contains %q; only letters, digits and . : _ * ? - are allowed", p, string(rune(c)))
		}
	}
	return nil
}
