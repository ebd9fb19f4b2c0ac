package mask

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// logText is log-like output: timestamps, ids, IPs, durations, no PANs.
func logText(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "2026-12-01T09:%02d:%02d.%03dZ INFO  request handled method=GET path=/api/v1/orders status=200 "+
			"remote=10.0.%d.%d user=deploy duration=%dms bytes=%d trace=4bf92f3577b34da6a3ce929d0e0e4736\n",
			i/60%60, i%60, i%1000, i%256, i*7%256, i%900, i*37%100000)
	}
	return b.Bytes()[:n]
}

// seqText is `seq 1 N` output.
func seqText(n int) []byte {
	var b bytes.Buffer
	for i := 1; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%d\n", i)
	}
	return b.Bytes()[:n]
}

func benchStream(b *testing.B, data []byte, chunk int) {
	e := mustNew(b, allDetectors)
	s := e.NewStream(io.Discard)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		for i := 0; i < len(data); i += chunk {
			if _, err := s.Write(data[i:min(i+chunk, len(data))]); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := s.Flush(); err != nil {
		b.Fatal(err)
	}
	reportCPU(b, cpu0, int64(len(data))*int64(b.N))
}

// cpuTime is the CPU time the process has used. The machines that run the
// benchmarks are shared: wall time per op then measures the neighbours,
// CPU time per byte (reportCPU) the masker.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds the throughput per CPU second since cpu0 as "cpu-MB/s".
func reportCPU(b *testing.B, cpu0 time.Duration, n int64) {
	if d := cpuTime(b) - cpu0; d > 0 {
		b.ReportMetric(float64(n)/1e6/d.Seconds(), "cpu-MB/s")
	}
}

// BenchmarkStreamPlainText: log-like text in 32 KiB writes (goal ≥ 1 GB/s).
func BenchmarkStreamPlainText(b *testing.B) { benchStream(b, logText(1<<20), 32<<10) }

// BenchmarkStreamProse: text with no digits at all, the fast path alone.
func BenchmarkStreamProse(b *testing.B) {
	line := []byte("The quick brown fox jumps over the lazy dog; meanwhile the server keeps serving requests.\n")
	benchStream(b, bytes.Repeat(line, (1<<20)/len(line)), 32<<10)
}

// BenchmarkStreamDigits: seq output in 32 KiB writes (goal ≥ 300 MB/s).
func BenchmarkStreamDigits(b *testing.B) { benchStream(b, seqText(1<<20), 32<<10) }

// BenchmarkStreamOneByte: log-like text one byte per Write, as typed echo.
func BenchmarkStreamOneByte(b *testing.B) { benchStream(b, logText(64<<10), 1) }

// BenchmarkStreamPANs: a line with a PAN, expiry and cvv every 80 bytes.
func BenchmarkStreamPANs(b *testing.B) {
	line := []byte("2026-12-01 charge card=4111 1111 1111 1111 exp 12/27 cvv 123 amount=19.99 ok\n")
	benchStream(b, bytes.Repeat(line, (1<<20)/len(line)), 32<<10)
}

// BenchmarkMaskText: one SQL cell.
func BenchmarkMaskText(b *testing.B) {
	e := mustNew(b, allDetectors)
	b.ReportAllocs()
	for b.Loop() {
		e.MaskText("4111111111111111")
	}
}

// BenchmarkStreamZeros is `head -c N /dev/zero`: NUL bytes are invisible
// controls, transparent inside a candidate, plain bytes outside one.
func BenchmarkStreamZeros(b *testing.B) { benchStream(b, make([]byte, 1<<20), 32<<10) }

// BenchmarkStreamRandom is `head -c N /dev/urandom`, or a compressed file:
// stop bytes (controls, ESC, UTF-8 leads) come every few bytes, so the
// block filter hands over to the per-byte path constantly.
func BenchmarkStreamRandom(b *testing.B) {
	data := make([]byte, 1<<20)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(data)
	benchStream(b, data, 32<<10)
}
