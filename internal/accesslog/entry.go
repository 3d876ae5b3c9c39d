// Package accesslog owns the access-log record every door fills (Entry), the
// Logger interface the doors hand it to, the fan-out to several Loggers (Multi)
// and the writers that format it as json, combined or squid lines to a file or
// standard output (Writer). The admin package's metrics and status counters are
// Loggers too.
package accesslog

import (
	"net/netip"
	"time"
)

// Entry is one access-log record: one per HTTP request, CONNECT tunnel or DNS query.
// Doors fill it; writers format it (json, combined, squid). It never carries
// credentials or cookies.
type Entry struct {
	Time     time.Time     // when the request arrived
	Door     string        // "forward", "reverse", "dns", "socks"
	Client   netip.Addr    // connecting client
	User     string        // authenticated user, "" if none
	Method   string        // HTTP method, "CONNECT", or the DNS query type
	URL      string        // absolute URL, "host:port" for CONNECT, the name for DNS
	Action   string        // verdict action: allow, block, inspect, tunnel
	Rule     string        // deciding rule
	Category string        // deciding rule's category
	Status   int           // HTTP status sent (DNS: rcode)
	BytesIn  int64         // request bytes read from the client (body, or tunnel client→server)
	BytesOut int64         // response bytes written to the client (body, or tunnel server→client; DNS: the reply message)
	Duration time.Duration // until the response (or tunnel) finished
	Upstream string        // upstream member or "direct"; never shown to clients
	Cache    string        // cache status (hit, miss, stale…), "" when not cached
	Error    string        // short error text for failed requests

	// Optional fields: doors fill what they know; writers print "-" (or omit) the rest.

	Pool        string // upstream pool name (reverse door, GSLB), "" when direct
	Proto       string // request protocol, "HTTP/1.1", "HTTP/2.0"; DNS: transport, "udp" or "tcp"; "" when unknown
	Referer     string // Referer request header (userinfo is scrubbed when written)
	UserAgent   string // User-Agent request header
	ContentType string // response media type, without parameters
	TLS         bool   // the client reached the door over TLS (forward.tls_listen); written as "tls":true in the JSON log
	Answer      string // DNS only: what was answered ("A", "AAAA", "CNAME", "NODATA", "NXDOMAIN", "blocked", "gslb"…)
}

// Logger receives access-log entries. Implementations must be safe for concurrent use
// and must not block the request path for long. Log must not keep e after it returns.
type Logger interface {
	Log(e *Entry)
}

// DetailLogger is a Logger that may not read an entry's details: Referer,
// UserAgent, Cache and ContentType, which only a written log shows (the
// admin counters read none of them). A door may leave them empty when
// WantsDetail says nobody reads them, and save looking them up.
type DetailLogger interface {
	Logger
	// WantsDetail reports whether Log reads the details now.
	WantsDetail() bool
}

// WantsDetail reports whether l reads an entry's details (see
// DetailLogger): true unless l is a DetailLogger that says no.
func WantsDetail(l Logger) bool {
	d, ok := l.(DetailLogger)
	return !ok || d.WantsDetail()
}
