// Command benchtable turns `go test -bench` output from `make bench` into
// the comparison table of docs/PERFORMANCE.md: the bastion and plain
// OpenSSH (and an OpenSSH ProxyJump hop) side by side, each figure next to
// its goal. Every figure in the table comes from the input; a benchmark
// that did not run shows as "-", never as a number typed in.
//
// Usage: go run ./bench/benchtable FILE... (or standard input).
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// results maps a benchmark name (without the -N GOMAXPROCS suffix and the
// #NN that go test gives a repeated sub-benchmark) to its metrics by unit,
// one value per run.
type results map[string]map[string][]float64

var lineRE = regexp.MustCompile(`^(Benchmark\S+?)(?:#\d+)?(?:-\d+)?\s+\d+\s+(.*)$`)

// parse reads benchmark lines; a benchmark that appears more than once (the
// rounds of BENCH_ROUNDS, or -count) keeps the figures of every run.
func parse(r io.Reader, res results) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		f := strings.Fields(m[2])
		metrics := res[m[1]]
		if metrics == nil {
			metrics = map[string][]float64{}
			res[m[1]] = metrics
		}
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			metrics[f[i+1]] = append(metrics[f[i+1]], v)
		}
	}
	return sc.Err()
}

// get returns a metric, the median of its runs (the mean of the middle two
// for an even count), and whether it is there.
func (r results) get(name, unit string) (float64, bool) {
	vs := slices.Clone(r[name][unit])
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	if n := len(vs); n%2 == 0 {
		return (vs[n/2-1] + vs[n/2]) / 2, true
	}
	return vs[len(vs)/2], true
}

// runs returns how many runs a metric has.
func (r results) runs(name, unit string) int { return len(r[name][unit]) }

// row is one line of the table: a figure for each side and a verdict.
type row struct {
	what, bastion, openssh, proxyjump, goal string
}

func num(v float64, ok bool, format string) string {
	if !ok {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

// verdict compares got against the goal: ok holds when both figures are
// there and pass says so.
func verdict(goal string, have bool, pass bool) string {
	switch {
	case !have:
		return goal + ": not measured"
	case pass:
		return goal + ": met"
	default:
		return goal + ": not met"
	}
}

func table(r results) []row {
	var rows []row
	const s, t = "BenchmarkSessionSetup/", "BenchmarkThroughput/"
	bs, okB := r.get(s+"bastion", "median-ms")
	os_, okO := r.get(s+"openssh", "median-ms")
	oc, okC := r.get(s+"openssh-curve25519", "median-ms")
	pj, okP := r.get(s+"proxyjump", "median-ms")
	rows = append(rows, row{"connection setup, `ssh ... true`, median (ms)",
		num(bs, okB, "%.0f"), num(os_, okO, "%.0f") + " (curve25519: " + num(oc, okC, "%.0f") + ")", num(pj, okP, "%.0f"),
		verdict("≤ 1.2× OpenSSH", okB && okO, okB && okO && bs <= 1.2*os_)})
	for _, src := range []struct{ name, suffix string }{{"zeros", ""}, {"log text", "-text"}, {"random", "-urandom"}} {
		b, okB := r.get(t+"bastion"+src.suffix, "stream-MB/s")
		nm, okN := r.get(t+"bastion-nomask"+src.suffix, "stream-MB/s")
		o, okO := r.get(t+"openssh"+src.suffix, "stream-MB/s")
		p, okP := r.get(t+"proxyjump"+src.suffix, "stream-MB/s")
		ratio := "-"
		if okB && okP && p > 0 {
			ratio = fmt.Sprintf("%.2f", b/p)
		}
		what := "throughput, BENCH_BYTES of " + src.name + ", recording and masking on (MB/s)"
		if n := r.runs(t+"bastion"+src.suffix, "stream-MB/s"); n > 1 {
			what += fmt.Sprintf(", median of %d runs", n)
		}
		rows = append(rows, row{what,
			num(b, okB, "%.1f") + " (masking off: " + num(nm, okN, "%.1f") + "; " + ratio + "× ProxyJump)", num(o, okO, "%.1f"), num(p, okP, "%.1f"),
			verdict("≥ 0.8× ProxyJump", okB && okP, okB && okP && b >= 0.8*p)})
	}
	const k = "BenchmarkKeystroke/"
	kb50, ok1 := r.get(k+"bastion", "p50-µs")
	kb99, ok2 := r.get(k+"bastion", "p99-µs")
	ko50, ok3 := r.get(k+"openssh", "p50-µs")
	ko99, ok4 := r.get(k+"openssh", "p99-µs")
	kp50, ok5 := r.get(k+"proxyjump", "p50-µs")
	kp99, ok6 := r.get(k+"proxyjump", "p99-µs")
	rows = append(rows, row{"keystroke round trip, p50 / p99 (µs)",
		num(kb50, ok1, "%.0f") + " / " + num(kb99, ok2, "%.0f"), num(ko50, ok3, "%.0f") + " / " + num(ko99, ok4, "%.0f"),
		num(kp50, ok5, "%.0f") + " / " + num(kp99, ok6, "%.0f"),
		verdict("added p99 < 1 ms over OpenSSH", ok2 && ok4, ok2 && ok4 && kb99-ko99 < 1000)})
	const i = "BenchmarkIdleSessions/"
	ib, okI := r.get(i+"bastion", "KiB/session")
	io_, okJ := r.get(i+"openssh", "KiB/session")
	rows = append(rows, row{"memory per idle recorded session (KiB; sshd: PSS)",
		num(ib, okI, "%.0f"), num(io_, okJ, "%.0f"), "",
		verdict("< 200 KiB", okI, okI && ib < 200)})
	const c = "BenchmarkChurn/"
	cf, ok7 := r.get(c+"bastion", "failures")
	cn, ok8 := r.get(c+"bastion", "sessions")
	c99, ok9 := r.get(c+"bastion", "p99-ms")
	of, oka := r.get(c+"openssh", "failures")
	on, okc := r.get(c+"openssh", "sessions")
	o99, okb := r.get(c+"openssh", "p99-ms")
	rows = append(rows, row{"churn, BENCH_CHURN_RATE new sessions/s for BENCH_CHURN (default 50/s, 60 s): failures of sessions, p99 setup (ms)",
		num(cf, ok7, "%.0f") + " of " + num(cf+cn, ok7 && ok8, "%.0f") + ", " + num(c99, ok9, "%.0f"),
		num(of, oka, "%.0f") + " of " + num(of+on, oka && okc, "%.0f") + ", " + num(o99, okb, "%.0f"), "",
		verdict("0 failures", ok7, ok7 && cf == 0)})
	return rows
}

func main() {
	res := results{}
	if len(os.Args) == 1 {
		if err := parse(os.Stdin, res); err != nil {
			fmt.Fprintln(os.Stderr, "benchtable:", err)
			os.Exit(1)
		}
	}
	for _, path := range os.Args[1:] {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchtable:", err)
			os.Exit(1)
		}
		err = parse(f, res)
		f.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchtable: %s: %v\n", path, err)
			os.Exit(1)
		}
	}
	fmt.Println("| measure | bastion | OpenSSH | OpenSSH ProxyJump | goal |")
	fmt.Println("| --- | --- | --- | --- | --- |")
	for _, r := range table(res) {
		fmt.Printf("| %s | %s | %s | %s | %s |\n", r.what, r.bastion, r.openssh, r.proxyjump, r.goal)
	}
	if lines := roundTable(res); lines != nil {
		fmt.Println()
		for _, l := range lines {
			fmt.Println(l)
		}
	}
}

// roundTable is the throughput of each round, the bastion against
// ProxyJump (stream-MB/s), when there was more than one: the median the
// table shows hides how far apart the rounds of a shared machine lie.
// Rounds run in order, so the k-th figure of each path is round k.
func roundTable(r results) []string {
	const t = "BenchmarkThroughput/"
	n := 0
	for _, sfx := range []string{"", "-text", "-urandom"} {
		n = max(n, min(r.runs(t+"bastion"+sfx, "stream-MB/s"), r.runs(t+"proxyjump"+sfx, "stream-MB/s")))
	}
	if n < 2 {
		return nil
	}
	head, rule := "| source, bastion / ProxyJump (stream-MB/s) |", "| --- |"
	for k := range n {
		head += fmt.Sprintf(" round %d |", k+1)
		rule += " --- |"
	}
	lines := []string{head, rule}
	for _, src := range []struct{ name, suffix string }{{"zeros", ""}, {"log text", "-text"}, {"random", "-urandom"}} {
		b, p := r[t+"bastion"+src.suffix]["stream-MB/s"], r[t+"proxyjump"+src.suffix]["stream-MB/s"]
		if len(b) == 0 || len(p) == 0 {
			continue
		}
		line := "| " + src.name + " |"
		for k := range n {
			if k >= len(b) || k >= len(p) || p[k] <= 0 {
				line += " - |"
				continue
			}
			line += fmt.Sprintf(" %.1f / %.1f (%.2f×) |", b[k], p[k], b[k]/p[k])
		}
		lines = append(lines, line)
	}
	return lines
}
