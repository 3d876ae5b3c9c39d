package resolver

import (
	"context"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Chain is the result of resolving a name: the names of its CNAME chain and the
// addresses at its end.
type Chain struct {
	// Names starts with the name asked for (lowercased, no trailing dot), followed by
	// each CNAME target in order.
	Names []string
	// Addrs are the IPv4 then IPv6 addresses of the last name.
	Addrs []netip.Addr
}

// LookupNetIP returns host's IPv4 and IPv6 addresses (IPv4 first). An IP literal
// is returned as is. A name that does not exist gives a *net.DNSError with
// IsNotFound set.
func (r *Resolver) LookupNetIP(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	c, err := r.LookupChain(ctx, host)
	return c.Addrs, err
}

// Names returns the CNAME chain of host, starting with host itself, so a caller can
// check every name against its lists (CNAME cloaking).
func (r *Resolver) Names(ctx context.Context, host string) ([]string, error) {
	c, err := r.LookupChain(ctx, host)
	return c.Names, err
}

// LookupChain resolves host's A and AAAA records in parallel and returns the CNAME
// chain and the addresses.
func (r *Resolver) LookupChain(ctx context.Context, host string) (Chain, error) {
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		return Chain{Names: []string{name}}, &net.DNSError{Err: "invalid domain name", Name: host, IsNotFound: true}
	}
	type result struct {
		names []string
		addrs []netip.Addr
		rcode int
		err   error
	}
	var v6 result
	done := make(chan struct{})
	go func() {
		defer close(done)
		v6.names, v6.addrs, v6.rcode, v6.err = r.follow(ctx, name, dns.TypeAAAA)
	}()
	var v4 result
	v4.names, v4.addrs, v4.rcode, v4.err = r.follow(ctx, name, dns.TypeA)
	<-done

	c := Chain{Names: v4.names, Addrs: append(v4.addrs, v6.addrs...)}
	if len(v6.names) > len(c.Names) {
		c.Names = v6.names
	}
	if len(c.Names) == 0 {
		c.Names = []string{name}
	}
	if len(c.Addrs) > 0 {
		return c, nil
	}
	switch {
	case v4.err != nil:
		return c, &net.DNSError{Err: v4.err.Error(), Name: host, IsTemporary: true}
	case v6.err != nil:
		return c, &net.DNSError{Err: v6.err.Error(), Name: host, IsTemporary: true}
	case v4.rcode == dns.RcodeServerFailure || v6.rcode == dns.RcodeServerFailure:
		return c, &net.DNSError{Err: "server misbehaving", Name: host, IsTemporary: true}
	}
	return c, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// follow resolves name/qtype, following a CNAME chain the upstream left unfinished,
// and returns the chain's names (without trailing dots) and its addresses.
func (r *Resolver) follow(ctx context.Context, name string, qtype uint16) (names []string, addrs []netip.Addr, rcode int, err error) {
	names = []string{name}
	cur := dns.Fqdn(name)
	for len(names) <= maxChain {
		m, err := r.lookup(ctx, cacheKey{name: cur, qtype: qtype, qclass: dns.ClassINET})
		if err != nil {
			return names, nil, 0, err
		}
		if m.Rcode != dns.RcodeSuccess {
			return names, nil, m.Rcode, nil
		}
		chain, last := cnameChain(m.Answer, cur)
		for _, n := range chain {
			names = append(names, strings.TrimSuffix(n, "."))
		}
		for _, rr := range m.Answer {
			if !strings.EqualFold(rr.Header().Name, last) {
				continue
			}
			switch v := rr.(type) {
			case *dns.A:
				if a, ok := netip.AddrFromSlice(v.A); ok && qtype == dns.TypeA {
					addrs = append(addrs, a.Unmap())
				}
			case *dns.AAAA:
				if a, ok := netip.AddrFromSlice(v.AAAA); ok && qtype == dns.TypeAAAA {
					addrs = append(addrs, a)
				}
			}
		}
		if len(addrs) > 0 || len(chain) == 0 {
			return names, addrs, m.Rcode, nil
		}
		cur = last // the answer stopped at a CNAME: ask for its target
	}
	return names, nil, dns.RcodeServerFailure, nil
}

// cnameChain follows the CNAME records in rrs from owner and returns the targets
// in order and the last name (owner when there is no CNAME). It stops at loops.
func cnameChain(rrs []dns.RR, owner string) (targets []string, last string) {
	last = owner
	for range maxChain {
		next := ""
		for _, rr := range rrs {
			if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, last) {
				next = strings.ToLower(c.Target)
				break
			}
		}
		if next == "" || strings.EqualFold(next, owner) {
			return targets, last
		}
		for _, t := range targets {
			if t == next {
				return targets, last
			}
		}
		targets = append(targets, next)
		last = next
	}
	return targets, last
}
