package bastion

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// loginLimiter bounds OIDC login attempts per client address, so that the
// unauthenticated `login` user cannot be used to hammer the identity
// provider or to brute-force device codes. golang.org/x/time/rate is the
// well-kept token bucket; we only add the per-address map and its cleanup.
type loginLimiter struct {
	mu      sync.Mutex
	perAddr map[string]*addrLimit
	every   time.Duration
	burst   int
	now     func() time.Time
}

type addrLimit struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLoginLimiter(every time.Duration, burst int, now func() time.Time) *loginLimiter {
	return &loginLimiter{perAddr: make(map[string]*addrLimit), every: every, burst: burst, now: now}
}

// allow takes one attempt for addr (an IP, without port).
func (l *loginLimiter) allow(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	// Forget addresses idle long enough to have a full bucket again, so
	// the map stays as small as the set of recent clients.
	for a, al := range l.perAddr {
		if now.Sub(al.seen) > time.Duration(l.burst)*l.every {
			delete(l.perAddr, a)
		}
	}
	al, ok := l.perAddr[addr]
	if !ok {
		al = &addrLimit{lim: rate.NewLimiter(rate.Every(l.every), l.burst)}
		l.perAddr[addr] = al
	}
	al.seen = now
	return al.lim.AllowN(now, 1)
}

// lockout locks a principal after too many failed logins in a row (PCI DSS
// 8.3.4: at most 10 attempts, then at least 30 minutes). It lives in memory:
// a restart clears it, which the operator's restart is allowed to do.
type lockout struct {
	mu       sync.Mutex
	failures map[string]int
	until    map[string]time.Time
	max      int
	lockFor  time.Duration
	now      func() time.Time
}

func newLockout(max int, lockFor time.Duration, now func() time.Time) *lockout {
	return &lockout{failures: make(map[string]int), until: make(map[string]time.Time), max: max, lockFor: lockFor, now: now}
}

// locked reports whether principal is locked now, and until when.
func (l *lockout) locked(principal string) (bool, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u, ok := l.until[principal]
	if !ok {
		return false, time.Time{}
	}
	if !l.now().Before(u) {
		delete(l.until, principal)
		return false, time.Time{}
	}
	return true, u
}

// fail counts a failed login and reports whether it locked the principal.
func (l *lockout) fail(principal string) (lockedNow bool, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures[principal]++
	if l.failures[principal] < l.max {
		return false, time.Time{}
	}
	delete(l.failures, principal)
	u := l.now().Add(l.lockFor)
	l.until[principal] = u
	return true, u
}

// succeed resets the count: the limit is on failures in a row.
func (l *lockout) succeed(principal string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, principal)
}
