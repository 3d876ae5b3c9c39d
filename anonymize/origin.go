package anonymize

import (
	"net/http"
	"net/netip"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// urlOrigin splits an absolute URL into its scheme and authority (host[:port],
// without userinfo) and returns the length of "scheme://authority". It allocates
// nothing. ok is false for anything but an absolute hierarchical URL.
func urlOrigin(u string) (scheme, authority string, end int, ok bool) {
	i := strings.Index(u, "://")
	if i <= 0 {
		return "", "", 0, false
	}
	scheme = u[:i]
	rest := u[i+3:]
	n := strings.IndexAny(rest, "/?#")
	if n < 0 {
		n = len(rest)
	}
	authority = rest[:n]
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		authority = authority[at+1:]
	}
	if authority == "" {
		return "", "", 0, false
	}
	return scheme, authority, i + 3 + n, true
}

// splitHostPort returns the host (without brackets) and port of an authority; port
// is "" when absent. It allocates nothing.
func splitHostPort(authority string) (host, port string) {
	if strings.HasPrefix(authority, "[") {
		end := strings.IndexByte(authority, ']')
		if end < 0 {
			return authority, ""
		}
		host = authority[1:end]
		if rest := authority[end+1:]; strings.HasPrefix(rest, ":") {
			port = rest[1:]
		}
		return host, port
	}
	if i := strings.LastIndexByte(authority, ':'); i >= 0 && strings.IndexByte(authority[:i], ':') < 0 {
		return authority[:i], authority[i+1:]
	}
	return authority, ""
}

// defaultPort returns the port a scheme implies.
func defaultPort(scheme string) string {
	switch {
	case strings.EqualFold(scheme, "https"), strings.EqualFold(scheme, "wss"):
		return "443"
	case strings.EqualFold(scheme, "http"), strings.EqualFold(scheme, "ws"):
		return "80"
	}
	return ""
}

// target is the destination of a request as the profile sees it.
type target struct {
	scheme string
	host   string // without port or brackets
	port   string // explicit or implied by scheme
}

// requestTarget returns r's destination: the absolute URL's for a forward request,
// else Host and the connection's TLS state.
func requestTarget(r *http.Request) target {
	var t target
	authority := r.Host
	if r.URL != nil {
		t.scheme = r.URL.Scheme
		if r.URL.Host != "" {
			authority = r.URL.Host
		}
	}
	if t.scheme == "" {
		t.scheme = "http"
		if r.TLS != nil {
			t.scheme = "https"
		}
	}
	t.host, t.port = splitHostPort(authority)
	t.host = strings.TrimSuffix(t.host, ".")
	if t.port == "" {
		t.port = defaultPort(t.scheme)
	}
	return t
}

// trustworthy reports whether t is a potentially trustworthy origin in the
// browsers' sense (W3C Secure Contexts): https or wss, a loopback address,
// localhost or a name under .localhost. Browsers send client hints only there.
func (t target) trustworthy() bool {
	if strings.EqualFold(t.scheme, "https") || strings.EqualFold(t.scheme, "wss") {
		return true
	}
	if strings.EqualFold(t.host, "localhost") || hasSuffixFold(t.host, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(t.host)
	return err == nil && a.Unmap().IsLoopback()
}

// hasSuffixFold reports whether s ends with the lower-case ASCII suffix, ignoring case.
func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// sameOrigin reports whether the absolute URL ref has t's origin.
func sameOrigin(ref string, t target) bool {
	scheme, authority, _, ok := urlOrigin(ref)
	if !ok || !strings.EqualFold(scheme, t.scheme) {
		return false
	}
	host, port := splitHostPort(authority)
	if port == "" {
		port = defaultPort(scheme)
	}
	return strings.EqualFold(strings.TrimSuffix(host, "."), t.host) && port == t.port
}

// sameSite reports whether hosts a and b share a registrable domain (eTLD+1 from
// the public suffix list). IP addresses and names without one are compared whole.
func sameSite(a, b string) bool {
	a, b = strings.ToLower(strings.TrimSuffix(a, ".")), strings.ToLower(strings.TrimSuffix(b, "."))
	if a == b {
		return true
	}
	if _, err := netip.ParseAddr(a); err == nil {
		return false
	}
	if _, err := netip.ParseAddr(b); err == nil {
		return false
	}
	sa, errA := publicsuffix.EffectiveTLDPlusOne(a)
	sb, errB := publicsuffix.EffectiveTLDPlusOne(b)
	if errA != nil || errB != nil {
		return false
	}
	return sa == sb
}

// thirdParty reports whether r is made on behalf of a page on another site than
// its target: Sec-Fetch-Site when the browser sent it, else the Referer's
// registrable domain. A request with neither (a typed URL, a bookmark, a non-browser
// client) is first-party.
// fetchSiteDecides reports whether h's Sec-Fetch-Site settles thirdParty.
func fetchSiteDecides(h http.Header) bool {
	switch h.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site", "same-origin", "none":
		return true
	}
	return false
}

func thirdParty(h http.Header, t target) bool {
	switch h.Get("Sec-Fetch-Site") {
	case "cross-site":
		return true
	case "same-site", "same-origin", "none":
		return false
	}
	ref := h.Get("Referer")
	if ref == "" {
		return false
	}
	_, authority, _, ok := urlOrigin(ref)
	if !ok {
		return false
	}
	host, _ := splitHostPort(authority)
	return !sameSite(host, t.host)
}

// rewriteReferer applies the referrer mode to h for a request to t.
func rewriteReferer(h http.Header, m mode, t target) {
	vs := h["Referer"]
	if len(vs) == 0 {
		return
	}
	switch m {
	case modeStrip:
		delete(h, "Referer")
	case modeSameOrigin:
		if len(vs) != 1 || !sameOrigin(vs[0], t) {
			delete(h, "Referer")
		}
	case modeOrigin:
		scheme, _, end, ok := urlOrigin(vs[0])
		if len(vs) != 1 || !ok || !(strings.EqualFold(scheme, "http") || strings.EqualFold(scheme, "https")) {
			delete(h, "Referer")
			return
		}
		ref := vs[0]
		if strings.IndexByte(ref[:end], '@') >= 0 {
			delete(h, "Referer") // userinfo in a Referer is malformed; don't rebuild it
			return
		}
		if end < len(ref) && ref[end] == '/' {
			vs[0] = ref[:end+1] // a substring: no allocation
			return
		}
		vs[0] = ref[:end] + "/"
	}
}
