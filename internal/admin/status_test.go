package admin

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/internal/topk"
)

// fakeClock is a settable clock for Status.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestStatus() (*Status, *fakeClock) {
	c := &fakeClock{t: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
	return NewStatus(c.now), c
}

func TestStatusRateAndTotals(t *testing.T) {
	s, c := newTestStatus()
	for i := range 20 {
		for range i % 4 { // 0,1,2,3,0,1,… requests per second: 30 in 20 s
			s.Log(entry("forward", "GET", "http://a.example/", "allow", 200, nil))
		}
		if i%5 == 0 {
			s.Log(entry("forward", "GET", "http://bad.example/", "block", 403, func(e *accesslog.Entry) { e.Category = "games" }))
		}
		c.advance(time.Second)
	}
	s.Log(entry("forward", "GET", "http://a.example/", "allow", 200, nil)) // current second: not yet counted
	r := s.Report()
	if r.Requests != 34 || r.Blocked != 4 {
		t.Errorf("requests %d blocked %d, want 34 and 4", r.Requests, r.Blocked)
	}
	// last 10 whole seconds: i = 10…19 → 2+3+0+1+2+3+0+1+2+3 allowed, 2 blocked
	if r.Rate != 1.9 {
		t.Errorf("rate %v, want 1.9", r.Rate)
	}
	if len(r.RequestsPerSecond) != 120 || r.StepSeconds != 5 {
		t.Fatalf("series length %d step %d", len(r.RequestsPerSecond), r.StepSeconds)
	}
	var sum float64
	for _, v := range r.RequestsPerSecond {
		sum += v * 5
	}
	if sum != 34 {
		t.Errorf("series sums to %v requests, want 34", sum)
	}
	if last := r.RequestsPerSecond[119]; last != (3+0+1+2+3+1)/5.0 { // i = 15…19

		t.Errorf("last step %v", last)
	}

	c.advance(9*time.Minute + 50*time.Second) // now 09:10:10: the window starts at 09:00:10
	if r := s.Report(); r.Requests != 20 || r.Rate != 0 {
		t.Errorf("at 09:10:10: requests %d rate %v, want 20 (seconds 10…20) and 0", r.Requests, r.Rate)
	}
	c.advance(time.Minute)
	if r := s.Report(); r.Requests != 0 {
		t.Errorf("old seconds still counted: %d", r.Requests)
	}
}

func TestStatusLatencyPercentiles(t *testing.T) {
	s, c := newTestStatus()
	for i := range 1000 {
		d := 10 * time.Millisecond
		if i%100 == 0 {
			d = 800 * time.Millisecond // 1%: the slow tail
		}
		s.Log(entry("reverse", "GET", "http://a/", "allow", 200, func(e *accesslog.Entry) { e.Duration = d }))
	}
	// a 10-minute tunnel must not count as latency
	s.Log(entry("forward", "CONNECT", "a:443", "tunnel", 200, func(e *accesslog.Entry) { e.Duration = 10 * time.Minute }))
	c.advance(time.Second)
	r := s.Report()
	within := func(got, want float64) bool { return got > want/1.2 && got < want*1.2 }
	if !within(r.P50, 10) {
		t.Errorf("p50 %v ms, want ≈10", r.P50)
	}
	if !within(r.P99, 10) {
		t.Errorf("p99 %v ms, want ≈10 (exactly 1%% are slow)", r.P99)
	}
	if !within(r.P99Ms[119], 10) || !within(r.P50Ms[119], 10) {
		t.Errorf("last step p50 %v p99 %v", r.P50Ms[119], r.P99Ms[119])
	}
	for range 20 {
		s.Log(entry("reverse", "GET", "http://a/", "allow", 200, func(e *accesslog.Entry) { e.Duration = 800 * time.Millisecond }))
	}
	c.advance(time.Second)
	if r := s.Report(); !within(r.P99, 800) {
		t.Errorf("p99 with 3%% slow: %v ms, want ≈800", r.P99)
	}
}

func TestStatusTopLists(t *testing.T) {
	s, c := newTestStatus()
	block := func(url, cat string) {
		s.Log(entry("forward", "GET", url, "block", 403, func(e *accesslog.Entry) { e.Category = cat }))
	}
	for range 5 {
		block("http://games.example/x", "games")
	}
	for range 3 {
		block("https://user:pw@social.example:8443/", "social")
	}
	block("http://chat.example/", "")
	s.Log(entry("dns", "A", "games.example.", "block", 5, func(e *accesslog.Entry) { e.Category = "games"; e.Answer = "blocked" }))
	s.Log(entry("dns", "A", "example.org.", "allow", 0, func(e *accesslog.Entry) { e.Answer = "A" }))
	s.Log(entry("dns", "A", "example.org.", "allow", 0, func(e *accesslog.Entry) { e.Answer = "A" }))
	s.Log(entry("forward", "GET", "http://fine.example/", "allow", 200, nil))
	c.advance(25 * time.Minute) // a later slot
	block("http://chat.example/", "chat")
	c.advance(time.Second)

	r := s.Report()
	wantDomains := []Count{{"games.example", 6}, {"social.example", 3}, {"chat.example", 2}}
	wantCats := []Count{{"games", 6}, {"social", 3}, {"(none)", 1}, {"chat", 1}}
	wantDNS := []Count{{"A", 2}, {"blocked", 1}}
	if fmt.Sprint(r.TopBlockedDomains) != fmt.Sprint(wantDomains) {
		t.Errorf("domains %v, want %v", r.TopBlockedDomains, wantDomains)
	}
	if fmt.Sprint(r.TopBlockedCategories) != fmt.Sprint(wantCats) {
		t.Errorf("categories %v, want %v", r.TopBlockedCategories, wantCats)
	}
	if fmt.Sprint(r.DNSAnswers) != fmt.Sprint(wantDNS) {
		t.Errorf("dns %v, want %v", r.DNSAnswers, wantDNS)
	}

	c.advance(50 * time.Minute) // the first slot is now over an hour old
	r = s.Report()
	if fmt.Sprint(r.TopBlockedDomains) != fmt.Sprint([]Count{{"chat.example", 1}}) {
		t.Errorf("after an hour: %v", r.TopBlockedDomains)
	}
	c.advance(time.Hour)
	if r := s.Report(); len(r.TopBlockedDomains) != 0 || len(r.DNSAnswers) != 0 {
		t.Errorf("after two hours: %v %v", r.TopBlockedDomains, r.DNSAnswers)
	}
}

func TestStatusTopListMemoryIsBounded(t *testing.T) {
	s, c := newTestStatus()
	for i := range 20000 {
		s.Log(entry("forward", "GET", fmt.Sprintf("http://host%d.example/", i), "block", 403, nil))
		if i%10 == 0 {
			s.Log(entry("forward", "GET", "http://heavy.example/", "block", 403, nil))
		}
	}
	c.advance(time.Second)
	for _, sl := range s.domains.slots {
		if sl.counts.Len() > maxTopKeys {
			t.Fatalf("slot holds %d keys, cap %d", sl.counts.Len(), maxTopKeys)
		}
	}
	r := s.Report()
	if r.TopBlockedDomains[0].Name != "heavy.example" || r.TopBlockedDomains[0].Count < 1000 {
		t.Errorf("heavy hitter lost: %v", r.TopBlockedDomains[:3])
	}
	long := make([]byte, 5000)
	for i := range long {
		long[i] = 'a'
	}
	s.Log(entry("forward", "GET", "http://"+string(long)+"/", "block", 403, nil))
	for _, sl := range s.domains.slots {
		sl.counts.Each(func(c *topk.Counter[string, struct{}]) {
			if len(c.Key) > maxKeyLength {
				t.Fatalf("key of %d bytes kept", len(c.Key))
			}
		})
	}
}

// TestStatusConnectPortsIsNoBlockedDomain: a CONNECT refused for its port
// (forward.connect_ports, e.g. ssh to port 22) used to appear among the top blocked
// domains; it counts as a block under "(port not allowed)", not as a domain.
func TestStatusConnectPortsIsNoBlockedDomain(t *testing.T) {
	s, c := newTestStatus()
	for range 3 {
		s.Log(entry("forward", "CONNECT", "github.com:22", "block", 403, func(e *accesslog.Entry) { e.Rule = "connect_ports" }))
	}
	s.Log(entry("forward", "GET", "http://games.example/", "block", 403, func(e *accesslog.Entry) { e.Rule = "games"; e.Category = "games" }))
	c.advance(time.Second)
	r := s.Report()
	if r.Blocked != 4 {
		t.Errorf("blocked %d, want 4", r.Blocked)
	}
	if want := []Count{{"games.example", 1}}; fmt.Sprint(r.TopBlockedDomains) != fmt.Sprint(want) {
		t.Errorf("blocked domains %v, want %v", r.TopBlockedDomains, want)
	}
	if want := []Count{{"(port not allowed)", 3}, {"games", 1}}; fmt.Sprint(r.TopBlockedCategories) != fmt.Sprint(want) {
		t.Errorf("categories %v, want %v", r.TopBlockedCategories, want)
	}
}

// TestStatusTopClientsAndUsers: HTTP requests by client address and signed-in user
// over the last hour (DNS queries are not counted), in bounded memory.
func TestStatusTopClientsAndUsers(t *testing.T) {
	s, c := newTestStatus()
	from := func(client, user string, n int) {
		for range n {
			s.Log(entry("forward", "GET", "http://a.example/", "allow", 200, func(e *accesslog.Entry) {
				e.Client, e.User = netip.MustParseAddr(client), user
			}))
		}
	}
	from("10.0.0.5", "alice", 5)
	from("::ffff:10.0.0.6", "bob", 2) // an IPv4 client on a dual-stack listener
	from("10.0.0.6", "", 1)
	from("2001:db8::1", "", 3)
	s.Log(entry("dns", "A", "a.example.", "allow", 0, func(e *accesslog.Entry) { e.Client = netip.MustParseAddr("10.0.0.9") }))
	c.advance(30 * time.Minute)
	from("10.0.0.5", "alice", 1)
	c.advance(time.Second)
	r := s.Report()
	if want := []Count{{"10.0.0.5", 6}, {"10.0.0.6", 3}, {"2001:db8::1", 3}}; fmt.Sprint(r.TopClients) != fmt.Sprint(want) {
		t.Errorf("top clients %v, want %v", r.TopClients, want)
	}
	if want := []Count{{"alice", 6}, {"bob", 2}}; fmt.Sprint(r.TopUsers) != fmt.Sprint(want) {
		t.Errorf("top users %v, want %v", r.TopUsers, want)
	}
	c.advance(40 * time.Minute) // the first slot is over an hour old
	if r := s.Report(); fmt.Sprint(r.TopClients) != fmt.Sprint([]Count{{"10.0.0.5", 1}}) {
		t.Errorf("after an hour: %v", r.TopClients)
	}

	// 50 000 distinct clients, one of them heavy: memory stays bounded, the heavy
	// hitter stays on top.
	for i := range 50000 {
		s.Log(entry("forward", "GET", "http://a.example/", "allow", 200, func(e *accesslog.Entry) {
			e.Client = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			if i%10 == 0 {
				e.Client = netip.MustParseAddr("192.0.2.1")
			}
		}))
	}
	for _, sl := range s.clients.slots {
		if sl.counts.Len() > maxTopKeys {
			t.Fatalf("slot holds %d clients, cap %d", sl.counts.Len(), maxTopKeys)
		}
	}
	c.advance(time.Second)
	if top := s.Report().TopClients; top[0].Name != "192.0.2.1" || top[0].Count < 4000 {
		t.Errorf("heavy client lost: %v", top[:3])
	}
}

// TestStatusTopForHourAndDay: top users, clients and blocked domains per user over
// the last hour and the last day. 100,000 distinct users spread over the day keep
// every sketch within its counters, and the heavy hitters stay on top of both views.
func TestStatusTopForHourAndDay(t *testing.T) {
	s, c := newTestStatus()
	req := func(client, user, url, action string) {
		s.Log(entry("forward", "GET", url, action, 200, func(e *accesslog.Entry) {
			e.Client, e.User = netip.MustParseAddr(client), user
		}))
	}
	// Yesterday evening (more than an hour ago, less than a day): carol's games.
	for range 4 {
		req("10.0.0.7", "carol", "http://games.example/", "block")
	}
	req("10.0.0.7", "carol", "http://fine.example/", "allow")
	c.advance(5 * time.Hour)
	// The last hour: alice twice blocked on social, once on games; bob allowed.
	req("10.0.0.5", "alice", "http://social.example/", "block")
	req("10.0.0.5", "alice", "https://social.example/x", "block")
	req("10.0.0.5", "alice", "http://games.example/", "block")
	req("10.0.0.6", "bob", "http://fine.example/", "allow")
	c.advance(time.Second)
	r := s.Report()
	check := func(name string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
	check("hour users", r.TopUsers, []Count{{"alice", 3}, {"bob", 1}})
	check("day users", r.TopUsersDay, []Count{{"carol", 5}, {"alice", 3}, {"bob", 1}})
	check("hour clients", r.TopClients, []Count{{"10.0.0.5", 3}, {"10.0.0.6", 1}})
	check("day clients", r.TopClientsDay, []Count{{"10.0.0.7", 5}, {"10.0.0.5", 3}, {"10.0.0.6", 1}})
	check("hour blocks by user", r.TopBlockedByUser, []UserCount{{"alice", "social.example", 2}, {"alice", "games.example", 1}})
	check("day blocks by user", r.TopBlockedByUserDay, []UserCount{{"carol", "games.example", 4}, {"alice", "social.example", 2}, {"alice", "games.example", 1}})

	c.advance(20 * time.Hour) // carol's hour is now over a day old
	r = s.Report()
	check("users a day later", r.TopUsersDay, []Count{{"alice", 3}, {"bob", 1}})
	check("hour users a day later", r.TopUsers, []Count{})

	// 100,000 distinct users over 12 hours, with two heavy users among them.
	for i := range 100000 { // the last 10,000 in the last hour
		user, url, action := fmt.Sprintf("pupil%06d", i), "http://a.example/", "allow"
		switch i % 20 {
		case 0:
			user = "heavy"
		case 1, 2:
			user, url, action = "blocky", "http://blocked.example/", "block"
		}
		req(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String(), user, url, action)
		if i%10000 == 9999 && i < 99999 {
			c.advance(time.Hour)
		}
	}
	for _, w := range []*window[string]{s.users, s.usersDay} {
		for _, sl := range w.slots {
			if n, limit := sl.counts.Len(), sl.counts.Cap(); n > limit || limit > maxTopKeys {
				t.Fatalf("slot holds %d users, cap %d", n, limit)
			}
		}
	}
	for _, w := range []*window[netip.Addr]{s.clients, s.clientsDay} {
		for _, sl := range w.slots {
			if n := sl.counts.Len(); n > maxTopKeys {
				t.Fatalf("slot holds %d clients", n)
			}
		}
	}
	c.advance(time.Second)
	r = s.Report()
	if r.TopUsersDay[0].Name != "blocky" || r.TopUsersDay[1].Name != "heavy" || r.TopUsersDay[1].Count < 5000 {
		t.Errorf("day: heavy users lost: %v", r.TopUsersDay[:3])
	}
	if r.TopUsers[0].Name != "blocky" || r.TopUsers[1].Name != "heavy" {
		t.Errorf("hour: heavy users lost: %v", r.TopUsers[:3])
	}
	if b := r.TopBlockedByUserDay; len(b) != 1 || b[0] != (UserCount{"blocky", "blocked.example", 10000}) {
		t.Errorf("day blocks by user: %v", b)
	}
}

// TestStatusCountsAtEntryTime: without a clock of its own, Status counts an
// entry in the second it finished by its own Time and Duration (the door read
// the clock for it), not by reading the clock again.
func TestStatusCountsAtEntryTime(t *testing.T) {
	s := NewStatus(nil)
	e := entry("reverse", "GET", "http://a.example/", "allow", 200, nil)
	e.Time = time.Now().Add(-20 * time.Minute)  // arrived before the 10-minute window…
	e.Duration = 20*time.Minute - 3*time.Second // …finished 3 s ago: inside it, not in the current second
	s.Log(e)
	if r := s.Report(); r.Requests != 1 {
		t.Errorf("requests %d over the last 10 minutes, want the entry that finished 3 s ago", r.Requests)
	}
}
