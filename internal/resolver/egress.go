package resolver

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
)

// ErrEgressDenied matches (errors.Is) every refusal of the egress guard; the
// forward proxy answers it with 403.
var ErrEgressDenied = errors.New("egress denied")

// EgressError says why a destination was refused.
type EgressError struct {
	Host   string     // the name or literal asked for
	Addr   netip.Addr // the refused address (invalid for an ambiguous literal)
	Port   uint16     // the refused port (0 when not known)
	Reason string     // "loopback", "private", "link-local", "cgnat", "cloud metadata", …
}

// Error implements error.
func (e *EgressError) Error() string {
	s := "egress denied: " + e.Host
	if e.Addr.IsValid() && e.Addr.String() != e.Host {
		if e.Port != 0 {
			s += " (" + netip.AddrPortFrom(e.Addr, e.Port).String() + ")"
		} else {
			s += " (" + e.Addr.String() + ")"
		}
	}
	return s + ": " + e.Reason
}

// reasonSelf is the Reason of a refused own listener.
const reasonSelf = "one of this proxy's own listeners"

// EgressHint tells an admin what to do about a refusal of the egress guard in
// err: the setting that allows the destination, with the entry to add, or that
// the proxy's own listeners are never allowed.
func EgressHint(err error) string {
	var ee *EgressError
	switch {
	case !errors.As(err, &ee):
		return ""
	case ee.Reason == reasonSelf:
		return "the proxy's own listeners are never reachable through it"
	case !ee.Addr.IsValid():
		return "write the address in its usual form"
	}
	entry := netip.PrefixFrom(ee.Addr.Unmap(), ee.Addr.Unmap().BitLen()).String()
	if ee.Port != 0 {
		entry += ":" + strconv.Itoa(int(ee.Port))
	}
	return "allow it with resolver.egress.allow: [\"" + entry + "\"]"
}

// Is makes errors.Is(err, ErrEgressDenied) true.
func (e *EgressError) Is(target error) bool { return target == ErrEgressDenied }

// Guard is the egress policy: non-public destinations are refused unless an
// allowance contains them (address and port), and the process's own listeners
// are always refused. The zero Guard refuses every non-public address.
type Guard struct {
	allow []EgressAllow
	self  *Listeners
}

// NewGuard returns a Guard that lets the allowances through and refuses self's
// addresses (self may be nil).
func NewGuard(allow []EgressAllow, self *Listeners) Guard { return Guard{allow: allow, self: self} }

// Guard returns the resolver's egress guard.
func (r *Resolver) Guard() Guard { return r.guard }

// Check returns nil when ap may be dialed, else an *EgressError for host.
func (g Guard) Check(host string, ap netip.AddrPort) error {
	a := ap.Addr()
	if g.self.Contains(ap) {
		return &EgressError{Host: host, Addr: a, Port: ap.Port(), Reason: reasonSelf}
	}
	reason := DeniedReason(a)
	if reason == "" {
		return nil
	}
	for _, e := range g.allow {
		if e.Contains(ap) {
			return nil
		}
	}
	return &EgressError{Host: host, Addr: a, Port: ap.Port(), Reason: reason}
}

// control is the net.Dialer hook: the last check, on the address the socket is
// about to connect to.
func (g Guard) control(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &EgressError{Host: address, Reason: "unparsable address"}
	}
	return g.Check(address, ap)
}

// DeniedReason returns why a is not a public unicast address ("" when it is).
// IPv4-mapped, IPv4-compatible, NAT64 (64:ff9b::/96) and 6to4 (2002::/16) forms
// are judged by the IPv4 address they carry.
func DeniedReason(a netip.Addr) string {
	if !a.IsValid() {
		return "invalid address"
	}
	a = a.WithZone("")
	if a.Is4In6() {
		a = a.Unmap()
	}
	if a.Is6() {
		b := a.As16()
		switch {
		case b == [16]byte{}:
			return "unspecified"
		case isZero(b[:12]) && a != netip.IPv6Loopback():
			// ::a.b.c.d, the deprecated IPv4-compatible form
			return "ipv4-compatible"
		case b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && isZero(b[4:12]):
			if r := DeniedReason(netip.AddrFrom4([4]byte(b[12:16]))); r != "" {
				return r + " (nat64)"
			}
		case b[0] == 0x20 && b[1] == 0x02:
			if r := DeniedReason(netip.AddrFrom4([4]byte(b[2:6]))); r != "" {
				return r + " (6to4)"
			}
		case a == metadataV6:
			return "cloud metadata"
		}
	}
	switch {
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a == metadataV4:
		return "cloud metadata"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "multicast"
	case a.IsPrivate() && a.Is6():
		return "unique-local"
	case a.IsPrivate():
		return "private"
	}
	if a.Is4() {
		b := a.As4()
		switch {
		case b[0] == 100 && b[1]&0xc0 == 64:
			return "cgnat"
		case b[0] == 0:
			return "this network"
		case b[0] >= 240:
			return "reserved"
		case b[0] == 192 && b[1] == 0 && b[2] == 0:
			return "ietf protocol assignment"
		case b[0] == 198 && b[1]&0xfe == 18:
			return "benchmarking"
		}
	}
	return ""
}

// The cloud metadata services' addresses (AWS, GCP, Azure, OpenStack: the IPv4
// one; AWS Nitro: the IPv6 one).
var (
	metadataV4 = netip.AddrFrom4([4]byte{169, 254, 169, 254})
	metadataV6 = netip.AddrFrom16([16]byte{0xfd, 0x00, 0x0e, 0xc2, 14: 0x02, 15: 0x54}) // fd00:ec2::254
)

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ParseLiteral tells whether host is an IP literal. It accepts only what net/netip
// parses (dotted-quad IPv4 without leading zeros, IPv6 with an optional zone), and
// refuses with an *EgressError the forms other parsers read as addresses
// differently: a host whose last label is numeric ("127.1", "2130706433",
// "0x7f.0.0.1", "0177.0.0.1", "1.2.3.04") — the WHATWG URL rule. isLiteral is false
// for ordinary names.
func ParseLiteral(host string) (a netip.Addr, isLiteral bool, err error) {
	h := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(host, "]"), "["), ".")
	if a, err := netip.ParseAddr(h); err == nil {
		return a, true, nil
	}
	last := h
	if i := strings.LastIndexByte(h, '.'); i >= 0 {
		last = h[i+1:]
	}
	if isNumericLabel(last) || strings.Contains(h, ":") {
		return netip.Addr{}, true, &EgressError{Host: host, Reason: "ambiguous IP literal"}
	}
	return netip.Addr{}, false, nil
}

// isNumericLabel reports whether l is a decimal, octal or 0x-hex number.
func isNumericLabel(l string) bool {
	if l == "" {
		return false
	}
	digits := l
	hex := false
	if len(l) >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X') {
		digits, hex = l[2:], true
		if digits == "" {
			return true // "0x" alone is zero to inet_aton
		}
	}
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		switch {
		case c >= '0' && c <= '9':
		case hex && (c|0x20 >= 'a' && c|0x20 <= 'f'):
		default:
			return false
		}
	}
	return true
}
