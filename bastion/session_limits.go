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

// watchLimits ends the session when it has been idle for
// session.idle_timeout (PCI DSS 8.2.8; with a warning a minute before),
// when it reaches session.max_duration, and at the moment the certificate
// it runs on expires. Bytes in either direction count as activity, so a
// `tail -f` the user is watching keeps its session.
func (st *session) watchLimits(done <-chan struct{}) {
	cfg := st.srv.config().Session
	idle, maxDur := time.Duration(cfg.IdleTimeout), time.Duration(cfg.MaxDuration)
	warnBefore := time.Minute
	if idle > 0 && idle < 4*time.Minute {
		warnBefore = idle / 4
	}
	tick := time.Second
	if idle > 0 && idle/10 < tick {
		tick = idle / 10
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	warned := false
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		now := st.srv.now()
		if !now.Before(st.id.ValidBefore) {
			st.end(fmt.Sprintf("your certificate expired at %s; get a new one with `ssh %s@%s` and reconnect",
				st.id.ValidBefore.Local().Format("15:04:05"), LoginUser, st.srv.hostName))
			return
		}
		if maxDur > 0 && now.Sub(st.start) >= maxDur {
			st.end(fmt.Sprintf("the session reached its maximum duration of %s (session.max_duration)", maxDur))
			return
		}
		if idle <= 0 {
			continue
		}
		quiet := now.Sub(time.Unix(0, st.lastActivity.Load()))
		switch {
		case quiet >= idle:
			st.end(fmt.Sprintf("the session was idle for %s and was ended (session.idle_timeout)", idle))
			return
		case quiet >= idle-warnBefore && !warned:
			warned = true
			st.stderr.Notice(fmt.Sprintf("\r\nbastion: this session has been idle for %s; it ends in %s unless you type something\r\n",
				quiet.Round(time.Second), (idle - quiet).Round(time.Second)))
		case quiet < idle-warnBefore:
			warned = false
		}
	}
}
