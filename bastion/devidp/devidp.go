// Package devidp is a local development OpenID Provider, for trying bastion
// and for tests. It is for trying only, never for production: it serves
// plain HTTP, keeps everything in memory, knows its users' passwords in clear
// and forgets every signing key when it stops.
//
// It exists so that `bastion serve --demo` can show `ssh login@…` with nothing
// else installed, and so that the OIDC login code is tested against a real
// OpenID Provider implementation (github.com/zitadel/oidc/v3/pkg/op) rather
// than a mock of what we believe a provider does.
//
// What it supports is exactly what the login needs: discovery, JWKS, the OAuth
// 2.0 Device Authorization Grant (RFC 8628) for one confidential client
// (client_secret_basic), and ID tokens carrying preferred_username, email,
// email_verified, groups (scope "groups") and amr ("pwd", plus "mfa" for
// users marked MFA). The authorization code flow, refresh tokens, userinfo and
// introspection are not supported.
//
// The op package logs request errors (including the routine
// authorization_pending of every poll) through slog.Default and offers no
// way to pass a logger; Options.Logger receives only this package's events.
// A program that wants op quiet sets slog.Default itself.
//
// Lifecycle, in call order:
//
//  1. Start listens on a loopback address and serves the provider and the
//     device verification pages (/device, /device/login, /device/confirm).
//  2. A client starts a device flow (POST /device_authorization) and polls
//     the token endpoint (POST /oauth/token).
//  3. A person opens /device in a browser, types the user code, logs in as a
//     demo user and allows or denies; Approve and Deny do the same over HTTP.
//  4. Close (or the end of Start's context) stops the server.
package devidp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// User is a demo account. Username is both the login name and the
// preferred_username claim, so that what a newcomer types is what the
// bastion sees.
type User struct {
	Username string
	Password string
	Email    string   // also the email claim, with email_verified true; empty means no email claim
	Groups   []string // the "groups" claim, when the client asks for scope "groups"
	MFA      bool     // amr is ["pwd","mfa"] when true, ["pwd"] when false: lets tests and demos show require_mfa both ways
}

// Options configure Start. Zero values pick defaults suitable for a demo.
type Options struct {
	// Addr is the listen address; it must be a loopback address because the
	// provider serves plain HTTP with well-known passwords. Default "127.0.0.1:0".
	Addr string
	// ClientID and ClientSecret register the one confidential client.
	// Defaults "bastion" and "bastion-demo-secret".
	ClientID, ClientSecret string
	// Users who may log in. No users means nobody can approve a login.
	Users []User
	// PollInterval is the device flow's polling interval; RFC 8628 counts it
	// in whole seconds, so it is rounded down to one and at least 1s.
	// Default 5s. A client polling faster than half of it gets slow_down.
	PollInterval time.Duration
	// CodeLifetime is how long a device code stays usable. Default 5m.
	CodeLifetime time.Duration
	// TokenLifetime is the lifetime of ID and access tokens. Default 5m.
	TokenLifetime time.Duration
	// Logger receives the provider's own events (logins, approvals). The op
	// package logs through slog.Default and cannot be redirected; see the
	// package documentation. Nil discards.
	Logger *slog.Logger
}

// IdP is a running development provider.
type IdP struct {
	issuer   string
	srv      *http.Server
	ln       net.Listener
	store    *storage
	log      *slog.Logger
	done     chan struct{}
	serveErr chan error

	closeOnce sync.Once
	closeErr  error
}

// Start listens on o.Addr and serves the provider until Close is called or
// ctx ends. It returns once the listener is open, so Issuer is usable at once.
func Start(ctx context.Context, o Options) (*IdP, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("devidp: listen on %s: %w", o.Addr, err)
	}
	issuer := "http://" + ln.Addr().String()

	store, err := newStorage(o)
	if err != nil {
		ln.Close()
		return nil, err
	}
	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		ln.Close()
		return nil, fmt.Errorf("devidp: token encryption key: %w", err)
	}
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:       cryptoKey,
		CryptoKeyId:     "devidp",
		SupportedScopes: []string{"openid", "profile", "email", scopeGroups},
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime:     o.CodeLifetime,
			PollInterval: o.PollInterval,
			UserFormPath: pathDevice,
			UserCode:     op.UserCodeBase20,
		},
	}, store, op.StaticIssuer(issuer),
		// Plain http is refused by op unless allowed; loopback-only above
		// keeps that from meaning "on the network".
		op.WithAllowInsecure(),
	)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("devidp: create provider: %w", err)
	}

	mux := http.NewServeMux()
	pages := &pages{store: store, log: o.Logger}
	pages.register(mux)
	mux.Handle("/", provider)

	i := &IdP{
		issuer:   issuer,
		ln:       ln,
		store:    store,
		log:      o.Logger,
		done:     make(chan struct{}),
		serveErr: make(chan error, 1),
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
		},
	}
	go func() { i.serveErr <- i.srv.Serve(ln) }()
	go func() {
		select {
		case <-ctx.Done():
			i.Close()
		case <-i.done:
		}
	}()
	o.Logger.Info("development identity provider started; for trying only, never production", "issuer", issuer, "users", len(o.Users))
	return i, nil
}

func (o Options) withDefaults() (Options, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return o, fmt.Errorf("devidp: address %q: %w", o.Addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return o, fmt.Errorf("devidp: address %q is not a loopback address; the development provider serves plain HTTP with known passwords and must not be reachable from the network", o.Addr)
	}
	if o.ClientID == "" {
		o.ClientID = "bastion"
	}
	if o.ClientSecret == "" {
		o.ClientSecret = "bastion-demo-secret"
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 5 * time.Second
	}
	o.PollInterval = max(o.PollInterval.Truncate(time.Second), time.Second)
	if o.CodeLifetime <= 0 {
		o.CodeLifetime = 5 * time.Minute
	}
	if o.CodeLifetime < time.Second {
		return o, fmt.Errorf("devidp: code lifetime %v is below one second, the resolution of RFC 8628's expires_in", o.CodeLifetime)
	}
	if o.TokenLifetime <= 0 {
		o.TokenLifetime = 5 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	seen := make(map[string]bool, len(o.Users))
	for _, u := range o.Users {
		if u.Username == "" || u.Password == "" {
			return o, errors.New("devidp: every user needs a username and a password")
		}
		if seen[u.Username] {
			return o, fmt.Errorf("devidp: user %q is listed twice", u.Username)
		}
		seen[u.Username] = true
	}
	return o, nil
}

// Issuer is the issuer URL to configure as oidc.issuer; discovery lives
// under it at /.well-known/openid-configuration.
func (i *IdP) Issuer() string { return i.issuer }

// closeGrace is how long Close lets requests in flight finish.
const closeGrace = 2 * time.Second

// Close stops the server and waits for it; pending device flows are lost.
// It is safe to call more than once.
func (i *IdP) Close() error {
	i.closeOnce.Do(func() {
		close(i.done)
		ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
		defer cancel()
		err := i.srv.Shutdown(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			// Still open after the grace: a request in flight, or a
			// client's spare connection that never sent one (Shutdown
			// waits five seconds for those). Pending flows are lost on
			// Close anyway: close them, which is no failure to stop.
			i.log.Info("development identity provider closing connections still open", "issuer", i.issuer)
			err = i.srv.Close()
		} else if err != nil {
			err = errors.Join(err, i.srv.Close())
		}
		if serr := <-i.serveErr; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		if err != nil {
			i.closeErr = fmt.Errorf("devidp: stop %s: %w", i.issuer, err)
		}
		i.log.Info("development identity provider stopped", "issuer", i.issuer)
	})
	return i.closeErr
}

// Approve does what a person does in a browser to allow a device login: open
// the verification page, enter the user code, log in, allow. It talks real
// HTTP to the provider with its own cookie jar, so the pages a newcomer uses
// are the pages the tests use. For the demo, the same steps are: open the
// verification URL, type the code, log in as a demo user, press Allow.
func (i *IdP) Approve(ctx context.Context, userCode, username, password string) error {
	return i.browse(ctx, userCode, username, password, actionAllow)
}

// Deny is Approve with the person pressing Deny on the consent page, which
// makes the client's next poll end with access_denied.
func (i *IdP) Deny(ctx context.Context, userCode, username, password string) error {
	return i.browse(ctx, userCode, username, password, actionDeny)
}

func (i *IdP) browse(ctx context.Context, userCode, username, password, action string) error {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return fmt.Errorf("devidp: cookie jar: %w", err)
	}
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	base := i.issuer + pathDevice

	if _, err := fetch(ctx, c, http.MethodGet, base+"?"+url.Values{"user_code": {userCode}}.Encode(), nil, "verification page"); err != nil {
		return err
	}
	if _, err := fetch(ctx, c, http.MethodPost, base+"/login", url.Values{
		"user_code": {userCode}, "username": {username}, "password": {password},
	}, "log in"); err != nil {
		return err
	}
	if _, err := fetch(ctx, c, http.MethodPost, base+"/confirm", url.Values{"action": {action}}, action); err != nil {
		return err
	}
	return nil
}

var errorParagraph = regexp.MustCompile(`<p class="error">([^<]*)</p>`)

// fetch does one browser step and turns a refusal page into an error that
// carries the message the page showed.
func fetch(ctx context.Context, c *http.Client, method, u string, form url.Values, step string) (string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return "", fmt.Errorf("devidp: %s: %w", step, err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("devidp: %s: %w", step, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("devidp: %s: read page: %w", step, err)
	}
	page := string(b)
	if resp.StatusCode != http.StatusOK {
		msg := resp.Status
		if m := errorParagraph.FindStringSubmatch(page); m != nil {
			msg = html.UnescapeString(m[1])
		}
		return page, fmt.Errorf("devidp: %s: %s", step, msg)
	}
	return page, nil
}
