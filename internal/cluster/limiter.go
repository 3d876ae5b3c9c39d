package cluster

import (
	"context"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultLimiterKeys bounds the keys a Limiter remembers.
const DefaultLimiterKeys = 100_000

// leaseTime is how long leased tokens stay usable on a node: past it they are
// dropped, so a node cannot spend an old lease on a later burst.
const leaseTime = time.Second

// leaseSpan is how much of the rate one lease covers (divided among the live
// nodes): a node asks again when half of it is spent.
const leaseSpan = 50 * time.Millisecond

// gcra is the cluster-wide token bucket, one per key, as a theoretical arrival
// time in microseconds of Redis's clock (GCRA): it charges the requests a node
// admitted without a lease (ARGV[4]), then grants up to ARGV[3] more that fit
// in the bucket of ARGV[2] microseconds (burst × emission interval ARGV[1]).
var gcra = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local em, bo = tonumber(ARGV[1]), tonumber(ARGV[2])
local want, debt = tonumber(ARGV[3]), tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
tat = tat + debt * em
local room = math.floor((now + bo - tat) / em)
local n = math.min(want, math.max(room, 0))
tat = tat + n * em
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
return n
`)

// Limiter is a token bucket per key (a route and a client) held in Redis and
// shared by every node. A node leases small batches of tokens ahead of need and
// admits from its lease, so a request never waits on Redis; the cluster-wide
// count cannot pass the bucket except by the few requests a node admits for a
// key it holds no lease for yet (charged at its next lease).
type Limiter struct {
	c     *Cluster
	max   int
	nudge chan struct{}

	mu   sync.Mutex
	keys map[string]*leaseKey
}

type leaseKey struct {
	rate      float64
	burst     int
	tokens    int       // leased and unspent
	expires   time.Time // tokens are dropped after
	debt      int       // admitted without a lease, charged at the next lease
	want      bool      // a lease is wanted
	pending   bool      // a lease request is in flight
	throttled bool      // the last lease got less than asked: the bucket is empty
	last      time.Time
}

func newLimiter(c *Cluster) *Limiter {
	return &Limiter{c: c, max: DefaultLimiterKeys, keys: map[string]*leaseKey{}, nudge: make(chan struct{}, 1)}
}

// batch is how many tokens one lease asks for.
func (l *Limiter) batch(rate float64) int {
	n := rate * leaseSpan.Seconds() / float64(max(l.c.alive.Load(), 1))
	return max(1, int(math.Ceil(n)))
}

// Allow takes one token for client on route from the cluster-wide bucket of rate
// per second and burst. It never waits on Redis; while Redis is down it always
// allows (the caller's local bucket is the fallback).
func (l *Limiter) Allow(route string, client netip.Addr, rate float64, burst int, now time.Time) bool {
	var kb [96]byte
	key := client.AppendTo(append(append(kb[:0], route...), '|'))
	return l.allow(key, rate, burst, now)
}

// AllowKey is Allow for any key.
func (l *Limiter) AllowKey(key string, rate float64, burst int, now time.Time) bool {
	return l.allow([]byte(key), rate, burst, now)
}

func (l *Limiter) allow(key []byte, rate float64, burst int, now time.Time) bool {
	if rate <= 0 || !l.c.Up() {
		return true
	}
	burst = max(burst, 1)
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.keys[string(key)]
	if k == nil {
		if len(l.keys) >= l.max {
			l.evict(now)
		}
		k = &leaseKey{}
		l.keys[string(key)] = k
	}
	if k.rate != rate || k.burst != burst {
		k.rate, k.burst, k.tokens = rate, burst, 0
	}
	k.last = now
	if k.tokens > 0 && now.After(k.expires) {
		k.tokens = 0
	}
	ok := false
	switch {
	case k.tokens > 0:
		k.tokens--
		ok = true
	case !k.throttled && k.debt < l.maxDebt(burst):
		// No lease yet (a new client, or a lease on its way): admit a share of
		// the burst and charge it to the bucket with the next lease.
		k.debt++
		ok = true
	}
	if k.tokens*2 <= l.batch(rate) && !k.want {
		k.want = true
		select {
		case l.nudge <- struct{}{}:
		default:
		}
	}
	return ok
}

// maxDebt is how many requests a node admits for a key without a lease: its
// share of the burst.
func (l *Limiter) maxDebt(burst int) int {
	return max(1, burst/int(max(l.c.alive.Load(), 1)))
}

// evict drops keys unused for a lease time, or an eighth of them. l.mu is held.
func (l *Limiter) evict(now time.Time) {
	for s, k := range l.keys {
		if now.Sub(k.last) > leaseTime && !k.pending {
			delete(l.keys, s)
		}
	}
	if len(l.keys) < l.max {
		return
	}
	n := max(1, l.max/8)
	for s, k := range l.keys {
		if k.pending {
			continue
		}
		delete(l.keys, s)
		if n--; n == 0 {
			break
		}
	}
}

// Len is how many keys are remembered.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// syncLoop asks for the leases wanted, at once when Allow nudges it.
func (l *Limiter) syncLoop(ctx context.Context) { l.c.nudgedLoop(ctx, SyncInterval, l.nudge, l.sync) }

// lease is one key's lease request in flight.
type lease struct {
	key  string
	k    *leaseKey
	ask  int
	debt int
	cmd  *redis.Cmd
}

// sync requests the wanted leases in one pipeline.
func (l *Limiter) sync(ctx context.Context, now time.Time) {
	var ls []*lease
	l.mu.Lock()
	for s, k := range l.keys {
		if !k.want || k.pending {
			if !k.pending && k.debt == 0 && now.Sub(k.last) > 2*leaseTime {
				delete(l.keys, s) // idle: its lease has expired
			}
			continue
		}
		k.want, k.pending = false, true
		ls = append(ls, &lease{key: s, k: k, ask: l.batch(k.rate), debt: k.debt})
	}
	l.mu.Unlock()
	if len(ls) == 0 {
		return
	}
	err := l.c.do(ctx, backgroundTimeout, func(ctx context.Context) error {
		_, err := l.c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, x := range ls {
				em := 1e6 / x.k.rate
				x.cmd = gcra.Eval(ctx, p, []string{l.c.key("rl", "{"+x.key+"}")},
					strconv.FormatFloat(em, 'f', 3, 64), strconv.FormatFloat(em*float64(x.k.burst), 'f', 3, 64), x.ask, x.debt)
			}
			return nil
		})
		return err
	})
	now = time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range ls {
		x.k.pending = false
		if err != nil || x.cmd.Err() != nil {
			continue // the debt stays, charged when Redis answers again
		}
		n, _ := x.cmd.Int()
		x.k.debt -= x.debt
		x.k.tokens += n
		x.k.expires = now.Add(leaseTime)
		x.k.throttled = n < x.ask
	}
}
