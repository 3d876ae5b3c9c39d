package resolver

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// cacheKey identifies a cached answer. The DO and CD bits change what an upstream
// returns, so they are part of the key.
type cacheKey struct {
	name   string // lowercased, fully qualified
	qtype  uint16
	qclass uint16
	do, cd bool
}

// cacheEntry is an answer as stored: its TTLs already clamped, never mutated.
type cacheEntry struct {
	msg     *dns.Msg
	stored  time.Time
	expires time.Time
	wire    []byte   // msg packed without OPT (see AppendCached); nil if it could not be
	ttlOffs []int    // offsets of the TTLs in wire
	cnames  []string // CNAME targets in the answer
}

const cacheShards = 32

// cache is a bounded TTL cache of answers, sharded to keep lock contention low.
// When a shard is full an expired entry, or else an arbitrary one, is evicted.
type cache struct {
	seed     maphash.Seed
	perShard int
	shards   [cacheShards]cacheShard
	hits     atomic.Uint64
	misses   atomic.Uint64
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[cacheKey]*cacheEntry
}

func newCache(maxEntries int) *cache {
	c := &cache{seed: maphash.MakeSeed(), perShard: max(1, maxEntries/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]*cacheEntry)
	}
	return c
}

func (c *cache) shard(k cacheKey) *cacheShard {
	return &c.shards[maphash.String(c.seed, k.name)%cacheShards]
}

// get returns the live entry for k, or nil.
func (c *cache) get(k cacheKey, now time.Time) *cacheEntry {
	s := c.shard(k)
	s.mu.RLock()
	e := s.m[k]
	s.mu.RUnlock()
	if e == nil || !now.Before(e.expires) {
		c.misses.Add(1)
		return nil
	}
	c.hits.Add(1)
	return e
}

// set stores e under k, evicting when the shard is full.
func (c *cache) set(k cacheKey, e *cacheEntry) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; !ok && len(s.m) >= c.perShard {
		s.evictOne(e.stored)
	}
	s.m[k] = e
}

// evictOne removes an expired entry among the first few visited, else the first
// one visited (map iteration order is random, so this is random eviction).
func (s *cacheShard) evictOne(now time.Time) {
	const scan = 8
	var victim cacheKey
	n := 0
	for k, e := range s.m {
		if !now.Before(e.expires) {
			victim = k
			break
		}
		if n == 0 {
			victim = k
		}
		if n++; n == scan {
			break
		}
	}
	delete(s.m, victim)
}

// len returns the number of stored entries (live or not yet evicted).
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// prepare clamps r's TTLs in place and returns how long it may be cached, or 0 when
// it must not be: SERVFAIL and other errors, truncated answers, and negative answers
// without an SOA (RFC 2308 §5).
func prepare(r *dns.Msg, cfg CacheConfig) time.Duration {
	if r.Truncated {
		return 0
	}
	negative := r.Rcode == dns.RcodeNameError || (r.Rcode == dns.RcodeSuccess && len(r.Answer) == 0)
	if !negative && r.Rcode != dns.RcodeSuccess {
		return 0
	}
	if negative {
		var soa *dns.SOA
		for _, rr := range r.Ns {
			if s, ok := rr.(*dns.SOA); ok {
				soa = s
				break
			}
		}
		if soa == nil {
			return 0
		}
		ttl := min(time.Duration(soa.Hdr.Ttl)*time.Second, time.Duration(soa.Minttl)*time.Second, cfg.NegativeTTL)
		clampAll(r, ttl, ttl)
		return ttl
	}
	lowest := time.Duration(-1)
	for _, sec := range [][]dns.RR{r.Answer, r.Ns, r.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			t := min(max(time.Duration(h.Ttl)*time.Second, cfg.MinTTL), cfg.MaxTTL)
			h.Ttl = uint32(t / time.Second)
			if lowest < 0 || t < lowest {
				lowest = t
			}
		}
	}
	return max(lowest, 0)
}

// clampAll caps every TTL in r to hi after raising it to lo.
func clampAll(r *dns.Msg, lo, hi time.Duration) {
	for _, sec := range [][]dns.RR{r.Answer, r.Ns, r.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			h.Ttl = uint32(min(max(time.Duration(h.Ttl)*time.Second, lo), hi) / time.Second)
		}
	}
}

// aged returns a copy of e's answer with each TTL reduced by the time spent in
// the cache.
func (e *cacheEntry) aged(now time.Time) *dns.Msg {
	m := e.msg.Copy()
	age := uint32(now.Sub(e.stored) / time.Second)
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			if h.Ttl > age {
				h.Ttl -= age
			} else {
				h.Ttl = 0
			}
		}
	}
	return m
}
