package resolver

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// systemUpstream is the "system" upstream: A and AAAA through net.Resolver (so
// /etc/hosts and nsswitch apply), answered with SystemTTL because the OS does not
// report TTLs; other types go to the /etc/resolv.conf nameservers.
type systemUpstream struct {
	r       *net.Resolver
	servers []upstream
}

func newSystemUpstream(timeout time.Duration) *systemUpstream {
	s := &systemUpstream{r: &net.Resolver{}}
	if conf, err := dns.ClientConfigFromFile("/etc/resolv.conf"); err == nil {
		for _, srv := range conf.Servers {
			spec, err := parseUpstream(net.JoinHostPort(srv, conf.Port))
			if err == nil {
				s.servers = append(s.servers, newUpstream(spec, timeout, nil))
			}
		}
	}
	return s
}

func (s *systemUpstream) String() string { return "system" }

func (s *systemUpstream) exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	q := m.Question[0]
	if q.Qclass != dns.ClassINET || (q.Qtype != dns.TypeA && q.Qtype != dns.TypeAAAA) {
		var lastErr error = errNoSystemServers
		for _, u := range s.servers {
			r, err := u.exchange(ctx, m)
			if err == nil {
				return r, nil
			}
			lastErr = err
		}
		return nil, lastErr
	}
	host := strings.TrimSuffix(q.Name, ".")
	network := "ip4"
	if q.Qtype == dns.TypeAAAA {
		network = "ip6"
	}
	r := new(dns.Msg)
	r.SetReply(m)
	r.RecursionAvailable = true
	ttl := uint32(SystemTTL / time.Second)
	addrs, err := s.r.LookupNetIP(ctx, network, host)
	if err != nil {
		var de *net.DNSError
		if !errors.As(err, &de) || !de.IsNotFound {
			return nil, err
		}
		// Not found in this family: NXDOMAIN only when the name has no address at all.
		if _, err := s.r.LookupNetIP(ctx, "ip", host); err != nil {
			if errors.As(err, &de) && de.IsNotFound {
				r.Rcode = dns.RcodeNameError
				return r, nil
			}
		}
		return r, nil // NODATA
	}
	owner := q.Name
	if cname, err := s.r.LookupCNAME(ctx, host); err == nil && cname != "" && !strings.EqualFold(cname, dns.Fqdn(host)) {
		owner = dns.Fqdn(cname)
		r.Answer = append(r.Answer, &dns.CNAME{
			Hdr:    dns.RR_Header{Name: q.Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: ttl},
			Target: owner,
		})
	}
	for _, a := range addrs {
		hdr := dns.RR_Header{Name: owner, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: ttl}
		if q.Qtype == dns.TypeA {
			r.Answer = append(r.Answer, &dns.A{Hdr: hdr, A: a.Unmap().AsSlice()})
		} else {
			r.Answer = append(r.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		}
	}
	return r, nil
}
