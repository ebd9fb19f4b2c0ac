package main

// End-to-end tests of the audit trail's exports (issue 8): `bastion audit
// --follow` as a real subprocess, the RFC 5424 copy to a loopback syslog
// collector, the Prometheus endpoint, and every event type PCI DSS 10.2.1
// names, each produced by a real action and found with its 10.2.2 fields.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/octetcounting"
	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/bastion-dev/bastion/bastion/sqlrepl"
	"github.com/bastion-dev/bastion/internal/testharness"
	"github.com/bastion-dev/bastion/recorder"
	"github.com/bastion-dev/bastion/recorder/siem"
)

// follower is `bastion audit --follow --json ...` running as a process.
type follower struct {
	cmd   *exec.Cmd
	lines chan recorder.AuditRecord
	done  chan error
	mu    sync.Mutex
	seen  []recorder.AuditRecord
}

func startFollower(t *testing.T, bin, cfgPath string, args ...string) *follower {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"audit", "--follow", "--json", "--config", cfgPath}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &testharness.SyncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &follower{cmd: cmd, lines: make(chan recorder.AuditRecord, 1024), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var r recorder.AuditRecord
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Errorf("follower printed a line that is not a record: %q: %v", sc.Text(), err)
				continue
			}
			f.lines <- r
		}
		f.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-f.done
		}
		if t.Failed() {
			t.Logf("follower %v stderr:\n%s", args, stderr.String())
		}
	})
	return f
}

// next waits for a record that satisfies match, keeping everything seen.
func (f *follower) next(t *testing.T, what string, match func(recorder.AuditRecord) bool) recorder.AuditRecord {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case r := <-f.lines:
			f.mu.Lock()
			f.seen = append(f.seen, r)
			f.mu.Unlock()
			if match(r) {
				return r
			}
		case <-timeout:
			t.Fatalf("follower: no %s within 20s (seen %d records)", what, len(f.seen))
		}
	}
}

// interrupt sends SIGINT and expects a clean exit 0.
func (f *follower) interrupt(t *testing.T) {
	t.Helper()
	if err := f.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case r := <-f.lines:
			f.mu.Lock()
			f.seen = append(f.seen, r)
			f.mu.Unlock()
		case err := <-f.done:
			if err != nil {
				t.Fatalf("follower after SIGINT: %v, want exit 0", err)
			}
			return
		case <-time.After(10 * time.Second):
			t.Fatal("follower did not stop within 10s of SIGINT")
		}
	}
}

func isType(typ string) func(recorder.AuditRecord) bool {
	return func(r recorder.AuditRecord) bool { return r.Type == typ }
}

// collector is a loopback syslog server over TCP with octet counting, as
// rsyslog's imptcp or a SIEM's listener; it parses with go-syslog.
type collector struct {
	addr string
	mu   sync.Mutex
	msgs []*rfc5424.SyslogMessage
}

func startCollector(t *testing.T) *collector {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		c.mu.Lock()
		for _, cn := range conns {
			_ = cn.Close()
		}
		c.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			cn, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			conns = append(conns, cn)
			c.mu.Unlock()
			wg.Go(func() {
				octetcounting.NewParser(syslog.WithListener(func(res *syslog.Result) {
					if res.Error != nil {
						t.Errorf("collector: %v", res.Error)
						return
					}
					c.mu.Lock()
					c.msgs = append(c.msgs, res.Message.(*rfc5424.SyslogMessage))
					c.mu.Unlock()
				})).Parse(cn)
			})
		}
	})
	return c
}

// wait returns the first message whose structured data has key=value.
func (c *collector) wait(t *testing.T, typ, key, value string) *rfc5424.SyslogMessage {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c.mu.Lock()
		for _, m := range c.msgs {
			if sd := (*m.StructuredData)[siem.SDID]; m.MsgID != nil && *m.MsgID == typ && sd[key] == value {
				c.mu.Unlock()
				return m
			}
		}
		n := len(c.msgs)
		c.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("collector: no %s with %s=%q within 20s (%d messages)", typ, key, value, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// auditJSON runs `bastion audit --json ARGS` and decodes the records.
func (w *world) auditJSON(t *testing.T, args ...string) []recorder.AuditRecord {
	t.Helper()
	out, errOut, code := w.bastion(append([]string{"audit", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("audit --json %v: exit %d: %s", args, code, errOut)
	}
	var list []recorder.AuditRecord
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var r recorder.AuditRecord
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("decode audit --json: %v", err)
		}
		list = append(list, r)
	}
	return list
}

// scrape reads the Prometheus text exposition at url.
func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: HTTP %d %v", url, resp.StatusCode, err)
	}
	return string(body)
}

// metric is the value of the sample `name{labels}` (labels as written by
// the exposition, e.g. `kind="ssh"`; empty for none), or -1 when absent.
func metric(body, name, labels string) float64 {
	series := name
	if labels != "" {
		series += "{" + labels + "}"
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

var clientAddr = regexp.MustCompile(`^127\.0\.0\.1:\d+$`)

func TestAuditFollowSyslogAndMetrics(t *testing.T) {
	col := startCollector(t)
	mport := testharness.FreePort(t)
	w := newWorld(t, worldOpts{extra: fmt.Sprintf("audit:\n  syslog: { network: tcp, address: %q, facility: local4 }\nmetrics: { listen: \"127.0.0.1:%d\" }\n",
		col.addr, mport)})
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)
	bin := buildBinary(t)

	// One follower filtered to the session family (with a backlog from
	// --since, so that nothing between its start and the session is
	// missed), one that sees everything.
	sessionsOnly := startFollower(t, bin, w.cfgPath, "--type", "session", "--since", "10m")
	everything := startFollower(t, bin, w.cfgPath)
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := 0
		for _, r := range w.auditJSON(t, "--type", "audit.read") {
			if r.Detail["what"] == "audit --follow" {
				n++
			}
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the followers did not start (%d audit.read records of theirs)", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // let the unfiltered one reach the socket

	res := w.client.Run(t, "web-1", "echo card 4111111111111111 done")
	if res.ExitCode != 0 || strings.Contains(res.Stdout, "4111111111111111") {
		t.Fatalf("session: %+v", res)
	}
	start := sessionsOnly.next(t, "session.start", isType("session.start"))
	end := sessionsOnly.next(t, "session.end", isType("session.end"))
	for _, r := range []recorder.AuditRecord{start, end} {
		if r.User != "alice" || r.Serial == 0 || !clientAddr.MatchString(r.Client) || !strings.HasPrefix(r.KeyFingerprint, "SHA256:") ||
			r.Session == "" || r.Target != "web-1" || r.Time.Location() != time.UTC {
			t.Fatalf("followed %s lacks PCI 10.2.2 fields: %+v", r.Type, r)
		}
	}
	if start.Session != end.Session || end.Detail[recorder.DetailRecordingDigest] == "" || end.Detail["masked.pan"] != "1" {
		t.Fatalf("session.end %+v does not close session.start %s", end, start.Session)
	}
	// The unfiltered follower saw the same session's access and command.
	exec := everything.next(t, "exec.command", isType("exec.command"))
	if exec.Session != start.Session || !strings.Contains(exec.Detail["command"], "echo card") || strings.Contains(exec.Detail["command"], "4111111111111111") {
		t.Fatalf("exec.command %+v", exec)
	}
	everything.next(t, "session.end", isType("session.end"))

	// The syslog copy: the same records, parsed as RFC 5424 with octet
	// counting, the 10.2.2 fields in structured data, MSG the record.
	for _, want := range []recorder.AuditRecord{start, end} {
		m := col.wait(t, want.Type, "session", want.Session)
		sd := (*m.StructuredData)[siem.SDID]
		if m.Facility == nil || *m.Facility != 20 || m.Timestamp == nil || !m.Timestamp.Equal(want.Time.Truncate(time.Microsecond)) {
			t.Fatalf("syslog %s: header %+v", want.Type, m.Base)
		}
		if sd["user"] != "alice" || sd["serial"] != fmt.Sprint(want.Serial) || sd["client"] != want.Client ||
			sd["key_fingerprint"] != want.KeyFingerprint || sd["outcome"] != "success" || sd["time"] != want.Time.Format(time.RFC3339Nano) {
			t.Fatalf("syslog %s: structured data %v", want.Type, sd)
		}
		var got recorder.AuditRecord
		if err := json.Unmarshal([]byte(*m.Message), &got); err != nil || got.Hash != want.Hash || got.Seq != want.Seq {
			t.Fatalf("syslog MSG is not the record: %v %q", err, *m.Message)
		}
	}

	// A plain key without a certificate: a failed authentication.
	plainKey, _ := testharness.KeyPair(t, t.TempDir(), "ed25519")
	plain := *w.client
	plain.KeyFile, plain.CertFile = plainKey, ""
	// The refusal of a plain key is told (and audited) through
	// keyboard-interactive, as a real user's client would reach it.
	plain.ExtraOpts = []string{"-o", "BatchMode=no", "-o", "KbdInteractiveAuthentication=yes", "-o", "PasswordAuthentication=no"}
	if res := plain.Run(t, "whoami"); res.ExitCode != 255 {
		t.Fatalf("plain key logged in: %+v", res)
	}
	fail := everything.next(t, "auth.failure", isType("auth.failure"))
	if fail.Outcome != recorder.OutcomeFailure || fail.Reason != "not-certificate" || !clientAddr.MatchString(fail.Client) {
		t.Fatalf("auth.failure %+v", fail)
	}

	// The metrics moved.
	body := scrape(t, metricsURL)
	for _, c := range []struct {
		name, labels string
		min          float64
	}{
		{"bastion_sessions_total", `kind="ssh"`, 1},
		{"bastion_auth_failures_total", `reason="not-certificate"`, 1},
		{"bastion_session_bytes_out_total", "", float64(len("echo card XXXXXXXXXXXXXXXX done\n")) - 20},
		{"bastion_masked_values_total", `detector="pan"`, 1},
		{"bastion_audit_records_total", `type="session.start"`, 1},
		{"bastion_audit_records_total", `type="session.end"`, 1},
		{"bastion_store_size_bytes", "", 1},
	} {
		if v := metric(body, c.name, c.labels); v < c.min {
			t.Errorf("metric %s{%s} = %v, want at least %v", c.name, c.labels, v, c.min)
		}
	}
	for _, c := range []struct{ name, labels string }{
		{"bastion_sessions_active", `kind="ssh"`},
		{"bastion_approvals_pending", ""},
		{"bastion_recording_errors_total", ""},
	} {
		if v := metric(body, c.name, c.labels); v != 0 {
			t.Errorf("metric %s{%s} = %v, want 0", c.name, c.labels, v)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", body)
	}

	// The server stops: the stream carries server.stop before it ends,
	// then the follower polls the stopped store and sees what an on-host
	// command writes there, then streams again from the restarted server.
	w.stop()
	w.stop = nil
	everything.next(t, "server.stop", isType("server.stop"))
	if _, errOut, code := w.bastion("sessions"); code != 0 {
		t.Fatalf("sessions on the stopped store: %s", errOut)
	}
	everything.next(t, "audit.read of sessions on the stopped store", func(r recorder.AuditRecord) bool {
		return r.Type == "audit.read" && r.Detail["what"] == "sessions"
	})
	col.wait(t, "server.stop", "type", "server.stop")
	w.startServer()
	everything.next(t, "server.start after the restart", isType("server.start"))
	res = w.client.Run(t, "web-1", "true")
	if res.ExitCode != 0 {
		t.Fatalf("session after restart: %+v", res)
	}
	again := sessionsOnly.next(t, "the second session.end", func(r recorder.AuditRecord) bool {
		return r.Type == "session.end" && r.Session != start.Session
	})
	sessionsOnly.interrupt(t)
	everything.interrupt(t)
	for _, r := range sessionsOnly.seen {
		if !strings.HasPrefix(r.Type, "session.") {
			t.Errorf("--type session followed a %s record", r.Type)
		}
	}
	if again.Seq <= end.Seq {
		t.Fatalf("records out of order: %d after %d", again.Seq, end.Seq)
	}
}

// TestEveryPCIEventRecorded drives every event type PCI DSS 10.2.1 names
// through the real parts and finds each with `bastion audit`, carrying the
// fields of 10.2.2 that apply to it.
func TestEveryPCIEventRecorded(t *testing.T) {
	dir := t.TempDir()
	lite := filepath.Join(dir, "lite.db")
	if err := sqlrepl.WriteDemoDB(lite); err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, worldOpts{
		extraTargets: fmt.Sprintf("  - { name: lite, kind: sqlite, path: %q }\n", lite),
		roles: `  - { name: dba, groups: [sre], targets: ["lite"] }
  - { name: dev, groups: [dev], targets: ["web-*"] }
  - { name: approver, groups: [approver], approve: ["web-*"] }
  - { name: auditor, groups: [audit], audit: true }
`,
		extra: `rules:
  - { name: restarts, targets: ["web-*"], roles: [dev], commands: ["echo restart*"], action: approve }
approvals: { ttl: 1m, required: 1 }
`,
	})
	// 10.2.1.5: a CA key created (the host CA, removed while stopped) —
	// and the bastion's stop and start (10.2.1.6).
	w.stop()
	w.stop = nil
	for _, f := range []string{hostCAFile, hostCAFile + ".pub"} {
		if err := removeIfExists(filepath.Join(w.cfg.DataDir, f)); err != nil {
			t.Fatal(err)
		}
	}
	w.startServer()

	// 10.2.1.1: access to a target and its data.
	if res := w.client.Run(t, "web-1", "uname -s"); res.ExitCode != 0 {
		t.Fatalf("exec: %+v", res)
	}
	if res := w.client.Run(t, "lite", "select count(*) from customers;"); res.ExitCode != 0 {
		t.Fatalf("sql: %+v", res)
	}
	// 10.2.1.2: a privileged action: an approval requested and granted.
	dev := w.userClient(t, "dave", "dev")
	bob := w.userClient(t, "bob", "approver")
	held := make(chan testharness.Result, 1)
	go func() { held <- dev.Run(t, "web-1", "--reason", "'deploy 42'", "echo restarted") }()
	req := pendingID(t, bob)
	if res := bob.Run(t, "approve", itoa(req.ID), "ok"); res.ExitCode != 0 {
		t.Fatalf("approve: %+v", res)
	}
	if res := <-held; res.ExitCode != 0 {
		t.Fatalf("approved command: %+v", res)
	}
	// 10.2.1.3: access to the audit trail, over SSH and on the host.
	eve := w.userClient(t, "eve", "audit")
	if res := eve.Run(t, "sessions"); res.ExitCode != 0 {
		t.Fatalf("auditor's sessions: %+v", res)
	}
	id := w.lastSession(t).ID
	for _, args := range [][]string{{"sessions"}, {"export", id}, {"replay", id, "--speed", "1000"}, {"audit", "--limit", "1"}} {
		if _, errOut, code := w.bastion(args...); code != 0 {
			t.Fatalf("%v: %s", args, errOut)
		}
	}
	// 10.2.1.5: a certificate issued (dave's, bob's, eve's above) and one
	// revoked; 10.2.1.4: the revoked certificate then fails to log in.
	mallory := w.userClient(t, "mallory", "dev")
	serial := certSerial(t, mallory.CertFile)
	if _, errOut, code := w.bastion("revoke", "--serial", fmt.Sprint(serial), "--reason", "laptop lost"); code != 0 {
		t.Fatalf("revoke: %s", errOut)
	}
	if res := mallory.Run(t, "whoami"); res.ExitCode != 255 {
		t.Fatalf("revoked certificate logged in: %+v", res)
	}
	// 10.2.1.7 (changes to the configuration): a policy reload.
	if out, errOut, code := w.bastion("reload"); code != 0 {
		t.Fatalf("reload: %s %s", out, errOut)
	}
	w.stop()
	w.stop = nil

	all := w.auditJSON(t)
	byType := map[string][]recorder.AuditRecord{}
	for _, r := range all {
		byType[r.Type] = append(byType[r.Type], r)
	}
	// What each type must carry (PCI DSS 10.2.2): user identity, type,
	// time, outcome, origin, affected resource, and the session id that
	// joins a record to its recording.
	type need struct{ user, serial, client, key, target, session, reason bool }
	cases := []struct {
		typ  string
		need need
		pick func(recorder.AuditRecord) bool // which record of the type; nil: the first
	}{
		{"server.start", need{}, nil},
		{"server.stop", need{}, nil},
		{"key.created", need{key: true}, func(r recorder.AuditRecord) bool { return r.Detail["key"] == hostCAFile }},
		{"cert.issued", need{user: true, serial: true, key: true}, func(r recorder.AuditRecord) bool { return r.User == "dave" }},
		{"cert.revoked", need{serial: true, reason: true}, func(r recorder.AuditRecord) bool { return r.Serial == serial }},
		{"auth.failure", need{client: true, reason: true}, func(r recorder.AuditRecord) bool { return r.Reason == "revoked" }},
		{"session.start", need{user: true, serial: true, client: true, key: true, target: true, session: true}, func(r recorder.AuditRecord) bool { return r.Target == "web-1" }},
		{"session.end", need{user: true, serial: true, client: true, key: true, target: true, session: true}, func(r recorder.AuditRecord) bool { return r.Target == "web-1" }},
		{"recording.start", need{user: true, serial: true, client: true, key: true, session: true}, nil},
		{"recording.stop", need{user: true, serial: true, client: true, session: true}, nil},
		{"target.access", need{user: true, serial: true, client: true, key: true, target: true, session: true}, func(r recorder.AuditRecord) bool { return r.Target == "lite" }},
		{"exec.command", need{user: true, serial: true, client: true, key: true, target: true, session: true}, func(r recorder.AuditRecord) bool { return r.Detail["command"] == "uname -s" }},
		{"exec.command", need{user: true, serial: true, client: true, key: true, target: true, session: true}, func(r recorder.AuditRecord) bool {
			return r.User == "dave" && r.Detail["command"] == "echo restarted" && r.Detail["reason_given"] == "deploy 42"
		}},
		{"sql.statement", need{user: true, serial: true, target: true, session: true}, nil},
		{"approval.filed", need{user: true, serial: true, target: true}, nil},
		{"approval.granted", need{user: true, serial: true, target: true}, nil},
		{"audit.read", need{user: true, serial: true, session: true}, func(r recorder.AuditRecord) bool { return r.User == "eve" }},
		{"audit.read", need{user: true, client: true, session: true}, func(r recorder.AuditRecord) bool { return r.Detail["what"] == "replay" }},
		{"audit.read", need{user: true, session: true}, func(r recorder.AuditRecord) bool { return r.Detail["what"] == "export" }},
		{"audit.read", need{user: true}, func(r recorder.AuditRecord) bool { return r.Detail["what"] == "sessions" && r.Detail["via"] == "host" }},
		{"audit.read", need{user: true}, func(r recorder.AuditRecord) bool { return r.Detail["what"] == "audit" }},
		{"policy.reload", need{}, nil},
		{"audit.checkpoint", need{}, nil},
	}
	for _, c := range cases {
		var r recorder.AuditRecord
		found := false
		for _, cand := range byType[c.typ] {
			if c.pick == nil || c.pick(cand) {
				r, found = cand, true
				break
			}
		}
		if !found {
			t.Errorf("%s: no such record in the trail (have %d of the type)", c.typ, len(byType[c.typ]))
			continue
		}
		var missing []string
		check := func(want bool, ok bool, field string) {
			if want && !ok {
				missing = append(missing, field)
			}
		}
		check(c.need.user, r.User != "", "user")
		check(c.need.serial, r.Serial != 0, "serial")
		check(c.need.client, r.Client == "local" || clientAddr.MatchString(r.Client), "client addr:port")
		check(c.need.key, strings.HasPrefix(r.KeyFingerprint, "SHA256:"), "key fingerprint")
		check(c.need.target, r.Target != "", "target")
		check(c.need.session, r.Session != "", "session")
		check(c.need.reason, r.Reason != "", "reason")
		check(true, r.Outcome == recorder.OutcomeSuccess || r.Outcome == recorder.OutcomeFailure, "outcome")
		check(true, r.Time.Location() == time.UTC && r.Time.Nanosecond() != 0, "UTC time with sub-second precision")
		if r.Outcome == recorder.OutcomeFailure && r.Reason == "" {
			missing = append(missing, "reason of the failure")
		}
		if len(missing) > 0 {
			t.Errorf("%s record %d lacks %v: %+v", c.typ, r.Seq, missing, r)
		}
	}
	// The resource of a visit is named: kind and database of the SQL one.
	for _, r := range byType["target.access"] {
		if r.Target == "lite" && (r.Detail["kind"] != "sqlite" || r.Detail["database"] != lite) {
			t.Errorf("target.access of lite: %+v", r.Detail)
		}
		if r.Target == "web-1" && (r.Detail["kind"] != "ssh" || r.Detail["address"] != w.sshd.Addr) {
			t.Errorf("target.access of web-1: %+v", r.Detail)
		}
	}
	// And the whole trail still verifies.
	if out, errOut, code := w.bastion("audit", "verify"); code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("audit verify: %s %s", out, errOut)
	}
	// Filters of point 5 of the issue, on the same trail.
	for _, c := range []struct {
		args []string
		ok   func(recorder.AuditRecord) bool
	}{
		{[]string{"--target", "lite"}, func(r recorder.AuditRecord) bool { return r.Target == "lite" }},
		{[]string{"--outcome", "failure"}, func(r recorder.AuditRecord) bool { return r.Outcome == recorder.OutcomeFailure }},
		{[]string{"--text", "UNAME"}, func(r recorder.AuditRecord) bool {
			return strings.Contains(strings.ToLower(fmt.Sprint(r.Detail)), "uname")
		}},
		{[]string{"--type", "approval", "--user", "bob"}, func(r recorder.AuditRecord) bool { return strings.HasPrefix(r.Type, "approval.") && r.User == "bob" }},
	} {
		got := w.auditJSON(t, c.args...)
		if len(got) == 0 {
			t.Errorf("audit %v: nothing found", c.args)
		}
		for _, r := range got {
			if !c.ok(r) {
				t.Errorf("audit %v returned %+v", c.args, r)
			}
		}
	}
	if _, _, code := w.bastion("audit", "--outcome", "maybe"); code != 2 {
		t.Errorf("audit --outcome maybe: exit %d, want 2", code)
	}
}

func removeIfExists(path string) error {
	err := syscall.Unlink(path)
	if err == syscall.ENOENT {
		return nil
	}
	return err
}

// certSerial reads the serial of the certificate at path.
func certSerial(t *testing.T, path string) uint64 {
	t.Helper()
	return readCert(t, path).Serial
}
