package auth

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fail reserves an attempt and fails it; it reports whether the attempt was
// allowed at all.
func fail(l *Limiter, user string, addr netip.Addr) bool {
	a, _ := l.Reserve(user, addr)
	if a == nil {
		return false
	}
	a.Fail()
	return true
}

func allowed(l *Limiter, user string, addr netip.Addr) bool {
	a, _ := l.Reserve(user, addr)
	if a == nil {
		return false
	}
	a.Cancel()
	return true
}

func TestLimiterLocksTheUserFromTheAddress(t *testing.T) {
	clk := newClock()
	l := NewLimiter(LimiterConfig{MaxFailures: 3, Window: time.Minute, Lockout: 5 * time.Minute}, clk.now)
	a, b := mustAddr("192.0.2.10"), mustAddr("192.0.2.11")

	fail(l, "victim", a)
	fail(l, "victim", a)
	clk.add(61 * time.Second) // the window restarts
	fail(l, "victim", a)
	fail(l, "victim", a)
	if !allowed(l, "victim", a) {
		t.Fatal("failures from an old window counted")
	}
	fail(l, "victim", a)
	if allowed(l, "victim", a) {
		t.Fatal("not locked out after 3 failures within the window")
	}
	if _, wait := l.Reserve("victim", a); wait != 5*time.Minute {
		t.Fatalf("wait = %v, want 5m", wait)
	}
	if !allowed(l, "victim", b) || !allowed(l, "other", a) {
		t.Fatal("another address, or another user behind the same address, locked out")
	}
	if allowed(l, "victim", mustAddr("::ffff:192.0.2.10")) {
		t.Fatal("IPv4-mapped form of a locked address allowed")
	}
	// Signing in as someone else from the same address lifts nothing.
	own, _ := l.Reserve("mallory", a)
	own.Succeed()
	if allowed(l, "victim", a) {
		t.Fatal("another user's success lifted the lockout")
	}
	clk.add(5 * time.Minute)
	if !allowed(l, "victim", a) {
		t.Fatal("still locked out after the lockout")
	}
}

// TestLimiterOwnSuccessDoesNotReset is the attack of issue 16 item 6: a user
// with an account interleaves their own successful sign-ins with guesses at
// another user's password.
func TestLimiterOwnSuccessDoesNotReset(t *testing.T) {
	clk := newClock()
	l := NewLimiter(LimiterConfig{MaxFailures: 5}, clk.now)
	a := mustAddr("192.0.2.10")
	checked := 0
	for range 20 {
		if fail(l, "victim", a) {
			checked++
		}
		own, _ := l.Reserve("mallory", a)
		if own == nil {
			t.Fatal("the attacker's own account was locked out")
		}
		own.Succeed()
	}
	if checked != 5 {
		t.Fatalf("%d guesses checked, limit 5", checked)
	}
}

func TestLimiterCountsAttemptsInFlight(t *testing.T) {
	l := NewLimiter(LimiterConfig{MaxFailures: 5}, nil)
	a := mustAddr("192.0.2.10")
	var mu sync.Mutex
	var held []*Attempt
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if at, _ := l.Reserve("victim", a); at != nil {
				mu.Lock()
				held = append(held, at)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(held) != 5 {
		t.Fatalf("%d of 100 parallel attempts reserved, limit 5", len(held))
	}
	for _, at := range held {
		at.Fail()
	}
	if allowed(l, "victim", a) {
		t.Fatal("not locked out after 5 failures")
	}
}

func TestLimiterSlowsButNeverLocksTheAddress(t *testing.T) {
	clk := newClock()
	l := NewLimiter(LimiterConfig{MaxFailures: 2, MaxAddressFailures: 4, SlowInterval: time.Second}, clk.now)
	a := mustAddr("192.0.2.10")
	for i := range 4 { // password spraying: one guess per user
		if !fail(l, fmt.Sprint("user", i), a) {
			t.Fatalf("guess %d refused before the address budget", i)
		}
	}
	// Slowed: one check per SlowInterval, one at a time.
	if allowed(l, "student", a) {
		t.Fatal("a slowed address checked twice within the interval")
	}
	clk.add(time.Second)
	first, _ := l.Reserve("student", a)
	if first == nil {
		t.Fatal("a slowed address was locked out")
	}
	if at, wait := l.Reserve("other", a); at != nil || wait <= 0 {
		t.Fatalf("a second check in flight from a slowed address: %v %v", at, wait)
	}
	first.Succeed()
	if allowed(l, "other", a) {
		t.Fatal("a slowed address checked twice within the interval")
	}
	clk.add(time.Second)
	if !allowed(l, "other", a) {
		t.Fatal("a slowed address refused after the interval")
	}
	if !allowed(l, "other", mustAddr("192.0.2.11")) {
		t.Fatal("a neighbouring address slowed")
	}
}

func TestLimiterIPv6Prefix(t *testing.T) {
	clk := newClock()
	l := NewLimiter(LimiterConfig{MaxFailures: 2}, clk.now)
	fail(l, "u", mustAddr("2001:db8:1:2::1"))
	fail(l, "u", mustAddr("2001:db8:1:2:ffff::9%eth0"))
	if allowed(l, "u", mustAddr("2001:db8:1:2::77")) {
		t.Fatal("rotating within one /64 escaped the limit")
	}
	if !allowed(l, "u", mustAddr("2001:db8:1:3::1")) {
		t.Fatal("a neighbouring /64 was locked out")
	}
	if _, wait := l.Reserve("u", mustAddr("2001:db8:1:2::1")); wait != DefaultLockout {
		t.Fatalf("wait = %v, want default %v", wait, DefaultLockout)
	}
}

func TestLimiterBounded(t *testing.T) {
	clk := newClock()
	m := NewMemoryAttempts(50)
	l := NewLimiterStore(LimiterConfig{MaxFailures: 2}, clk.now, m)
	for i := range 1000 {
		fail(l, "u", netip.MustParseAddr(fmt.Sprintf("10.0.%d.%d", i/256, i%256)))
		if m.Len() > 50 {
			t.Fatalf("tracking %d counters, bound is 50", m.Len())
		}
	}
	clk.add(10 * time.Minute)
	for i := range 100 {
		fail(l, "u", netip.MustParseAddr(fmt.Sprintf("172.16.0.%d", i)))
	}
	if m.Len() > 50 {
		t.Fatalf("tracking %d counters after expiry, bound is 50", m.Len())
	}
}
