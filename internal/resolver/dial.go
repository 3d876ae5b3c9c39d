package resolver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

const (
	// dialTimeout bounds one connection attempt (the caller's context may be shorter).
	dialTimeout = 30 * time.Second
	// attemptDelay is RFC 8305's Connection Attempt Delay: the head start one
	// address gets before the next is tried in parallel.
	attemptDelay = 250 * time.Millisecond
)

// DialContext connects to addr ("host:port") like net.Dialer.DialContext, but
// resolves through the Resolver, refuses non-public destinations (an
// *EgressError, matching ErrEgressDenied) unless Egress.Allow contains them, checks
// every CNAME target with the WithCheckName hook, and races the allowed addresses
// Happy-Eyeballs style (RFC 8305: IPv6 first, families interleaved, 250 ms apart).
// The guard also runs on the socket about to connect, so no path bypasses it.
// Networks: tcp, tcp4, tcp6, udp, udp4, udp6.
func (r *Resolver) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var want4, want6 bool
	switch network {
	case "tcp", "udp":
		want4, want6 = true, true
	case "tcp4", "udp4":
		want4 = true
	case "tcp6", "udp6":
		want6 = true
	default:
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError(network)}
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("bad port %q", portStr)}
	}
	lit, isLit, err := ParseLiteral(host)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if isLit {
		addrs = []netip.Addr{lit}
	} else {
		c, err := r.LookupChain(ctx, host)
		if err != nil {
			return nil, err
		}
		if r.checkName != nil {
			for _, n := range c.Names[1:] {
				if err := r.checkName(n); err != nil {
					return nil, err
				}
			}
		}
		addrs = c.Addrs
	}
	var allowed []netip.Addr
	var denied error
	for _, a := range addrs {
		if err := r.guard.Check(host, netip.AddrPortFrom(a, uint16(port))); err != nil {
			denied = cmp.Or(denied, err)
			continue
		}
		if (a.Unmap().Is4() && !want4) || (!a.Unmap().Is4() && !want6) {
			continue
		}
		allowed = append(allowed, a)
	}
	if len(allowed) == 0 {
		if denied != nil {
			return nil, denied
		}
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.AddrError{Err: "no suitable address", Addr: host}}
	}
	return r.race(ctx, network, interleave(allowed), uint16(port))
}

// interleave orders addresses IPv6 first, alternating families (RFC 8305 §4).
func interleave(addrs []netip.Addr) []netip.Addr {
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		if a.Unmap().Is4() {
			v4 = append(v4, a.Unmap())
		} else {
			v6 = append(v6, a)
		}
	}
	out := make([]netip.Addr, 0, len(addrs))
	for i := 0; i < len(v4) || i < len(v6); i++ {
		if i < len(v6) {
			out = append(out, v6[i])
		}
		if i < len(v4) {
			out = append(out, v4[i])
		}
	}
	return out
}

type dialResult struct {
	conn net.Conn
	err  error
}

// race dials addrs in order, starting the next one when the previous fails or
// after attemptDelay, and returns the first connection; the others are cancelled
// and, if they connected anyway, closed.
func (r *Resolver) race(ctx context.Context, network string, addrs []netip.Addr, port uint16) (net.Conn, error) {
	if len(addrs) == 1 {
		return r.dialer.DialContext(ctx, network, netip.AddrPortFrom(addrs[0], port).String())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan dialResult, len(addrs))
	next, pending := 0, 0
	start := func() {
		ap := netip.AddrPortFrom(addrs[next], port).String()
		next++
		pending++
		go func() {
			c, err := r.dialer.DialContext(ctx, network, ap)
			results <- dialResult{c, err}
		}()
	}
	start()
	timer := time.NewTimer(attemptDelay)
	defer timer.Stop()
	var errs []error
	for pending > 0 {
		var tick <-chan time.Time
		if next < len(addrs) {
			tick = timer.C
		}
		select {
		case res := <-results:
			pending--
			if res.err == nil {
				if pending > 0 {
					// The losers are cancelled; close any that connected anyway.
					go closeLosers(results, pending)
				}
				return res.conn, nil
			}
			errs = append(errs, res.err)
			if next < len(addrs) {
				start()
				timer.Reset(attemptDelay)
			}
		case <-tick:
			start()
			timer.Reset(attemptDelay)
		}
	}
	return nil, errors.Join(errs...)
}

func closeLosers(results <-chan dialResult, n int) {
	for range n {
		if res := <-results; res.conn != nil {
			res.conn.Close()
		}
	}
}
