package admin

import (
	"cmp"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/internal/topk"
)

const (
	ringSeconds  = 600      // per-second counters kept: 10 minutes
	stepSeconds  = 5        // resolution of the reported series
	latBuckets   = 44       // latency buckets: <100µs, then ×√2 up to ~5 min
	latBase      = 100e-6   // seconds: upper bound of bucket 0
	slotSeconds  = 600      // the hour's top lists are kept in 10-minute slots…
	slots        = 6        // …six of them: the last hour
	maxTopKeys   = 1024     // counters of a 10-minute slot's sketch
	daySlotSecs  = 3600     // the day's top lists are kept in hourly slots…
	daySlots     = 24       // …24 of them
	maxDayKeys   = 512      // counters of an hourly slot's sketch
	maxKeyLength = 253      // a DNS name's longest text form
	topN         = 10       // entries reported per top list
	rateWindow   = 10       // seconds averaged for the current rate
	unknownCat   = "(none)" // category of a block without one

	connectPortsRule = "connect_ports"      // the forward door's rule name for a CONNECT to a port not allowed
	portCat          = "(port not allowed)" // its category on the status page
)

// Status keeps the live counters behind the status page in bounded memory: a ring of
// per-second request, block, error and latency counters over the last 10 minutes, and
// top lists (blocked domains, blocked categories, DNS answers, clients, users, blocked
// domains per user) over the last hour and, for clients, users and blocks per user,
// the last day. Each top list is a space-saving sketch (internal/topk) per time slot
// — 1024 counters per 10-minute slot for the hour, 512 per hourly slot for the day —
// merged when reported: memory stays bounded however many distinct keys there are,
// keys that make up more than 1/1024 (1/512) of a slot's traffic are never lost, and
// counts are exact while a slot saw fewer distinct keys than its counters (beyond
// that, a count may overstate by the slot's smallest count). It also counts every
// entry since start by door, protocol and TLS, in a fixed array (doorCounts). Safe
// for concurrent use.
type Status struct {
	now   func() time.Time
	given bool // now was given to NewStatus (a test's clock): entries count at its readings

	mu         sync.Mutex
	ring       [ringSeconds]second
	domains    *window[string]
	categories *window[string]
	answers    *window[string]
	clients    *window[netip.Addr] // HTTP requests (forward and reverse) by client address
	users      *window[string]     // HTTP requests by signed-in user
	userBlocks *window[userDomain] // blocked HTTP requests by signed-in user and domain
	clientsDay *window[netip.Addr]
	usersDay   *window[string]
	blocksDay  *window[userDomain]
	doors      doorCounts // since start, by door, protocol and TLS
}

// userDomain is a blocked domain and the user who asked for it.
type userDomain struct{ user, domain string }

type second struct {
	sec                       int64
	requests, blocked, errors uint32
	lat                       [latBuckets]uint32
}

var _ accesslog.Logger = (*Status)(nil)

// NewStatus returns empty counters; now is the clock (time.Now when nil).
// Without one, an entry counts at the time it carries (Time + Duration, when
// it finished: the door read the clock for it already); with one (tests),
// at now's reading when it is logged.
func NewStatus(now func() time.Time) *Status {
	given := now != nil
	if !given {
		now = time.Now
	}
	return &Status{
		now:        now,
		given:      given,
		domains:    newWindow[string](slotSeconds, slots, maxTopKeys),
		categories: newWindow[string](slotSeconds, slots, maxTopKeys),
		answers:    newWindow[string](slotSeconds, slots, maxTopKeys),
		clients:    newWindow[netip.Addr](slotSeconds, slots, maxTopKeys),
		users:      newWindow[string](slotSeconds, slots, maxTopKeys),
		userBlocks: newWindow[userDomain](slotSeconds, slots, maxTopKeys),
		clientsDay: newWindow[netip.Addr](daySlotSecs, daySlots, maxDayKeys),
		usersDay:   newWindow[string](daySlotSecs, daySlots, maxDayKeys),
		blocksDay:  newWindow[userDomain](daySlotSecs, daySlots, maxDayKeys),
	}
}

// WantsDetail implements accesslog.DetailLogger: the status counters
// read none of an entry's details.
func (s *Status) WantsDetail() bool { return false }

// Log implements accesslog.Logger. Entries count in the second they finished (when they
// are logged), not when they arrived.
func (s *Status) Log(e *accesslog.Entry) {
	var t time.Time
	if s.given || e.Time.IsZero() {
		t = s.now()
	} else {
		t = e.Time.Add(e.Duration)
	}
	sec := t.Unix()
	blocked := e.Action == "block"
	tunnel := e.Method == "CONNECT" && !blocked
	// A CONNECT refused for its port (forward.connect_ports) is no blocked domain:
	// it counts as a block, under its own category.
	portRefusal := blocked && e.Rule == connectPortsRule
	var domain, category string
	if blocked {
		domain = accesslog.HostOf(e.URL)
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
	s.doors.add(e)
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
			s.clientsDay.add(sec, e.Client.Unmap())
		}
		if e.User != "" {
			user := truncate(e.User)
			s.users.add(sec, user)
			s.usersDay.add(sec, user)
			if blocked && !portRefusal {
				k := userDomain{user, truncate(domain)}
				s.userBlocks.add(sec, k)
				s.blocksDay.add(sec, k)
			}
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
	// TopBlockedByUser counts blocked HTTP requests by signed-in user and domain.
	TopBlockedByUser []UserCount `json:"top_blocked_by_user"`
	// The same three lists over the last 24 hours (hourly slots: the oldest hour
	// may be partly gone).
	TopClientsDay       []Count     `json:"top_clients_day"`
	TopUsersDay         []Count     `json:"top_users_day"`
	TopBlockedByUserDay []UserCount `json:"top_blocked_by_user_day"`
	// Doors counts entries since start by door, protocol and TLS, in a fixed
	// order (forward, socks, reverse, dns); only those that saw traffic.
	Doors []DoorCount `json:"doors"`
}

// UserCount is one user and domain of a top list.
type UserCount struct {
	User   string `json:"user"`
	Domain string `json:"domain"`
	Count  uint64 `json:"count"`
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
	r.TopBlockedByUser = userCounts(s.userBlocks.top(last+1, topN, pairName))
	r.TopClientsDay = s.clientsDay.top(last+1, topN, netip.Addr.String)
	r.TopUsersDay = s.usersDay.top(last+1, topN, same)
	r.TopBlockedByUserDay = userCounts(s.blocksDay.top(last+1, topN, pairName))
	r.Doors = s.doors.report()
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

// pairName spells a user and domain as "user\x00domain" (split by userCounts).
func pairName(k userDomain) string { return k.user + "\x00" + k.domain }

func userCounts(cs []Count) []UserCount {
	out := make([]UserCount, len(cs))
	for i, c := range cs {
		user, domain, _ := strings.Cut(c.Name, "\x00")
		out[i] = UserCount{User: user, Domain: domain, Count: c.Count}
	}
	return out
}

// truncate cuts a key to maxKeyLength bytes.
func truncate(s string) string { return s[:min(len(s), maxKeyLength)] }

// window counts keys over the last n slots of slotSecs seconds, one space-saving
// sketch per slot.
type window[K comparable] struct {
	slotSecs int64
	slots    []slot[K]
}

type slot[K comparable] struct {
	start  int64 // unix seconds / slotSecs
	counts *topk.Sketch[K, struct{}]
}

func newWindow[K comparable](slotSecs int64, n, capacity int) *window[K] {
	w := &window[K]{slotSecs: slotSecs, slots: make([]slot[K], n)}
	for i := range w.slots {
		w.slots[i].counts = topk.New[K, struct{}](capacity)
	}
	return w
}

func (w *window[K]) add(sec int64, key K) {
	if s, ok := any(key).(string); ok && len(s) > maxKeyLength {
		key = any(s[:maxKeyLength]).(K)
	}
	idx := sec / w.slotSecs
	sl := &w.slots[idx%int64(len(w.slots))]
	if sl.start != idx {
		sl.start = idx
		sl.counts.Reset()
	}
	sl.counts.Add(key, 1)
}

// top merges the slots of the window ending at sec and returns the n largest counts.
// name spells a key. The merge holds at most slots×capacity keys, briefly.
func (w *window[K]) top(sec int64, n int, name func(K) string) []Count {
	idx := sec / w.slotSecs
	merged := make(map[K]uint64)
	for i := range w.slots {
		sl := &w.slots[i]
		if sl.start <= idx-int64(len(w.slots)) || sl.start > idx {
			continue
		}
		sl.counts.Each(func(c *topk.Counter[K, struct{}]) { merged[c.Key] += c.Count })
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
