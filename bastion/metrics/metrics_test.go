package metrics

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bastion-dev/bastion/recorder"
)

func TestObserveCountsFromTheTrail(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []recorder.AuditRecord{
		{Type: "auth.failure", Outcome: recorder.OutcomeFailure, Reason: "expired"},
		{Type: "auth.failure", Outcome: recorder.OutcomeFailure, Reason: "expired"},
		{Type: "auth.failure", Outcome: recorder.OutcomeFailure},
		{Type: "login.success", Outcome: recorder.OutcomeSuccess},
		{Type: "sql.statement", Outcome: recorder.OutcomeFailure},
		{Type: "session.end", Outcome: recorder.OutcomeSuccess, Detail: map[string]string{"masked.pan": "3", "masked.ssn": "1", "bytes_out": "1000", "exit": "0"}},
		{Type: "session.end", Outcome: recorder.OutcomeSuccess, Detail: map[string]string{"masked.pan": "not a number", "bytes_out": "24"}},
	} {
		m.Observe(r)
	}
	leave := m.EnterTarget("postgres")
	m.EnterTarget("ssh")
	leave()
	m.RecordingError()
	cases := []struct {
		name, label string // label is "value" of the one label, or ""
		want        float64
	}{
		{"bastion_auth_failures_total", "expired", 2},
		{"bastion_auth_failures_total", "unknown", 1},
		{"bastion_logins_total", "success", 1},
		{"bastion_sql_statements_total", "failure", 1},
		{"bastion_masked_values_total", "pan", 3},
		{"bastion_masked_values_total", "ssn", 1},
		{"bastion_session_bytes_out_total", "", 1024},
		{"bastion_audit_records_total", "session.end", 2},
		{"bastion_sessions_total", "postgres", 1},
		{"bastion_sessions_active", "postgres", 0},
		{"bastion_sessions_active", "ssh", 1},
		{"bastion_recording_errors_total", "", 1},
	}
	for _, c := range cases {
		if got := gathered(t, reg, c.name, c.label); got != c.want {
			t.Errorf("%s{%s} = %v, want %v", c.name, c.label, got, c.want)
		}
	}
}

// gathered is the value of the sample of name whose one label has value
// label (or that has no label), from reg; -1 when there is none.
func gathered(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if ls := m.GetLabel(); (label == "" && len(ls) == 0) || (len(ls) == 1 && ls[0].GetValue() == label) {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// A nil *Metrics (metrics.listen unset) is safe to call.
func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.Observe(recorder.AuditRecord{Type: "auth.failure"})
	m.EnterTarget("ssh")()
	m.RecordingError()
}

func TestServeAndGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(reg); err != nil {
		t.Fatal(err)
	}
	if err := Gauges(reg, func(context.Context) (int, error) { return 3, nil }, func() (int64, error) { return 4096, nil },
		slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, reg, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	for _, want := range []string{"bastion_approvals_pending 3", "bastion_store_size_bytes 4096", "# TYPE bastion_sessions_total counter"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	if _, err := Listen(ln.Addr().String()); err == nil || !strings.Contains(err.Error(), "metrics.listen") {
		t.Errorf("a busy port: %v", err)
	}
}
