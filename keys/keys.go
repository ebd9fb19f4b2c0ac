// Package keys owns the bastion's key material and certificate rules: the user
// CA that signs user certificates, the bastion host key and the host CA that
// certifies it, the target CA that signs the bastion's one-minute credentials
// for targets, key-strength policy, certificate verification for logins, and
// known_hosts checking of targets.
//
// The package is pure: it does no network I/O and keeps no global state. Every
// time-dependent operation takes the time from its caller (a Now field or
// argument), so certificate windows are tested without sleeping.
//
// Lifecycle, in call order, for a login:
//
//  1. The server loads (or creates) the user CA with LoadOrCreateSigner.
//  2. An admin or the OIDC flow signs a user's key with IssueUserCert.
//  3. On each connection the server calls Verifier.Authenticate, which
//     returns an Identity or a *Refusal (Message for the user, Err for the log).
//  4. To reach an SSH target the bastion either loads a per-target key with
//     LoadSigner or signs its own key with IssueTargetCert, and checks the
//     target's host key with the callback from HostKeyCallback.
package keys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// GroupsExtension is the certificate extension that carries the user's groups, comma-separated.
const GroupsExtension = "groups@bastion"

// MinRSABits is the smallest RSA modulus accepted anywhere (user keys, CA keys,
// target host keys). 2048 follows NIST SP 800-131A and PCI DSS "strong cryptography".
const MinRSABits = 2048

// maxPrincipalLen bounds a user name; 32 is the traditional Linux login name limit,
// so a principal can always also be a POSIX account name on a target.
const maxPrincipalLen = 32

// CheckKeyStrength accepts ed25519, sk-ed25519, ecdsa P-256/384/521, sk-ecdsa, RSA >= 2048 bits; refuses DSA, RSA < 2048, anything else,
// with an error naming the type and size. For a *ssh.Certificate it checks the certified key (cert.Key), and also the signature key of the CA.
//
// The list is an allow-list on purpose: a key type this package has not reviewed
// (for example the experimental ML-DSA types x/crypto can parse) is refused
// until someone decides it is acceptable.
func CheckKeyStrength(pub ssh.PublicKey) error {
	if pub == nil {
		return errors.New("no public key")
	}
	if cert, ok := pub.(*ssh.Certificate); ok {
		if cert == nil {
			return errors.New("nil certificate")
		}
		if err := checkPlainKeyStrength(cert.Key); err != nil {
			return fmt.Errorf("certified key: %w", err)
		}
		if err := checkPlainKeyStrength(cert.SignatureKey); err != nil {
			return fmt.Errorf("certificate authority key: %w", err)
		}
		return nil
	}
	return checkPlainKeyStrength(pub)
}

// checkPlainKeyStrength checks a key that must not itself be a certificate.
// A certificate nested inside a certificate is not a valid OpenSSH construct,
// so it is refused rather than recursed into.
func checkPlainKeyStrength(pub ssh.PublicKey) error {
	if pub == nil {
		return errors.New("no public key")
	}
	if _, ok := pub.(*ssh.Certificate); ok {
		return fmt.Errorf("key type %s is a certificate where a plain key is required", pub.Type())
	}
	typ := pub.Type()
	switch typ {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoSKED25519:
		// Fixed size; the parser already enforces 32 bytes, but a hand-built key
		// might not have gone through it.
		if cpk, ok := pub.(ssh.CryptoPublicKey); ok {
			if k, ok := cpk.CryptoPublicKey().(ed25519.PublicKey); ok && len(k) != ed25519.PublicKeySize {
				return fmt.Errorf("key type %s has invalid size %d bytes", typ, len(k))
			}
		}
		return nil
	case ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoSKECDSA256:
		want := map[string]elliptic.Curve{
			ssh.KeyAlgoECDSA256:   elliptic.P256(),
			ssh.KeyAlgoSKECDSA256: elliptic.P256(),
			ssh.KeyAlgoECDSA384:   elliptic.P384(),
			ssh.KeyAlgoECDSA521:   elliptic.P521(),
		}[typ]
		cpk, ok := pub.(ssh.CryptoPublicKey)
		if !ok {
			return fmt.Errorf("key type %s: cannot inspect curve", typ)
		}
		k, ok := cpk.CryptoPublicKey().(*ecdsa.PublicKey)
		if !ok || k.Curve != want {
			return fmt.Errorf("key type %s does not carry curve %s", typ, want.Params().Name)
		}
		return nil
	case ssh.KeyAlgoRSA:
		cpk, ok := pub.(ssh.CryptoPublicKey)
		if !ok {
			return fmt.Errorf("key type %s: cannot inspect modulus size", typ)
		}
		k, ok := cpk.CryptoPublicKey().(*rsa.PublicKey)
		if !ok || k.N == nil {
			return fmt.Errorf("key type %s: not an RSA key", typ)
		}
		if bits := k.N.BitLen(); bits < MinRSABits {
			return fmt.Errorf("key type %s with %d bits is too weak (minimum %d bits)", typ, bits, MinRSABits)
		}
		return nil
	case ssh.InsecureKeyAlgoDSA:
		return fmt.Errorf("key type %s (DSA, 1024 bits) is too weak; DSA is not accepted", typ)
	default:
		return fmt.Errorf("key type %s is not accepted (use ed25519, ecdsa or RSA >= %d bits)", typ, MinRSABits)
	}
}

// ValidPrincipal reports whether s is a safe user name.
//
// The exact rule: 1 to 32 bytes, each one of a-z, 0-9, '.', '_' or '-', and the
// first one a letter or a digit. Upper case is refused so that "Alice" and
// "alice" cannot be two people; a leading '-' or '.' is refused so a name can
// never be mistaken for a command-line flag or a hidden/relative path; commas
// and spaces are refused because principals are comma-joined in OpenSSH files.
func ValidPrincipal(s string) error {
	if s == "" {
		return errors.New("user name is empty")
	}
	if len(s) > maxPrincipalLen {
		return fmt.Errorf("user name is %d characters long; at most %d are allowed", len(s), maxPrincipalLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		if i == 0 && !alnum {
			return fmt.Errorf("user name %q must start with a lower-case letter or a digit", s)
		}
		if !alnum && c != '.' && c != '_' && c != '-' {
			return fmt.Errorf("user name %q contains %q; only a-z, 0-9, '.', '_' and '-' are allowed", s, string(rune(c)))
		}
	}
	return nil
}

// validGroup reports whether g is a group name that can be stored in
// GroupsExtension: one or more of [A-Za-z0-9._-]. Commas are excluded because
// they separate groups in the extension value.
func validGroup(g string) error {
	if g == "" {
		return errors.New("group name is empty")
	}
	for i := 0; i < len(g); i++ {
		c := g[i]
		if !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("group name %q contains %q; only A-Z, a-z, 0-9, '.', '_' and '-' are allowed", g, string(rune(c)))
		}
	}
	return nil
}

// normalizeGroups validates, sorts and de-duplicates groups so that the same
// set of groups always yields the same extension value (and the same audit text).
func normalizeGroups(groups []string) ([]string, error) {
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		if err := validGroup(g); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// ParseGroups decodes a GroupsExtension value into a sorted, de-duplicated
// list. The empty string means "no groups" and yields nil. Any malformed entry
// (including an empty one from a doubled comma) is an error: the value comes
// from a certificate and must be exactly what IssueUserCert wrote.
func ParseGroups(value string) ([]string, error) {
	if value == "" {
		return nil, nil
	}
	groups, err := normalizeGroups(strings.Split(value, ","))
	if err != nil {
		return nil, fmt.Errorf("parse %s extension: %w", GroupsExtension, err)
	}
	return groups, nil
}

// AuthorizedKeyLine formats a public key (or certificate) as one authorized_keys/cert line with a trailing newline (ssh.MarshalAuthorizedKey).
// A nil key yields nil.
func AuthorizedKeyLine(pub ssh.PublicKey) []byte {
	if cert, ok := pub.(*ssh.Certificate); pub == nil || (ok && (cert == nil || cert.Key == nil || cert.SignatureKey == nil)) {
		return nil
	}
	return ssh.MarshalAuthorizedKey(pub)
}

// KnownHostsCALine returns the `@cert-authority <pattern> <key>` line for a host CA so clients can trust the bastion's host cert.
// The line ends with a newline so it can be appended to a known_hosts file as is.
//
// pattern is a known_hosts host pattern list such as "bastion.corp,*.bastion.corp"
// or "[bastion.corp]:2222". Because the signature has no error result, an
// unusable input (nil CA, a CA that is a certificate, or an empty pattern or
// one containing whitespace or control characters, which would let the pattern
// inject extra known_hosts lines) yields "" rather than a corrupt line.
func KnownHostsCALine(pattern string, ca ssh.PublicKey) string {
	if ca == nil || pattern == "" {
		return ""
	}
	if _, ok := ca.(*ssh.Certificate); ok {
		return "" // also catches a typed nil *ssh.Certificate
	}
	for i := 0; i < len(pattern); i++ {
		if c := pattern[i]; c <= ' ' || c == 0x7f || c == '#' {
			return ""
		}
	}
	return "@cert-authority " + pattern + " " + string(ssh.MarshalAuthorizedKey(ca))
}
