package auth

import (
	"sync"
	"time"
)

// MemoryAttempts is the in-process AttemptStore: a bounded map of counters
// under one mutex. It is safe for concurrent use and holds no goroutine.
type MemoryAttempts struct {
	max int

	mu     sync.Mutex
	counts map[string]*counter
}

type counter struct {
	start    time.Time // first failure of the current window
	failures int
	inflight int
	locked   time.Time // refused until then (Lockout limits)
	last     time.Time // last attempt reserved (Interval limits)
}

// NewMemoryAttempts returns an empty MemoryAttempts keeping at most max
// counters (DefaultMaxAddresses if max ≤ 0).
func NewMemoryAttempts(max int) *MemoryAttempts {
	if max <= 0 {
		max = DefaultMaxAddresses
	}
	return &MemoryAttempts{max: max, counts: make(map[string]*counter)}
}

// Reserve implements AttemptStore.
func (m *MemoryAttempts) Reserve(key string, lim Limit, now time.Time) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.counts[key]
	if c == nil {
		m.makeRoom(now, lim.Window)
		c = &counter{start: now}
		m.counts[key] = c
	}
	if now.Before(c.locked) {
		return c.locked.Sub(now)
	}
	if c.failures > 0 && now.Sub(c.start) >= lim.Window {
		c.start, c.failures = now, 0
	}
	if c.failures+c.inflight >= lim.Max {
		if lim.Lockout > 0 {
			// Attempts in flight fill the budget: refuse for now, the
			// lockout starts when they fail.
			return time.Second
		}
		if c.inflight > 0 {
			return lim.Interval
		}
		if wait := c.last.Add(lim.Interval).Sub(now); wait > 0 {
			return wait
		}
	}
	c.inflight++
	c.last = now
	return 0
}

// Cancel implements AttemptStore.
func (m *MemoryAttempts) Cancel(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.counts[key]; c != nil && c.inflight > 0 {
		c.inflight--
	}
}

// Fail implements AttemptStore.
func (m *MemoryAttempts) Fail(key string, lim Limit, now time.Time) {
	m.fail(key, lim, now, true)
}

// Record counts a failure of key made elsewhere (another node's), with no
// attempt of this store's in flight.
func (m *MemoryAttempts) Record(key string, lim Limit, now time.Time) {
	m.fail(key, lim, now, false)
}

func (m *MemoryAttempts) fail(key string, lim Limit, now time.Time, own bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.counts[key]
	if c == nil { // dropped to make room meanwhile
		m.makeRoom(now, lim.Window)
		c = &counter{start: now}
		m.counts[key] = c
	}
	if own && c.inflight > 0 {
		c.inflight--
	}
	if c.failures == 0 || now.Sub(c.start) >= lim.Window {
		c.start, c.failures = now, 0
	}
	c.failures++
	if lim.Lockout > 0 && c.failures >= lim.Max {
		c.locked = now.Add(lim.Lockout)
		c.start, c.failures = now, 0
	}
}

// Succeed implements AttemptStore.
func (m *MemoryAttempts) Succeed(key string, reset bool, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.counts[key]
	if c == nil {
		return
	}
	if c.inflight > 0 {
		c.inflight--
	}
	if reset && !now.Before(c.locked) {
		c.failures = 0
		if c.inflight == 0 {
			delete(m.counts, key)
		}
	}
}

// Len returns the number of counters kept.
func (m *MemoryAttempts) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.counts)
}

// makeRoom drops idle expired counters, then arbitrary idle ones, until one
// more fits. The caller holds m.mu.
func (m *MemoryAttempts) makeRoom(now time.Time, window time.Duration) {
	if len(m.counts) < m.max {
		return
	}
	for k, c := range m.counts {
		if c.inflight == 0 && now.Sub(c.start) >= window && !now.Before(c.locked) {
			delete(m.counts, k)
		}
	}
	for k, c := range m.counts {
		if len(m.counts) < m.max {
			return
		}
		if c.inflight == 0 {
			delete(m.counts, k)
		}
	}
}
