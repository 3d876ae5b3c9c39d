package auth

import (
	"net/netip"
	"strings"
	"time"
)

// Limiter defaults.
const (
	DefaultMaxFailures = 10
	DefaultWindow      = time.Minute
	DefaultLockout     = 5 * time.Minute
	// DefaultMaxAddresses bounds the counters a MemoryAttempts keeps.
	DefaultMaxAddresses = 10000
	// DefaultAddressFailuresFactor times MaxFailures is the default
	// MaxAddressFailures.
	DefaultAddressFailuresFactor = 10
	// DefaultSlowInterval is the default spacing of checks from a slowed address.
	DefaultSlowInterval = time.Second
)

// LimiterConfig sets a Limiter's thresholds; zero fields take the defaults.
type LimiterConfig struct {
	// MaxFailures is how many failed checks of one user from one client
	// address within Window lock that user out from that address (default
	// DefaultMaxFailures).
	MaxFailures int `yaml:"max_failures"`
	// Window is the span in which failures are counted, from the first one
	// (default DefaultWindow).
	Window time.Duration `yaml:"window"`
	// Lockout is how long a locked-out (user, address) is refused (default
	// DefaultLockout).
	Lockout time.Duration `yaml:"lockout"`
	// MaxAddressFailures is how many failed checks from one client address,
	// whatever the users, within Window slow that address down (default
	// DefaultAddressFailuresFactor × MaxFailures). A slowed address is never
	// locked out: its checks are taken one at a time, SlowInterval apart.
	MaxAddressFailures int `yaml:"max_address_failures"`
	// SlowInterval is the spacing of checks from a slowed address (default
	// DefaultSlowInterval).
	SlowInterval time.Duration `yaml:"slow_interval"`
	// MaxAddresses bounds the counters tracked at once (default
	// DefaultMaxAddresses); beyond it expired counters and then arbitrary
	// ones are dropped.
	MaxAddresses int `yaml:"max_addresses"`
}

// withDefaults returns c with its zero fields set to the defaults.
func (c LimiterConfig) withDefaults() LimiterConfig {
	if c.MaxFailures <= 0 {
		c.MaxFailures = DefaultMaxFailures
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.Lockout <= 0 {
		c.Lockout = DefaultLockout
	}
	if c.MaxAddressFailures <= 0 {
		c.MaxAddressFailures = DefaultAddressFailuresFactor * c.MaxFailures
	}
	if c.SlowInterval <= 0 {
		c.SlowInterval = DefaultSlowInterval
	}
	if c.MaxAddresses <= 0 {
		c.MaxAddresses = DefaultMaxAddresses
	}
	return c
}

// Limit is what an AttemptStore enforces on one counter.
type Limit struct {
	// Max is the number of failures within Window (attempts in flight count
	// as failures until they end) at which the limit applies.
	Max    int
	Window time.Duration
	// Lockout, when positive, refuses every attempt for that long once Max
	// is reached. When zero the counter is slowed instead: one attempt in
	// flight at a time, Interval apart, until the window ends.
	Lockout  time.Duration
	Interval time.Duration
}

// AttemptStore keeps the counters a Limiter decides on. Reserve must check and
// count atomically, so that parallel attempts cannot pass a limit together.
// MemoryAttempts serves one process; a store shared by several nodes (Redis)
// implements the same four calls.
type AttemptStore interface {
	// Reserve counts one attempt in flight under key if lim allows it now;
	// otherwise it returns how long to wait before trying again (> 0).
	Reserve(key string, lim Limit, now time.Time) (wait time.Duration)
	// Cancel ends a reserved attempt without counting it.
	Cancel(key string)
	// Fail ends a reserved attempt as a failure, counted under lim.
	Fail(key string, lim Limit, now time.Time)
	// Succeed ends a reserved attempt as a success; with reset it also
	// forgets key's failures (not a lockout in force).
	Succeed(key string, reset bool, now time.Time)
}

// Limiter limits guessing of passwords. It counts, per client address (IPv4
// addresses one by one, IPv6 addresses by their /64, as a single host can use
// a whole /64), the failed checks of each user and the failed checks of all
// users, and counts an attempt from the moment it is reserved, before its
// password is checked, so parallel guesses cannot pass the limit.
//
//   - A user who fails MaxFailures times from one address is locked out from
//     that address for Lockout (429 Too Many Requests with Retry-After, without
//     checking the credentials). Signing in successfully as that user from that
//     address forgets its failures; signing in as anyone else does not.
//   - An address that fails MaxAddressFailures times, whatever the users, is
//     slowed (one check at a time, SlowInterval apart) but never locked out:
//     behind a school's NAT, other students must still sign in while one user
//     is being guessed. Users already signed in (ReserveKnown) are not slowed.
//
// A 429 rather than a delayed 407: a delay would hold a goroutine and a
// connection per attempt (the attacker's cheap, ours not), and a 407 would make
// the browser ask for credentials again during the lockout. Only presented
// credentials are counted: browsers send a first request without credentials
// and wait for the 407.
//
// A Limiter is safe for concurrent use; it holds no goroutine.
type Limiter struct {
	cfg   LimiterConfig
	now   func() time.Time
	store AttemptStore
}

// NewLimiter returns a Limiter with cfg's thresholds (zero fields take the
// defaults) counting in a MemoryAttempts and reading the clock now (time.Now if
// nil).
func NewLimiter(cfg LimiterConfig, now func() time.Time) *Limiter {
	cfg = cfg.withDefaults()
	return NewLimiterStore(cfg, now, NewMemoryAttempts(cfg.MaxAddresses))
}

// NewLimiterStore is NewLimiter counting in store.
func NewLimiterStore(cfg LimiterConfig, now func() time.Time, store AttemptStore) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{cfg: cfg.withDefaults(), now: now, store: store}
}

// Attempt is a reserved sign-in attempt; end it with exactly one of Fail,
// Succeed or Cancel.
type Attempt struct {
	l          *Limiter
	user, addr string // addr is "" when the address was not counted
}

// ReserveKnown is Reserve for credentials already known to be right (the
// Store's cache of successful checks: no password is checked), so a slowed
// address does not slow the users already signed in behind it. A lockout of
// user from addr still refuses them.
func (l *Limiter) ReserveKnown(user string, addr netip.Addr) (*Attempt, time.Duration) {
	a := &Attempt{l: l, user: "u " + limiterKey(addr).String() + " " + strings.ToLower(user)}
	if wait := l.store.Reserve(a.user, l.userLimit(), l.now()); wait > 0 {
		return nil, wait
	}
	return a, 0
}

// Reserve reserves an attempt by user from addr. When the attempt is refused
// it returns a nil Attempt and how long the client should wait, and the
// credentials must not be checked.
func (l *Limiter) Reserve(user string, addr netip.Addr) (*Attempt, time.Duration) {
	now := l.now()
	p := limiterKey(addr).String()
	a := &Attempt{l: l, user: "u " + p + " " + strings.ToLower(user), addr: "a " + p}
	if wait := l.store.Reserve(a.user, l.userLimit(), now); wait > 0 {
		return nil, wait
	}
	if wait := l.store.Reserve(a.addr, l.addrLimit(), now); wait > 0 {
		l.store.Cancel(a.user)
		return nil, wait
	}
	return a, 0
}

func (l *Limiter) userLimit() Limit {
	return Limit{Max: l.cfg.MaxFailures, Window: l.cfg.Window, Lockout: l.cfg.Lockout}
}

func (l *Limiter) addrLimit() Limit {
	return Limit{Max: l.cfg.MaxAddressFailures, Window: l.cfg.Window, Interval: l.cfg.SlowInterval}
}

// Fail ends the attempt as a failed check.
func (a *Attempt) Fail() {
	now := a.l.now()
	a.l.store.Fail(a.user, a.l.userLimit(), now)
	if a.addr != "" {
		a.l.store.Fail(a.addr, a.l.addrLimit(), now)
	}
}

// Succeed ends the attempt as a successful check: the user's failures from
// this address are forgotten, the address's are not.
func (a *Attempt) Succeed() {
	now := a.l.now()
	a.l.store.Succeed(a.user, true, now)
	if a.addr != "" {
		a.l.store.Succeed(a.addr, false, now)
	}
}

// Cancel ends the attempt without counting it.
func (a *Attempt) Cancel() {
	a.l.store.Cancel(a.user)
	if a.addr != "" {
		a.l.store.Cancel(a.addr)
	}
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
