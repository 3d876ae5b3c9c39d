package pool

import (
	"math"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
)

// Selector chooses an available member of a pool for a key (the client address
// for ip_hash, the header or cookie value for hash; others ignore it). It returns
// nil when no member is available. Selection is apart from health: a Selector
// only asks Member.Available. It takes a key, not an *http.Request, so the DNS
// GSLB responder shares it.
type Selector interface {
	Select(p *Pool, key string) *Member
}

// Keyer is implemented by the selection policies that hash (ip_hash, hash):
// each computes from a request, and the address of the client that sent it,
// the key it hashes. A door passes that key to the pool's transport
// (Info.Key); Pool.Key asks the pool's current policy.
type Keyer interface {
	Key(r *http.Request, client netip.Addr) string
}

// Interface guards.
var (
	_ Keyer    = (*Hash)(nil)
	_ Selector = (*RoundRobin)(nil)
	_ Selector = (*WeightedRoundRobin)(nil)
	_ Selector = (*LeastConn)(nil)
	_ Selector = (*P2C)(nil)
	_ Selector = (*Hash)(nil)
	_ Selector = (*First)(nil)
)

// newSelector returns the Selector for a policy name ("" = round_robin);
// hashKey is the pool's hash_key ("header:NAME" or "cookie:NAME"), read by
// policy hash.
func newSelector(policy, hashKey string) (Selector, bool) {
	switch policy {
	case "", PolicyRoundRobin:
		return &RoundRobin{}, true
	case PolicyWeightedRoundRobin:
		return &WeightedRoundRobin{}, true
	case PolicyLeastConn:
		return &LeastConn{}, true
	case PolicyP2C:
		return &P2C{}, true
	case PolicyIPHash:
		return &Hash{key: clientKey}, true
	case PolicyHash:
		return &Hash{key: fieldKey(hashKey)}, true
	case PolicyFirst:
		return &First{}, true
	}
	return nil, false
}

// RoundRobin takes available members in turn.
type RoundRobin struct{ next atomic.Uint64 }

// Select implements Selector.
func (s *RoundRobin) Select(p *Pool, _ string) *Member {
	ms := p.Members()
	n := uint64(len(ms))
	if n == 0 {
		return nil
	}
	start := s.next.Add(1) - 1
	for i := range n {
		if m := ms[(start+i)%n]; m.Available() {
			return m
		}
	}
	return nil
}

// WeightedRoundRobin is nginx's smooth weighted round robin (SmoothWRR) over
// the available members: over any window of sum(weights) picks each available
// member is chosen weight times, interleaved.
type WeightedRoundRobin struct {
	wrr SmoothWRR[*memberState] // keyed by the state shared across reloads
}

// Select implements Selector.
func (s *WeightedRoundRobin) Select(p *Pool, _ string) *Member {
	ms := p.Members()
	i := s.wrr.Pick(len(ms), func(i int) *memberState { return ms[i].st }, func(i int) int {
		if !ms[i].Available() {
			return 0
		}
		return ms[i].Weight
	})
	if i < 0 {
		return nil
	}
	return ms[i]
}

// SmoothWRR is nginx's smooth weighted round robin: over any window of
// sum(weights) picks among the same candidates each is chosen weight times,
// interleaved rather than in runs. Its state is one counter per candidate
// key; the zero value is ready to use and safe for concurrent use. Pools use
// it for weighted_round_robin, the DNS door for weighted GSLB sites.
type SmoothWRR[K comparable] struct {
	mu      sync.Mutex
	current map[K]int
}

// Pick chooses among n candidates, candidate i known by key(i) and of
// weight(i) (0 or less: not a candidate now), and returns its index, or -1
// when there is none.
func (s *SmoothWRR[K]) Pick(n int, key func(i int) K, weight func(i int) int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == nil {
		s.current = make(map[K]int, n)
	}
	best, bestCur, total := -1, 0, 0
	for i := range n {
		w := weight(i)
		if w <= 0 {
			continue
		}
		total += w
		k := key(i)
		c := s.current[k] + w
		s.current[k] = c
		if best < 0 || c > bestCur {
			best, bestCur = i, c
		}
	}
	if best >= 0 {
		s.current[key(best)] -= total
	}
	return best
}

// LeastConn picks the available member with the fewest requests in flight
// relative to its weight; ties go to members in turn.
type LeastConn struct{ next atomic.Uint64 }

// Select implements Selector.
func (s *LeastConn) Select(p *Pool, _ string) *Member {
	ms := p.Members()
	n := uint64(len(ms))
	if n == 0 {
		return nil
	}
	start := s.next.Add(1) - 1
	var best *Member
	for i := range n {
		m := ms[(start+i)%n]
		if m.Available() && (best == nil || lessLoaded(m, best)) {
			best = m
		}
	}
	return best
}

// lessLoaded reports whether a carries less load per weight than b.
func lessLoaded(a, b *Member) bool {
	return a.InFlight()*int64(b.Weight) < b.InFlight()*int64(a.Weight)
}

// P2C ("power of two choices") picks two available members at random and
// keeps the less loaded one.
type P2C struct{}

// Select implements Selector.
func (P2C) Select(p *Pool, _ string) *Member {
	ms := p.Members()
	var avail [2]*Member
	seen := 0
	// Reservoir-sample two distinct available members without allocating.
	for _, m := range ms {
		if !m.Available() {
			continue
		}
		seen++
		switch {
		case seen <= 2:
			avail[seen-1] = m
		default:
			if j := rand.IntN(seen); j < 2 {
				avail[j] = m
			}
		}
	}
	switch {
	case seen == 0:
		return nil
	case seen == 1:
		return avail[0]
	}
	switch {
	case lessLoaded(avail[1], avail[0]):
		return avail[1]
	case lessLoaded(avail[0], avail[1]):
		return avail[0]
	}
	return avail[rand.IntN(2)] // a tie: either, so that sampling order does not bias

}

// Hash is weighted rendezvous (highest random weight) hashing of the key over
// the available members: a key keeps its member while that member is available,
// and when a member leaves only the keys it held (about 1/N) move. The hash is
// deterministic, so the mapping survives reloads and restarts and is the same in
// every process. An empty key falls back to round robin.
type Hash struct {
	rr  RoundRobin
	key func(r *http.Request, client netip.Addr) string // nil: keys come from the caller only
}

// Key implements Keyer: the client's address for ip_hash, the hash_key
// header's or cookie's value for hash ("" when absent).
func (s *Hash) Key(r *http.Request, client netip.Addr) string {
	if s.key == nil {
		return ""
	}
	return s.key(r, client)
}

// clientKey is ip_hash's key: the client's address.
func clientKey(_ *http.Request, client netip.Addr) string { return client.String() }

// fieldKey returns the key function of a hash_key: the named header's first
// value, or the named cookie's value.
func fieldKey(hashKey string) func(*http.Request, netip.Addr) string {
	kind, name, _ := strings.Cut(hashKey, ":")
	if kind == "cookie" {
		return func(r *http.Request, _ netip.Addr) string {
			if c, err := r.Cookie(name); err == nil {
				return c.Value
			}
			return ""
		}
	}
	name = http.CanonicalHeaderKey(name)
	return func(r *http.Request, _ netip.Addr) string { return r.Header.Get(name) }
}

// Select implements Selector.
func (s *Hash) Select(p *Pool, key string) *Member {
	if key == "" {
		return s.rr.Select(p, key)
	}
	var best *Member
	bestScore := math.Inf(-1)
	for _, m := range p.Members() {
		if !m.Available() {
			continue
		}
		// Weighted HRW: score = -w / ln(u), u uniform in (0,1).
		u := (float64(hrw(m.name, key)>>11) + 0.5) / (1 << 53)
		score := -float64(m.Weight) / math.Log(u)
		if score > bestScore {
			best, bestScore = m, score
		}
	}
	return best
}

// First picks the first available member in configuration order: ordered failover.
type First struct{}

// Select implements Selector.
func (First) Select(p *Pool, _ string) *Member {
	for _, m := range p.Members() {
		if m.Available() {
			return m
		}
	}
	return nil
}

// hrw hashes member and key together: FNV-1a over both, then the splitmix64
// finaliser so that nearby inputs spread over the whole range.
func hrw(member, key string) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	for i := 0; i < len(member); i++ {
		h = (h ^ uint64(member[i])) * prime
	}
	h = (h ^ 0xff) * prime
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * prime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
