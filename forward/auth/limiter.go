package auth

import (
	"net/netip"
	"sync"
	"time"
)

// Limiter defaults.
const (
	DefaultMaxFailures  = 10
	DefaultWindow       = time.Minute
	DefaultLockout      = 5 * time.Minute
	DefaultMaxAddresses = 10000
)

// LimiterConfig sets a Limiter's thresholds; zero fields take the defaults.
type LimiterConfig struct {
	// MaxFailures is how many failed checks within Window lock an address out
	// (default DefaultMaxFailures).
	MaxFailures int `yaml:"max_failures"`
	// Window is the span in which failures are counted, from the first one
	// (default DefaultWindow).
	Window time.Duration `yaml:"window"`
	// Lockout is how long a locked-out address is refused (default DefaultLockout).
	Lockout time.Duration `yaml:"lockout"`
	// MaxAddresses bounds the addresses tracked at once (default
	// DefaultMaxAddresses); beyond it expired entries and then arbitrary ones
	// are dropped.
	MaxAddresses int `yaml:"max_addresses"`
}

// Limiter counts failed authentication attempts per client and refuses a
// client that failed too often. IPv4 addresses are tracked one by one, IPv6
// addresses by their /64 (a single host can use a whole /64).
//
// When Allow is false the proxy should answer 429 Too Many Requests with a
// Retry-After of RetryAfter(addr) seconds, without checking the credentials.
// A 429 rather than a delayed 407: a delay would hold a goroutine and a
// connection per attempt (the attacker's cheap, ours not), and a 407 would make
// the browser ask for credentials again during the lockout. Only count
// presented-and-wrong credentials with Fail, not missing ones: browsers send a
// first request without credentials and wait for the 407.
//
// A Limiter is safe for concurrent use; it holds no goroutine.
type Limiter struct {
	cfg LimiterConfig
	now func() time.Time

	mu    sync.Mutex
	byKey map[netip.Prefix]*attempts
}

type attempts struct {
	start  time.Time // first failure of the current window
	count  int
	locked time.Time // refused until then
}

// NewLimiter returns a Limiter with cfg's thresholds (zero fields take the
// defaults) reading the clock now (time.Now if nil).
func NewLimiter(cfg LimiterConfig, now func() time.Time) *Limiter {
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Lockout <= 0 {
		cfg.Lockout = DefaultLockout
	}
	if cfg.MaxAddresses <= 0 {
		cfg.MaxAddresses = DefaultMaxAddresses
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{cfg: cfg, now: now, byKey: make(map[netip.Prefix]*attempts)}
}

func limiterKey(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap().WithZone("")
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, _ := addr.Prefix(bits)
	return p
}

// Allow reports whether addr may attempt to authenticate now.
func (l *Limiter) Allow(addr netip.Addr) bool { return l.RetryAfter(addr) == 0 }

// RetryAfter returns how long addr is still locked out; 0 when it is not.
func (l *Limiter) RetryAfter(addr netip.Addr) time.Duration {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.byKey[limiterKey(addr)]
	if a == nil || !now.Before(a.locked) {
		return 0
	}
	return a.locked.Sub(now)
}

// Fail records a failed attempt from addr.
func (l *Limiter) Fail(addr netip.Addr) {
	now := l.now()
	key := limiterKey(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.byKey[key]
	if a == nil {
		l.makeRoom(now)
		a = &attempts{start: now}
		l.byKey[key] = a
	}
	if now.Sub(a.start) >= l.cfg.Window {
		a.start, a.count = now, 0
	}
	a.count++
	if a.count >= l.cfg.MaxFailures {
		a.locked = now.Add(l.cfg.Lockout)
		a.start, a.count = now, 0
	}
}

// Succeed forgets the failures of addr after a successful check.
func (l *Limiter) Succeed(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a := l.byKey[limiterKey(addr)]; a != nil && !l.now().Before(a.locked) {
		delete(l.byKey, limiterKey(addr))
	}
}

// Len returns the number of addresses tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byKey)
}

// makeRoom drops expired entries, then arbitrary ones, until one more fits.
// The caller holds l.mu.
func (l *Limiter) makeRoom(now time.Time) {
	if len(l.byKey) < l.cfg.MaxAddresses {
		return
	}
	for k, a := range l.byKey {
		if now.Sub(a.start) >= l.cfg.Window && !now.Before(a.locked) {
			delete(l.byKey, k)
		}
	}
	for k := range l.byKey {
		if len(l.byKey) < l.cfg.MaxAddresses {
			return
		}
		delete(l.byKey, k)
	}
}
