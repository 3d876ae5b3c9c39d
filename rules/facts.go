// Package rules owns the policy's decision model: the protocol-neutral Facts a door
// gathers about a request, the Verdict the compiled policy returns, and the evaluator
// (Program) that turns one into the other. It knows nothing of HTTP servers or DNS
// servers: every door (forward, reverse, dns) speaks to it in Facts and Verdicts, so a
// rule written once means the same thing on every door.
package rules

import (
	"net/http"
	"net/netip"
	"time"
)

// Door names the front door a request came through.
type Door uint8

// The doors.
const (
	DoorForward Door = iota + 1 // forward proxy: absolute-form HTTP and CONNECT
	DoorReverse                 // reverse proxy: origin-form HTTP to fronted sites
	DoorDNS                     // DNS filtering server
)

// String returns the door's policy-file name.
func (d Door) String() string {
	switch d {
	case DoorForward:
		return "forward"
	case DoorReverse:
		return "reverse"
	case DoorDNS:
		return "dns"
	}
	return "unknown"
}

// Facts is everything a door knows about one request, in protocol-neutral form.
// Doors fill what they know and leave the rest zero; a condition on a fact that is
// zero does not match (for example a path rule never matches a CONNECT).
type Facts struct {
	Door   Door
	Client netip.Addr // the connecting client's address (unmapped)
	User   string     // authenticated user, "" when anonymous
	Groups []string   // groups the authenticated user belongs to (from auth); CIDR groups are resolved by the evaluator
	Time   time.Time  // when the request arrived; the evaluator uses it for schedules

	Method string // "GET", "CONNECT", …; "" for DNS
	Scheme string // "http", "https"; "" for DNS
	Host   string // lowercased, no port, no trailing dot; IP literals without brackets
	Port   uint16 // destination port, 0 when unknown
	Path   string // URL path as received (escaped form), "" for CONNECT and DNS
	Query  string // raw query without '?'
	SNI    string // TLS server name seen in a ClientHello, when one was peeked
	QType  uint16 // DNS query type for DNS, 0 otherwise
	Route  string // reverse mode: the route that matched, "" otherwise

	Header http.Header // request headers (read only), nil for CONNECT without inspection and DNS
}
