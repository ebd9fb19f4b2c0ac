# bastion: build, run and test.
#
# `make test` is what CI runs (through .ci/run): it installs the system tools
# the end-to-end tests drive for real (OpenSSH server and client, asciinema),
# then vets, tests with the race detector, and fuzzes each target briefly.

GO ?= go
BIN := bin/bastion
# bash for pipefail: a benchmark that fails must fail `make bench` through tee.
SHELL := /bin/bash

# Go's SIMD package (simd/archsimd, an experiment in Go 1.26) lets the
# masker classify 64 bytes of output per instruction on CPUs with AVX-512
# VBMI; elsewhere, or built without it, the masker takes its portable path
# with the same output (policy/mask/block.go).
GOEXPERIMENT ?= simd
export GOEXPERIMENT

# Debian packages the tests need. Add a package by adding its name here.
DEPS := openssh-server openssh-client asciinema postgresql mariadb-server tmux

# Time per target for `make fuzz`, and for the short smoke run in `make test`.
FUZZTIME ?= 30s
SMOKE_FUZZTIME ?= 5s

.PHONY: all deps build run test vet fmt fuzz bench faults clean

# Default: build the binary.
all: build

# Install missing Debian packages (as root), or say what to install (otherwise).
deps:
	@bash scripts/deps.sh $(DEPS)

# Build bin/bastion. Needs neither root nor sshd.
build:
	@mkdir -p $(dir $(BIN))
	$(GO) build -o $(BIN) ./cmd/bastion

# Build, then start the demo server (data in ./.bastion-demo).
run: build
	./$(BIN) serve --demo

# Everything CI checks: deps, vet, race tests (fuzz seed corpora included),
# the idle-session memory test again without the race detector (which makes
# every frame and object larger, so its figures mean something only
# without it), fuzz smoke.
test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 12m ./...
	$(GO) test -count=1 -run '^TestIdleSessionMemory$$' ./bastion/
	@GO=$(GO) bash scripts/fuzz.sh $(SMOKE_FUZZTIME)

# Static checks only.
vet:
	$(GO) vet ./...

# Rewrite every Go file in gofmt style.
fmt:
	gofmt -s -w $$(find . -name '*.go' -not -path './.git/*' -not -path './vendor/*')

# Fuzz every target for FUZZTIME each, e.g. `make fuzz FUZZTIME=30s`.
fuzz:
	@GO=$(GO) bash scripts/fuzz.sh $(FUZZTIME)

# Benchmarks: the masker and the recorder on one core, then the bastion
# end to end against plain OpenSSH to the same sshd and through an OpenSSH
# ProxyJump hop (./bench): session setup 20 times (median), throughput
# (BENCH_BYTES, default 1G) in BENCH_ROUNDS interleaved rounds (the table
# takes the median: a shared machine's load comes in spells), one run each
# of keystroke latency (BENCH_KEYS round
# trips), idle-session memory (BENCH_IDLE sessions) and churn
# (BENCH_CHURN_RATE per second for BENCH_CHURN), then everything else in
# ./bench three times. The raw output goes to bin/bench/*.out; the table
# printed at the end (bench/benchtable) is the one in docs/PERFORMANCE.md.
BENCH_OUT := bin/bench
# BenchmarkSessionsGrep greps this much recorded output under make bench
# (the issue's 10 GB); run alone it defaults to 256M.
BENCH_GREP_BYTES ?= 10G
BENCH_ROUNDS ?= 3
bench:
	@mkdir -p $(BENCH_OUT)
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchtime 2s ./policy/mask/ ./recorder/ | tee $(BENCH_OUT)/unit.out
	set -o pipefail; $(GO) test -run '^$$' -bench 'SessionSetup' -benchtime 20x -timeout 30m ./bench/ | tee $(BENCH_OUT)/setup.out
	set -o pipefail; BENCH_ROUNDS=$(BENCH_ROUNDS) $(GO) test -run '^$$' -bench 'Throughput|Keystroke|IdleSessions|Churn' -benchtime 1x -timeout 120m ./bench/ | tee $(BENCH_OUT)/load.out
	set -o pipefail; BENCH_GREP_BYTES=$(BENCH_GREP_BYTES) $(GO) test -run '^$$' -bench . -skip 'SessionSetup|Throughput|Keystroke|IdleSessions|Churn' -benchtime 3x -timeout 60m ./bench/... | tee $(BENCH_OUT)/other.out
	@$(GO) run ./bench/benchtable $(BENCH_OUT)/setup.out $(BENCH_OUT)/load.out

# The fault suite at the issue's sizes: kill -9 with 100 sessions writing
# output, the disk full, the target killed, a bad store file, the identity
# provider down, misbehaving clients. `make test` runs the same tests with
# 20 sessions for the kill -9.
faults: deps
	BASTION_FAULT_SESSIONS=100 $(GO) test -count=1 -v -run 'TestFault' -timeout 20m ./cmd/bastion/

# Remove build output.
clean:
	rm -rf bin
