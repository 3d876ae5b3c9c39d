package auth

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	clk := newClock()
	l := NewLimiter(LimiterConfig{MaxFailures: 3, Window: time.Minute, Lockout: 5 * time.Minute}, clk.now)
	a, b := mustAddr("192.0.2.10"), mustAddr("192.0.2.11")

	l.Fail(a)
	l.Fail(a)
	if !l.Allow(a) {
		t.Fatal("locked out after 2 of 3 failures")
	}
	clk.add(61 * time.Second) // the window restarts
	l.Fail(a)
	l.Fail(a)
	if !l.Allow(a) {
		t.Fatal("failures from an old window counted")
	}
	l.Fail(a)
	if l.Allow(a) {
		t.Fatal("not locked out after 3 failures within the window")
	}
	if d := l.RetryAfter(a); d != 5*time.Minute {
		t.Fatalf("RetryAfter = %v, want 5m", d)
	}
	if !l.Allow(b) {
		t.Fatal("another address locked out")
	}
	if v4in6 := mustAddr("::ffff:192.0.2.10"); l.Allow(v4in6) {
		t.Fatal("IPv4-mapped form of a locked address allowed")
	}
	l.Succeed(a) // does not lift a lockout
	clk.add(4 * time.Minute)
	if l.Allow(a) {
		t.Fatal("lockout ended early")
	}
	clk.add(time.Minute)
	if !l.Allow(a) {
		t.Fatal("still locked out after the lockout")
	}
	l.Fail(a) // a fresh window: one failure is not enough
	if !l.Allow(a) {
		t.Fatal("locked out by one failure after a lockout")
	}
	l.Succeed(a)
	if l.Len() != 0 {
		t.Fatalf("Succeed did not forget the address: %d tracked", l.Len())
	}
}

func TestLimiterIPv6Prefix(t *testing.T) {
	clk := newClock()
	l := NewLimiter(LimiterConfig{MaxFailures: 2}, clk.now)
	l.Fail(mustAddr("2001:db8:1:2::1"))
	l.Fail(mustAddr("2001:db8:1:2:ffff::9%eth0"))
	if l.Allow(mustAddr("2001:db8:1:2::77")) {
		t.Fatal("rotating within one /64 escaped the limit")
	}
	if !l.Allow(mustAddr("2001:db8:1:3::1")) {
		t.Fatal("a neighbouring /64 was locked out")
	}
	if d := l.RetryAfter(mustAddr("2001:db8:1:2::1")); d != DefaultLockout {
		t.Fatalf("RetryAfter = %v, want default %v", d, DefaultLockout)
	}
}

func TestLimiterBounded(t *testing.T) {
	clk := newClock()
	l := NewLimiter(LimiterConfig{MaxFailures: 2, MaxAddresses: 50}, clk.now)
	locked := netip.MustParseAddr("198.51.100.1")
	l.Fail(locked)
	l.Fail(locked)
	for i := 0; i < 1000; i++ {
		l.Fail(netip.MustParseAddr(fmt.Sprintf("10.0.%d.%d", i/256, i%256)))
		if l.Len() > 50 {
			t.Fatalf("tracking %d addresses, bound is 50", l.Len())
		}
	}
	// Expired entries go first: after the window, the map refills with new ones
	// without growing.
	clk.add(10 * time.Minute)
	for i := 0; i < 100; i++ {
		l.Fail(netip.MustParseAddr(fmt.Sprintf("172.16.0.%d", i)))
	}
	if l.Len() > 50 {
		t.Fatalf("tracking %d addresses after expiry, bound is 50", l.Len())
	}
}
