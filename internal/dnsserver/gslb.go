package dnsserver

import (
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/portcullis/portcullis/internal/pool"
)

// Health reports whether an upstream pool has a healthy member; the engine adapts
// internal/pool to it. It is called on every GSLB answer and must be cheap.
type Health interface {
	Healthy(pool string) bool
}

// gslb is the compiled GSLB zone: immutable except for the weighted round robin
// counters, which each name keeps.
type gslb struct {
	zone    string // lowercased FQDN
	ttl     uint32
	negTTL  uint32
	soa     *dns.SOA
	ns      []dns.RR
	names   map[string]*gslbName // FQDN → sites
	regions []regionEntry        // longest prefix first
	pref    map[string]map[string]int
}

type regionEntry struct {
	prefix netip.Prefix
	region string
}

type gslbName struct {
	sites    []*site
	servfail bool // when every site is down
	weighted bool // some site has a weight: pick one of the best sites
	wrr      pool.SmoothWRR[*site]
}

type site struct {
	name, pool, region string
	v4, v6             []netip.Addr
	weight             int
}

func compileGSLB(c GSLBConfig) *gslb {
	if c.Zone == "" {
		return nil
	}
	g := &gslb{
		zone:   c.Zone,
		ttl:    seconds(c.TTL),
		negTTL: seconds(min(c.SOA.Minimum, zoneRecordTTL)),
		names:  make(map[string]*gslbName, len(c.Names)),
		pref:   make(map[string]map[string]int, len(c.Preference)),
	}
	g.soa = &dns.SOA{
		Hdr:     dns.RR_Header{Name: g.zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: seconds(zoneRecordTTL)},
		Ns:      dns.CanonicalName(c.NS[0]),
		Mbox:    dns.CanonicalName(c.SOA.Mbox),
		Serial:  uint32(c.SOA.Serial),
		Refresh: seconds(c.SOA.Refresh),
		Retry:   seconds(c.SOA.Retry),
		Expire:  seconds(c.SOA.Expire),
		Minttl:  seconds(c.SOA.Minimum),
	}
	for _, ns := range c.NS {
		g.ns = append(g.ns, &dns.NS{
			Hdr: dns.RR_Header{Name: g.zone, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: seconds(zoneRecordTTL)},
			Ns:  dns.CanonicalName(ns),
		})
	}
	for rel, nc := range c.Names {
		n := &gslbName{servfail: nc.WhenAllDown == AllDownServfail}
		for _, sc := range nc.Sites {
			s := &site{name: sc.Name, pool: sc.Pool, region: sc.Region, weight: sc.Weight}
			for _, a := range sc.Addresses {
				if a.Unmap().Is4() {
					s.v4 = append(s.v4, a.Unmap())
				} else {
					s.v6 = append(s.v6, a)
				}
			}
			n.weighted = n.weighted || sc.Weight > 0
			n.sites = append(n.sites, s)
		}
		g.names[fqdnIn(rel, g.zone)] = n
	}
	for cidr, region := range c.Regions {
		if p, err := netip.ParsePrefix(cidr); err == nil {
			g.regions = append(g.regions, regionEntry{p.Masked(), region})
		}
	}
	sort.Slice(g.regions, func(i, j int) bool { return g.regions[i].prefix.Bits() > g.regions[j].prefix.Bits() })
	for region, order := range c.Preference {
		ranks := make(map[string]int, len(order))
		for i, s := range order {
			if _, dup := ranks[s]; !dup {
				ranks[s] = i
			}
		}
		g.pref[region] = ranks
	}
	return g
}

func seconds(d time.Duration) uint32 { return uint32(d / time.Second) }

// inZone reports whether the lowercased FQDN name is at or below the zone apex.
func (g *gslb) inZone(name string) bool {
	return name == g.zone || strings.HasSuffix(name, "."+g.zone)
}

// region returns the region of a and the length of the prefix that matched
// (0 and "" when none did).
func (g *gslb) region(a netip.Addr) (string, int) {
	a = a.Unmap()
	for _, e := range g.regions {
		if e.prefix.Contains(a) {
			return e.region, e.prefix.Bits()
		}
	}
	return "", 0
}

// answer fills m (already a reply to the query) for the lowercased FQDN qname in
// the zone, and returns the ECS scope the answer depends on: a prefix length, or
// -1 for "the query's own source prefix" (a location-dependent answer for a client
// in no listed region).
func (g *gslb) answer(m *dns.Msg, qname string, qtype uint16, loc netip.Addr, health Health) (scope int) {
	m.Authoritative = true
	if qname == g.zone {
		switch qtype {
		case dns.TypeSOA:
			m.Answer = append(m.Answer, g.soa)
			return 0
		case dns.TypeNS:
			m.Answer = append(m.Answer, g.ns...)
			return 0
		}
	}
	n := g.names[qname]
	if n == nil {
		if qname != g.zone && !g.hasBelow(qname) {
			m.Rcode = dns.RcodeNameError
		}
		g.negative(m)
		return 0
	}
	if qtype != dns.TypeA && qtype != dns.TypeAAAA {
		g.negative(m)
		return 0
	}
	sites, scope, ok := g.pick(n, qtype, loc, health)
	if !ok {
		m.Authoritative = false
		m.Rcode = dns.RcodeServerFailure
		return scope
	}
	for _, s := range sites {
		hdr := dns.RR_Header{Name: qname, Rrtype: qtype, Class: dns.ClassINET, Ttl: g.ttl}
		if qtype == dns.TypeA {
			for _, a := range s.v4 {
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
			}
		} else {
			for _, a := range s.v6 {
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
			}
		}
	}
	if len(m.Answer) == 0 {
		g.negative(m)
	}
	return scope
}

// hasBelow reports whether qname is an empty non-terminal (a name exists below it),
// which makes it NODATA rather than NXDOMAIN.
func (g *gslb) hasBelow(qname string) bool {
	for n := range g.names {
		if strings.HasSuffix(n, "."+qname) {
			return true
		}
	}
	return false
}

// negative adds the SOA for negative caching (RFC 2308 §3: its TTL is the
// negative TTL).
func (g *gslb) negative(m *dns.Msg) {
	soa := *g.soa
	soa.Hdr.Ttl = g.negTTL
	m.Ns = append(m.Ns, &soa)
}

// pick returns the sites to answer with: among the healthy sites that have
// addresses of qtype, those most preferred for loc's region; with weights, one of
// them by smooth weighted round robin. ok is false for SERVFAIL.
func (g *gslb) pick(n *gslbName, qtype uint16, loc netip.Addr, health Health) (sites []*site, scope int, ok bool) {
	var candidates, healthy []*site
	for _, s := range n.sites {
		if (qtype == dns.TypeA && len(s.v4) > 0) || (qtype == dns.TypeAAAA && len(s.v6) > 0) {
			candidates = append(candidates, s)
			if s.pool == "" || health == nil || health.Healthy(s.pool) {
				healthy = append(healthy, s)
			}
		}
	}
	if len(candidates) == 0 {
		return nil, 0, true // NODATA
	}
	if len(healthy) == 0 {
		if n.servfail {
			return nil, 0, false
		}
		return candidates, 0, true // every site, wherever the client is
	}
	region, bits := g.region(loc)
	ranks, hasPref := g.pref[region]
	if !hasPref && region == "" {
		ranks, hasPref = g.pref["*"]
	}
	rank := func(s *site) int {
		if hasPref {
			if r, ok := ranks[s.name]; ok {
				return r
			}
			return len(ranks)
		}
		if region != "" && s.region == region {
			return 0
		}
		return 1
	}
	best := -1
	for _, s := range healthy {
		r := rank(s)
		switch {
		case best < 0 || r < best:
			best = r
			sites = append(sites[:0], s)
		case r == best:
			sites = append(sites, s)
		}
	}
	switch {
	case bits > 0:
		scope = bits
	case len(g.regions) > 0:
		scope = -1
	}
	if n.weighted && len(sites) > 1 {
		return []*site{n.next(sites)}, scope, true
	}
	return sites, scope, true
}

// next picks one of sites by smooth weighted round robin (a weight of 0 counts
// as 1).
func (n *gslbName) next(sites []*site) *site {
	i := n.wrr.Pick(len(sites), func(i int) *site { return sites[i] }, func(i int) int { return max(sites[i].weight, 1) })
	return sites[i]
}
