package policy

import (
	"errors"
	"fmt"
	"strings"
)

// ConfigError is one problem in a config file, located by file, line and key
// path so an operator can jump straight to it. It prints as
// "bastion.yaml:12: targets[1].address: ssh target needs an address like 10.0.0.5:22".
type ConfigError struct {
	// File is the name the config was loaded under (Config.Path).
	File string
	// Line is 1-based; 0 when the problem has no line (e.g. an empty file).
	Line int
	// Key is the key path, e.g. "targets[1].address"; empty for file-level problems.
	Key string
	// Msg says what is wrong and, where it can, what to write instead.
	Msg string
}

// Error formats the problem as "file:line: key: message", leaving out the
// parts that are unknown.
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ConfigErrors is every problem found in one config file, in line order.
// Load and Parse return it as their error so that all problems are reported
// in one pass; use Errors to get the list back from a wrapped error.
type ConfigErrors []*ConfigError

// Error prints one problem per line.
func (es ConfigErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the individual problems to errors.Is and errors.As.
func (es ConfigErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Errors returns the config problems carried by err (possibly wrapped), or
// nil when err carries none, e.g. when the file could not be read at all.
func Errors(err error) []*ConfigError {
	var es ConfigErrors
	if errors.As(err, &es) {
		return es
	}
	var e *ConfigError
	if errors.As(err, &e) {
		return []*ConfigError{e}
	}
	return nil
}
