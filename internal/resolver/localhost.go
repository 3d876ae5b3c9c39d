package resolver

import (
	"net"
	"strings"

	"github.com/miekg/dns"
)

// localhostTTL is the TTL of the loopback answers for localhost names.
const localhostTTL = 3600

// localhost answers k when its name is "localhost." or under it (RFC 6761 §6.3):
// A 127.0.0.1, AAAA ::1, other types NODATA, never asked of an upstream. These are
// the addresses /etc/hosts gives localhost, so resolution agrees whether the
// upstreams are "system" or public resolvers (which answer localhost NXDOMAIN, or
// with whatever they like). ok is false for other names.
func localhost(k cacheKey) (m *dns.Msg, ok bool) {
	name := strings.ToLower(k.name)
	if name != "localhost." && !strings.HasSuffix(name, ".localhost.") {
		return nil, false
	}
	m = new(dns.Msg)
	m.Response, m.Authoritative, m.RecursionAvailable = true, true, true
	m.Question = []dns.Question{{Name: k.name, Qtype: k.qtype, Qclass: k.qclass}}
	if k.qclass != dns.ClassINET {
		return m, true
	}
	hdr := dns.RR_Header{Name: k.name, Rrtype: k.qtype, Class: dns.ClassINET, Ttl: localhostTTL}
	switch k.qtype {
	case dns.TypeA:
		m.Answer = []dns.RR{&dns.A{Hdr: hdr, A: net.IPv4(127, 0, 0, 1).To4()}}
	case dns.TypeAAAA:
		m.Answer = []dns.RR{&dns.AAAA{Hdr: hdr, AAAA: net.IPv6loopback}}
	}
	return m, true
}
