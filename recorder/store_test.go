package recorder

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestNewSessionID(t *testing.T) {
	times := []time.Time{
		time.UnixMilli(0),
		time.UnixMilli(1),
		t0,
		t0.Add(time.Millisecond),
		t0.Add(time.Hour),
		time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	var prev string
	for i, tm := range times {
		// The largest random bits for the earlier time and the smallest for
		// the later one: time must still decide the order.
		hi, err := NewSessionID(tm, bytes.NewReader([]byte{0xff, 0xff}))
		if err != nil {
			t.Fatal(err)
		}
		lo, err := NewSessionID(tm, bytes.NewReader([]byte{0, 0}))
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{hi, lo} {
			if len(id) != sessionIDLen || strings.Trim(id, crockford) != "" {
				t.Errorf("id %q: want %d characters of %q", id, sessionIDLen, crockford)
			}
			if err := CheckSessionID(id); err != nil {
				t.Errorf("generated id rejected: %v", err)
			}
		}
		if i > 0 && !(prev < lo) {
			t.Errorf("id for %s (%s) does not sort after the previous one (%s)", tm, lo, prev)
		}
		if lo >= hi {
			t.Errorf("random bits do not reach the id: %s >= %s", lo, hi)
		}
		prev = hi
	}
	same1, _ := NewSessionID(t0, bytes.NewReader([]byte{1, 2}))
	same2, _ := NewSessionID(t0, bytes.NewReader([]byte{1, 2}))
	if same1 != same2 {
		t.Errorf("same inputs gave %s and %s", same1, same2)
	}
	if _, err := NewSessionID(time.UnixMilli(-1), bytes.NewReader([]byte{0, 0})); err == nil {
		t.Error("time before 1970 accepted")
	}
	if _, err := NewSessionID(t0, bytes.NewReader([]byte{1})); err == nil {
		t.Error("short random source accepted")
	}
}

func TestCheckSessionID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"01jnhx2k3m4pq", true},
		{"A-b_c.9", true},
		{"", false},
		{".hidden", false},
		{"a/b", false},
		{"a b", false},
		{"é", false},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
	}
	for _, tt := range tests {
		if err := CheckSessionID(tt.id); (err == nil) != tt.ok {
			t.Errorf("CheckSessionID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
		}
	}
}
