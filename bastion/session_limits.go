package bastion

import (
	"fmt"
	"time"
)

// activitySink records the client's input and counts it as activity.
type activitySink struct{ st *session }

func (a activitySink) Input(p []byte) {
	a.st.touch()
	a.st.rec.Input(p)
}

func (st *session) touch() { st.lastActivity.Store(st.srv.now().UnixNano()) }

// limits is the state of the session-limit checks (see checkLimits).
type limits struct {
	idle, maxDur, warnBefore, tick time.Duration
	warned                         bool
}

func (st *session) newLimits() limits {
	cfg := st.srv.config().Session
	l := limits{idle: time.Duration(cfg.IdleTimeout), maxDur: time.Duration(cfg.MaxDuration), warnBefore: time.Minute, tick: time.Second}
	if l.idle > 0 && l.idle < 4*time.Minute {
		l.warnBefore = l.idle / 4
	}
	if l.idle > 0 && l.idle/10 < l.tick {
		l.tick = l.idle / 10
	}
	return l
}

// checkLimits decides whether the session must end because it has been
// idle for session.idle_timeout (PCI DSS 8.2.8; with a warning a minute
// before), because it reached session.max_duration, or because the
// certificate it runs on expired; it runs on every tick of the monitor and
// returns why the session must end, or a warning to show, or neither (the
// caller acts on them, so that a client that does not read cannot stall
// it). Bytes in either direction count as activity, so a `tail -f` the
// user is watching keeps its session.
func (st *session) checkLimits(l *limits) (end, warning string) {
	now := st.srv.now()
	if !now.Before(st.id.ValidBefore) {
		return fmt.Sprintf("your certificate expired at %s; get a new one with `ssh %s@%s` and reconnect",
			st.id.ValidBefore.Local().Format("15:04:05"), LoginUser, st.srv.hostName), ""
	}
	if l.maxDur > 0 && now.Sub(st.start) >= l.maxDur {
		return fmt.Sprintf("the session reached its maximum duration of %s (session.max_duration)", l.maxDur), ""
	}
	if l.idle <= 0 {
		return "", ""
	}
	quiet := now.Sub(time.Unix(0, st.lastActivity.Load()))
	switch {
	case quiet >= l.idle:
		return fmt.Sprintf("the session was idle for %s and was ended (session.idle_timeout)", l.idle), ""
	case quiet >= l.idle-l.warnBefore && !l.warned:
		l.warned = true
		return "", fmt.Sprintf("\r\nbastion: this session has been idle for %s; it ends in %s unless you type something\r\n",
			quiet.Round(time.Second), (l.idle - quiet).Round(time.Second))
	case quiet < l.idle-l.warnBefore:
		l.warned = false
	}
	return "", ""
}
