// Package metrics is the bastion's Prometheus endpoint (metrics.listen,
// off by default): what an operator watches to see the bastion is healthy
// and an auditor to see it is used as intended — active sessions, failed
// logins, approvals waiting, masked card data, recording trouble.
//
// It uses prometheus/client_golang, the reference implementation of the
// exposition format, with a registry passed in (never the global default
// one), so that two servers in one test process do not share counters and
// nothing registered by a library leaks into our endpoint.
//
// Most counters are derived from the audit trail (Observe): a record is
// appended for every event worth counting, so the figures and the evidence
// cannot disagree, and the server needs hooks only where no record exists
// (session gauges, recording errors, bytes).
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bastion-dev/bastion/policy"
	"github.com/bastion-dev/bastion/recorder"
)

// TargetKinds are the target kinds the session series start with.
var TargetKinds = []string{policy.KindSSH, policy.KindPostgres, policy.KindMySQL, policy.KindSQLite, policy.KindCommand}

// Metrics are the bastion's collectors. A nil *Metrics is valid and
// counts nothing, so that the server's hooks need no "metrics on?" checks.
type Metrics struct {
	sessionsActive  *prometheus.GaugeVec
	sessionsTotal   *prometheus.CounterVec
	authFailures    *prometheus.CounterVec
	logins          *prometheus.CounterVec
	bytesOut        prometheus.Counter
	masked          *prometheus.CounterVec
	recordingErrors prometheus.Counter
	auditRecords    *prometheus.CounterVec
	statements      *prometheus.CounterVec
}

// New creates the collectors and registers them with reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		sessionsActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bastion_sessions_active",
			Help: "Sessions now inside a target, by target kind (ssh, postgres, mysql, sqlite, command)."}, []string{"kind"}),
		sessionsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bastion_sessions_total",
			Help: "Visits of a target by a session since start, by target kind."}, []string{"kind"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bastion_auth_failures_total",
			Help: "Failed SSH authentications, by reason (expired, revoked, not-certificate, ...)."}, []string{"reason"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bastion_logins_total",
			Help: "OIDC logins (ssh login@), by outcome."}, []string{"outcome"}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{Name: "bastion_session_bytes_out_total",
			Help: "Bytes of target output sent to clients (after masking), counted when each session ends."}),
		masked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bastion_masked_values_total",
			Help: "Values masked in session output, by detector or rule."}, []string{"detector"}),
		recordingErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "bastion_recording_errors_total",
			Help: "Recordings that failed or did not close cleanly; each ended its session under on_failure: terminate."}),
		auditRecords: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bastion_audit_records_total",
			Help: "Records appended to the audit trail, by type."}, []string{"type"}),
		statements: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bastion_sql_statements_total",
			Help: "SQL statements decided, by outcome."}, []string{"outcome"}),
	}
	for _, c := range []prometheus.Collector{m.sessionsActive, m.sessionsTotal, m.authFailures, m.logins, m.bytesOut,
		m.masked, m.recordingErrors, m.auditRecords, m.statements} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	// Series that exist from the start read 0 rather than missing, so
	// that dashboards and alerts (rate, absent) work before the first
	// session.
	for _, kind := range TargetKinds {
		m.sessionsActive.WithLabelValues(kind)
		m.sessionsTotal.WithLabelValues(kind)
	}
	for _, det := range []string{policy.DetectorPAN, policy.DetectorTrack, policy.DetectorExpiry, policy.DetectorCVV} {
		m.masked.WithLabelValues(det)
	}
	return m, nil
}

// EnterTarget counts a session entering a target of this kind; the
// returned function, called when it leaves, lowers the active gauge.
func (m *Metrics) EnterTarget(kind string) (leave func()) {
	if m == nil {
		return func() {}
	}
	m.sessionsTotal.WithLabelValues(kind).Inc()
	g := m.sessionsActive.WithLabelValues(kind)
	g.Inc()
	return g.Dec
}

// RecordingError counts a recording that failed.
func (m *Metrics) RecordingError() {
	if m != nil {
		m.recordingErrors.Inc()
	}
}

// Observe counts one audit record; pass it to recorder.BoltStore.OnAudit.
// It never blocks.
func (m *Metrics) Observe(r recorder.AuditRecord) {
	if m == nil {
		return
	}
	m.auditRecords.WithLabelValues(r.Type).Inc()
	switch r.Type {
	case "auth.failure", "login.lockout":
		m.authFailures.WithLabelValues(label(r.Reason)).Inc()
	case "login.success", "login.failure":
		m.logins.WithLabelValues(r.Outcome).Inc()
	case "sql.statement":
		m.statements.WithLabelValues(r.Outcome).Inc()
	case "session.end":
		for k, v := range r.Detail {
			if det, ok := strings.CutPrefix(k, "masked."); ok {
				if n, err := strconv.ParseFloat(v, 64); err == nil && n > 0 {
					m.masked.WithLabelValues(det).Add(n)
				}
			}
		}
		if n, err := strconv.ParseFloat(r.Detail["bytes_out"], 64); err == nil && n > 0 {
			m.bytesOut.Add(n)
		}
	}
}

// label keeps an empty label value readable.
func label(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// Gauges registers gauges read at scrape time: approvals pending (from
// pending) and the store file's size (from size). Either may be nil.
func Gauges(reg prometheus.Registerer, pending func(context.Context) (int, error), size func() (int64, error), log *slog.Logger) error {
	if pending != nil {
		g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "bastion_approvals_pending",
			Help: "Approval requests waiting for a decision."}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := pending(ctx)
			if err != nil {
				log.Warn("metrics: count pending approvals", "err", err)
				return -1
			}
			return float64(n)
		})
		if err := reg.Register(g); err != nil {
			return fmt.Errorf("metrics: register: %w", err)
		}
	}
	if size != nil {
		g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "bastion_store_size_bytes",
			Help: "Size of the store file (bastion.db)."}, func() float64 {
			n, err := size()
			if err != nil {
				return -1
			}
			return float64(n)
		})
		if err := reg.Register(g); err != nil {
			return fmt.Errorf("metrics: register: %w", err)
		}
	}
	return nil
}

// Listen opens the metrics address; a busy port is an error at start, not
// a silent lack of metrics.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen %s: %w (pick a free port, or remove metrics.listen)", addr, err)
	}
	return ln, nil
}

// Serve answers GET /metrics from g on ln until ctx is done.
func Serve(ctx context.Context, ln net.Listener, g prometheus.Gatherer, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: slogAdapter{log}}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// slogAdapter lets promhttp report gathering errors through slog.
type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Println(v ...any) { a.log.Error("metrics: " + fmt.Sprint(v...)) }
