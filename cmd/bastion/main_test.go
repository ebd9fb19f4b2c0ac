package main

import (
	"errors"
	"flag"
	"io"
	"slices"
	"testing"
	"time"
)

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"", time.Time{}, false},
		{"24h", now.Add(-24 * time.Hour), false},
		{"7d", now.Add(-7 * 24 * time.Hour), false},
		{"2026-11-30T08:00:00Z", time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC), false},
		{"yesterday", time.Time{}, true},
		{"-1h", time.Time{}, true},
	} {
		got, err := parseWhen(c.in, now)
		if (err != nil) != c.wantErr || !got.Equal(c.want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v (error %v)", c.in, got, err, c.want, c.wantErr)
		}
	}
}

func TestParseFlagsInterspersed(t *testing.T) {
	for _, c := range []struct {
		args      []string
		wantPos   []string
		wantSpeed float64
		usage     bool
	}{
		{[]string{"ID", "--speed", "2"}, []string{"ID"}, 2, false},
		{[]string{"--speed", "3", "ID"}, []string{"ID"}, 3, false},
		{[]string{"--", "--odd-id"}, []string{"--odd-id"}, 1, false},
		{[]string{"ID", "--bogus"}, nil, 1, true},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		speed := fs.Float64("speed", 1, "")
		pos, err := parseFlags(fs, c.args)
		var ue usageError
		isUsage := errors.As(err, &ue)
		if isUsage != c.usage || (!c.usage && (!slices.Equal(pos, c.wantPos) || *speed != c.wantSpeed)) {
			t.Errorf("parseFlags(%q) = %q speed %v err %v", c.args, pos, *speed, err)
		}
	}
}
