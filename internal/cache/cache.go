package cache

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Cache is one shared cache. It is safe for concurrent use. Close stops its
// background refreshes.
type Cache struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	fake   bool // now came from WithClock: it wins over a caller's reading (at)
	down   []error
	store  *store
	flight flights

	policies sync.Map // *Policy → *compiledPolicy
	npol     atomic.Int64

	ctx     context.Context // cancelled by Close; parent of background refreshes
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	refresh sync.Map // key → struct{}: background refreshes in flight
	mu      sync.Mutex
	closed  bool

	stats counters
	tier  atomic.Pointer[tierHolder] // the shared tier below the store, nil: none
}

// Option adjusts a Cache built by New.
type Option func(*Cache)

// WithDownError makes errors matching err (errors.Is), such as
// pool.ErrNoHealthyMember, count as "origin down" for serve_stale_when_down, in
// addition to dial errors, connections closed or reset without a response, and
// errors implementing interface{ OriginDown() bool }.
func WithDownError(err error) Option {
	return func(c *Cache) { c.down = append(c.down, err) }
}

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option {
	return func(c *Cache) { c.now, c.fake = now, true }
}

// at is the time of a request the caller read the clock for (t): t itself,
// which saves reading the clock again, unless t is zero or the Cache was
// built WithClock (whose clock stands for every reading).
func (c *Cache) at(t time.Time) time.Time {
	if c.fake || t.IsZero() {
		return c.now()
	}
	return t
}

// New builds a Cache from cfg (zero fields take their defaults). The logger may be
// nil (discard).
func New(cfg Config, logger *slog.Logger, opts ...Option) (*Cache, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, errors.Join(fieldErrors(errs)...)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Cache{cfg: cfg.withDefaults(), log: logger, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	// Fills in progress may hold half the budget (at least one object of the
	// largest size stored); the rest keeps stored responses from being
	// evicted by fills that may never finish.
	c.store = newStore(c.cfg.MaxBytes, max(c.cfg.MaxBytes/2, c.cfg.MaxObjectBytes), &c.stats)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Close stops background refreshes and waits for them. Requests already inside
// the RoundTripper finish normally; the cache keeps answering afterwards but
// starts no new background work.
func (c *Cache) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	return nil
}

// Wrap returns a RoundTripper that answers from the cache where RFC 9111 and the
// request's Policy allow, and otherwise sends the request to next.
func (c *Cache) Wrap(next http.RoundTripper) http.RoundTripper {
	return &transport{c: c, next: next}
}

// WrapPolicy is Wrap with a default policy for requests whose context carries
// none (a reverse route's policy); WithPolicy on a request overrides it.
func (c *Cache) WrapPolicy(p *Policy, next http.RoundTripper) http.RoundTripper {
	t := &transport{c: c, next: next, def: p}
	t.defc = c.compiled(p)
	return t
}

type policyKey struct{}

// WithPolicy returns ctx carrying the cache policy p. Requests whose context has
// a nil or disabled policy pass straight through the cache, as do requests with
// no policy at all unless the RoundTripper came from WrapPolicy.
func WithPolicy(ctx context.Context, p *Policy) context.Context {
	return context.WithValue(ctx, policyKey{}, p)
}

// compiled returns p's compiled form, or nil when caching is off for it.
func (c *Cache) compiled(p *Policy) *compiledPolicy {
	if p == nil || !p.Enabled {
		return nil
	}
	if v, ok := c.policies.Load(p); ok {
		return v.(*compiledPolicy)
	}
	cp, errs := compilePolicy(p)
	if len(errs) > 0 {
		c.log.Warn("cache: invalid policy; caching off for it", "error", errors.Join(fieldErrors(errs)...))
		cp = nil
	}
	// Policies are rebuilt on reload; forget old ones now and then rather than
	// keeping every generation alive.
	if c.npol.Add(1) > 4096 {
		c.policies.Clear()
		c.npol.Store(0)
	}
	c.policies.Store(p, cp)
	return cp
}

// Stats are the cache's counters since New.
type Stats struct {
	Hits        int64 // answered from the cache without contacting the origin (incl. 304s to clients)
	Misses      int64 // eligible requests sent to the origin (misses, validations, refreshes)
	Stale       int64 // stale responses served (stale-while-revalidate, stale-if-error, when down, max-stale)
	Revalidated int64 // stored responses revalidated with the origin (304 merged)
	Collapsed   int64 // requests answered from another request's origin fetch
	Bypass      int64 // requests not eligible (method, policy bypass, range, …)
	Evictions   int64 // objects evicted to stay within max_bytes
	Bytes       int64 // bytes held now (bodies, headers, per-object overhead, fills in progress); at most max_bytes
	Filling     int64 // the part of Bytes held by responses being stored as they stream
	Objects     int64 // URLs held now (each may hold several Vary variants)
	TierHits    int64 // memory misses answered from the shared tier (counted in Hits too)
}

type counters struct {
	hits, misses, stale, revalidated, collapsed, bypass, evictions, tierHits atomic.Int64
}

// Stats returns the current counters.
func (c *Cache) Stats() Stats {
	b, f, n := c.store.usage()
	return Stats{
		Hits:        c.stats.hits.Load(),
		Misses:      c.stats.misses.Load(),
		Stale:       c.stats.stale.Load(),
		Revalidated: c.stats.revalidated.Load(),
		Collapsed:   c.stats.collapsed.Load(),
		Bypass:      c.stats.bypass.Load(),
		Evictions:   c.stats.evictions.Load(),
		Bytes:       b,
		Filling:     f,
		Objects:     n,
		TierHits:    c.stats.tierHits.Load(),
	}
}
