package reverse

import (
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/h1"
	"github.com/portcullis/portcullis/rules"
)

// forwarding is the compiled ForwardedHeaders.
type forwarding struct {
	xff, proto, host, forwarded bool
	trusted                     []netip.Prefix
}

func newForwarding(c *ForwardedHeaders) forwarding {
	return forwarding{
		xff:       boolOr(c.XForwardedFor, true),
		proto:     boolOr(c.XForwardedProto, true),
		host:      boolOr(c.XForwardedHost, true),
		forwarded: c.Forwarded,
		trusted:   c.TrustedProxies,
	}
}

func (f *forwarding) isTrusted(a netip.Addr) bool {
	for _, p := range f.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// client returns the client address: the peer, or when the peer is a trusted
// proxy the rightmost X-Forwarded-For entry that is not itself trusted.
func (f *forwarding) client(peer netip.Addr, h http.Header) (netip.Addr, bool) {
	if len(f.trusted) == 0 || !f.isTrusted(peer) {
		return peer, false
	}
	vals := h["X-Forwarded-For"]
	for i := len(vals) - 1; i >= 0; i-- {
		parts := strings.Split(vals[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return peer, true // garbage: stop believing the chain
			}
			if a = a.Unmap(); !f.isTrusted(a) {
				return a, true
			}
		}
	}
	return peer, true
}

// forwardedIn holds the forwarding fields the client sent, read before the
// outbound request drops them.
type forwardedIn struct {
	xff, proto, host, forwarded []string
}

// apply sets the forwarding headers on the outbound header out (from which
// the door has removed X-Forwarded-* and Forwarded); host is the request's
// Host. From a trusted proxy the incoming values (in) are carried over and
// extended, from anyone else replaced.
func (f *forwarding) apply(in *forwardedIn, out http.Header, host string, ex *exchange) {
	v := ex.fwdVals[:] // the values live in the exchange: no allocation
	set := func(name, value string) {
		v[0] = value
		out[name] = v[0:1:1]
		v = v[1:]
	}
	if f.xff {
		ip := ex.peerString()
		if prior := in.xff; ex.trusted && len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		set("X-Forwarded-For", ip)
	}
	if f.proto {
		if pv := in.proto; ex.trusted && len(pv) > 0 {
			out["X-Forwarded-Proto"] = pv
		} else {
			set("X-Forwarded-Proto", ex.scheme)
		}
	}
	if f.host {
		if hv := in.host; ex.trusted && len(hv) > 0 {
			out["X-Forwarded-Host"] = hv
		} else {
			set("X-Forwarded-Host", host)
		}
	}
	if f.forwarded {
		node := ex.peerString()
		if ex.peer.Is6() {
			node = `"[` + node + `]"`
		}
		elem := "for=" + node + ";proto=" + ex.scheme + ";host=" + strconv.Quote(host)
		if prior := in.forwarded; ex.trusted && len(prior) > 0 {
			elem = strings.Join(prior, ", ") + ", " + elem
		}
		out["Forwarded"] = []string{elem}
	}
}

// maxQueryParams is how many query parameters an origin's parser is assumed
// to read (Go's url.ParseQuery default).
const maxQueryParams = 10000

// cleanQuery returns raw, or when an origin could read it otherwise than the
// policy did (a ";" separator, a bad "%" escape, too many parameters) the
// parameters url.ParseQuery keeps, encoded again: the query the origin saw
// when the door was built on Go's reverse proxy, which does the same.
func cleanQuery(raw string) string {
	reencode := func() string {
		v, _ := url.ParseQuery(raw)
		return v.Encode()
	}
	if strings.Count(raw, "&")+1 > maxQueryParams {
		return reencode()
	}
	for i := 0; i < len(raw); {
		switch raw[i] {
		case ';':
			return reencode()
		case '%':
			if i+2 >= len(raw) || !ishex(raw[i+1]) || !ishex(raw[i+2]) {
				return reencode()
			}
			i += 3
		default:
			i++
		}
	}
	return raw
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// peerString is ex.peer as text, as X-Forwarded-For and Forwarded give
// it: the engine's (h1's Peer, worked out once per connection), else
// worked out from RemoteAddr (h1.PeerText: no allocation when it spells
// the address canonically), else ex.peer.String() ("invalid IP").
func (ex *exchange) peerString() string {
	if ex.peerText != "" {
		return ex.peerText
	}
	if ex.peer.IsValid() {
		return h1.PeerText(ex.remote, ex.peer)
	}
	return ex.peer.String()
}

// splitHost normalises a Host header: lower case, no port, no trailing dot,
// IPv6 without brackets. The port defaults to the scheme's.
func splitHost(hostport string, tls bool) (string, uint16) {
	host, port := rules.SplitHostPort(hostport)
	if port == 0 {
		port = 80
		if tls {
			port = 443
		}
	}
	return host, port
}

// bodyReader counts a request body and enforces max_body_bytes,
// body_timeout and min_body_rate on it.
// The transport may still be reading when the handler logs, hence the atomics.
type bodyReader struct {
	rc  io.ReadCloser
	dl  *deadlineBody // nil without body_timeout and min_body_rate
	n   atomic.Int64
	err atomic.Pointer[error] // the first read error other than EOF
}

func newBodyReader(w http.ResponseWriter, r *http.Request, lim *Limits, start time.Time) *bodyReader {
	b := &bodyReader{rc: r.Body}
	if lim.MaxBodyBytes > 0 {
		b.rc = http.MaxBytesReader(w, r.Body, lim.MaxBodyBytes)
	}
	if lim.BodyTimeout > 0 || lim.MinBodyRate > 0 {
		b.dl = &deadlineBody{body: b.rc, closer: b.rc.Close, rc: http.NewResponseController(w), start: start, minRate: lim.MinBodyRate}
		if lim.BodyTimeout > 0 {
			b.dl.end = start.Add(lim.BodyTimeout)
		}
	}
	return b
}

func (b *bodyReader) Read(p []byte) (int, error) {
	var n int
	var err error
	if b.dl != nil {
		n, err = b.dl.Read(p)
	} else {
		n, err = b.rc.Read(p)
	}
	b.n.Add(int64(n))
	if err != nil && err != io.EOF {
		b.err.CompareAndSwap(nil, &err)
	}
	return n, err
}

// readErr returns the first read error other than EOF, or nil.
func (b *bodyReader) readErr() error {
	if e := b.err.Load(); e != nil {
		return *e
	}
	return nil
}

func (b *bodyReader) Close() error { return b.rc.Close() }
