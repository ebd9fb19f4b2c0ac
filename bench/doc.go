// Package bench holds the end-to-end benchmarks of the bastion, run with
// `make bench` (go test -run '^$' -bench . -benchtime 3x ./bench/...).
//
// Each benchmark builds the real bastion binary, starts it as a child
// process (`bastion serve --config ...`) in front of a real OpenSSH sshd from
// internal/testharness, and drives it with the real OpenSSH `ssh` client. Each
// end-to-end figure is measured twice in the same run: through the bastion, and with
// plain `ssh` straight to the same sshd, so that the two can be compared.
//
//   - BenchmarkThroughput streams `head -c N /dev/zero` (and /dev/urandom)
//     to the client's stdout and reports MB/s; every run must deliver
//     exactly N bytes.
//   - BenchmarkSessionSetup runs `true`: the latency of TCP connect, key
//     exchange, login and exec, end to end.
//   - BenchmarkRecording runs the recorder alone, in process, on the same
//     data: the most output per second one session's recording sustains.
//   - BenchmarkReplay plays a generated one-hour, 200 MB recording from the
//     store with the auditors' player, in process: time to the first frame
//     and to the screen at the end (bench/replay_test.go).
//
// Knobs (environment, or the flags after -args):
//
//	BENCH_BYTES   / -bench.bytes   bytes per stream: an integer with an optional
//	                               K, M or G suffix (binary); default 1G
//	BENCH_SOURCE  / -bench.source  comma-separated sources: zero, text
//	                               (log lines), urandom; default
//	                               "zero,text,urandom"
//	BENCH_CPUPROFILE               write the bastion process's CPU profile
//	                               (serve --cpuprofile) to this file
//
// The package has only this file outside its tests, so that `go build ./...`
// sees a package; `go test ./...` compiles the benchmarks but runs none
// (they run only with -bench), and builds no binary unless one runs.
package bench
