package main

import (
	"strings"
	"testing"
)

func TestParseAndTable(t *testing.T) {
	in := `goos: linux
BenchmarkSessionSetup/bastion-2         	      20	 339000000 ns/op	       330.5 median-ms
BenchmarkSessionSetup/openssh-2         	      20	 432000000 ns/op	       300.0 median-ms
BenchmarkThroughput/bastion-2   	       1	2618384133 ns/op	  25.63 MB/s	         2.560 bastion-cpu-s/op	        31.09 stream-MB/s
BenchmarkThroughput/proxyjump-2   	       1	2618384133 ns/op	  25.63 MB/s	        50.00 stream-MB/s
BenchmarkThroughput/bastion-text-2   	       1	2618384133 ns/op	  25.63 MB/s	        30.00 stream-MB/s
BenchmarkThroughput/proxyjump-text-2   	       1	2618384133 ns/op	  25.63 MB/s	        50.00 stream-MB/s
BenchmarkThroughput/bastion-text#01-2   	       1	2618384133 ns/op	  25.63 MB/s	        45.00 stream-MB/s
BenchmarkThroughput/proxyjump-text#01-2   	       1	2618384133 ns/op	  25.63 MB/s	        60.00 stream-MB/s
BenchmarkThroughput/bastion-text#02-2   	       1	2618384133 ns/op	  25.63 MB/s	        41.00 stream-MB/s
BenchmarkThroughput/proxyjump-text#02-2   	       1	2618384133 ns/op	  25.63 MB/s	        51.00 stream-MB/s
BenchmarkIdleSessions/bastion-2 	1	1 ns/op	150.0 KiB/session
not a benchmark line 1 2 3
`
	res := results{}
	if err := parse(strings.NewReader(in), res); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, unit string
		want       float64
	}{
		{"BenchmarkSessionSetup/bastion", "median-ms", 330.5},
		{"BenchmarkThroughput/bastion", "stream-MB/s", 31.09},
		{"BenchmarkThroughput/bastion", "bastion-cpu-s/op", 2.56},
		{"BenchmarkIdleSessions/bastion", "KiB/session", 150},
		// Three rounds: the median of each side.
		{"BenchmarkThroughput/bastion-text", "stream-MB/s", 41},
		{"BenchmarkThroughput/proxyjump-text", "stream-MB/s", 51},
	} {
		if got, ok := res.get(tc.name, tc.unit); !ok || got != tc.want {
			t.Errorf("%s %s = %v, %v; want %v", tc.name, tc.unit, got, ok, tc.want)
		}
	}
	rows := table(res)
	want := map[string]string{
		"connection setup":                  "≤ 1.2× OpenSSH: met",
		"throughput, BENCH_BYTES of zeros":  "≥ 0.8× ProxyJump: not met",
		"throughput, BENCH_BYTES of random": "≥ 0.8× ProxyJump: not measured",
		"throughput, BENCH_BYTES of log text, recording and masking on (MB/s), median of 3 runs": "≥ 0.8× ProxyJump: met",
		"memory per idle": "< 200 KiB: met",
		"churn":           "0 failures: not measured",
	}
	for prefix, goal := range want {
		found := false
		for _, r := range rows {
			if strings.HasPrefix(r.what, prefix) {
				found = true
				if r.goal != goal {
					t.Errorf("%s: goal %q, want %q", prefix, r.goal, goal)
				}
			}
		}
		if !found {
			t.Errorf("no row %q", prefix)
		}
	}
}

// TestRoundTable: each round's figures in the order they ran, with the
// ratio, and a source with one round or none left out.
func TestRoundTable(t *testing.T) {
	in := `BenchmarkThroughput/bastion-text-2   	       1	2618384133 ns/op	        30.00 stream-MB/s
BenchmarkThroughput/proxyjump-text-2   	       1	2618384133 ns/op	        50.00 stream-MB/s
BenchmarkThroughput/bastion-text#01-2   	       1	2618384133 ns/op	        45.00 stream-MB/s
BenchmarkThroughput/proxyjump-text#01-2   	       1	2618384133 ns/op	        60.00 stream-MB/s
BenchmarkThroughput/bastion-urandom-2   	       1	2618384133 ns/op	        20.00 stream-MB/s
`
	res := results{}
	if err := parse(strings.NewReader(in), res); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(roundTable(res), "\n")
	want := "| source, bastion / ProxyJump (stream-MB/s) | round 1 | round 2 |\n| --- | --- | --- |\n" +
		"| log text | 30.0 / 50.0 (0.60×) | 45.0 / 60.0 (0.75×) |"
	if got != want {
		t.Errorf("round table:\n%s\nwant:\n%s", got, want)
	}
	one := results{}
	_ = parse(strings.NewReader("BenchmarkThroughput/bastion-2 1 1 ns/op 3.0 stream-MB/s\nBenchmarkThroughput/proxyjump-2 1 1 ns/op 4.0 stream-MB/s\n"), one)
	if lines := roundTable(one); lines != nil {
		t.Errorf("one round: %q, want no table", lines)
	}
}
