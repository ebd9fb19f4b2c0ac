// Command bastion is the one binary of the bastion: the server and the
// on-host commands operators and auditors use. This file holds only flags,
// subcommands and wiring; the work lives in the packages below cmd/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit statuses of every subcommand (ARCHITECTURE.md: 0 success, 1
// failure, 2 usage error).
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// errUsage marks an error as a usage error (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// env is what a subcommand may touch of the process: passed in so that
// commands are testable without global state.
type env struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	getenv         func(string) string
	log            *slog.Logger
}

type command struct {
	name, summary string
	run           func(ctx context.Context, e *env, args []string) error
}

func commands() []command {
	return []command{
		{"serve", "run the server (--demo: an embedded default, ready to try)", runServe},
		{"keys", "keys sign | keys user-ca | keys target-ca | keys host-ca", runKeys},
		{"login", "get a certificate from the identity provider: login --bastion HOST[:PORT]", runLogin},
		{"sessions", "list recorded sessions", runSessions},
		{"replay", "play a recording: replay ID [--speed X] [--idle-limit S] [--from T] [--raw]; space, +/-, arrows, q in a terminal", runReplay},
		{"export", "write a recording as an asciicast v2 file: export ID -o FILE", runExport},
		{"revoke", "revoke certificates: revoke --user U | --serial N", runRevoke},
		{"audit", "search the audit trail (--user --target --type --outcome --session --text --since --until, --json, --follow); audit verify checks its hash chain", runAudit},
		{"prune", "remove sessions older than recording.retention (recorded in the audit trail)", runPrune},
		{"check-config", "validate a configuration file", runCheckConfig},
		{"reload", "make the running server re-read its configuration (as SIGHUP does)", runReload},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	e := &env{
		stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, getenv: os.Getenv,
		log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	// Libraries that log through slog's default (zitadel's op logs every
	// device-flow poll at INFO) get warnings and errors only; our own logs
	// go through e.log.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	os.Exit(run(ctx, e, os.Args[1:]))
}

func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == demoTargetCommand {
		return runDemoTarget(e)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, e, args[1:])
			var ue usageError
			switch {
			case err == nil:
				return exitOK
			case errors.Is(err, flag.ErrHelp):
				return exitOK
			case errors.As(err, &ue):
				fmt.Fprintf(e.stderr, "bastion %s: %v\n", c.name, err)
				return exitUsage
			default:
				fmt.Fprintf(e.stderr, "bastion %s: %v\n", c.name, err)
				return exitFail
			}
		}
	}
	fmt.Fprintf(e.stderr, "bastion: unknown command %q\n\n", args[0])
	usage(e.stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: bastion COMMAND [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun `bastion COMMAND -h` for the flags of a command.")
}

// newFlags makes a flag set that reports errors instead of exiting.
func newFlags(e *env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: bastion %s\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses flags wherever they stand among the positional arguments
// (`bastion replay ID --speed 2` as well as `--speed 2 ID`).
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// configPath applies the documented default: --config, then
// $BASTION_CONFIG, then ./bastion.yaml.
func configPath(e *env, flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if v := e.getenv("BASTION_CONFIG"); v != "" {
		return v
	}
	return "bastion.yaml"
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
