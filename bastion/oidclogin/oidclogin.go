// Package oidclogin turns "a person in front of a browser" into a bastion
// identity: it runs the OAuth 2.0 Device Authorization Grant (RFC 8628) as a
// confidential client against the configured issuer, verifies the ID token and
// maps its claims to a principal and groups that can go into a certificate.
//
// The device flow fits `ssh login@bastion`: the SSH client cannot open a
// browser or receive a redirect, but it can show a URL, a code and a QR code.
//
// A login, in call order:
//
//  1. NewProvider (once, at startup): discovery through
//     <issuer>/.well-known/openid-configuration; refuses an issuer without a
//     device_authorization_endpoint.
//  2. Start: the device authorization request (authenticated with the client
//     secret); returns the URL and user code to show the person.
//  3. Wait: polls the token endpoint as RFC 8628 section 3.5 says (interval,
//     slow_down, authorization_pending, expired_token, access_denied), then
//     verifies the ID token with go-oidc (JWKS signature, issuer, audience,
//     expiry) and maps the claims.
//
// Every refusal a person may cause comes back as a *LoginError with a
// machine Reason and a Message that is safe to show them; any other error is
// operational (provider unreachable, misconfigured client) and should be
// shown as a generic failure and logged in full.
//
// Polling uses golang.org/x/oauth2's Config.DeviceAccessToken. What this
// package adds around it: the client secret on the device authorization
// request (oauth2 sends only client_id there, RFC 8628 section 3.1 wants a
// confidential client to authenticate), a default lifetime when the provider
// omits expires_in (oauth2 would poll forever), a clear "expired" instead of
// context.DeadlineExceeded, and exponential back-off on connection failures
// and 5xx answers (RFC 8628 section 3.5), where oauth2 gives up at once.
package oidclogin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Config describes the identity provider and what a login must prove.
type Config struct {
	// Issuer is the provider's issuer URL, exactly as its discovery document
	// and ID tokens spell it.
	Issuer string
	// ClientID and ClientSecret identify bastion as a confidential client.
	ClientID, ClientSecret string

	// UsernameClaim names the claim that becomes the principal. Default
	// "preferred_username". Its value must already satisfy ValidPrincipal:
	// an upper-case letter is refused, not lower-cased, so that "Alice" and
	// "alice" cannot silently become the same account. When the claim is
	// absent or empty, the local part of a verified "email" claim is used,
	// lower-cased (mailbox local parts are case-insensitive in practice).
	// UsernameClaim "email" means the email's local part directly.
	UsernameClaim string
	// GroupsClaim names the claim listing the user's groups: an array of
	// strings, or a single string. Default "groups".
	GroupsClaim string
	// RequireMFA refuses ID tokens whose "amr" claim does not show a second
	// factor; see IsMFA for the rule.
	RequireMFA bool
	// AllowedDomains, when set, requires a verified email (email_verified
	// true) whose domain is one of these, compared case-insensitively and
	// exactly (a subdomain must be listed itself).
	AllowedDomains []string
	// RequiredGroups, when set, requires the user to be in at least one.
	RequiredGroups []string
	// Scopes requested. Default: openid, profile, email, plus groups when
	// the issuer lists "groups" in scopes_supported (some providers refuse
	// an unknown scope). "openid" is always added.
	Scopes []string
	// HTTPClient talks to the provider. Nil means a client with a 10s timeout.
	HTTPClient *http.Client
	// Now is the clock for ID token expiry and Identity times. Nil: time.Now.
	Now func() time.Time
}

// Provider is a discovered issuer, ready to run logins. It is safe for
// concurrent use: one Provider serves every login of a server.
type Provider struct {
	cfg          Config
	now          func() time.Time
	client       *http.Client // for token requests
	deviceClient *http.Client // for device authorization requests: adds client authentication
	oauth        oauth2.Config
	verifier     *oidc.IDTokenVerifier
	scopes       []string
}

// defaultCodeLifetime stands in for a missing expires_in, which RFC 8628
// makes mandatory; without it oauth2 would poll until the caller gives up.
const defaultCodeLifetime = 10 * time.Minute

// maxBackoff bounds the polling interval after connection failures.
const maxBackoff = time.Minute

// maxTransient is how many connection failures or 5xx answers in a row end
// the wait: the provider is down, and the person should hear so.
const maxTransient = 5

// NewProvider discovers cfg.Issuer and checks that it can run a device
// login for this client. Call it once at startup; discovery errors here
// are configuration errors.
func NewProvider(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("oidclogin: issuer is not set")
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("oidclogin: client id and client secret are both required (bastion is a confidential client)")
	}
	if cfg.UsernameClaim == "" {
		cfg.UsernameClaim = "preferred_username"
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	cfg.AllowedDomains = slices.Clone(cfg.AllowedDomains)
	cfg.RequiredGroups = slices.Clone(cfg.RequiredGroups)
	p := &Provider{cfg: cfg, now: cfg.Now, client: cfg.HTTPClient}
	if p.now == nil {
		p.now = time.Now
	}
	if p.client == nil {
		p.client = &http.Client{Timeout: 10 * time.Second}
	}

	dctx := oidc.ClientContext(ctx, p.client)
	op, err := oidc.NewProvider(dctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidclogin: discovery for issuer %s: %w", cfg.Issuer, err)
	}
	var meta struct {
		DeviceAuthURL   string   `json:"device_authorization_endpoint"`
		ScopesSupported []string `json:"scopes_supported"`
		AuthMethods     []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := op.Claims(&meta); err != nil {
		return nil, fmt.Errorf("oidclogin: read discovery document of %s: %w", cfg.Issuer, err)
	}
	if meta.DeviceAuthURL == "" {
		return nil, fmt.Errorf("oidclogin: issuer %s advertises no device_authorization_endpoint: enable the OAuth 2.0 Device Authorization Grant (RFC 8628) in the identity provider, for client %q", cfg.Issuer, cfg.ClientID)
	}
	if err := checkEndpoint(meta.DeviceAuthURL); err != nil {
		return nil, fmt.Errorf("oidclogin: issuer %s: device_authorization_endpoint: %w", cfg.Issuer, err)
	}

	// RFC 8414: an absent list means client_secret_basic only.
	var style oauth2.AuthStyle
	switch {
	case len(meta.AuthMethods) == 0 || slices.Contains(meta.AuthMethods, "client_secret_basic"):
		style = oauth2.AuthStyleInHeader
	case slices.Contains(meta.AuthMethods, "client_secret_post"):
		style = oauth2.AuthStyleInParams
	default:
		return nil, fmt.Errorf("oidclogin: issuer %s supports neither client_secret_basic nor client_secret_post at its token endpoint (it lists %s)", cfg.Issuer, strings.Join(meta.AuthMethods, ", "))
	}
	ep := op.Endpoint()
	ep.DeviceAuthURL = meta.DeviceAuthURL
	ep.AuthStyle = style

	p.scopes = cfg.Scopes
	if len(p.scopes) == 0 {
		p.scopes = []string{oidc.ScopeOpenID, "profile", "email"}
		if slices.Contains(meta.ScopesSupported, "groups") {
			p.scopes = append(p.scopes, "groups")
		}
	} else if !slices.Contains(p.scopes, oidc.ScopeOpenID) {
		p.scopes = append([]string{oidc.ScopeOpenID}, p.scopes...)
	}
	p.scopes = slices.Clone(p.scopes)
	p.oauth = oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: ep, Scopes: p.scopes}
	p.deviceClient = &http.Client{
		Timeout:       p.client.Timeout,
		Jar:           p.client.Jar,
		CheckRedirect: p.client.CheckRedirect,
		Transport:     &clientAuthTransport{base: p.client.Transport, endpoint: meta.DeviceAuthURL, id: cfg.ClientID, secret: cfg.ClientSecret, style: style},
	}
	// The key set fetches JWKS lazily, after ctx may have ended: keep its
	// HTTP client, drop its cancellation.
	p.verifier = op.VerifierContext(oidc.ClientContext(context.WithoutCancel(ctx), p.client), &oidc.Config{ClientID: cfg.ClientID, Now: p.now})
	return p, nil
}

// Scopes reports the scopes a login asks for, for the operator's log.
func (p *Provider) Scopes() []string { return slices.Clone(p.scopes) }

// DeviceAuth is a started login: what to show the person, and the device
// code (kept unexported: it is the secret that redeems the login).
type DeviceAuth struct {
	// VerificationURI is where the person goes to type UserCode.
	VerificationURI string
	// VerificationURIComplete, when the provider sends one, already carries
	// the user code: the URL for a QR code or a click.
	VerificationURIComplete string
	// UserCode is what the person types; it is checked to be short
	// printable ASCII so it is safe to print on their terminal.
	UserCode string
	// Expiry is when the device code stops working.
	Expiry time.Time
	// Interval is the provider's minimum polling interval.
	Interval time.Duration

	resp oauth2.DeviceAuthResponse
}

// CompleteURI is the best URL to show as a link or QR code: the complete
// URI when the provider sent one, otherwise the plain verification URI.
func (d *DeviceAuth) CompleteURI() string {
	if d.VerificationURIComplete != "" {
		return d.VerificationURIComplete
	}
	return d.VerificationURI
}

// Start asks the provider for a device code and user code. Nothing it
// returns is trusted blindly: the URLs and code are shown on a person's
// terminal, so anything but http(s) URLs and printable ASCII is refused.
func (p *Provider) Start(ctx context.Context) (*DeviceAuth, error) {
	resp, err := p.oauth.DeviceAuth(context.WithValue(ctx, oauth2.HTTPClient, p.deviceClient))
	if err != nil {
		return nil, fmt.Errorf("oidclogin: device authorization request to %s: %w", p.oauth.Endpoint.DeviceAuthURL, describe(err))
	}
	if resp.DeviceCode == "" {
		return nil, fmt.Errorf("oidclogin: device authorization response from %s has no device_code", p.cfg.Issuer)
	}
	if err := printable(resp.UserCode, 64); err != nil {
		return nil, fmt.Errorf("oidclogin: device authorization response from %s: user_code: %w", p.cfg.Issuer, err)
	}
	if err := checkEndpoint(resp.VerificationURI); err != nil {
		return nil, fmt.Errorf("oidclogin: device authorization response from %s: verification_uri: %w", p.cfg.Issuer, err)
	}
	if resp.VerificationURIComplete != "" {
		if err := checkEndpoint(resp.VerificationURIComplete); err != nil {
			return nil, fmt.Errorf("oidclogin: device authorization response from %s: verification_uri_complete: %w", p.cfg.Issuer, err)
		}
	}
	if resp.Expiry.IsZero() {
		resp.Expiry = time.Now().Add(defaultCodeLifetime)
	}
	if resp.Interval <= 0 {
		resp.Interval = 5 // RFC 8628 section 3.2: 5 seconds when absent
	}
	if resp.Interval > int64(time.Until(resp.Expiry)/time.Second) {
		return nil, fmt.Errorf("oidclogin: device authorization response from %s: interval %ds is longer than the code's lifetime", p.cfg.Issuer, resp.Interval)
	}
	interval := time.Duration(resp.Interval) * time.Second
	return &DeviceAuth{
		VerificationURI:         resp.VerificationURI,
		VerificationURIComplete: resp.VerificationURIComplete,
		UserCode:                resp.UserCode,
		Expiry:                  resp.Expiry,
		Interval:                interval,
		resp:                    *resp,
	}, nil
}

// Wait polls until the person allows or denies the login, the code
// expires, or ctx ends; then verifies the ID token and maps its claims.
func (p *Provider) Wait(ctx context.Context, da *DeviceAuth) (*Identity, error) {
	if da == nil || da.resp.DeviceCode == "" {
		return nil, errors.New("oidclogin: Wait needs the DeviceAuth returned by Start")
	}
	octx := context.WithValue(ctx, oauth2.HTTPClient, p.client)
	interval := da.Interval
	transient := 0
	for {
		resp := da.resp
		resp.Interval = int64(interval / time.Second)
		tok, err := p.oauth.DeviceAccessToken(octx, &resp)
		if err == nil {
			return p.identify(ctx, tok)
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("oidclogin: waiting for the login: %w", cerr)
		}
		var re *oauth2.RetrieveError
		isRE := errors.As(err, &re)
		switch {
		case isRE && re.ErrorCode == "access_denied":
			return nil, &LoginError{Reason: ReasonDenied, Message: "the login was denied at the identity provider", Err: err}
		case isRE && re.ErrorCode == "expired_token", errors.Is(err, context.DeadlineExceeded) && !time.Now().Before(da.Expiry):
			return nil, &LoginError{Reason: ReasonExpired, Message: "the login code expired before it was used; start the login again", Err: err}
		case isTransient(err, re):
			transient++
			if transient >= maxTransient {
				return nil, fmt.Errorf("oidclogin: token endpoint of %s failed %d times in a row: %w", p.cfg.Issuer, transient, describe(err))
			}
			interval = min(interval*2, max(maxBackoff, da.Interval))
		default:
			return nil, fmt.Errorf("oidclogin: token request to %s: %w", p.oauth.Endpoint.TokenURL, describe(err))
		}
	}
}

// isTransient is RFC 8628 section 3.5's "connection timeout" case, widened
// to any network failure and to 5xx answers: the provider may be back soon.
func isTransient(err error, re *oauth2.RetrieveError) bool {
	if re != nil {
		return re.Response != nil && re.Response.StatusCode >= 500 && re.ErrorCode != "access_denied"
	}
	var ne net.Error
	var ue *url.Error
	return errors.As(err, &ne) || errors.As(err, &ue)
}

// describe keeps an OAuth error's code and description, which are the
// useful part for the operator, in front.
func describe(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode != "" {
		if re.ErrorDescription != "" {
			return fmt.Errorf("%s: %s: %w", re.ErrorCode, re.ErrorDescription, err)
		}
		return fmt.Errorf("%s: %w", re.ErrorCode, err)
	}
	return err
}

func (p *Provider) identify(ctx context.Context, tok *oauth2.Token) (*Identity, error) {
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return nil, &LoginError{Reason: ReasonInvalidToken, Message: "the identity provider returned no ID token", Err: errors.New("token response has no id_token (is the openid scope allowed for this client?)")}
	}
	idt, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		msg := "the identity provider's ID token failed verification"
		if _, ok := errors.AsType[*oidc.TokenExpiredError](err); ok {
			msg = "the identity provider's ID token has expired (check the clocks of the bastion and the identity provider)"
		}
		return nil, &LoginError{Reason: ReasonInvalidToken, Message: msg, Err: err}
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, &LoginError{Reason: ReasonInvalidToken, Message: "the identity provider's ID token could not be read", Err: err}
	}
	// OIDC Core 3.1.3.7: with several audiences, azp must be us; go-oidc
	// checks only that we are among the audiences.
	if azp, _ := claims["azp"].(string); (len(idt.Audience) > 1 || azp != "") && azp != p.cfg.ClientID {
		return nil, &LoginError{Reason: ReasonInvalidToken, Message: "the identity provider's ID token was issued to another client", Err: fmt.Errorf("azp %q, want %q (aud %q)", azp, p.cfg.ClientID, idt.Audience)}
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return nil, &LoginError{Reason: ReasonInvalidToken, Message: "the identity provider's ID token does not match its access token", Err: err}
		}
	}
	id, err := mapClaims(p.cfg, claims)
	if err != nil {
		var le *LoginError
		if errors.As(err, &le) {
			email, _ := claims["email"].(string)
			if pr, perr := principalFromClaims(p.cfg.UsernameClaim, claims, email, isTrue(claims["email_verified"])); perr == nil {
				le.Principal = pr
			}
		}
		return nil, err
	}
	id.Issuer, id.Subject, id.Expiry = idt.Issuer, idt.Subject, idt.Expiry
	return id, nil
}

// clientAuthTransport authenticates the client on the device authorization
// request, which oauth2.Config.DeviceAuth sends with client_id only. The
// header form follows RFC 6749 section 2.3.1 (form-encode, then Basic), as
// oauth2 does at the token endpoint.
type clientAuthTransport struct {
	base       http.RoundTripper
	endpoint   string
	id, secret string
	style      oauth2.AuthStyle
}

func (t *clientAuthTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	u := *req.URL
	u.RawQuery = ""
	if req.Method != http.MethodPost || u.String() != t.endpoint {
		return base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	if t.style == oauth2.AuthStyleInHeader {
		r.SetBasicAuth(url.QueryEscape(t.id), url.QueryEscape(t.secret))
		return base.RoundTrip(r)
	}
	// client_secret_post: add the secret to the form body.
	if req.GetBody == nil {
		return nil, errors.New("oidclogin: device authorization request body cannot be re-read to add client_secret")
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("oidclogin: device authorization request body: %w", err)
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("oidclogin: device authorization request body: %w", err)
	}
	form, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, fmt.Errorf("oidclogin: device authorization request body: %w", err)
	}
	form.Set("client_secret", t.secret)
	enc := form.Encode()
	r.Body = io.NopCloser(strings.NewReader(enc))
	r.ContentLength = int64(len(enc))
	r.GetBody = nil
	return base.RoundTrip(r)
}

// checkEndpoint accepts absolute http(s) URLs without spaces or control
// characters: they are printed on terminals and fetched by us.
func checkEndpoint(s string) error {
	if err := printable(s, 2048); err != nil {
		return err
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return nil
}

func printable(s string, maxLen int) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > maxLen {
		return fmt.Errorf("longer than %d bytes", maxLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return fmt.Errorf("contains byte %#02x; only printable ASCII is shown to users", s[i])
		}
	}
	return nil
}
