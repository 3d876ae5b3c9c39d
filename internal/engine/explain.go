package engine

import (
	"context"
	"net/netip"
	"slices"

	"github.com/portcullis/portcullis/internal/resolver"
)

// EgressCheck is the egress guard's decision on one address of a destination:
// Err is nil when the forward door may connect to Addr.
type EgressCheck struct {
	Addr netip.AddrPort
	Err  error
}

// ExplainEgress resolves host as the forward door does (the policy's resolver,
// IP literals parsed by the same rules) and returns the egress guard's decision
// on each of its addresses at port. It returns an error when host is refused
// before any address (an ambiguous literal: an *resolver.EgressError) or does
// not resolve (the guard then decides at dial time). The proxy's own listeners,
// refused too, are not known to a policy that is not running.
func (e *Engine) ExplainEgress(ctx context.Context, host string, port uint16) ([]EgressCheck, error) {
	r := e.cur.Load().resolver
	lit, isLit, err := resolver.ParseLiteral(host)
	if err != nil {
		return nil, err
	}
	addrs := []netip.Addr{lit}
	if !isLit {
		c, err := r.LookupChain(ctx, host)
		if err != nil {
			return nil, err
		}
		addrs = c.Addrs
	}
	out := make([]EgressCheck, 0, len(addrs))
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a, port)
		out = append(out, EgressCheck{Addr: ap, Err: r.Guard().Check(host, ap)})
	}
	return out, nil
}

// CheckGroupName returns an error when name is not a group of the policy,
// suggesting the closest one.
func (e *Engine) CheckGroupName(name string) error {
	return e.cur.Load().file.CheckGroupName(name)
}

// Warnings returns the problems of the current policy that did not stop it
// from loading (FILE:LINE:COL: field: warning: …), for validate to print.
func (e *Engine) Warnings() []string {
	return slices.Clone(e.cur.Load().warnings)
}
