package anonymize

import (
	"net/http"
	"net/netip"
	"strings"
)

// Level is how much of the proxy and the client a profile reveals to the origin.
type Level uint8

// The levels, in the sense proxy users know them (research/forward.md §5.2).
const (
	// LevelElite reveals neither the client nor the proxy: every forwarding header,
	// Via, Proxy-*, client-address hint and From is removed, and nothing is added.
	LevelElite Level = iota + 1
	// LevelAnonymous reveals the proxy but never the client: the client-address and
	// forwarding headers are removed as for elite, and "Via: 1.1 portcullis" is added.
	LevelAnonymous
	// LevelTransparent reveals both: the client's address is appended to
	// X-Forwarded-For and "Via: 1.1 portcullis" is added; what the client sent is kept.
	LevelTransparent
)

// String returns the level's policy-file name.
func (l Level) String() string {
	switch l {
	case LevelElite:
		return "elite"
	case LevelAnonymous:
		return "anonymous"
	case LevelTransparent:
		return "transparent"
	}
	return "unknown"
}

// ParseLevel maps a policy-file name to a Level; "" is elite. ok is false for
// unknown names.
func ParseLevel(s string) (l Level, ok bool) {
	switch s {
	case "", "elite":
		return LevelElite, true
	case "anonymous":
		return LevelAnonymous, true
	case "transparent":
		return LevelTransparent, true
	}
	return 0, false
}

// ViaPseudonym is the received-by name this proxy writes in Via (RFC 9110 §7.6.3).
const ViaPseudonym = "portcullis"

// identifying lists the request fields that name the client, its address or the
// proxies it went through; anonymous and elite remove them (canonical form). Every
// field starting with "X-Forwarded-" or "Proxy-" is removed as well.
var identifying = [...]string{
	"Forwarded",
	"Via",
	"X-Real-Ip",
	"Client-Ip",
	"True-Client-Ip",
	"Cf-Connecting-Ip",
	"X-Client-Ip",
	"X-Cluster-Client-Ip",
	"X-Proxyuser-Ip",
	"X-Originating-Ip",
	"Fastly-Client-Ip",
	"From",
}

// Profile is a compiled anonymization profile. It is immutable and safe for
// concurrent use. The zero Profile is not usable; build one with Compile or a
// built-in (Elite, Anonymous, Transparent, Privacy).
type Profile struct {
	name  string
	level Level
}

// Name returns the profile's name ("elite" and so on for the built-ins).
func (p *Profile) Name() string { return p.name }

// Level returns the profile's anonymity level.
func (p *Profile) Level() Level { return p.level }

// Elite returns the built-in elite profile: the level alone, no other action. It
// removes X-Forwarded-*, Forwarded, Via, X-Real-IP, Client-IP, True-Client-IP,
// CF-Connecting-IP, X-Client-IP, X-Cluster-Client-IP, X-ProxyUser-IP,
// X-Originating-IP, Fastly-Client-IP, From and every Proxy-* field; it adds nothing,
// keeps the client's Accept-Encoding, and keeps an absent User-Agent absent.
func Elite() *Profile { return &Profile{name: "elite", level: LevelElite} }

// Anonymous returns the built-in anonymous profile: elite's removals, then
// "Via: <version> portcullis" on requests and responses. No other action.
func Anonymous() *Profile { return &Profile{name: "anonymous", level: LevelAnonymous} }

// Transparent returns the built-in transparent profile: the client's address is
// appended to X-Forwarded-For and "Via: <version> portcullis" is appended to Via on
// requests and responses; nothing the client sent is removed. No other action.
func Transparent() *Profile { return &Profile{name: "transparent", level: LevelTransparent} }

// Request rewrites the outbound request r in place for the origin. client is the
// connecting client's address (used only by the transparent level). The door removes
// hop-by-hop fields first (RemoveHopByHop). Request never makes Go's transport add
// its default User-Agent: an absent User-Agent is recorded as present and empty,
// which net/http (HTTP/1 and HTTP/2) sends as no User-Agent at all. Request does not
// touch Accept-Encoding; the door's transport must not add one either
// (http.Transport.DisableCompression).
func (p *Profile) Request(r *http.Request, client netip.Addr) {
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	h := r.Header
	switch p.level {
	case LevelTransparent:
		if client.IsValid() {
			appendValue(h, "X-Forwarded-For", client.Unmap().String())
		}
		appendValue(h, "Via", via(r.ProtoMajor, r.ProtoMinor))
	case LevelAnonymous:
		removeIdentifying(h)
		appendValue(h, "Via", via(r.ProtoMajor, r.ProtoMinor))
	default:
		removeIdentifying(h)
	}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = nil
	}
}

// Response rewrites the response resp in place for the client.
func (p *Profile) Response(resp *http.Response) {
	if resp.Header == nil {
		resp.Header = make(http.Header)
	}
	if p.level == LevelTransparent || p.level == LevelAnonymous {
		appendValue(resp.Header, "Via", via(resp.ProtoMajor, resp.ProtoMinor))
	}
}

// removeIdentifying deletes the fields in identifying and every X-Forwarded-* and
// Proxy-* field.
func removeIdentifying(h http.Header) {
	for _, name := range identifying {
		delete(h, name)
	}
	for name := range h {
		if hasPrefixFold(name, "x-forwarded-") || hasPrefixFold(name, "proxy-") {
			delete(h, name)
		}
	}
}

// hasPrefixFold reports whether s starts with the lower-case ASCII prefix, ignoring case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// appendValue appends v to the comma-separated list in field name (canonical),
// joining any repeated lines into one as intermediaries do for X-Forwarded-For.
func appendValue(h http.Header, name, v string) {
	prior := h[name]
	if len(prior) > 0 {
		v = strings.Join(prior, ", ") + ", " + v
	}
	h[name] = []string{v}
}

// via returns the Via element for a message received with the given version.
func via(major, minor int) string {
	switch {
	case major == 1 && minor == 0:
		return "1.0 " + ViaPseudonym
	case major == 2:
		return "2.0 " + ViaPseudonym
	case major == 3:
		return "3.0 " + ViaPseudonym
	}
	return "1.1 " + ViaPseudonym
}
