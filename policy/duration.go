package policy

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// day is a calendar-free day: 24 hours. Retention and certificate lifetimes
// are written in days, and nobody wants to write 9600h.
const day = 24 * time.Hour

// maxDays is the largest day count that still fits in a time.Duration.
const maxDays = math.MaxInt64 / int64(day)

// Duration is a time.Duration that reads and writes the config's duration
// syntax: a Go duration ("90m", "1h30m"), optionally after whole days
// ("400d", "1d12h"). It implements yaml.Unmarshaler and yaml.Marshaler for
// configs and flag.Value for command-line flags such as --ttl.
type Duration time.Duration

// ParseDuration parses a Go duration with an optional leading count of whole
// days: "400d", "1d12h", "90m". Negative and empty durations are errors,
// because no setting in the config means anything with them.
func ParseDuration(s string) (time.Duration, error) {
	const want = "want a Go duration like 90m or 1h30m, optionally after whole days like 400d or 1d12h"
	if s == "" {
		return 0, errors.New("empty duration: " + want)
	}
	if s[0] == '-' {
		return 0, fmt.Errorf("invalid duration %q: durations cannot be negative", s)
	}
	rest := s
	var total time.Duration
	if i := strings.IndexByte(rest, 'd'); i >= 0 {
		// No Go duration unit contains a 'd', so the first one ends the days.
		days, err := strconv.ParseUint(rest[:i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: %s", s, want)
		}
		if days > uint64(maxDays) {
			return 0, fmt.Errorf("invalid duration %q: longer than %d days", s, maxDays)
		}
		total = time.Duration(days) * day
		rest = rest[i+1:]
		if rest == "" {
			return total, nil
		}
	}
	if c := rest[0]; c != '.' && (c < '0' || c > '9') {
		// time.ParseDuration accepts signs; the config does not.
		return 0, fmt.Errorf("invalid duration %q: %s", s, want)
	}
	d, err := time.ParseDuration(rest)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: %s", s, want)
	}
	if d > math.MaxInt64-total {
		return 0, fmt.Errorf("invalid duration %q: longer than %d days", s, maxDays)
	}
	return total + d, nil
}

// String prints d in the form ParseDuration reads back: whole days first,
// then hours, minutes and seconds, leaving out zero parts ("400d", "1d12h",
// "1h30m", "0s").
func (d Duration) String() string {
	v := time.Duration(d)
	if v == 0 {
		return "0s"
	}
	if v == math.MinInt64 {
		return v.String() // cannot be negated; never produced by ParseDuration
	}
	var b strings.Builder
	if v < 0 {
		b.WriteByte('-')
		v = -v
	}
	if days := v / day; days > 0 {
		b.WriteString(strconv.FormatInt(int64(days), 10))
		b.WriteByte('d')
		v -= days * day
	}
	if h := v / time.Hour; h > 0 {
		b.WriteString(strconv.FormatInt(int64(h), 10))
		b.WriteByte('h')
		v -= h * time.Hour
	}
	if m := v / time.Minute; m > 0 {
		b.WriteString(strconv.FormatInt(int64(m), 10))
		b.WriteByte('m')
		v -= m * time.Minute
	}
	if v > 0 {
		b.WriteString(v.String()) // under a minute: "30s", "1.5s", "250ms"
	}
	return b.String()
}

// Std returns d as a time.Duration, for callers that do arithmetic with it.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// Set parses s into d, so a *Duration can be a command-line flag.
func (d *Duration) Set(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML reads a duration scalar, for code that decodes bastion YAML
// with yaml.v3 directly. Load and Parse use the same syntax.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration like 15m or 400d", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration in the form ParseDuration reads back.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }
