package reverse

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/portcullis/portcullis/internal/accept"
)

// DefaultMaxClients bounds the clients a RateLimiter remembers.
const DefaultMaxClients = 100_000

// RateLimiter holds per-client token buckets (one per route and client
// address) in a bounded map. It outlives Handlers: the engine creates one and
// passes it to every New, so limits hold across policy reloads.
type RateLimiter struct {
	max    int
	shared atomic.Pointer[sharedLimiter]

	mu      sync.Mutex
	clients map[limiterKey]*rate.Limiter
}

type limiterKey struct {
	route  string
	client netip.Addr
}

// SharedLimiter counts a key's requests across several nodes (internal/cluster).
// Allow must not block on the network; it reports false when the cluster-wide
// count leaves no room, and true when it cannot tell (the local bucket decides).
type SharedLimiter interface {
	Allow(route string, client netip.Addr, rate float64, burst int, now time.Time) bool
}

type sharedLimiter struct{ SharedLimiter }

// SetShared makes every later Allow also ask s (nil: this node alone decides).
func (rl *RateLimiter) SetShared(s SharedLimiter) {
	if s == nil {
		rl.shared.Store(nil)
		return
	}
	rl.shared.Store(&sharedLimiter{s})
}

// NewRateLimiter returns a limiter remembering at most maxClients buckets
// (DefaultMaxClients when maxClients <= 0).
func NewRateLimiter(maxClients int) *RateLimiter {
	if maxClients <= 0 {
		maxClients = DefaultMaxClients
	}
	return &RateLimiter{max: maxClients, clients: make(map[limiterKey]*rate.Limiter)}
}

// Allow takes a token for client on route at r requests per second with the
// given burst. When none is left it returns false and how long until one is.
func (rl *RateLimiter) Allow(route string, client netip.Addr, r Rate, burst int, now time.Time) (bool, time.Duration) {
	k := limiterKey{route, client}
	rl.mu.Lock()
	lim := rl.clients[k]
	if lim == nil {
		if len(rl.clients) >= rl.max {
			rl.evict(now)
		}
		lim = rate.NewLimiter(rate.Limit(r), burst)
		rl.clients[k] = lim
	} else if lim.Limit() != rate.Limit(r) || lim.Burst() != burst {
		lim.SetLimitAt(now, rate.Limit(r))
		lim.SetBurstAt(now, burst)
	}
	res := lim.ReserveN(now, 1)
	rl.mu.Unlock()
	if !res.OK() {
		return false, time.Second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	// The node's own bucket allows it; several nodes share the client's budget.
	if sh := rl.shared.Load(); sh != nil && !sh.Allow(route, client, float64(r), burst, now) {
		res.CancelAt(now)
		return false, time.Duration(float64(time.Second) / max(float64(r), 1e-9))
	}
	return true, 0
}

// evict drops the buckets that are full again (their clients have been quiet
// long enough to be forgotten), and if that frees nothing, an arbitrary
// eighth of them. Called with rl.mu held.
func (rl *RateLimiter) evict(now time.Time) {
	for k, lim := range rl.clients {
		if lim.TokensAt(now) >= float64(lim.Burst()) {
			delete(rl.clients, k)
		}
	}
	if len(rl.clients) < rl.max {
		return
	}
	n := max(1, rl.max/8)
	for k := range rl.clients { // map order is random enough
		delete(rl.clients, k)
		if n--; n == 0 {
			break
		}
	}
}

// Len returns how many buckets are remembered.
func (rl *RateLimiter) Len() int {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return len(rl.clients)
}

// LimitListener wraps l so that at most maxConns connections are open at once
// (Accept waits for one to close) and at most perClient from one address
// (further ones are closed at once). Zero means unlimited. See accept.Limit.
func LimitListener(l net.Listener, maxConns, perClient int) net.Listener {
	return accept.Limit(l, maxConns, perClient)
}

// errBodyTooSlow is returned to the proxy when a request body arrives slower
// than min_body_rate or past body_timeout.
var errBodyTooSlow = errors.New("request body too slow")

// deadlineBody enforces body_timeout and min_body_rate on a request body by
// moving the connection's read deadline as the body arrives, and clears the
// deadline at the end so the response is not cut off.
type deadlineBody struct {
	body    interface{ Read([]byte) (int, error) }
	closer  func() error
	rc      *http.ResponseController
	start   time.Time
	end     time.Time // body_timeout deadline, zero = none
	minRate int64
	n       int64
	cleared bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if !b.cleared {
		_ = b.rc.SetReadDeadline(b.deadline())
	}
	n, err := b.body.Read(p)
	b.n += int64(n)
	switch {
	case err == io.EOF && !b.cleared:
		// Done: clear the deadline so that net/http's background read does
		// not cancel the request while the response is streamed.
		b.cleared = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case err != nil:
		// Leave an expired deadline in place: net/http must not wait for the
		// rest of the body before answering, and closes the connection.
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = errBodyTooSlow
		}
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.closer() }

// deadline is the earlier of body_timeout and the time by which the bytes read
// so far plus one more buffer must have arrived at min_body_rate after a grace.
func (b *deadlineBody) deadline() time.Time {
	d := b.end
	if b.minRate > 0 {
		r := b.start.Add(DefaultMinBodyGrace + time.Duration(float64(b.n)/float64(b.minRate)*float64(time.Second)))
		if d.IsZero() || r.Before(d) {
			d = r
		}
	}
	return d
}
