package oidclogin

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Identity is who logged in, as the certificate and the audit log need it.
type Identity struct {
	// Principal is the certificate principal; it satisfies ValidPrincipal.
	Principal string
	// Groups are the user's groups that a certificate can carry (see
	// keys: [A-Za-z0-9._-]+), sorted and without duplicates.
	Groups []string
	// IgnoredGroups are groups from the claim that a certificate cannot
	// carry; they grant nothing, and are reported for the audit log.
	IgnoredGroups []string
	// Issuer and Subject name the account at the provider for the audit
	// trail; Subject stays stable when a username is renamed.
	Issuer, Subject string
	// Email is the email claim, when present (verified or not).
	Email string
	// AMR are the authentication methods the provider reported.
	AMR []string
	// Expiry is the ID token's expiry.
	Expiry time.Time
}

// Reasons of a LoginError, stable for logs, audit records and tests.
const (
	ReasonDenied           = "denied"             // the person pressed deny (access_denied)
	ReasonExpired          = "expired"            // the device code expired before it was used
	ReasonMFARequired      = "mfa-required"       // require_mfa and amr shows no second factor
	ReasonMissingClaim     = "missing-claim"      // no usable username, or a claim of the wrong type
	ReasonUnsafePrincipal  = "unsafe-principal"   // the username fails ValidPrincipal
	ReasonDomainNotAllowed = "domain-not-allowed" // email missing, unverified or outside allowed_domains
	ReasonGroupRequired    = "group-required"     // in none of required_groups
	ReasonInvalidToken     = "invalid-token"      // ID token signature, issuer, audience or expiry
)

// LoginError is a login refused because of who the person is or what they
// did, as opposed to a provider or configuration failure. Message is safe
// to show the person (it names claims, never secrets or token contents
// beyond their own username); Err carries the detail for the operator.
type LoginError struct {
	Reason  string
	Message string
	Err     error
	// Principal is who failed, when the token was genuine and named a
	// valid user but a policy refused it (no MFA, wrong group): the
	// bastion counts failed logins per principal to lock brute force.
	Principal string
}

func (e *LoginError) Error() string {
	s := "oidclogin: login refused (" + e.Reason + "): " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *LoginError) Unwrap() error { return e.Err }

// ValidPrincipal reports whether s may be a certificate principal and a
// name in policy and audit: 1 to 32 characters of [a-z0-9._-], starting
// with a letter or digit. That excludes ssh's and shells' special
// characters, path separators, upper case (no two spellings of one user)
// and names like "." or "-rf".
func ValidPrincipal(s string) error {
	if s == "" {
		return fmt.Errorf("principal is empty")
	}
	if len(s) > 32 {
		return fmt.Errorf("principal is %d characters long; at most 32 are allowed", len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if i == 0 && !alnum {
			return fmt.Errorf("principal must start with a lower-case letter or digit, not %q", string(rune(c)))
		}
		if !alnum && c != '.' && c != '_' && c != '-' {
			if c >= 'A' && c <= 'Z' {
				return fmt.Errorf("principal contains the upper-case letter %q; only a-z, 0-9, '.', '_' and '-' are allowed", string(rune(c)))
			}
			return fmt.Errorf("principal contains %q; only a-z, 0-9, '.', '_' and '-' are allowed", string(rune(c)))
		}
	}
	return nil
}

// Factor categories of RFC 8176 authentication method references.
var (
	amrKnowledge  = []string{"pwd", "pin", "kba"}
	amrPossession = []string{"otp", "hwk", "swk", "sms", "tel", "sc", "pop"}
	amrInherence  = []string{"fpt", "face", "iris", "retina", "vbm"}
)

// IsMFA reports whether amr shows multi-factor authentication: either the
// provider says so ("mfa"), or the methods cover two of the three factor
// categories of RFC 8176 (knowledge: pwd, pin, kba; possession: otp, hwk,
// swk, sms, tel, sc, pop; inherence: fpt, face, iris, retina, vbm). So
// ["pwd","otp"], ["hwk","pin"] and ["pwd","mfa"] pass; ["pwd"], ["otp"]
// and ["hwk"] alone do not: one factor, however strong, is one factor
// (PCI DSS 8.4/8.5 ask for two different ones). Other values ("user",
// "mca", "rba", "geo", "wia", vendor values) count for nothing.
func IsMFA(amr []string) bool {
	if slices.Contains(amr, "mfa") {
		return true
	}
	n := 0
	for _, cat := range [][]string{amrKnowledge, amrPossession, amrInherence} {
		if slices.ContainsFunc(amr, func(m string) bool { return slices.Contains(cat, m) }) {
			n++
		}
	}
	return n >= 2
}

// mapClaims turns verified ID token claims into an Identity, applying
// cfg's requirements. Checks run strongest first: how the person
// authenticated, then who they are, then where they may go.
func mapClaims(cfg Config, claims map[string]any) (*Identity, error) {
	id := &Identity{}
	amr, ok := stringList(claims["amr"])
	if !ok {
		return nil, &LoginError{Reason: ReasonMissingClaim, Message: `the identity provider's "amr" claim is not a list of strings`}
	}
	id.AMR = amr
	if cfg.RequireMFA && !IsMFA(amr) {
		return nil, &LoginError{Reason: ReasonMFARequired, Message: "this bastion requires multi-factor authentication; log in at the identity provider with a second factor", Err: fmt.Errorf("amr %q", amr)}
	}

	email, _ := claims["email"].(string)
	verified := isTrue(claims["email_verified"])
	id.Email = email

	principal, err := principalFromClaims(cfg.UsernameClaim, claims, email, verified)
	if err != nil {
		return nil, err
	}
	id.Principal = principal

	if len(cfg.AllowedDomains) > 0 {
		at := strings.LastIndexByte(email, '@')
		if at < 0 || !verified {
			return nil, &LoginError{Reason: ReasonDomainNotAllowed, Message: "this bastion requires a verified email address from an allowed domain, and the identity provider sent none"}
		}
		domain := strings.ToLower(email[at+1:])
		if !slices.ContainsFunc(cfg.AllowedDomains, func(d string) bool { return strings.EqualFold(d, domain) }) {
			return nil, &LoginError{Reason: ReasonDomainNotAllowed, Message: fmt.Sprintf("email domain %q is not allowed on this bastion", domain)}
		}
	}

	groups, ok := stringList(claims[cfg.GroupsClaim])
	if !ok {
		return nil, &LoginError{Reason: ReasonMissingClaim, Message: fmt.Sprintf("the identity provider's %q claim is not a list of strings", cfg.GroupsClaim)}
	}
	for _, g := range groups {
		if validGroup(g) {
			id.Groups = append(id.Groups, g)
		} else {
			id.IgnoredGroups = append(id.IgnoredGroups, g)
		}
	}
	slices.Sort(id.Groups)
	id.Groups = slices.Compact(id.Groups)
	if len(cfg.RequiredGroups) > 0 && !slices.ContainsFunc(cfg.RequiredGroups, func(g string) bool { return slices.Contains(id.Groups, g) }) {
		return nil, &LoginError{Reason: ReasonGroupRequired, Message: "you are not in any group allowed to log in to this bastion", Err: fmt.Errorf("groups %q, required one of %q", id.Groups, cfg.RequiredGroups)}
	}
	return id, nil
}

// principalFromClaims picks the principal: the username claim as is, or
// else the lower-cased local part of a verified email. An unverified email
// is not used: at some providers users can set it to anything.
func principalFromClaims(claim string, claims map[string]any, email string, verified bool) (string, error) {
	fromEmail := func() (string, error) {
		at := strings.LastIndexByte(email, '@')
		if at < 0 || !verified {
			return "", &LoginError{Reason: ReasonMissingClaim, Message: fmt.Sprintf("the identity provider sent no %q claim and no verified email to take a username from", claim)}
		}
		p := strings.ToLower(email[:at])
		if err := ValidPrincipal(p); err != nil {
			return "", &LoginError{Reason: ReasonUnsafePrincipal, Message: fmt.Sprintf("the username %q taken from your email cannot be used: %v", p, err)}
		}
		return p, nil
	}
	if claim == "email" {
		return fromEmail()
	}
	v, present := claims[claim]
	if !present || v == nil || v == "" {
		return fromEmail()
	}
	s, ok := v.(string)
	if !ok {
		return "", &LoginError{Reason: ReasonMissingClaim, Message: fmt.Sprintf("the identity provider's %q claim is not a string", claim)}
	}
	if err := ValidPrincipal(s); err != nil {
		return "", &LoginError{Reason: ReasonUnsafePrincipal, Message: fmt.Sprintf("the username %q from the %q claim cannot be used: %v", s, claim, err)}
	}
	return s, nil
}

// stringList accepts a claim that is absent, a string, or an array of
// strings; anything else is malformed.
func stringList(v any) ([]string, bool) {
	switch v := v.(type) {
	case nil:
		return nil, true
	case string:
		if v == "" {
			return nil, true
		}
		return []string{v}, true
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// isTrue accepts true and "true": some providers (Cognito) send strings.
func isTrue(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// validGroup mirrors keys' rule for the certificate's groups extension.
func validGroup(g string) bool {
	if g == "" || len(g) > 128 {
		return false
	}
	for i := 0; i < len(g); i++ {
		c := g[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
