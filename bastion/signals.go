package bastion

import "syscall"

// signals maps the SSH names of signals (RFC 4254 §6.10, without "SIG") to
// their numbers, for exit-signal in both directions and for the shell's
// 128+N exit code convention.
var signals = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "FPE": syscall.SIGFPE,
	"HUP": syscall.SIGHUP, "ILL": syscall.SIGILL, "INT": syscall.SIGINT,
	"KILL": syscall.SIGKILL, "PIPE": syscall.SIGPIPE, "QUIT": syscall.SIGQUIT,
	"SEGV": syscall.SIGSEGV, "TERM": syscall.SIGTERM, "USR1": syscall.SIGUSR1,
	"USR2": syscall.SIGUSR2,
}

func signalNumber(name string) int { return int(signals[name]) }

// signalName returns the SSH name of sig, or "" for one SSH has no name for
// (the caller then reports a plain exit code).
func signalName(sig syscall.Signal) string {
	for n, s := range signals {
		if s == sig {
			return n
		}
	}
	return ""
}
