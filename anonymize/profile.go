package anonymize

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/portcullis/portcullis/filter"
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

// Profile is a compiled anonymization profile. It is immutable and safe for
// concurrent use. The zero Profile is not usable; build one with Compile or a
// built-in (Elite, Anonymous, Transparent, Privacy).
type Profile struct {
	name  string
	level Level

	referrer       mode // keep, strip, same-origin, origin
	ua             uaPolicy
	acceptLanguage string // "" keeps the client's
	removeHeaders  headerSet
	set            []headerValue // Sec-GPC, DNT, then set_headers in name order
	stripParams    paramSet

	cookies        mode // keep, strip, third-party
	sessionCookies bool
	setCookieBlock []filter.Matcher
	trackers       []filter.Matcher
	trackerNames   []string

	hideOrigin headerSet
	server     string // "" sends none

	anonymousLog bool // the access log omits the client's User-Agent and Referer

	now func() time.Time // the clock for Set-Cookie expiry; time.Now
}

// levelOnly returns a profile with the level and no other action.
func levelOnly(name string, l Level) *Profile {
	return &Profile{name: name, level: l, referrer: modeKeep, ua: uaPolicy{mode: modeKeep, hints: modeKeep},
		cookies: modeKeep, now: time.Now}
}

// Name returns the profile's name ("elite" and so on for the built-ins).
func (p *Profile) Name() string { return p.name }

// AnonymousLog reports whether the access log must not record the client's
// User-Agent and Referer for requests under this profile (anonymous_log).
func (p *Profile) AnonymousLog() bool { return p.anonymousLog }

// Level returns the profile's anonymity level.
func (p *Profile) Level() Level { return p.level }

// TrackerLists returns the names of the lists whose hosts are to be blocked quietly
// under this profile (the trackers setting), for the engine to turn into rules with
// Verdict.Quiet.
func (p *Profile) TrackerLists() []string { return append([]string(nil), p.trackerNames...) }

// Tracker reports whether host (lowercased, no port, no trailing dot) is on one of
// the profile's tracker lists.
func (p *Profile) Tracker(host string) bool {
	for _, m := range p.trackers {
		if m.Match(host) {
			return true
		}
	}
	return false
}

// Elite returns the built-in elite profile: the level alone, no other action. It
// removes the fields of ClientAddressFields (X-Forwarded-*, Forwarded, Via,
// X-Real-IP, True-Client-IP, CF-Connecting-IP, From, every Proxy-* field and the
// rarer address hints, also when written with underscores); it adds nothing, keeps the client's Accept-Encoding, and keeps an
// absent User-Agent absent.
func Elite() *Profile { return levelOnly("elite", LevelElite) }

// Anonymous returns the built-in anonymous profile: elite's removals, then
// "Via: <version> portcullis" on requests and responses. No other action.
func Anonymous() *Profile { return levelOnly("anonymous", LevelAnonymous) }

// Transparent returns the built-in transparent profile: the client's address is
// appended to X-Forwarded-For and "Via: <version> portcullis" is appended to Via on
// requests and responses; nothing the client sent is removed. No other action.
func Transparent() *Profile { return levelOnly("transparent", LevelTransparent) }

// Request rewrites the outbound request r in place for the origin. client is the
// connecting client's address (used only by the transparent level). The door removes
// hop-by-hop fields first (relay.RemoveHopByHop) and clears r.RequestURI; Request may
// rewrite r.URL.RawQuery.
//
// The actions run in this order: cookies (judged before the Referer changes);
// referrer; user agent and client hints; Accept-Language; the removals
// (identifying fields, stale client hints, remove_headers) in one pass; the
// level's additions (X-Forwarded-For, Via); tracking parameters; Sec-GPC, DNT and
// set_headers. Request never makes Go's transport add its default User-Agent: an
// absent User-Agent is recorded as present and empty, which net/http (HTTP/1 and
// HTTP/2) sends as no User-Agent at all. Request does not touch Accept-Encoding; the
// door's transport must not add one either (http.Transport.DisableCompression).
func (p *Profile) Request(r *http.Request, client netip.Addr) {
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	h := r.Header
	if p.cookies != modeKeep || p.referrer != modeKeep {
		t := requestTarget(r)
		cross := p.cookies == modeThirdParty && thirdParty(h, t)
		if p.cookies == modeStrip || cross {
			delete(h, "Cookie")
		}
		if cross && p.referrer != modeKeep && !fetchSiteDecides(h) {
			// Only the Referer showed the request cross-site, and rewriteReferer
			// may remove it: the response is judged on what the client sent, so
			// Response reads this mark (Sec-Fetch-Site, when sent, stays).
			*r = *r.WithContext(context.WithValue(r.Context(), crossSiteKey{}, true))
		}
		rewriteReferer(h, p.referrer, t)
	}
	secure := true
	if p.ua.mode != modeKeep && p.ua.hints == modeConsistent {
		secure = requestTarget(r).trustworthy()
	}
	hints := p.ua.apply(h, secure)
	if p.acceptLanguage != "" && len(h["Accept-Language"]) > 0 {
		setValue(h, "Accept-Language", p.acceptLanguage)
	}
	p.removeHeaders.removeExact(h)
	p.sweep(h, hints)
	switch p.level {
	case LevelTransparent:
		if client.IsValid() {
			appendValue(h, "X-Forwarded-For", client.Unmap().String())
		}
		appendValue(h, "Via", via(r.ProtoMajor, r.ProtoMinor))
	case LevelAnonymous:
		appendValue(h, "Via", via(r.ProtoMajor, r.ProtoMinor))
	}
	if r.URL != nil {
		if q, ok := p.stripParams.strip(r.URL.RawQuery); ok {
			r.URL.RawQuery = q
		}
	}
	for _, hv := range p.set {
		setValue(h, hv.name, hv.value)
	}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = nil
	}
}

// crossSiteKey marks, in an outbound request's context, a request Request judged
// cross-site from what the client sent (Sec-Fetch-Site or its Referer).
type crossSiteKey struct{}

// markedCrossSite reports whether Request judged r cross-site.
func markedCrossSite(r *http.Request) bool {
	v, _ := r.Context().Value(crossSiteKey{}).(bool)
	return v
}

// Response rewrites the response resp in place for the client: origin hiding,
// cookie policy (strip; third-party as Request judged it from the client's own
// Sec-Fetch-Site or Referer, before the Referer was rewritten, else from
// resp.Request's fields; Set-Cookie blocked from listed hosts; session-only),
// then Via for the transparent and anonymous levels. resp.Request is the outbound
// request (as net/http sets it); without it the host-based actions are skipped.
func (p *Profile) Response(resp *http.Response) {
	if resp.Header == nil {
		resp.Header = make(http.Header)
	}
	h := resp.Header
	if !p.hideOrigin.empty() || p.server != "" {
		p.hideOrigin.remove(h)
		if p.server != "" {
			setValue(h, "Server", p.server)
		}
	}
	if len(h["Set-Cookie"]) > 0 {
		p.responseCookies(resp)
	}
	if p.level == LevelTransparent || p.level == LevelAnonymous {
		appendValue(h, "Via", via(resp.ProtoMajor, resp.ProtoMinor))
	}
}

// responseCookies applies the cookie actions to resp's Set-Cookie fields.
func (p *Profile) responseCookies(resp *http.Response) {
	h := resp.Header
	if p.cookies == modeStrip {
		delete(h, "Set-Cookie")
		return
	}
	if req := resp.Request; req != nil && (p.cookies == modeThirdParty || len(p.setCookieBlock) > 0) {
		t := requestTarget(req)
		if p.cookies == modeThirdParty && (markedCrossSite(req) || thirdParty(req.Header, t)) {
			delete(h, "Set-Cookie")
			return
		}
		host := strings.ToLower(t.host)
		for _, m := range p.setCookieBlock {
			if m.Match(host) {
				delete(h, "Set-Cookie")
				return
			}
		}
	}
	if p.sessionCookies {
		applySessionOnly(h, p.now())
	}
}

// sweep removes, in one pass over h, the fields that need a look at every name:
// the identifying ones (all levels but transparent), the client hints the agent
// step asks for, and remove_headers' globs.
func (p *Profile) sweep(h http.Header, hints hintRemoval) {
	ids, globs := p.level != LevelTransparent, p.removeHeaders.hasPatterns()
	if !ids && hints == hintsKept && !globs {
		return
	}
	for name := range h {
		if ids && identifying(name) || hints.clientHint(name) || globs && p.removeHeaders.matchPattern(name) {
			delete(h, name)
		}
	}
}

// clientAddressList is the one list of request fields that name the client,
// its address or a proxy on the way (canonical spelling, space-separated,
// sorted): the fields elite and anonymous remove, beside the prefixes and
// fragments identifying also matches. ClientAddressFields returns it and
// docs/threats.md reproduces it (TestClientAddressFieldsDocumented).
const clientAddressList = "Akamai-Client-Ip Ali-Cdn-Real-Ip Cdn-Real-Ip Cdn-Src-Ip Cf-Connecting-Ip " +
	"Cf-Connecting-Ipv6 Cf-Pseudo-Ipv4 Client-Ip Coming-From Fastly-Client-Ip Forwarded Forwarded-For " +
	"Forwarded-For-Ip From Http-Client-Ip Http-X-Forwarded-For Remote-Addr True-Client-Ip Via " +
	"Wl-Proxy-Client-Ip X-Appengine-User-Ip X-Azure-Clientip X-Azure-Socketip X-Bluecoat-Via X-Client-Ip " +
	"X-Cluster-Client-Ip X-Coming-From X-Envoy-External-Address X-Forwarded X-Imforwards X-Nokia-Ipaddress " +
	"X-Original-Forwarded-For X-Originating-Ip X-Proxy-Id X-Proxyuser-Ip X-Real-Client-Ip X-Real-Ip " +
	"X-Remote-Addr X-Remote-Ip X-True-Client-Ip X-Up-Calling-Line-Id X-Wap-Network-Client-Ip"

// clientAddressPrefixes and clientAddressFragments widen the list to the
// spellings nobody can enumerate: a field whose name starts with a prefix or
// holds a fragment anywhere (any case, '_' taken as '-') is removed too.
const (
	clientAddressPrefixes  = "x-forwarded- proxy-"
	clientAddressFragments = "client-ip clientip real-ip connecting-ip originating-ip forwarded-for user-ip " +
		"socket-ip socketip remote-addr remote-ip"
)

// ClientAddressFields returns the fields the elite and anonymous levels remove
// by name (canonical spelling, sorted). Besides these, every field starting
// with X-Forwarded- or Proxy- and every field whose name holds client-ip,
// clientip, real-ip, connecting-ip, originating-ip, forwarded-for, user-ip,
// socket-ip, socketip, remote-addr or remote-ip is removed, in any case and
// with '_' for '-'.
func ClientAddressFields() []string { return strings.Fields(clientAddressList) }

// identifying reports whether the field called name names the client, its
// address or a proxy: a field of clientAddressList, or one matching
// clientAddressPrefixes or clientAddressFragments, in any case and also when
// written with underscores ("X_Forwarded_For"), which CGI-style origins read
// as the same variable. It does not allocate.
func identifying(name string) bool {
	for list := clientAddressPrefixes; list != ""; {
		var p string
		p, list, _ = strings.Cut(list, " ")
		if len(name) >= len(p) && equalFieldFold(name[:len(p)], p) {
			return true
		}
	}
	if !mayNameAddress(name) {
		return false
	}
	for list := clientAddressFragments; list != ""; {
		var f string
		f, list, _ = strings.Cut(list, " ")
		if containsFieldFold(name, f) {
			return true
		}
	}
	// The list in its canonical spelling first (net/http canonicalizes names),
	// then any other spelling.
	for i, rest := 0, clientAddressList; ; {
		j := strings.Index(rest[i:], name)
		if j < 0 {
			break
		}
		at := i + j
		if (at == 0 || rest[at-1] == ' ') && (at+len(name) == len(rest) || rest[at+len(name)] == ' ') {
			return true
		}
		i = at + 1
	}
	for list := clientAddressList; list != ""; {
		var tok string
		tok, list, _ = strings.Cut(list, " ")
		if len(tok) == len(name) && equalFieldFold(name, tok) {
			return true
		}
	}
	return false
}

// mayNameAddress is identifying's quick test: every name on the list and every
// fragment holds "ip", "id", "addr", "for", "from" or "via" (any case); most request
// fields (Accept, Cookie, Sec-Fetch-Site…) hold none and are passed at once.
func mayNameAddress(name string) bool {
	for i := 0; i+1 < len(name); i++ {
		switch name[i] | 0x20 {
		case 'i':
			if c := name[i+1] | 0x20; c == 'p' || c == 'd' {
				return true
			}
		case 'a':
			if i+3 < len(name) && equalFieldFold(name[i:i+4], "addr") {
				return true
			}
		case 'f':
			if i+2 < len(name) && (equalFieldFold(name[i:i+3], "for") || equalFieldFold(name[i:i+3], "fro")) {
				return true
			}
		case 'v':
			if i+2 < len(name) && equalFieldFold(name[i:i+3], "via") {
				return true
			}
		}
	}
	return false
}

// equalFieldFold reports whether field names a and b (same length) are equal
// ignoring ASCII case and taking '_' as '-'.
func equalFieldFold(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if x != y && (x|0x20 != y|0x20 || x|0x20 < 'a' || x|0x20 > 'z') {
			return false
		}
	}
	return true
}

// containsFieldFold reports whether name holds frag (lower case) as
// equalFieldFold compares.
func containsFieldFold(name, frag string) bool {
	for i := 0; i+len(frag) <= len(name); i++ {
		if equalFieldFold(name[i:i+len(frag)], frag) {
			return true
		}
	}
	return false
}

// hasPrefixFold reports whether s starts with the lower-case ASCII prefix, ignoring case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// appendValue appends v to the comma-separated list in field name (canonical),
// joining any repeated lines into one as intermediaries do for X-Forwarded-For.
// The request's own value slice is reused.
func appendValue(h http.Header, name, v string) {
	prior := h[name]
	switch len(prior) {
	case 0:
		h[name] = []string{v}
	case 1:
		prior[0] = prior[0] + ", " + v
	default:
		prior[0] = strings.Join(prior, ", ") + ", " + v
		h[name] = prior[:1]
	}
}

// setValue makes v the only value of field name (canonical), reusing the message's
// own value slice when it has one.
func setValue(h http.Header, name, v string) {
	if vs := h[name]; len(vs) > 0 {
		vs[0] = v
		h[name] = vs[:1]
		return
	}
	h[name] = []string{v}
}

// via returns the Via element for a message received with the given version.
func via(major, minor int) string {
	switch {
	case major == 1 && minor == 0:
		return "1.0 " + ViaPseudonym
	case major == 2:
		return "2 " + ViaPseudonym // RFC 9113 names the version "2"
	case major == 3:
		return "3 " + ViaPseudonym
	}
	return "1.1 " + ViaPseudonym
}

// PrivacyConfig returns the settings of the Privacy profile, the strong preset
// behind policies/privacy.yaml: elite; Referer only to the same origin; a generic
// user agent with consistent client hints; Accept-Language "en-US,en;q=0.9";
// Chrome's X-Client-Data and the device client hints removed; Sec-GPC; third-party
// cookies stripped and every cookie made session-only; the default tracking
// parameters stripped; the access log does not record the browser's User-Agent
// and Referer (anonymous_log). It names no tracker lists (they come from the policy).
func PrivacyConfig() ProfileConfig {
	return ProfileConfig{
		Level:          "elite",
		Referrer:       "same-origin",
		UserAgent:      "generic",
		ClientHints:    "consistent",
		AcceptLanguage: "en-US,en;q=0.9",
		RemoveHeaders: []string{
			"X-Client-Data", "X-Uidh", "Device-Memory", "Dpr", "Width", "Viewport-Width", "Rtt", "Downlink", "Ect",
			"Sec-Ch-Device-Memory", "Sec-Ch-Dpr", "Sec-Ch-Width", "Sec-Ch-Viewport-*",
		},
		GPC:            true,
		Cookies:        "third-party",
		SessionCookies: true,
		AnonymousLog:   true,
	}
}

// Privacy returns the built-in strong privacy profile (PrivacyConfig), named "privacy".
func Privacy() *Profile {
	p, err := Compile("privacy", PrivacyConfig(), nil)
	if err != nil {
		// PrivacyConfig is a constant checked by TestPrivacyCompiles; this is unreachable.
		panic("anonymize: built-in privacy profile is invalid: " + err.Error())
	}
	return p
}
