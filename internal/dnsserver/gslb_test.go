package dnsserver

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// fakeHealth is a Health whose pools are switched by the test.
type fakeHealth struct {
	mu   sync.Mutex
	down map[string]bool
}

func (h *fakeHealth) Healthy(pool string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.down[pool]
}

func (h *fakeHealth) set(pool string, healthy bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down == nil {
		h.down = map[string]bool{}
	}
	h.down[pool] = !healthy
}

func gslbConfig() *Config {
	return &Config{GSLB: GSLBConfig{
		Zone: "Example.Test",
		NS:   []string{"ns1.example.test.", "ns2.example.test."},
		Names: map[string]NameConfig{
			"www": {WhenAllDown: AllDownServfail, Sites: []SiteConfig{
				{Name: "eu", Pool: "pool-eu", Region: "eu", Addresses: []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("2001:db8:e::1")}},
				{Name: "us", Pool: "pool-us", Region: "us", Addresses: []netip.Addr{netip.MustParseAddr("203.0.113.1")}},
			}},
			"api": {Sites: []SiteConfig{
				{Name: "api-a", Pool: "pool-eu", Addresses: []netip.Addr{netip.MustParseAddr("198.51.100.10")}, Weight: 3},
				{Name: "api-b", Pool: "pool-us", Addresses: []netip.Addr{netip.MustParseAddr("203.0.113.10")}, Weight: 1},
			}},
			"deep.sub": {Sites: []SiteConfig{{Name: "eu", Addresses: []netip.Addr{netip.MustParseAddr("198.51.100.20")}}}},
		},
		Regions: map[string]string{
			"10.1.0.0/16":  "eu",
			"10.2.0.0/16":  "us",
			"127.0.0.2/32": "eu",
		},
		Preference: map[string][]string{
			"eu": {"eu", "us"},
			"us": {"us", "eu"},
			"*":  {"us", "eu"},
		},
	}}
}

// askECS asks name/qtype with an ECS option for subnet (no option when invalid).
func askECS(t *testing.T, addr string, from netip.Addr, name string, qtype uint16, subnet netip.Prefix) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	if subnet.IsValid() {
		family := uint16(1)
		if subnet.Addr().Is6() {
			family = 2
		}
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{
			Code: dns.EDNS0SUBNET, Family: family, SourceNetmask: uint8(subnet.Bits()), Address: subnet.Addr().AsSlice(),
		})
	}
	return exchange(t, addr, "udp", from, m)
}

func echoedECS(m *dns.Msg) *dns.EDNS0_SUBNET {
	if o := m.IsEdns0(); o != nil {
		return findECS(o)
	}
	return nil
}

func TestGSLBClosestSiteByECSAndSource(t *testing.T) {
	h := &fakeHealth{}
	_, addr := startServer(t, Options{Config: gslbConfig(), Health: h, Policy: testPolicy()})
	cases := []struct {
		from   netip.Addr
		subnet string
		want   string
		scope  int
	}{
		{teacher, "10.1.2.0/24", "198.51.100.1", 16},
		{teacher, "10.2.7.0/24", "203.0.113.1", 16},
		{student, "10.2.7.0/24", "203.0.113.1", 16},  // ECS wins over the source address
		{teacher, "192.0.2.0/24", "203.0.113.1", 24}, // no region: "*" order, scope = source prefix
		{student, "", "198.51.100.1", -1},            // source address 127.0.0.2 is in eu
		{teacher, "", "203.0.113.1", -1},
		{student, "0.0.0.0/0", "198.51.100.1", 0}, // SOURCE /0: the source address decides
	}
	for _, c := range cases {
		var p netip.Prefix
		if c.subnet != "" {
			p = netip.MustParsePrefix(c.subnet)
		}
		r := askECS(t, addr, c.from, "WWW.example.test", dns.TypeA, p)
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || !slices.Equal(answers(r), []string{c.want}) {
			t.Fatalf("%v %s: %v", c.from, c.subnet, r)
		}
		if ttl := r.Answer[0].Header().Ttl; ttl != 30 {
			t.Fatalf("TTL %d, want 30", ttl)
		}
		e := echoedECS(r)
		if c.scope < 0 {
			if e != nil {
				t.Fatalf("ECS added to a reply to a query without it: %v", e)
			}
			continue
		}
		if e == nil || int(e.SourceScope) != c.scope || int(e.SourceNetmask) != p.Bits() || e.Family != 1 {
			t.Fatalf("%s: ECS echo %v, want scope %d", c.subnet, e, c.scope)
		}
	}
	// IPv6: only eu has an IPv6 address, whatever the client's region.
	r := askECS(t, addr, teacher, "www.example.test", dns.TypeAAAA, netip.MustParsePrefix("10.2.0.0/24"))
	if !slices.Equal(answers(r), []string{"2001:db8:e::1"}) {
		t.Fatalf("AAAA: %v", r)
	}
	// An ECS option with a source prefix longer than its family allows is FORMERR.
	m := new(dns.Msg)
	m.SetQuestion("www.example.test.", dns.TypeA)
	m.SetEdns0(1232, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, SourceScope: 8, Address: net.IPv4(10, 1, 2, 0)})
	if r := exchange(t, addr, "udp", teacher, m); r.Rcode != dns.RcodeFormatError {
		t.Fatalf("ECS with a scope in the query: %v", r)
	}
}

func TestGSLBHealth(t *testing.T) {
	h := &fakeHealth{}
	_, addr := startServer(t, Options{Config: gslbConfig(), Health: h})
	eu := netip.MustParsePrefix("10.1.0.0/24")
	get := func() *dns.Msg { return askECS(t, addr, teacher, "www.example.test", dns.TypeA, eu) }
	if r := get(); !slices.Equal(answers(r), []string{"198.51.100.1"}) {
		t.Fatalf("healthy: %v", r)
	}
	h.set("pool-eu", false)
	if r := get(); !slices.Equal(answers(r), []string{"203.0.113.1"}) {
		t.Fatalf("eu down: %v", r)
	}
	h.set("pool-us", false)
	if r := get(); r.Rcode != dns.RcodeServerFailure || len(r.Answer) != 0 {
		t.Fatalf("all down, when_all_down servfail: %v", r)
	}
	// api answers every site when all are down (the default).
	r := askECS(t, addr, teacher, "api.example.test", dns.TypeA, eu)
	if got := answers(r); len(got) != 2 {
		t.Fatalf("all down, when_all_down all: %v", r)
	}
	h.set("pool-eu", true)
	if r := get(); !slices.Equal(answers(r), []string{"198.51.100.1"}) {
		t.Fatalf("eu back: %v", r)
	}
}

func TestGSLBWeightedRoundRobin(t *testing.T) {
	_, addr := startServer(t, Options{Config: gslbConfig()})
	counts := map[string]int{}
	for range 8 {
		r := askECS(t, addr, teacher, "api.example.test", dns.TypeA, netip.Prefix{})
		got := answers(r)
		if len(got) != 1 {
			t.Fatalf("weighted: %v", r)
		}
		counts[got[0]]++
	}
	// Smooth WRR with weights 3:1 is exact over each cycle of 4.
	if counts["198.51.100.10"] != 6 || counts["203.0.113.10"] != 2 {
		t.Fatalf("distribution %v, want 6:2", counts)
	}
}

func TestGSLBZoneRecords(t *testing.T) {
	_, addr := startServer(t, Options{Config: gslbConfig()})
	r := ask(t, addr, "udp", teacher, "example.test", dns.TypeSOA, false)
	if soa, ok := firstRR[*dns.SOA](r.Answer); !ok || !r.Authoritative || soa.Ns != "ns1.example.test." || soa.Mbox != "hostmaster.example.test." || soa.Minttl != 30 {
		t.Fatalf("SOA: %v", r)
	}
	r = ask(t, addr, "tcp", teacher, "example.test", dns.TypeNS, false)
	if len(r.Answer) != 2 || !r.Authoritative {
		t.Fatalf("NS: %v", r)
	}
	negatives := []struct {
		name  string
		qtype uint16
		rcode int
	}{
		{"nope.example.test", dns.TypeA, dns.RcodeNameError},
		{"x.www.example.test", dns.TypeA, dns.RcodeNameError},
		{"www.example.test", dns.TypeMX, dns.RcodeSuccess}, // NODATA
		{"example.test", dns.TypeA, dns.RcodeSuccess},      // the apex exists
		{"sub.example.test", dns.TypeA, dns.RcodeSuccess},  // empty non-terminal
		{"api.example.test", dns.TypeAAAA, dns.RcodeSuccess},
	}
	for _, c := range negatives {
		r := ask(t, addr, "udp", teacher, c.name, c.qtype, false)
		soa, ok := firstRR[*dns.SOA](r.Ns)
		if r.Rcode != c.rcode || len(r.Answer) != 0 || !r.Authoritative || !ok || soa.Hdr.Ttl != 30 {
			t.Errorf("%s %s: %v", c.name, dns.TypeToString[c.qtype], r)
		}
	}
	if r := ask(t, addr, "udp", teacher, "deep.sub.example.test", dns.TypeA, false); !slices.Equal(answers(r), []string{"198.51.100.20"}) {
		t.Fatalf("deep.sub: %v", r)
	}
}

func firstRR[T dns.RR](rrs []dns.RR) (T, bool) {
	for _, rr := range rrs {
		if v, ok := rr.(T); ok {
			return v, true
		}
	}
	var zero T
	return zero, false
}
