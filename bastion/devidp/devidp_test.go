package devidp_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/bastion/devidp"
	"github.com/bastion-dev/bastion/bastion/oidclogin"
)

var users = []devidp.User{
	{Username: "alice", Password: "alice-pw", Email: "alice@example.com", Groups: []string{"sre", "dba"}, MFA: true},
	{Username: "bob", Password: "bob-pw", Email: "bob@example.com", Groups: []string{"audit"}},
}

func start(t *testing.T, ctx context.Context) *devidp.IdP {
	t.Helper()
	idp, err := devidp.Start(ctx, devidp.Options{ClientID: "bastion", ClientSecret: "s3cret", Users: users, PollInterval: time.Second})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := idp.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return idp
}

func hostOf(t *testing.T, issuer string) string {
	t.Helper()
	u, err := url.Parse(issuer)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func TestCloseReleasesPort(t *testing.T) {
	t.Parallel()
	idp := start(t, t.Context())
	addr := hostOf(t, idp.Issuer())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial running IdP: %v", err)
	}
	c.Close()
	if err := idp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idp.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("port still open after Close")
	}
}

func TestContextStops(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	idp := start(t, ctx)
	addr := hostOf(t, idp.Issuer())
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("port still open 5s after the context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0"} {
		if idp, err := devidp.Start(t.Context(), devidp.Options{Addr: addr}); err == nil {
			idp.Close()
			t.Errorf("Start(%q) succeeded; the development IdP must stay on loopback", addr)
		}
	}
}

func provider(t *testing.T, idp *devidp.IdP, requireMFA bool) *oidclogin.Provider {
	t.Helper()
	p, err := oidclogin.NewProvider(t.Context(), oidclogin.Config{Issuer: idp.Issuer(), ClientID: "bastion", ClientSecret: "s3cret", RequireMFA: requireMFA})
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	return p
}

func TestApproveAndDenyEndToEnd(t *testing.T) {
	t.Parallel()
	idp := start(t, t.Context())
	for _, tc := range []struct {
		name, user, pw string
		deny, mfa      bool
		reason         string
		groups         []string
	}{
		{name: "approve", user: "alice", pw: "alice-pw", mfa: true, groups: []string{"dba", "sre"}},
		{name: "approve without mfa", user: "bob", pw: "bob-pw", groups: []string{"audit"}},
		{name: "require mfa refuses bob", user: "bob", pw: "bob-pw", mfa: true, reason: oidclogin.ReasonMFARequired},
		{name: "deny", user: "alice", pw: "alice-pw", deny: true, reason: oidclogin.ReasonDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := provider(t, idp, tc.mfa)
			ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
			defer cancel()
			da, err := p.Start(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var berr error
			wg.Go(func() {
				if tc.deny {
					berr = idp.Deny(ctx, da.UserCode, tc.user, tc.pw)
				} else {
					berr = idp.Approve(ctx, strings.ToLower(da.UserCode), tc.user, tc.pw) // people type codes in lower case
				}
			})
			id, err := p.Wait(ctx, da)
			wg.Wait()
			if berr != nil {
				t.Fatalf("browser: %v", berr)
			}
			if tc.reason != "" {
				le, ok := errors.AsType[*oidclogin.LoginError](err)
				if !ok || le.Reason != tc.reason {
					t.Fatalf("err = %v, want reason %q", err, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Principal != tc.user || !slices.Equal(id.Groups, tc.groups) || slices.Contains(id.AMR, "mfa") != tc.mfa || !slices.Contains(id.AMR, "pwd") {
				t.Fatalf("identity = %+v", id)
			}
		})
	}
}

func TestApproveRefusals(t *testing.T) {
	t.Parallel()
	idp := start(t, t.Context())
	p := provider(t, idp, false)
	da, err := p.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := idp.Approve(t.Context(), da.UserCode, "alice", "wrong"); err == nil || !strings.Contains(err.Error(), "Wrong username or password") {
		t.Fatalf("wrong password: %v", err)
	}
	if err := idp.Approve(t.Context(), da.UserCode, "mallory", "alice-pw"); err == nil || !strings.Contains(err.Error(), "Wrong username or password") {
		t.Fatalf("unknown user: %v", err)
	}
	if err := idp.Approve(t.Context(), "BCDF-GHJK", "alice", "alice-pw"); err == nil || !strings.Contains(err.Error(), "unknown code") {
		t.Fatalf("unknown code: %v", err)
	}
	if err := idp.Deny(t.Context(), da.UserCode, "alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}
	if err := idp.Approve(t.Context(), da.UserCode, "alice", "alice-pw"); err == nil || !strings.Contains(err.Error(), "already been used") {
		t.Fatalf("second decision: %v", err)
	}
}

// TestBrowserPages checks what a newcomer's browser gets: an HTML form with
// the code filled in from verification_uri_complete.
func TestBrowserPages(t *testing.T) {
	t.Parallel()
	idp := start(t, t.Context())
	p := provider(t, idp, false)
	da, err := p.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(da.VerificationURIComplete)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	page := string(body)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(page, `value="`+da.UserCode+`"`) || !strings.Contains(page, `type="password"`) || !strings.Contains(page, "never production") {
		t.Fatalf("verification page: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), page)
	}
}

// TestSlowDownWhenPollingTooFast: the IdP enforces the interval it hands
// out, so a client that ignores it is told slow_down (RFC 8628 3.5).
func TestSlowDownWhenPollingTooFast(t *testing.T) {
	t.Parallel()
	idp := start(t, t.Context())
	post := func(path string, form url.Values) map[string]any {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, idp.Issuer()+path, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("bastion", "s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	da := post("/device_authorization", url.Values{"scope": {"openid"}})
	dc, _ := da["device_code"].(string)
	if dc == "" || da["interval"] != float64(1) {
		t.Fatalf("device authorization: %v", da)
	}
	poll := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {dc}}
	if got := post("/oauth/token", poll)["error"]; got != "authorization_pending" {
		t.Fatalf("first poll: %v", got)
	}
	if got := post("/oauth/token", poll)["error"]; got != "slow_down" {
		t.Fatalf("immediate second poll: %v, want slow_down", got)
	}
}

// TestCloseWithUnusedConnection: a client's spare connection that never
// sends a request (http.Transport dials ahead) does not make Close fail:
// http.Server.Shutdown waits five seconds for such a connection, the
// length of the grace Close used to give it.
func TestCloseWithUnusedConnection(t *testing.T) {
	t.Parallel()
	idp, err := devidp.Start(t.Context(), devidp.Options{Users: users})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	c, err := net.Dial("tcp", hostOf(t, idp.Issuer()))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if err := idp.Close(); err != nil {
		t.Fatalf("Close with an unused connection open: %v", err)
	}
	// The server closed the connection (EOF, or a reset if it was still
	// in the listener's queue), rather than leaving it open.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("read from the unused connection after Close: %v, want it closed", err)
	}
}
