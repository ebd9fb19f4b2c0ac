package devidp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const scopeGroups = "groups"

// errUnsupported answers every op.Storage method that belongs to a flow the
// development provider does not offer (authorization code, refresh, token
// exchange, JWT profile): the device grant is all bastion needs.
var errUnsupported = errors.New("devidp: not supported by the development provider (device authorization grant only)")

// storage is the in-memory op.Storage and op.DeviceAuthorizationStorage.
type storage struct {
	clientID, clientSecret string
	tokenLifetime          time.Duration
	pollInterval           time.Duration
	users                  map[string]User   // by username
	subjects               map[string]string // subject → username
	key                    signingKey

	mu          sync.Mutex
	deviceCodes map[string]*deviceEntry // device code → entry
	userCodes   map[string]string       // canonical user code → device code
}

type deviceEntry struct {
	userCode string
	state    op.DeviceAuthorizationState
	lastPoll time.Time
}

func newStorage(o Options) (*storage, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devidp: signing key: %w", err)
	}
	kid := make([]byte, 8)
	if _, err := rand.Read(kid); err != nil {
		return nil, fmt.Errorf("devidp: key id: %w", err)
	}
	s := &storage{
		clientID:      o.ClientID,
		clientSecret:  o.ClientSecret,
		tokenLifetime: o.TokenLifetime,
		pollInterval:  o.PollInterval,
		users:         make(map[string]User, len(o.Users)),
		subjects:      make(map[string]string, len(o.Users)),
		key:           signingKey{id: hex.EncodeToString(kid), key: priv},
		deviceCodes:   make(map[string]*deviceEntry),
		userCodes:     make(map[string]string),
	}
	for _, u := range o.Users {
		u.Groups = slices.Clone(u.Groups)
		s.users[u.Username] = u
		s.subjects[subjectOf(u.Username)] = u.Username
	}
	return s, nil
}

// subjectOf derives a stable, opaque subject, deliberately different from the
// username so that a client mapping "sub" by mistake would show it.
func subjectOf(username string) string {
	sum := sha256.Sum256([]byte("devidp-subject:" + username))
	return hex.EncodeToString(sum[:10])
}

// canonicalUserCode lets a person type the code in lower case, with or
// without the dash, as RFC 8628 section 6.1 recommends.
func canonicalUserCode(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ':
			return -1
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

// checkPassword compares in constant time even for unknown users, so the
// page does not tell which usernames exist.
func (s *storage) checkPassword(username, password string) (User, bool) {
	u, ok := s.users[username]
	want := u.Password
	if !ok {
		want = "\x00no such user"
	}
	match := subtle.ConstantTimeCompare([]byte(want), []byte(password)) == 1
	return u, ok && match
}

// pendingByUserCode returns the client and scopes of a device flow still
// waiting for a person, for the consent page.
func (s *storage) pendingByUserCode(userCode string) (op.DeviceAuthorizationState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.pendingLocked(userCode)
	if err != nil {
		return op.DeviceAuthorizationState{}, err
	}
	st := e.state
	st.Scopes = slices.Clone(st.Scopes)
	return st, nil
}

func (s *storage) pendingLocked(userCode string) (*deviceEntry, error) {
	e, ok := s.deviceCodes[s.userCodes[canonicalUserCode(userCode)]]
	switch {
	case !ok:
		return nil, errors.New("unknown code; check it and try again")
	case time.Now().After(e.state.Expires):
		return nil, errors.New("this code has expired; start the login again")
	case e.state.Done || e.state.Denied:
		return nil, errors.New("this code has already been used")
	}
	return e, nil
}

// complete records the person's decision for the flow of userCode.
func (s *storage) complete(userCode, username string, allow bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.pendingLocked(userCode)
	if err != nil {
		return err
	}
	if !allow {
		e.state.Denied = true
		return nil
	}
	u := s.users[username]
	e.state.Done = true
	e.state.Subject = subjectOf(username)
	e.state.AuthTime = time.Now()
	e.state.AMR = []string{"pwd"}
	if u.MFA {
		e.state.AMR = append(e.state.AMR, "mfa")
	}
	return nil
}

// --- op.DeviceAuthorizationStorage

func (s *storage) StoreDeviceAuthorization(ctx context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	if clientID != s.clientID {
		return fmt.Errorf("devidp: unknown client %q", clientID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for dc, e := range s.deviceCodes { // forget expired flows
		if now.After(e.state.Expires) {
			delete(s.userCodes, canonicalUserCode(e.userCode))
			delete(s.deviceCodes, dc)
		}
	}
	uc := canonicalUserCode(userCode)
	if _, dup := s.userCodes[uc]; dup {
		return op.ErrDuplicateUserCode
	}
	s.deviceCodes[deviceCode] = &deviceEntry{
		userCode: userCode,
		state: op.DeviceAuthorizationState{
			ClientID: clientID,
			Scopes:   slices.Clone(scopes),
			Expires:  expires,
		},
	}
	s.userCodes[uc] = deviceCode
	return nil
}

// GetDeviceAuthorizatonState is polled by the token endpoint. It enforces the
// polling interval: op answers slow_down when this returns
// context.DeadlineExceeded, so a client polling faster than half the interval
// is told to slow down, as RFC 8628 section 3.5 has it. A completed flow is
// handed out once and then forgotten, so a device code yields one token.
func (s *storage) GetDeviceAuthorizatonState(ctx context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.deviceCodes[deviceCode]
	if !ok || e.state.ClientID != clientID {
		return nil, errors.New("devidp: device code not found for client")
	}
	now := time.Now()
	last := e.lastPoll
	e.lastPoll = now
	if !last.IsZero() && now.Sub(last) < s.pollInterval/2 && !e.state.Done && !e.state.Denied {
		return nil, fmt.Errorf("devidp: polled %v after the previous poll: %w", now.Sub(last).Round(time.Millisecond), context.DeadlineExceeded)
	}
	st := e.state
	st.Scopes = slices.Clone(st.Scopes)
	st.AMR = slices.Clone(st.AMR)
	if st.Done || st.Denied {
		delete(s.deviceCodes, deviceCode)
		delete(s.userCodes, canonicalUserCode(e.userCode))
	}
	return &st, nil
}

// --- op.Storage: clients and users

func (s *storage) GetClientByClientID(ctx context.Context, clientID string) (op.Client, error) {
	if clientID != s.clientID {
		return nil, fmt.Errorf("devidp: unknown client %q", clientID)
	}
	return &client{id: s.clientID, tokenLifetime: s.tokenLifetime}, nil
}

func (s *storage) AuthorizeClientIDSecret(ctx context.Context, clientID, clientSecret string) error {
	idOK := subtle.ConstantTimeCompare([]byte(clientID), []byte(s.clientID)) == 1
	secretOK := subtle.ConstantTimeCompare([]byte(clientSecret), []byte(s.clientSecret)) == 1
	if !idOK || !secretOK {
		return errors.New("devidp: wrong client id or secret")
	}
	return nil
}

func (s *storage) SetUserinfoFromScopes(ctx context.Context, info *oidc.UserInfo, userID, clientID string, scopes []string) error {
	username, ok := s.subjects[userID]
	if !ok {
		return fmt.Errorf("devidp: unknown subject %q", userID)
	}
	u := s.users[username]
	info.Subject = userID
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeProfile:
			info.PreferredUsername = u.Username
			info.Name = u.Username
		case oidc.ScopeEmail:
			if u.Email != "" {
				info.Email = u.Email
				info.EmailVerified = true
			}
		case scopeGroups:
			info.AppendClaims("groups", slices.Clone(u.Groups))
		}
	}
	return nil
}

func (s *storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, origin string) error {
	return errUnsupported
}

func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	return errUnsupported
}

func (s *storage) GetPrivateClaimsFromScopes(ctx context.Context, userID, clientID string, scopes []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(ctx context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	return nil, errUnsupported
}

func (s *storage) ValidateJWTProfileScopes(ctx context.Context, userID string, scopes []string) ([]string, error) {
	return nil, errUnsupported
}

func (s *storage) Health(ctx context.Context) error { return nil }

// --- op.Storage: tokens. Access tokens are opaque and never looked up again
// (no userinfo or introspection), so nothing is kept.

func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return "", time.Time{}, fmt.Errorf("devidp: token id: %w", err)
	}
	return hex.EncodeToString(id), time.Now().Add(s.tokenLifetime), nil
}

func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, currentRefreshToken string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errUnsupported
}

func (s *storage) TokenRequestByRefreshToken(ctx context.Context, refreshToken string) (op.RefreshTokenRequest, error) {
	return nil, errUnsupported
}

func (s *storage) TerminateSession(ctx context.Context, userID, clientID string) error { return nil }

func (s *storage) RevokeToken(ctx context.Context, tokenOrTokenID, userID, clientID string) *oidc.Error {
	return oidc.ErrUnsupportedGrantType().WithDescription("revocation is not supported by the development provider")
}

func (s *storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	return nil, errUnsupported
}

func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	return nil, errUnsupported
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	return nil, errUnsupported
}

func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error { return errUnsupported }

func (s *storage) DeleteAuthRequest(ctx context.Context, id string) error { return errUnsupported }

// --- op.Storage: keys. One ES256 key per run; a restart invalidates every
// token, which is what a development provider should do.

func (s *storage) SigningKey(ctx context.Context) (op.SigningKey, error) { return &s.key, nil }

func (s *storage) SignatureAlgorithms(ctx context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}

func (s *storage) KeySet(ctx context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{&s.key}}, nil
}

type signingKey struct {
	id  string
	key *ecdsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.key.PublicKey }

// client is the one confidential client, allowed the device grant only.
type client struct {
	id            string
	tokenLifetime time.Duration
}

func (c *client) GetID() string                    { return c.id }
func (c *client) RedirectURIs() []string           { return nil }
func (c *client) PostLogoutRedirectURIs() []string { return nil }

// ApplicationType web makes op treat the client as confidential, so the
// token endpoint requires its secret.
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType  { return nil }
func (c *client) GrantTypes() []oidc.GrantType        { return []oidc.GrantType{oidc.GrantTypeDeviceCode} }
func (c *client) LoginURL(string) string              { return "" }
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration      { return c.tokenLifetime }
func (c *client) DevMode() bool                       { return false }
func (c *client) IsScopeAllowed(scope string) bool    { return scope == scopeGroups }
func (c *client) ClockSkew() time.Duration            { return 0 }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IDTokenUserinfoClaimsAssertion true puts profile and email claims into the
// ID token itself; otherwise op leaves them for the userinfo endpoint, which
// bastion does not call.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }

var (
	_ op.Storage                    = (*storage)(nil)
	_ op.DeviceAuthorizationStorage = (*storage)(nil)
	_ op.Client                     = (*client)(nil)
)
