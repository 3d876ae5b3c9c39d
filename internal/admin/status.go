package admin

import (
	"cmp"
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"
)

const (
	ringSeconds  = 600      // per-second counters kept: 10 minutes
	stepSeconds  = 5        // resolution of the reported series
	latBuckets   = 44       // latency buckets: <100µs, then ×√2 up to ~5 min
	latBase      = 100e-6   // seconds: upper bound of bucket 0
	slotSeconds  = 600      // top-K windows are kept in 10-minute slots…
	slots        = 6        // …six of them: the last hour
	maxTopKeys   = 2048     // distinct keys per slot before pruning
	keepTopKeys  = 1024     // distinct keys kept by a prune
	maxKeyLength = 253      // a DNS name's longest text form
	topN         = 10       // entries reported per top list
	rateWindow   = 10       // seconds averaged for the current rate
	unknownCat   = "(none)" // category of a block without one

	connectPortsRule = "connect_ports"      // the forward door's rule name for a CONNECT to a port not allowed
	portCat          = "(port not allowed)" // its category on the status page
)

// Status keeps the live counters behind the status page in bounded memory: a ring of
// per-second request, block, error and latency counters over the last 10 minutes, and
// top blocked domains, blocked categories, DNS answers, clients and users over the
// last hour (per 10-minute slot, each capped at 2048 keys and pruned to its top 1024
// when full, so counts of rare keys are lower bounds and memory stays bounded however
// many distinct clients there are). Safe for concurrent use.
type Status struct {
	now func() time.Time

	mu         sync.Mutex
	ring       [ringSeconds]second
	domains    window[string]
	categories window[string]
	answers    window[string]
	clients    window[netip.Addr] // HTTP requests (forward and reverse) by client address
	users      window[string]     // HTTP requests by signed-in user
}

type second struct {
	sec                       int64
	requests, blocked, errors uint32
	lat                       [latBuckets]uint32
}

var _ Logger = (*Status)(nil)

// NewStatus returns empty counters; now is the clock (time.Now when nil).
func NewStatus(now func() time.Time) *Status {
	if now == nil {
		now = time.Now
	}
	return &Status{now: now}
}

// Log implements Logger. Entries count in the second they are logged (when they
// finished), not when they arrived.
func (s *Status) Log(e *Entry) {
	t := s.now()
	sec := t.Unix()
	blocked := e.Action == "block"
	tunnel := e.Method == "CONNECT" && !blocked
	// A CONNECT refused for its port (forward.connect_ports) is no blocked domain:
	// it counts as a block, under its own category.
	portRefusal := blocked && e.Rule == connectPortsRule
	var domain, category string
	if blocked {
		domain = hostOf(e.URL)
		category = cmp.Or(e.Category, unknownCat)
		if portRefusal {
			category = portCat
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := &s.ring[sec%ringSeconds]
	if b.sec != sec {
		*b = second{sec: sec}
	}
	b.requests++
	if e.Error != "" {
		b.errors++
	}
	if !tunnel {
		b.lat[latBucket(e.Duration)]++
	}
	if blocked {
		b.blocked++
		if !portRefusal {
			s.domains.add(sec, domain)
		}
		s.categories.add(sec, category)
	}
	if e.Door == "dns" {
		s.answers.add(sec, dnsAnswer(e))
	} else {
		if e.Client.IsValid() {
			s.clients.add(sec, e.Client.Unmap())
		}
		if e.User != "" {
			s.users.add(sec, e.User)
		}
	}
}

func latBucket(d time.Duration) int {
	x := d.Seconds() / latBase
	if x < 1 {
		return 0
	}
	return min(int(2*math.Log2(x))+1, latBuckets-1)
}

// latValue is a bucket's representative latency in milliseconds (its geometric middle).
func latValue(i int) float64 {
	if i == 0 {
		return latBase / 2 * 1e3
	}
	return latBase * math.Pow(2, (float64(i)-0.5)/2) * 1e3
}

// Count is one key of a top list.
type Count struct {
	Name  string `json:"name"`
	Count uint64 `json:"count"`
}

// StatusReport is the traffic part of /status.json.
type StatusReport struct {
	Now         time.Time `json:"now"`
	StepSeconds int       `json:"step_seconds"` // each series point covers this many seconds
	// Series over the last 10 minutes, oldest first, ending at the last whole second.
	RequestsPerSecond []float64 `json:"requests_per_second"`
	BlockedPerSecond  []float64 `json:"blocked_per_second"`
	P50Ms             []float64 `json:"p50_ms"` // 0 where there were no requests
	P99Ms             []float64 `json:"p99_ms"`
	// Rate is requests per second over the last 10 whole seconds.
	Rate float64 `json:"rate"`
	// Totals and latency percentiles over the last 10 minutes.
	Requests uint64  `json:"requests"`
	Blocked  uint64  `json:"blocked"`
	Errors   uint64  `json:"errors"`
	P50      float64 `json:"p50_ms_10m"`
	P99      float64 `json:"p99_ms_10m"`
	// Top lists over the last hour, largest first.
	TopBlockedDomains    []Count `json:"top_blocked_domains"`
	TopBlockedCategories []Count `json:"top_blocked_categories"`
	DNSAnswers           []Count `json:"dns_answers"`
	// TopClients and TopUsers count HTTP requests (CONNECT tunnels included; DNS
	// queries not) by client address and by signed-in user.
	TopClients []Count `json:"top_clients"`
	TopUsers   []Count `json:"top_users"`
}

// Report summarises the counters as of now.
func (s *Status) Report() *StatusReport {
	t := s.now()
	last := t.Unix() - 1 // the current second is still filling
	first := last - ringSeconds + 1
	steps := ringSeconds / stepSeconds
	r := &StatusReport{
		Now:               t,
		StepSeconds:       stepSeconds,
		RequestsPerSecond: make([]float64, steps),
		BlockedPerSecond:  make([]float64, steps),
		P50Ms:             make([]float64, steps),
		P99Ms:             make([]float64, steps),
	}
	var total, step [latBuckets]uint64
	var rate uint64
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range steps {
		clear(step[:])
		var n, blocked uint64
		for sec := first + int64(i*stepSeconds); sec < first+int64((i+1)*stepSeconds); sec++ {
			b := &s.ring[sec%ringSeconds]
			if b.sec != sec {
				continue
			}
			n += uint64(b.requests)
			blocked += uint64(b.blocked)
			r.Errors += uint64(b.errors)
			if sec > last-rateWindow {
				rate += uint64(b.requests)
			}
			for j, c := range b.lat {
				step[j] += uint64(c)
				total[j] += uint64(c)
			}
		}
		r.Requests += n
		r.Blocked += blocked
		r.RequestsPerSecond[i] = float64(n) / stepSeconds
		r.BlockedPerSecond[i] = float64(blocked) / stepSeconds
		r.P50Ms[i] = quantile(&step, 0.5)
		r.P99Ms[i] = quantile(&step, 0.99)
	}
	r.Rate = float64(rate) / rateWindow
	r.P50 = quantile(&total, 0.5)
	r.P99 = quantile(&total, 0.99)
	r.TopBlockedDomains = s.domains.top(last+1, topN, same)
	r.TopBlockedCategories = s.categories.top(last+1, topN, same)
	r.DNSAnswers = s.answers.top(last+1, topN, same)
	r.TopClients = s.clients.top(last+1, topN, netip.Addr.String)
	r.TopUsers = s.users.top(last+1, topN, same)
	return r
}

// same is the name of a string key.
func same(s string) string { return s }

// quantile approximates the q-quantile in milliseconds from bucket counts.
func quantile(h *[latBuckets]uint64, q float64) float64 {
	var n uint64
	for _, c := range h {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	var seen uint64
	for i, c := range h {
		seen += c
		if seen >= rank {
			return math.Round(latValue(i)*100) / 100
		}
	}
	return latValue(latBuckets - 1)
}

// window counts keys over the last hour in 10-minute slots of bounded size.
type window[K comparable] struct {
	slots [slots]slot[K]
}

type slot[K comparable] struct {
	start  int64 // unix seconds / slotSeconds
	counts map[K]uint64
}

func (w *window[K]) add(sec int64, key K) {
	if s, ok := any(key).(string); ok && len(s) > maxKeyLength {
		key = any(s[:maxKeyLength]).(K)
	}
	idx := sec / slotSeconds
	sl := &w.slots[idx%slots]
	if sl.counts == nil {
		sl.counts = make(map[K]uint64)
	}
	if sl.start != idx {
		sl.start = idx
		clear(sl.counts)
	}
	if _, ok := sl.counts[key]; !ok && len(sl.counts) >= maxTopKeys {
		prune(sl.counts, keepTopKeys)
	}
	sl.counts[key]++
}

// prune keeps the keep largest counts of m.
func prune[K comparable](m map[K]uint64, keep int) {
	counts := make([]uint64, 0, len(m))
	for _, c := range m {
		counts = append(counts, c)
	}
	slices.Sort(counts)
	threshold := counts[len(counts)-keep]
	for k, c := range m {
		if c < threshold || (c == threshold && len(m) > keep) {
			delete(m, k)
		}
	}
}

// top merges the slots of the hour ending at sec and returns the n largest counts.
// name spells a key.
func (w *window[K]) top(sec int64, n int, name func(K) string) []Count {
	idx := sec / slotSeconds
	merged := make(map[K]uint64)
	for i := range w.slots {
		sl := &w.slots[i]
		if sl.counts == nil || sl.start <= idx-slots || sl.start > idx {
			continue
		}
		for k, c := range sl.counts {
			merged[k] += c
		}
	}
	out := make([]Count, 0, len(merged))
	for k, c := range merged {
		out = append(out, Count{Name: name(k), Count: c})
	}
	slices.SortFunc(out, func(a, b Count) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Name, b.Name))
	})
	return out[:min(n, len(out))]
}
