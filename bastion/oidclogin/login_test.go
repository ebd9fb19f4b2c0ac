package oidclogin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/bastion/devidp"
	"github.com/coreos/go-oidc/v3/oidc"
)

var testUsers = []devidp.User{
	{Username: "alice", Password: "alice-pw", Email: "alice@example.com", Groups: []string{"sre", "Domain Users", "sre"}, MFA: true},
	{Username: "bob", Password: "bob-pw", Email: "Bob.Smith@Example.ORG", Groups: []string{"audit"}},
	{Username: "Carol", Password: "carol-pw", Email: "carol@example.com"},
	{Username: "dave", Password: "dave-pw"},
}

// startIdP runs a development OP with a one-second poll interval (the
// smallest RFC 8628 can express) and stops it when the test ends.
func startIdP(t *testing.T, mut func(*devidp.Options)) *devidp.IdP {
	t.Helper()
	o := devidp.Options{ClientID: "bastion", ClientSecret: "s3cret", Users: testUsers,
		PollInterval: time.Second, CodeLifetime: 30 * time.Second, TokenLifetime: 5 * time.Minute}
	if mut != nil {
		mut(&o)
	}
	idp, err := devidp.Start(t.Context(), o)
	if err != nil {
		t.Fatalf("start idp: %v", err)
	}
	t.Cleanup(func() {
		if err := idp.Close(); err != nil {
			t.Errorf("close idp: %v", err)
		}
	})
	return idp
}

func newProvider(t *testing.T, idp *devidp.IdP, mut func(*Config)) *Provider {
	t.Helper()
	cfg := Config{Issuer: idp.Issuer(), ClientID: "bastion", ClientSecret: "s3cret"}
	if mut != nil {
		mut(&cfg)
	}
	p, err := NewProvider(t.Context(), cfg)
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	return p
}

// login runs a whole device flow, the person acting through the IdP's
// pages while Wait polls, as it happens for real.
func login(t *testing.T, p *Provider, idp *devidp.IdP, user, password string, allow bool) (*Identity, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	da, err := p.Start(ctx)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if da.UserCode == "" || !strings.HasPrefix(da.VerificationURI, idp.Issuer()) || !strings.Contains(da.CompleteURI(), "user_code=") {
		t.Fatalf("DeviceAuth = %+v", da)
	}
	var wg sync.WaitGroup
	var browseErr error
	wg.Go(func() {
		if allow {
			browseErr = idp.Approve(ctx, da.UserCode, user, password)
		} else {
			browseErr = idp.Deny(ctx, da.UserCode, user, password)
		}
	})
	id, err := p.Wait(ctx, da)
	wg.Wait()
	if browseErr != nil {
		t.Fatalf("browser side: %v", browseErr)
	}
	return id, err
}

func wantReason(t *testing.T, err error, reason string) {
	t.Helper()
	le, ok := errors.AsType[*LoginError](err)
	if !ok {
		t.Fatalf("err = %v, want a *LoginError with reason %q", err, reason)
	}
	if le.Reason != reason {
		t.Fatalf("reason = %q (%v), want %q", le.Reason, err, reason)
	}
	if le.Message == "" {
		t.Fatalf("LoginError %v has no message for the user", err)
	}
}

func TestLoginHappyPath(t *testing.T) {
	t.Parallel()
	idp := startIdP(t, nil)
	p := newProvider(t, idp, nil)
	if got := p.Scopes(); !slices.Equal(got, []string{"openid", "profile", "email", "groups"}) {
		t.Errorf("scopes = %q; groups must be requested because the issuer advertises it", got)
	}
	id, err := login(t, p, idp, "alice", "alice-pw", true)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if id.Principal != "alice" || !slices.Equal(id.Groups, []string{"sre"}) || !slices.Equal(id.IgnoredGroups, []string{"Domain Users"}) {
		t.Errorf("identity = %+v", id)
	}
	if id.Issuer != idp.Issuer() || id.Subject == "" || id.Subject == "alice" || id.Email != "alice@example.com" {
		t.Errorf("identity = %+v", id)
	}
	if !slices.Contains(id.AMR, "mfa") || time.Until(id.Expiry) < 4*time.Minute {
		t.Errorf("identity = %+v", id)
	}
}

// TestLoginClaims covers what the bastion demands of a verified token.
func TestLoginClaims(t *testing.T) {
	t.Parallel()
	idp := startIdP(t, nil)
	cases := []struct {
		name, user string
		cfg        func(*Config)
		reason     string // "" means accepted
		principal  string
	}{
		{name: "require_mfa without mfa", user: "bob", cfg: func(c *Config) { c.RequireMFA = true }, reason: ReasonMFARequired},
		{name: "require_mfa with mfa", user: "alice", cfg: func(c *Config) { c.RequireMFA = true }, principal: "alice"},
		{name: "missing username claim", user: "dave", cfg: func(c *Config) { c.UsernameClaim = "nickname" }, reason: ReasonMissingClaim},
		{name: "fallback to email local part", user: "bob", cfg: func(c *Config) { c.UsernameClaim = "nickname" }, principal: "bob.smith"},
		{name: "unsafe principal", user: "Carol", reason: ReasonUnsafePrincipal},
		{name: "allowed domain", user: "alice", cfg: func(c *Config) { c.AllowedDomains = []string{"EXAMPLE.com"} }, principal: "alice"},
		{name: "domain not allowed", user: "bob", cfg: func(c *Config) { c.AllowedDomains = []string{"example.com"} }, reason: ReasonDomainNotAllowed},
		{name: "no email with allowed domains", user: "dave", cfg: func(c *Config) { c.AllowedDomains = []string{"example.com"} }, reason: ReasonDomainNotAllowed},
		{name: "in required group", user: "alice", cfg: func(c *Config) { c.RequiredGroups = []string{"admins", "sre"} }, principal: "alice"},
		{name: "not in required group", user: "bob", cfg: func(c *Config) { c.RequiredGroups = []string{"sre"} }, reason: ReasonGroupRequired},
		{name: "expired id token", user: "alice", cfg: func(c *Config) { c.Now = func() time.Time { return time.Now().Add(time.Hour) } }, reason: ReasonInvalidToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t, idp, tc.cfg)
			pw := map[string]string{}
			for _, u := range testUsers {
				pw[u.Username] = u.Password
			}
			id, err := login(t, p, idp, tc.user, pw[tc.user], true)
			if tc.reason != "" {
				wantReason(t, err, tc.reason)
				return
			}
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			if id.Principal != tc.principal {
				t.Errorf("principal = %q, want %q", id.Principal, tc.principal)
			}
		})
	}
}

func TestLoginDenied(t *testing.T) {
	t.Parallel()
	idp := startIdP(t, nil)
	_, err := login(t, newProvider(t, idp, nil), idp, "alice", "alice-pw", false)
	wantReason(t, err, ReasonDenied)
}

func TestLoginExpired(t *testing.T) {
	t.Parallel()
	idp := startIdP(t, func(o *devidp.Options) { o.CodeLifetime = 2 * time.Second })
	p := newProvider(t, idp, nil)
	da, err := p.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Wait(t.Context(), da)
	wantReason(t, err, ReasonExpired)
}

func TestWaitCancelled(t *testing.T) {
	t.Parallel()
	idp := startIdP(t, nil)
	p := newProvider(t, idp, nil)
	da, err := p.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	_, err = p.Wait(ctx, da)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the caller's deadline", err)
	}
	if _, ok := errors.AsType[*LoginError](err); ok {
		t.Fatalf("a cancelled wait is not a refusal: %v", err)
	}
}

// recorder answers the first token poll with slow_down itself and records
// when each poll was sent.
type recorder struct {
	mu       sync.Mutex
	polls    []time.Time
	slowDown bool
	swap     map[string]string // path → URL to fetch instead
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if to, ok := r.swap[req.URL.Path]; ok {
		nreq, err := http.NewRequestWithContext(req.Context(), req.Method, to, nil)
		if err != nil {
			return nil, err
		}
		return http.DefaultTransport.RoundTrip(nreq)
	}
	if req.URL.Path == "/oauth/token" {
		r.mu.Lock()
		r.polls = append(r.polls, time.Now())
		first := len(r.polls) == 1
		r.mu.Unlock()
		if first && r.slowDown {
			return &http.Response{StatusCode: http.StatusBadRequest, Status: "400 Bad Request", Request: req,
				Header: http.Header{"Content-Type": {"application/json"}},
				Body:   io.NopCloser(strings.NewReader(`{"error":"slow_down"}`))}, nil
		}
	}
	return http.DefaultTransport.RoundTrip(req)
}

func TestLoginSlowDownHonoured(t *testing.T) {
	t.Parallel()
	idp := startIdP(t, nil)
	rec := &recorder{slowDown: true}
	p := newProvider(t, idp, func(c *Config) { c.HTTPClient = &http.Client{Transport: rec, Timeout: 10 * time.Second} })
	id, err := login(t, p, idp, "alice", "alice-pw", true)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if id.Principal != "alice" {
		t.Fatalf("principal = %q", id.Principal)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.polls) < 2 {
		t.Fatalf("polls = %d", len(rec.polls))
	}
	// Interval 1s, plus 5s after slow_down (RFC 8628 section 3.5).
	if gap := rec.polls[1].Sub(rec.polls[0]); gap < 5900*time.Millisecond {
		t.Fatalf("poll after slow_down came %v after the previous one, want >= 6s", gap)
	}
}

func TestLoginBadSignature(t *testing.T) {
	t.Parallel()
	idp := startIdP(t, nil)
	other := startIdP(t, nil)
	// The JWKS is served by another provider: the token's issuer, audience
	// and expiry are right, only the signature cannot be verified.
	rec := &recorder{swap: map[string]string{"/keys": other.Issuer() + "/keys"}}
	p := newProvider(t, idp, func(c *Config) { c.HTTPClient = &http.Client{Transport: rec, Timeout: 10 * time.Second} })
	_, err := login(t, p, idp, "alice", "alice-pw", true)
	wantReason(t, err, ReasonInvalidToken)
	if !strings.Contains(err.Error(), "signature") {
		t.Errorf("err = %v, want a signature failure", err)
	}
}

// TestLoginWrongAudienceAndIssuer swaps the verifier so that the real
// token from the OP meets a bastion expecting another client or issuer.
func TestLoginWrongAudienceAndIssuer(t *testing.T) {
	t.Parallel()
	idp := startIdP(t, nil)
	op, err := oidc.NewProvider(t.Context(), idp.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	keys := oidc.NewRemoteKeySet(t.Context(), idp.Issuer()+"/keys")
	for name, v := range map[string]*oidc.IDTokenVerifier{
		"audience": op.Verifier(&oidc.Config{ClientID: "another-client"}),
		"issuer":   oidc.NewVerifier("http://issuer.invalid", keys, &oidc.Config{ClientID: "bastion", SupportedSigningAlgs: []string{"ES256"}}),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t, idp, nil)
			p.verifier = v
			_, err := login(t, p, idp, "alice", "alice-pw", true)
			wantReason(t, err, ReasonInvalidToken)
			if !strings.Contains(err.Error(), name) {
				t.Errorf("err = %v, want it to name the %s", err, name)
			}
		})
	}
}

func TestNewProviderRefusals(t *testing.T) {
	t.Parallel()
	idp := startIdP(t, nil)
	noDevice := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		iss := "http://" + r.Host
		io.WriteString(w, `{"issuer":"`+iss+`","authorization_endpoint":"`+iss+`/auth","token_endpoint":"`+iss+`/token","jwks_uri":"`+iss+`/keys"}`)
	}))
	t.Cleanup(noDevice.Close)
	for _, tc := range []struct {
		name, issuer, want string
	}{
		{"no device endpoint", noDevice.URL, "device_authorization_endpoint"},
		{"issuer mismatch", strings.Replace(idp.Issuer(), "127.0.0.1", "localhost", 1), "did not match"},
		{"no issuer", "", "issuer is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewProvider(t.Context(), Config{Issuer: tc.issuer, ClientID: "bastion", ClientSecret: "s3cret"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestStartWrongClientSecret(t *testing.T) {
	t.Parallel()
	idp := startIdP(t, nil)
	p := newProvider(t, idp, func(c *Config) { c.ClientSecret = "wrong" })
	_, err := p.Start(t.Context())
	if err == nil {
		t.Fatal("Start with a wrong client secret succeeded; the device request must authenticate the client")
	}
	if _, ok := errors.AsType[*LoginError](err); ok {
		t.Fatalf("a misconfigured client is not the user's refusal: %v", err)
	}
}
