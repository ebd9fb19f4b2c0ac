package bench

// Benchmarks of the audit trail's search (issue 8, point 5): a filtered
// `bastion audit` query over a million records, and `bastion sessions
// --grep` over gigabytes of recordings.
//
// Knobs (environment, or the flags after -args):
//
//	BENCH_AUDIT_RECORDS / -bench.audit-records  records in the trail; default 1000000
//	BENCH_GREP_BYTES    / -bench.grep-bytes     bytes of recorded output to grep;
//	                                            default 256M (`make bench` sets 10G)

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/recorder"
)

var (
	auditRecordsFlag = flag.String("bench.audit-records", envOr("BENCH_AUDIT_RECORDS", "1000000"),
		"audit records in the store for BenchmarkAuditQuery (env BENCH_AUDIT_RECORDS)")
	grepBytesFlag = flag.String("bench.grep-bytes", envOr("BENCH_GREP_BYTES", "256M"),
		"bytes of recorded output for BenchmarkSessionsGrep: K, M, G suffixes (env BENCH_GREP_BYTES)")
)

// storeConfig writes a minimal configuration whose data_dir is dataDir, so
// the real binary's on-host commands read the store there.
func storeConfig(b *testing.B, dir, dataDir string) string {
	b.Helper()
	cfg := filepath.Join(dir, "bastion.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("listen: \"127.0.0.1:1\"\ndata_dir: %q\n", dataDir)), 0o600); err != nil {
		b.Fatal(err)
	}
	return cfg
}

// fillAudit appends n records shaped like a busy bastion's: 200 users,
// 40 targets, the event types in realistic proportions, 20 records per
// session, commands and statements in the details, one second apart and
// ending now.
func fillAudit(b *testing.B, st *recorder.BoltStore, n int) time.Time {
	b.Helper()
	types := []struct {
		typ     string
		outcome string
		weight  int
	}{
		{"sql.statement", recorder.OutcomeSuccess, 40}, {"exec.command", recorder.OutcomeSuccess, 15},
		{"target.access", recorder.OutcomeSuccess, 10}, {"session.start", recorder.OutcomeSuccess, 8},
		{"session.end", recorder.OutcomeSuccess, 8}, {"recording.start", recorder.OutcomeSuccess, 4},
		{"recording.stop", recorder.OutcomeSuccess, 4}, {"auth.failure", recorder.OutcomeFailure, 5},
		{"approval.filed", recorder.OutcomeSuccess, 2}, {"approval.granted", recorder.OutcomeSuccess, 2},
		{"audit.read", recorder.OutcomeSuccess, 2},
	}
	var pick []int
	for i, t := range types {
		for range t.weight {
			pick = append(pick, i)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now().Add(-time.Duration(n) * time.Second)
	const batch = 20000
	ctx := context.Background()
	began := time.Now()
	for done := 0; done < n; {
		rs := make([]recorder.AuditRecord, 0, min(batch, n-done))
		for i := done; i < n && len(rs) < batch; i++ {
			t := types[pick[rng.IntN(len(pick))]]
			r := recorder.AuditRecord{Time: start.Add(time.Duration(i) * time.Second), Type: t.typ, Outcome: t.outcome,
				User: fmt.Sprintf("user%03d", rng.IntN(200)), Serial: uint64(rng.IntN(100000) + 1),
				Client:         fmt.Sprintf("10.%d.%d.%d:%d", rng.IntN(256), rng.IntN(256), rng.IntN(256), 1024+rng.IntN(60000)),
				KeyFingerprint: fmt.Sprintf("SHA256:%016x%016x", rng.Uint64(), rng.Uint64()),
				Target:         fmt.Sprintf("db-%02d", rng.IntN(40)), Session: fmt.Sprintf("s%08d", i/20)}
			switch t.typ {
			case "sql.statement":
				r.Detail = map[string]string{"statement": fmt.Sprintf("SELECT id, holder, amount FROM payments WHERE id = %d", rng.IntN(1e6)), "class": "read"}
			case "exec.command":
				r.Detail = map[string]string{"command": fmt.Sprintf("journalctl -u api --since -%dm", rng.IntN(600))}
			case "auth.failure":
				r.Reason, r.User = "expired", ""
			}
			rs = append(rs, r)
		}
		if _, err := st.AppendAudits(ctx, rs); err != nil {
			b.Fatal(err)
		}
		done += len(rs)
	}
	b.Logf("filled the trail with %d records in %s", n, time.Since(began).Round(time.Millisecond))
	return start
}

// BenchmarkAuditQuery is the time to the first page (50 records, newest
// first) of filtered audit queries over BENCH_AUDIT_RECORDS records: in
// process through the store's API, and through the real `bastion audit`
// command against the stopped store (process start, open, query, print).
func BenchmarkAuditQuery(b *testing.B) {
	n, err := strconv.Atoi(*auditRecordsFlag)
	if err != nil || n <= 0 {
		b.Fatalf("BENCH_AUDIT_RECORDS / -bench.audit-records: want a positive number, got %q", *auditRecordsFlag)
	}
	dir := b.TempDir()
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dataDir, "bastion.db")
	st, err := recorder.OpenBolt(path, recorder.BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	start := fillAudit(b, st, n)
	b.Logf("store file: %d MB", fileSize(b, path)>>20)
	// Ranges inside the trail: an hour at 30% of its length (a week ago
	// in a million records), and an hour at 70%.
	old := start.Add(time.Duration(n*3/10) * time.Second)
	recent := start.Add(time.Duration(n*7/10) * time.Second)
	cases := []struct {
		name string
		f    recorder.AuditFilter
		args []string // the same query on the command line
	}{
		{"user", recorder.AuditFilter{User: "user042"}, []string{"--user", "user042"}},
		{"user+type", recorder.AuditFilter{User: "user042", Type: "exec.command"}, []string{"--user", "user042", "--type", "exec.command"}},
		{"target+outcome", recorder.AuditFilter{Target: "db-07", Outcome: recorder.OutcomeFailure}, []string{"--target", "db-07", "--outcome", "failure"}},
		{"type-family", recorder.AuditFilter{Type: "approval"}, []string{"--type", "approval"}},
		{"session", recorder.AuditFilter{Session: fmt.Sprintf("s%08d", n/40)}, []string{"--session", fmt.Sprintf("s%08d", n/40)}},
		{"user+old-hour", recorder.AuditFilter{User: "user042", Since: old, Until: old.Add(time.Hour)},
			[]string{"--user", "user042", "--since", rfc(old), "--until", rfc(old.Add(time.Hour))}},
		{"time-range-hour", recorder.AuditFilter{Since: recent, Until: recent.Add(time.Hour)},
			[]string{"--since", rfc(recent), "--until", rfc(recent.Add(time.Hour))}},
		{"text", recorder.AuditFilter{Text: "journalctl -u api --since -42m"}, []string{"--text", "journalctl -u api --since -42m"}},
		{"user+text", recorder.AuditFilter{User: "user042", Text: "where id = 4"}, []string{"--user", "user042", "--text", "where id = 4"}},
		{"text-absent-fullscan", recorder.AuditFilter{Text: "no such text anywhere"}, []string{"--text", "no such text anywhere"}},
	}
	for _, c := range cases {
		c.f.Limit = 50
		b.Run("api/"+c.name, func(b *testing.B) {
			var got int
			for b.Loop() {
				list, err := st.ListAudit(context.Background(), c.f)
				if err != nil {
					b.Fatal(err)
				}
				got = len(list)
			}
			if got == 0 && !strings.Contains(c.name, "absent") {
				b.Fatalf("%s found nothing: the benchmark would measure an empty answer", c.name)
			}
			b.ReportMetric(float64(got), "records/page")
		})
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	bin := bastionBinary(b)
	cfg := storeConfig(b, dir, dataDir)
	for _, c := range cases {
		b.Run("cli/"+c.name, func(b *testing.B) {
			args := append([]string{"audit", "--config", cfg, "--json", "--limit", "50"}, c.args...)
			var lines int
			for b.Loop() {
				var out, errOut bytes.Buffer
				cmd := exec.Command(bin, args...)
				cmd.Stdout, cmd.Stderr = &out, &errOut
				if err := cmd.Run(); err != nil {
					b.Fatalf("bastion %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
				}
				lines = bytes.Count(out.Bytes(), []byte("\n"))
			}
			b.ReportMetric(float64(lines), "records/page")
		})
	}
}

// rfc formats t for --since and --until, to the second (as the flags
// take it).
func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// BenchmarkSessionsGrep runs the real `bastion sessions --grep TEXT` over
// BENCH_GREP_BYTES of recorded output in 64 MiB sessions, for text that no
// session holds (so every recording is read to its end); MB/s is recorded
// output searched per second.
func BenchmarkSessionsGrep(b *testing.B) {
	total, err := parseSize(*grepBytesFlag)
	if err != nil {
		b.Fatalf("BENCH_GREP_BYTES / -bench.grep-bytes: %v", err)
	}
	dir := b.TempDir()
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dataDir, "bastion.db")
	st, err := recorder.OpenBolt(path, recorder.BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	written := fillRecordings(b, st, total)
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("store file: %d MB for %d MB of recordings", fileSize(b, path)>>20, written>>20)
	bin := bastionBinary(b)
	cfg := storeConfig(b, dir, dataDir)
	b.SetBytes(written)
	b.ResetTimer()
	for b.Loop() {
		var out, errOut bytes.Buffer
		cmd := exec.Command(bin, "sessions", "--config", cfg, "--grep", "needle-that-is-nowhere")
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			b.Fatalf("sessions --grep: %v\n%s", err, errOut.String())
		}
		if strings.Count(out.String(), "\n") != 1 { // the header only
			b.Fatalf("sessions --grep found sessions for text nobody printed:\n%s", out.String())
		}
	}
}

// fillRecordings stores closed sessions of 64 MiB of terminal-like output
// each (log lines with timestamps, ids and hex, in 4 MiB chunks of event
// lines as the recorder writes them) until total bytes of event lines are
// stored, and returns how many were.
func fillRecordings(b *testing.B, st *recorder.BoltStore, total int64) int64 {
	b.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	// A pool of varied lines; chunks take slices at random offsets so that
	// compression sees text, not one repeated block.
	var pool strings.Builder
	for pool.Len() < 16<<20 {
		fmt.Fprintf(&pool, "2026-11-%02d %02d:%02d:%02d.%03d INFO api[%d]: request id=%016x path=/v1/payments/%d status=%d bytes=%d\r\n",
			1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60), rng.IntN(1000), 1000+rng.IntN(9000), rng.Uint64(),
			rng.IntN(1e6), []int{200, 200, 200, 201, 404, 500}[rng.IntN(6)], rng.IntN(1e5))
	}
	text := pool.String()
	const sessionBytes = 64 << 20
	const chunkBytes = 4 << 20
	ctx := context.Background()
	var written int64
	began := time.Now()
	start := time.Now().Add(-24 * time.Hour)
	for s := 0; written < total; s++ {
		id := fmt.Sprintf("grep%09d", s)
		m := recorder.SessionMeta{ID: id, User: "alice", Serial: 1, ClientAddr: "127.0.0.1:5000", Target: "web-1",
			Start: start.Add(time.Duration(s) * time.Second), State: recorder.StateActive, Width: 80, Height: 24}
		if err := st.CreateSession(ctx, m); err != nil {
			b.Fatal(err)
		}
		var inSession int64
		t := 0.0
		for inSession < sessionBytes && written < total {
			var chunk bytes.Buffer
			enc := recorder.NewEncoder(&chunk)
			for chunk.Len() < chunkBytes {
				off := rng.IntN(len(text) - 8192)
				end := off + 1024 + rng.IntN(4096)
				// Cut at line ends so events hold whole lines.
				if i := strings.LastIndex(text[off:end], "\n"); i > 0 {
					end = off + i + 1
				}
				t += 0.01
				if err := enc.WriteEvent(recorder.Event{Time: t, Type: recorder.EventOutput, Data: text[off:end]}); err != nil {
					b.Fatal(err)
				}
			}
			if err := st.AppendChunk(ctx, id, chunk.Bytes()); err != nil {
				b.Fatal(err)
			}
			inSession += int64(chunk.Len())
			written += int64(chunk.Len())
		}
		exit := 0
		m.State, m.End, m.ExitStatus, m.BytesOut = recorder.StateClosed, m.Start.Add(time.Minute), &exit, inSession
		if err := st.UpdateSession(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("stored %d MB of recordings in %s", written>>20, time.Since(began).Round(time.Millisecond))
	return written
}
