package bastion

import (
	"testing"
	"time"
)

func TestLoginLimiter(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	l := newLoginLimiter(10*time.Second, 3, func() time.Time { return now })
	for i := 0; i < 3; i++ {
		if !l.allow("192.0.2.1") {
			t.Fatalf("attempt %d refused inside the burst", i+1)
		}
	}
	if l.allow("192.0.2.1") {
		t.Fatal("fourth attempt allowed")
	}
	if !l.allow("192.0.2.2") {
		t.Fatal("another address shares the bucket")
	}
	now = now.Add(10 * time.Second)
	if !l.allow("192.0.2.1") {
		t.Fatal("no token after the refill interval")
	}
	now = now.Add(time.Hour)
	l.allow("192.0.2.3")
	if len(l.perAddr) != 1 {
		t.Fatalf("idle addresses kept: %d", len(l.perAddr))
	}
}

func TestLockout(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	l := newLockout(10, 30*time.Minute, func() time.Time { return now })
	for i := 0; i < 9; i++ {
		if locked, _ := l.fail("alice"); locked {
			t.Fatalf("locked after %d failures", i+1)
		}
	}
	l.succeed("alice")
	for i := 0; i < 9; i++ {
		l.fail("alice")
	}
	if locked, _ := l.locked("alice"); locked {
		t.Fatal("a success did not reset the count")
	}
	locked, until := l.fail("alice")
	if !locked || !until.Equal(now.Add(30*time.Minute)) {
		t.Fatalf("10th failure in a row: locked %v until %v", locked, until)
	}
	if ok, _ := l.locked("alice"); !ok {
		t.Fatal("not locked")
	}
	if ok, _ := l.locked("bob"); ok {
		t.Fatal("bob locked")
	}
	now = now.Add(30 * time.Minute)
	if ok, _ := l.locked("alice"); ok {
		t.Fatal("still locked after 30 minutes")
	}
}
