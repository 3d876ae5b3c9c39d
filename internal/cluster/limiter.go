package cluster

import (
	"context"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultLimiterKeys bounds the keys a Limiter remembers.
const DefaultLimiterKeys = 100_000

// Limiter counts requests per key (a route and a client) across nodes in windows
// of one second (longer for rates under one per second, so a window admits at
// least one request), estimating the sliding window from the previous and the
// current window's global counts. Allow never waits on Redis.
type Limiter struct {
	c   *Cluster
	max int

	mu   sync.Mutex
	keys map[string]*limitKey
}

type limitKey struct {
	width    int64 // window, ns
	capacity float64
	// nodes is how many nodes counted this key in the last two windows (at
	// least 1): between syncs the others are taken to accept as many as this
	// one, so N nodes at the edge of the limit do not each take the same room.
	nodes int64
	born  time.Time
	last  time.Time
	wins  [2]window // the current window and the one before, by index
}

// window is one window's counts: global as Redis last said (it includes this
// node's flushed counts), local accepted here since, inflight being flushed.
type window struct {
	idx                     int64
	global, local, inflight int64
	// lastN is this node's last flushed count for the window: the others are
	// taken to have flushed as much, on average half a sync ago, after this
	// node last read the sums.
	lastN int64
}

// count is the window's estimated global count at a node seen by k nodes: what
// Redis said, this node's counts since, and as much from each other node plus
// half a sync interval's worth they flushed after this node's read (each node
// flushes on its own clock).
func (w *window) count(k int64) float64 {
	own := w.local + w.inflight
	return float64(w.global+own) + float64(k-1)*(float64(own)+float64(w.lastN)/2)
}

func newLimiter(c *Cluster) *Limiter {
	return &Limiter{c: c, max: DefaultLimiterKeys, keys: map[string]*limitKey{}}
}

// MinWindow is the shortest window: a burst smaller than 100 ms at the rate is
// counted as 100 ms at the rate.
const MinWindow = 100 * time.Millisecond

// widthFor returns the window for rate requests per second with burst: the time
// the rate takes to fill the burst, so that a window admits the burst and the
// sliding estimate the rate (a token bucket's behaviour), at least MinWindow and
// long enough to admit one request.
func widthFor(rate float64, burst int) time.Duration {
	w := time.Duration(float64(max(burst, 1)) / rate * float64(time.Second))
	w = max(w, MinWindow, time.Duration(math.Ceil(1/rate*1000))*time.Millisecond)
	return w.Round(time.Millisecond)
}

// find returns the window with index idx, or nil.
func (k *limitKey) find(idx int64) *window {
	for i := range k.wins {
		if k.wins[i].idx == idx {
			return &k.wins[i]
		}
	}
	return nil
}

// current returns the window with index idx, replacing the older slot when it
// is new (what that slot had not flushed is dropped: no estimate needs it).
func (k *limitKey) current(idx int64) *window {
	if w := k.find(idx); w != nil {
		return w
	}
	o := 0
	if k.wins[1].idx < k.wins[0].idx {
		o = 1
	}
	k.wins[o] = window{idx: idx}
	return &k.wins[o]
}

// estimate is the sliding-window count at now.
func (k *limitKey) estimate(now time.Time) float64 {
	t := now.UnixNano()
	idx := t / k.width
	frac := float64(t-idx*k.width) / float64(k.width)
	var cur, prev float64
	for _, w := range k.wins {
		switch w.idx {
		case idx:
			cur = w.count(max(k.nodes, 1))
		case idx - 1:
			prev = w.count(max(k.nodes, 1))
		}
	}
	return prev*(1-frac) + cur
}

// Allow counts one request for key at rate requests per second with burst, and
// reports whether the cluster-wide count leaves room for it. While Redis is down
// it always allows (the caller's local limiter is the fallback).
func (l *Limiter) Allow(key string, rate float64, burst int, now time.Time) bool {
	if rate <= 0 || !l.c.Up() {
		return true
	}
	width := widthFor(rate, burst)
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.keys[key]
	if k == nil || k.width != int64(width) {
		if k == nil && len(l.keys) >= l.max {
			l.evict(now)
		}
		// Until its counts show which nodes see it, a new key is taken to be
		// seen by every live node.
		k = &limitKey{width: int64(width), born: now, nodes: max(l.c.alive.Load(), 1)}
		k.wins[0].idx, k.wins[1].idx = -2, -3
		l.keys[key] = k
	}
	k.capacity = rate * width.Seconds()
	k.last = now
	if k.estimate(now)+1 > k.capacity+1e-9 {
		return false
	}
	k.current(now.UnixNano()/k.width).local++
	return true
}

// evict drops keys unused for two windows, or an eighth of them. l.mu is held.
func (l *Limiter) evict(now time.Time) {
	for s, k := range l.keys {
		if now.Sub(k.last) > 2*time.Duration(k.width) {
			delete(l.keys, s)
		}
	}
	if len(l.keys) < l.max {
		return
	}
	n := max(1, l.max/8)
	for s := range l.keys {
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

func (l *Limiter) syncLoop(ctx context.Context) {
	t := time.NewTicker(SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !l.c.Up() {
			continue // the heartbeat probes; counts made while down stay local
		}
		l.sync(ctx, time.Now())
	}
}

// flush is one window of one key being written and read back.
type flush struct {
	key  string
	k    *limitKey
	idx  int64
	n    int64
	cur  *redis.MapStringStringCmd
	prev *redis.MapStringStringCmd
}

// sync flushes the local counts of active keys and reads the global counts back
// in one pipeline.
func (l *Limiter) sync(ctx context.Context, now time.Time) {
	var fs []*flush
	l.mu.Lock()
	for s, k := range l.keys {
		cur := now.UnixNano() / k.width
		if now.Sub(k.last) > 2*time.Duration(k.width) {
			if k.wins[0].local == 0 && k.wins[1].local == 0 {
				delete(l.keys, s)
				continue
			}
		}
		hot := k.estimate(now) >= k.capacity/2
		for i := range k.wins {
			w := &k.wins[i]
			if w.idx < cur-1 && w.local == 0 {
				continue
			}
			if w.local == 0 && !(hot && w.idx == cur) {
				continue
			}
			fs = append(fs, &flush{key: s, k: k, idx: w.idx, n: w.local})
			w.inflight += w.local
			w.local = 0
		}
	}
	l.mu.Unlock()
	if len(fs) == 0 {
		return
	}
	err := l.c.do(ctx, backgroundTimeout, func(ctx context.Context) error {
		_, err := l.c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, f := range fs {
				// One hash per key and window, a field per node: the sum is
				// the global count, the fields say how many nodes take part.
				rk := l.c.key("rl", f.key, strconv.FormatInt(f.idx, 10))
				if f.n > 0 {
					p.HIncrBy(ctx, rk, l.c.cfg.Node, f.n)
					p.Expire(ctx, rk, 3*time.Duration(f.k.width)+time.Second)
				}
				f.cur = p.HGetAll(ctx, rk)
				f.prev = p.HGetAll(ctx, l.c.key("rl", f.key, strconv.FormatInt(f.idx-1, 10)))
			}
			return nil
		})
		return err
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range fs {
		w := f.k.find(f.idx)
		if w == nil {
			continue
		}
		w.inflight -= f.n
		if err != nil || f.cur.Err() != nil {
			w.local += f.n // try again at the next sync
			continue
		}
		sum, nodes := sumFields(f.cur.Val(), nil)
		w.global = max(w.global, sum)
		w.lastN = f.n
		psum, nodes := sumFields(f.prev.Val(), nodes)
		if p := f.k.find(f.idx - 1); p != nil {
			p.global = max(p.global, psum)
		}
		if now.Sub(f.k.born) > time.Duration(f.k.width) {
			f.k.nodes = max(int64(len(nodes)), 1)
		}
	}
}

// sumFields adds up a window hash's per-node counts and adds the nodes seen to
// nodes.
func sumFields(m map[string]string, nodes map[string]bool) (int64, map[string]bool) {
	if nodes == nil {
		nodes = map[string]bool{}
	}
	var sum int64
	for node, v := range m {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			continue
		}
		sum += n
		nodes[node] = true
	}
	return sum, nodes
}
