package bench

// The SQL benchmark: a large result streamed through the bastion's SQL REPL
// (real bastion, real ssh client, non-interactive --csv) with masking on,
// and the same query with psql straight to the same PostgreSQL server, in
// the same run.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bastion-dev/bastion/internal/testharness"
)

var sqlRowsFlag = flag.String("bench.sqlrows", envOr("BENCH_SQL_ROWS", "1000000"),
	"rows of the streamed SQL result (env BENCH_SQL_ROWS)")

func benchSQLRows(b *testing.B) int64 {
	b.Helper()
	n, err := strconv.ParseInt(strings.TrimSpace(*sqlRowsFlag), 10, 64)
	if err != nil || n <= 0 {
		b.Fatalf("BENCH_SQL_ROWS / -bench.sqlrows: %q: want a positive integer", *sqlRowsFlag)
	}
	return n
}

// sqlQuery is the streamed result: n rows of a cardholder table, generated
// on the server so that no fixture needs loading. card_number is masked
// whole by the masking.columns glob; every tenth note holds a card number
// in free text for the PAN detector; the other cells are read by the
// detectors and left alone.
func sqlQuery(n int64) string {
	return fmt.Sprintf("SELECT i AS id, 'Customer ' || i AS holder, '4111111111111111' AS card_number, "+
		"CASE WHEN i %% 10 = 0 THEN 'paid with 5555 5555 5555 4444' ELSE 'order ' || i END AS note, "+
		"(i * 1.5)::numeric(12,2) AS amount FROM generate_series(1, %d) AS i;", n)
}

// sqlWorld is a bastion in front of one PostgreSQL server, and psql set up
// to reach the same server directly.
type sqlWorld struct {
	*world
	pg      *testharness.Postgres
	pgPass  string // the password file of the bastion's target
	passDir string // PGPASSFILE for psql lives here
	noMask  bool
}

// newSQLWorld starts PostgreSQL and `bastion serve` with one postgres
// target, pg, and signs alice's certificate. Everything is stopped by
// b.Cleanup.
func newSQLWorld(b *testing.B) *sqlWorld {
	b.Helper()
	logLoad(b)
	w := &sqlWorld{world: &world{bin: bastionBinary(b), dir: b.TempDir()}}
	w.dataDir = filepath.Join(w.dir, "data")
	w.cfgPath = filepath.Join(w.dir, "bastion.yaml")
	w.serverLog = filepath.Join(w.dir, "bastion.log")
	w.pg = testharness.StartPostgres(b)
	w.pgPass = filepath.Join(w.dir, "pg.pass")
	if err := os.WriteFile(w.pgPass, []byte(w.pg.Password+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	// psql reads its password from PGPASSFILE, never from its argv.
	w.passDir = filepath.Join(w.dir, "psql")
	if err := os.Mkdir(w.passDir, 0o700); err != nil {
		b.Fatal(err)
	}
	line := fmt.Sprintf("%s:%d:%s:%s:%s\n", w.pg.Host, w.pg.Port, w.pg.Database, w.pg.User, w.pg.Password)
	if err := os.WriteFile(filepath.Join(w.passDir, "pgpass"), []byte(line), 0o600); err != nil {
		b.Fatal(err)
	}

	w.start(b, w.writeSQLConfig)
	return w
}

// writeSQLConfig writes the configuration: recording on, the card-data
// detectors and a card_number column glob (or no masking at all with
// noMask), one postgres target and a role for sre that reaches it. The
// statement rule mirrors a production setup: everything but reads is
// refused, so the benchmark's SELECT runs in the read-only wrapper.
func (w *sqlWorld) writeSQLConfig(b *testing.B) {
	b.Helper()
	masking := `masking: { detectors: [pan, track, expiry, cvv], columns: ["*card_number*"] }`
	if w.noMask {
		masking = `masking: { detectors: [] }`
	}
	cfg := fmt.Sprintf(`listen: "127.0.0.1:%d"
data_dir: %q
recording: { input: false, flush_interval: 1s, retention: 400d, on_failure: terminate }
targets:
  - { name: pg, kind: postgres, dsn: %q, password_file: %q }
roles:
  - { name: sre, groups: [sre], targets: ["pg"] }
rules:
  - { name: reads-only, targets: ["pg"], statements: [write, ddl, admin, unknown], action: deny }
%s
`, w.port, w.dataDir, w.pg.DSN(), w.pgPass, masking)
	if err := os.WriteFile(w.cfgPath, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
}

// setSQLMasking rewrites the configuration with masking on or off and has
// the running server reload it.
func (w *sqlWorld) setSQLMasking(b *testing.B, on bool) {
	b.Helper()
	w.noMask = !on
	w.writeSQLConfig(b)
	if out, errOut, err := w.bastion("reload"); err != nil {
		b.Fatalf("bastion reload: %v\n%s%s", err, out, errOut)
	}
}

// psqlCommand is psql with the same query, CSV output, straight to the
// server; its password comes from PGPASSFILE.
func (w *sqlWorld) psqlCommand(ctx context.Context, query string) (*exec.Cmd, error) {
	bin, err := exec.LookPath("psql")
	if err != nil {
		return nil, fmt.Errorf("psql: %w (install postgresql-client)", err)
	}
	cmd := exec.CommandContext(ctx, bin, "-X", "-q", "--csv", "-v", "ON_ERROR_STOP=1",
		"-h", w.pg.Host, "-p", strconv.Itoa(w.pg.Port), "-U", w.pg.User, "-d", w.pg.Database, "-c", query)
	cmd.Env = append(os.Environ(), "PGPASSFILE="+filepath.Join(w.passDir, "pgpass"), "PGSSLMODE=disable", "PGCONNECT_TIMEOUT=10")
	return cmd, nil
}

// BenchmarkSQLStream streams BENCH_SQL_ROWS rows (default 1,000,000) of
// five columns as CSV: with psql straight to PostgreSQL (psql), through the
// bastion's REPL with the real ssh client and masking on (bastion), and
// the same with masking off (bastion-nomask: what masking costs). Every run
// must deliver a header and exactly N rows; through the bastion, no clear
// card number may reach the client. rows/s covers each whole run, login
// and connection included; stream-rows/s counts from the first byte to the
// last; x-psql is the bastion's rows/s over psql's, from the same run.
func BenchmarkSQLStream(b *testing.B) {
	n := benchSQLRows(b)
	w := newSQLWorld(b)
	query := sqlQuery(n)
	var psqlRate float64
	b.Run("psql", func(b *testing.B) {
		psqlRate = w.benchSQL(b, n, 0, false, func(ctx context.Context) (*exec.Cmd, error) {
			return w.psqlCommand(ctx, query)
		})
	})
	viaBastion := func(ctx context.Context) (*exec.Cmd, error) {
		return w.viaBastion.Command(ctx, "pg", "--csv", query), nil
	}
	b.Run("bastion", func(b *testing.B) {
		w.benchSQL(b, n, psqlRate, true, viaBastion)
	})
	b.Run("bastion-nomask", func(b *testing.B) {
		w.setSQLMasking(b, false)
		defer w.setSQLMasking(b, true)
		w.benchSQL(b, n, psqlRate, false, viaBastion)
	})
}

// benchSQL runs the command from mk b.N times, checks every run's output
// and reports rows/s; it returns the rows/s of the whole runs. psqlRate,
// when known, gives the x-psql ratio; masked checks that no clear card
// number reached the client.
func (w *sqlWorld) benchSQL(b *testing.B, n int64, psqlRate float64, masked bool,
	mk func(context.Context) (*exec.Cmd, error)) float64 {
	var total, streamTime, clientCPU time.Duration
	var serverBefore time.Duration
	if w.server != nil {
		serverBefore = w.serverCPU(b)
	}
	runs := 0
	for b.Loop() {
		start := time.Now()
		res, err := runCounted(mk, n)
		if err != nil {
			b.Fatalf("run %d: %v\nstderr: %s\nserver log:\n%s", runs+1, err, res.stderr, w.logTail())
		}
		if res.exitCode != 0 || res.lines != n+1 {
			b.Fatalf("run %d: %d lines, want a header and %d rows; exit status %d\nstderr: %s\nserver log:\n%s",
				runs+1, res.lines, n, res.exitCode, res.stderr, w.logTail())
		}
		if masked && res.clearPAN {
			b.Fatalf("run %d: a clear card number reached the client", runs+1)
		}
		total += time.Since(start)
		streamTime += res.stream
		clientCPU += res.clientCPU
		runs++
	}
	rate := float64(n) * float64(runs) / total.Seconds()
	b.ReportMetric(rate, "rows/s")
	if streamTime > 0 {
		b.ReportMetric(float64(n)*float64(runs)/streamTime.Seconds(), "stream-rows/s")
	}
	b.ReportMetric(clientCPU.Seconds()/float64(runs), "client-cpu-s/op")
	if psqlRate > 0 {
		b.ReportMetric(rate/psqlRate, "x-psql")
		b.ReportMetric((w.serverCPU(b)-serverBefore).Seconds()/float64(runs), "bastion-cpu-s/op")
	}
	return rate
}

// countedResult is one run of a streaming client.
type countedResult struct {
	lines     int64         // newlines on stdout
	clearPAN  bool          // the unmasked card number appeared on stdout
	stream    time.Duration // first byte to end of stdout
	clientCPU time.Duration // the client's user+system time (ssh or psql)
	exitCode  int
	stderr    string
}

// clearPAN is the card number of every row of sqlQuery, unmasked.
var clearPAN = []byte("4111111111111111")

// runCounted starts the command from mk, counts the lines of its stdout
// and looks for the clear card number (across read boundaries), then waits
// for it to exit, within a timeout that allows minSQLRate rows per second.
func runCounted(mk func(context.Context) (*exec.Cmd, error), n int64) (countedResult, error) {
	timeout := commandTimeout + time.Duration(float64(n)/minSQLRate*float64(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd, err := mk(ctx)
	if err != nil {
		return countedResult{}, err
	}
	cmd.WaitDelay = 5 * time.Second
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return countedResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return countedResult{}, err
	}
	var res countedResult
	var first time.Time
	buf := make([]byte, 256<<10)
	keep := len(clearPAN) - 1
	carry := make([]byte, 0, 256<<10+keep)
	for {
		k, rerr := stdout.Read(buf)
		if k > 0 {
			if first.IsZero() {
				first = time.Now()
			}
			res.lines += int64(bytes.Count(buf[:k], []byte{'\n'}))
			carry = append(carry, buf[:k]...)
			if !res.clearPAN && bytes.Contains(carry, clearPAN) {
				res.clearPAN = true
			}
			if len(carry) > keep {
				carry = append(carry[:0], carry[len(carry)-keep:]...)
			}
		}
		if rerr != nil {
			break
		}
	}
	if !first.IsZero() {
		res.stream = time.Since(first)
	}
	err = cmd.Wait()
	res.stderr = stderr.String()
	if ctx.Err() != nil {
		return res, fmt.Errorf("%s: did not finish within %v (%d lines received)", filepath.Base(cmd.Path), timeout, res.lines)
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return res, err
	}
	res.exitCode = cmd.ProcessState.ExitCode()
	res.clientCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return res, nil
}

// minSQLRate is the slowest stream, in rows per second, that runCounted
// waits for: a million rows in under ten minutes on a loaded machine.
const minSQLRate = 2000
