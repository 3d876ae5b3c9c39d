package config

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/portcullis/portcullis/forward"
	"github.com/portcullis/portcullis/internal/config/field"
	"github.com/portcullis/portcullis/internal/dnsserver"
)

// listenAt is one address a door would bind, with the field that names it.
type listenAt struct {
	path, door, addr string
}

// listeners lists every address the policy binds, defaults included (the DNS door
// binds each of its addresses for TCP and UDP; only TCP can clash with other doors).
func (p *Policy) listeners() []listenAt {
	var out []listenAt
	list := func(path, door string, addrs []string, def string) {
		if len(addrs) == 0 && def != "" {
			out = append(out, listenAt{path, door, def})
		}
		for i, a := range addrs {
			out = append(out, listenAt{fmt.Sprintf("%s[%d]", path, i), door, a})
		}
	}
	if p.Forward != nil {
		list("forward.listen", "forward", p.Forward.Listen, forward.DefaultListen)
		list("forward.intercept.http", "forward (intercept HTTP)", p.Forward.Intercept.HTTP, "")
		list("forward.intercept.https", "forward (intercept HTTPS)", p.Forward.Intercept.HTTPS, "")
		list("forward.socks.listen", "forward (SOCKS5)", p.Forward.Socks.Listen, "")
	}
	if p.Reverse != nil {
		list("reverse.listen", "reverse", p.Reverse.Listen, "")
		list("reverse.tls_listen", "reverse (TLS)", p.Reverse.TLSListen, "")
	}
	if p.DNS != nil {
		list("dns.listen", "dns", p.DNS.Listen, dnsserver.DefaultListen)
	}
	if a := p.Admin; a != nil && a.Enabled() {
		out = append(out, listenAt{"admin.listen", "admin", a.Listen})
	}
	return out
}

// validateListeners reports two listeners on one address (across doors, TCP, and
// UDP for DNS): the second could not bind. Port 0 (any free port) never clashes;
// a wildcard host (0.0.0.0, ::, "") clashes with every host on its port.
func (f *File) validateListeners() []field.Error {
	var errs []field.Error
	ls := f.Policy.listeners()
	for j, b := range ls {
		for _, a := range ls[:j] {
			if clash(a.addr, b.addr) {
				errs = append(errs, field.Errorf(b.path, "%s listener %s clashes with the %s listener %s (%s): one address, one listener",
					b.door, b.addr, a.door, a.addr, f.where(a.path)))
				break
			}
		}
	}
	return errs
}

// where is "line N" for the field at path, or its path when it has no position.
func (f *File) where(path string) string {
	if pos := f.Pos(path); pos.Line > 0 {
		return fmt.Sprintf("%s, line %d", path, pos.Line)
	}
	return path
}

// clash reports whether listening on a and on b would conflict. "" and "::" take
// the port on every address (Go listens dual-stack); 0.0.0.0 on every IPv4 address.
func clash(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb || pa == "0" {
		return false // a malformed address is reported by its own section
	}
	if ha == hb || ha == "" || hb == "" {
		return true
	}
	ia, err1 := netip.ParseAddr(ha)
	ib, err2 := netip.ParseAddr(hb)
	switch {
	case err1 == nil && ia.Is6() && ia.IsUnspecified(), err2 == nil && ib.Is6() && ib.IsUnspecified():
		return true
	case err1 != nil || err2 != nil:
		return false // a host name: only the same name is known to clash
	}
	ia, ib = ia.Unmap(), ib.Unmap()
	if (ia.Is4() && ia.IsUnspecified() && ib.Is4()) || (ib.Is4() && ib.IsUnspecified() && ia.Is4()) {
		return true
	}
	return ia == ib
}
