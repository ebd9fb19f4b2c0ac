package policy

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string // substring; empty means no error
	}{
		{in: "400d", want: 400 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "1d", want: 24 * time.Hour},
		{in: "0d", want: 0},
		{in: "90m", want: 90 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "1.5s", want: 1500 * time.Millisecond},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "0", want: 0},
		{in: "2d0.5h", want: 48*time.Hour + 30*time.Minute},
		{in: "-1h", wantErr: "cannot be negative"},
		{in: "-1d", wantErr: "cannot be negative"},
		{in: "1d-1h", wantErr: "invalid duration"},
		{in: "+1h", wantErr: "invalid duration"},
		{in: "", wantErr: "empty duration"},
		{in: "d", wantErr: "invalid duration"},
		{in: "1.5d", wantErr: "invalid duration"},
		{in: "1d2d", wantErr: "invalid duration"},
		{in: "3600", wantErr: "invalid duration"},
		{in: "1w", wantErr: "invalid duration"},
		{in: "h", wantErr: "invalid duration"},
		{in: "106752d", wantErr: "longer than"},
		{in: "106751d23h59m59s", wantErr: "longer than"},
		{in: "99999999999999999999d", wantErr: "invalid duration"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDuration(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseDuration(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestDurationString(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{400 * 24 * time.Hour, "400d"},
		{36 * time.Hour, "1d12h"},
		{90 * time.Minute, "1h30m"},
		{15 * time.Minute, "15m"},
		{time.Second, "1s"},
		{1500 * time.Millisecond, "1.5s"},
		{24*time.Hour + 250*time.Millisecond, "1d250ms"},
		{25*time.Hour + 61*time.Second, "1d1h1m1s"},
		{time.Nanosecond, "1ns"},
		{-time.Hour, "-1h"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			got := Duration(tt.d).String()
			if got != tt.want {
				t.Fatalf("Duration(%d).String() = %q; want %q", tt.d, got, tt.want)
			}
			if tt.d < 0 {
				return // negative durations print but never parse
			}
			back, err := ParseDuration(got)
			if err != nil || back != tt.d {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v", got, back, err, tt.d)
			}
		})
	}
}

func TestDurationYAMLAndFlag(t *testing.T) {
	var v struct {
		TTL Duration `yaml:"ttl"`
	}
	if err := yaml.Unmarshal([]byte("ttl: 1d12h\n"), &v); err != nil || v.TTL.Std() != 36*time.Hour {
		t.Fatalf("unmarshal 1d12h = %v, %v", v.TTL, err)
	}
	err := yaml.Unmarshal([]byte("\nttl: -5m\n"), &v)
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "negative") {
		t.Fatalf("unmarshal -5m: err = %v; want a line-2 negative-duration error", err)
	}
	if err := yaml.Unmarshal([]byte("ttl: [1h]\n"), &v); err == nil {
		t.Fatal("unmarshal a list into Duration: no error")
	}
	out, err := yaml.Marshal(struct {
		TTL Duration `yaml:"ttl"`
	}{Duration(400 * 24 * time.Hour)})
	if err != nil || string(out) != "ttl: 400d\n" {
		t.Fatalf("marshal = %q, %v; want \"ttl: 400d\\n\"", out, err)
	}
	var d Duration
	if err := d.Set("90m"); err != nil || d.Std() != 90*time.Minute {
		t.Fatalf("Set(90m) = %v, %v", d, err)
	}
	if err := d.Set("soon"); err == nil || d.Std() != 90*time.Minute {
		t.Fatalf("Set(soon) = %v, %v; want an error and the old value kept", d, err)
	}
}
