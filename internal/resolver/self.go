package resolver

import (
	"net"
	"net/netip"
	"sync/atomic"
)

// Listeners is the set of the process's own listening addresses (every door's
// and the admin listener's). The egress guard refuses them whatever
// egress.allow says, so that a client cannot reach the admin page or loop a
// door into itself through the proxy. A listener on an unspecified address
// (0.0.0.0, ::) stands for every local address on its port. The engine calls
// Set whenever the listeners change; a Listeners is safe for concurrent use.
type Listeners struct {
	set atomic.Pointer[listenerSet]
}

type listenerSet struct {
	exact    map[netip.AddrPort]bool
	anyPorts map[uint16]bool     // ports listened on at unspecified addresses
	local    map[netip.Addr]bool // this host's addresses (when anyPorts is not empty)
}

// Set replaces the set with addrs.
func (l *Listeners) Set(addrs []netip.AddrPort) {
	s := &listenerSet{exact: map[netip.AddrPort]bool{}, anyPorts: map[uint16]bool{}, local: map[netip.Addr]bool{}}
	for _, ap := range addrs {
		a := ap.Addr().Unmap().WithZone("")
		if a.IsUnspecified() {
			s.anyPorts[ap.Port()] = true
			continue
		}
		s.exact[netip.AddrPortFrom(a, ap.Port())] = true
	}
	if len(s.anyPorts) > 0 {
		if ifs, err := net.InterfaceAddrs(); err == nil {
			for _, ia := range ifs {
				if n, ok := ia.(*net.IPNet); ok {
					if a, ok := netip.AddrFromSlice(n.IP); ok {
						s.local[a.Unmap()] = true
					}
				}
			}
		}
	}
	l.set.Store(s)
}

// Contains reports whether ap is one of the process's listeners.
func (l *Listeners) Contains(ap netip.AddrPort) bool {
	if l == nil {
		return false
	}
	s := l.set.Load()
	if s == nil {
		return false
	}
	a := ap.Addr().Unmap().WithZone("")
	if s.exact[netip.AddrPortFrom(a, ap.Port())] {
		return true
	}
	return s.anyPorts[ap.Port()] && (a.IsLoopback() || a.IsUnspecified() || s.local[a])
}
