package resolver

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// EgressAllow is one entry of resolver.egress.allow: a prefix, optionally
// restricted to ports. It is written "CIDR" (every port) or "CIDR:PORTS", PORTS
// a comma-separated list of ports and ranges: "127.0.0.1/32:8080,8443",
// "10.0.0.0/8:80,443,8000-8099", "::1/128:8080". A bare address stands for its
// single-address prefix ("127.0.0.1:8080" is 127.0.0.1/32 port 8080; IPv6 needs
// the prefix form to carry ports).
type EgressAllow struct {
	Prefix netip.Prefix
	Ports  []PortRange // none: every port
}

// PortRange is an inclusive range of ports.
type PortRange struct{ Lo, Hi uint16 }

// Contains reports whether e allows ap.
func (e EgressAllow) Contains(ap netip.AddrPort) bool {
	a := ap.Addr()
	if !e.Prefix.Contains(a.Unmap()) && !e.Prefix.Contains(a) {
		return false
	}
	if len(e.Ports) == 0 {
		return true
	}
	for _, r := range e.Ports {
		if r.Lo <= ap.Port() && ap.Port() <= r.Hi {
			return true
		}
	}
	return false
}

// String returns e as written in the policy file.
func (e EgressAllow) String() string {
	if len(e.Ports) == 0 {
		return e.Prefix.String()
	}
	ports := make([]string, len(e.Ports))
	for i, r := range e.Ports {
		ports[i] = strconv.Itoa(int(r.Lo))
		if r.Hi != r.Lo {
			ports[i] += "-" + strconv.Itoa(int(r.Hi))
		}
	}
	return e.Prefix.String() + ":" + strings.Join(ports, ",")
}

// MarshalText implements encoding.TextMarshaler.
func (e EgressAllow) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (the policy file's form).
func (e *EgressAllow) UnmarshalText(b []byte) error {
	v, err := ParseEgressAllow(string(b))
	if err != nil {
		return err
	}
	*e = v
	return nil
}

// ParseEgressAllow parses "CIDR", "CIDR:PORTS", "ADDR" or "IPv4:PORTS".
func ParseEgressAllow(s string) (EgressAllow, error) {
	s = strings.TrimSpace(s)
	prefix, ports := s, ""
	if slash := strings.IndexByte(s, '/'); slash >= 0 {
		if i := strings.IndexByte(s[slash:], ':'); i >= 0 {
			prefix, ports = s[:slash+i], s[slash+i+1:]
		}
	} else if strings.Count(s, ":") == 1 { // IPv4:PORTS
		prefix, ports, _ = strings.Cut(s, ":")
	}
	var e EgressAllow
	if strings.Contains(prefix, "/") {
		p, err := netip.ParsePrefix(prefix)
		if err != nil {
			return e, fmt.Errorf("%q is not a CIDR prefix (want CIDR or CIDR:PORTS, e.g. 127.0.0.1/32:8080,8443)", prefix)
		}
		e.Prefix = p.Masked()
	} else {
		a, err := netip.ParseAddr(prefix)
		if err != nil {
			return e, fmt.Errorf("%q is not an address or CIDR prefix (want CIDR or CIDR:PORTS, e.g. 127.0.0.1/32:8080,8443)", prefix)
		}
		e.Prefix = netip.PrefixFrom(a, a.BitLen())
	}
	if ports == "" && strings.HasSuffix(s, ":") {
		return e, fmt.Errorf("%q: empty port list", s)
	}
	if ports == "" {
		return e, nil
	}
	for _, part := range strings.Split(ports, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		l, err := parsePort(lo)
		if err != nil {
			return e, err
		}
		h := l
		if isRange {
			if h, err = parsePort(hi); err != nil {
				return e, err
			}
			if h < l {
				return e, fmt.Errorf("port range %q runs backwards", part)
			}
		}
		e.Ports = append(e.Ports, PortRange{l, h})
	}
	return e, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return uint16(n), nil
}
