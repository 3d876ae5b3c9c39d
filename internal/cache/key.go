package cache

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

type originKey struct{}

type origin struct{ scheme, host string }

// WithOrigin returns ctx telling the cache the client-facing scheme and host of
// the request. The reverse door should set it: after Rewrite the outgoing URL
// names the pool member, but cache keys (and purges) must use the public URL.
// Without it the key uses the outgoing request's URL scheme and Host.
func WithOrigin(ctx context.Context, scheme, host string) context.Context {
	return context.WithValue(ctx, originKey{}, origin{scheme: scheme, host: host})
}

// originOf returns the normalised scheme and host used in req's keys.
func originOf(req *http.Request) (scheme, host string) {
	if o, ok := req.Context().Value(originKey{}).(origin); ok {
		scheme, host = o.scheme, o.host
	} else {
		scheme, host = req.URL.Scheme, req.Host
		if host == "" {
			host = req.URL.Host
		}
	}
	return normOrigin(scheme, host)
}

// normOrigin returns the scheme and host as keys use them: lower case, the
// host without its trailing dot or the scheme's default port. It does not
// allocate when they are already so.
func normOrigin(scheme, host string) (string, string) {
	if scheme == "" {
		scheme = "http"
	}
	scheme = strings.ToLower(scheme)
	host = strings.ToLower(host)
	name, port := splitPort(host)
	if (port == "80" && scheme == "http") || (port == "443" && scheme == "https") {
		port = ""
	}
	n := strings.TrimRight(name, ".")
	switch {
	case port == "":
		return scheme, n
	case n == name:
		return scheme, host
	}
	return scheme, n + ":" + port
}

// splitPort splits host into its name and port; port is "" when there is
// none. A bracketed IPv6 literal keeps its brackets.
func splitPort(host string) (name, port string) {
	i := strings.LastIndexByte(host, ':')
	if i < 0 {
		return host, ""
	}
	if strings.IndexByte(host[:i], ':') >= 0 && !strings.HasSuffix(host[:i], "]") {
		return host, "" // an unbracketed IPv6 literal: no port
	}
	if strings.IndexByte(host[i:], ']') >= 0 {
		return host, ""
	}
	return host[:i], host[i+1:]
}

// key is the primary cache key: scheme://host/path?query, the query without the
// parameters the policy ignores. GET and HEAD share it (only GET responses are
// stored; HEAD is answered from them).
func (cp *compiledPolicy) key(scheme, host string, u *url.URL) string {
	var buf [256]byte
	return string(cp.appendKey(buf[:0], scheme, host, u))
}

// appendKey appends the key to dst (so that hits can look up without
// allocating).
func (cp *compiledPolicy) appendKey(dst []byte, scheme, host string, u *url.URL) []byte {
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	q := u.RawQuery
	if len(cp.ignoreQuery) > 0 && q != "" {
		q = cp.filterQuery(q)
	}
	dst = append(dst, scheme...)
	dst = append(dst, "://"...)
	dst = append(dst, host...)
	dst = append(dst, path...)
	if q != "" {
		dst = append(dst, '?')
		dst = append(dst, q...)
	}
	return dst
}

func (cp *compiledPolicy) filterQuery(q string) string {
	var b strings.Builder
	for q != "" {
		var part string
		part, q, _ = strings.Cut(q, "&")
		name, _, _ := strings.Cut(part, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		if cp.ignored(name) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(part)
	}
	return b.String()
}

// keyHeaders returns the request's signature for the policy's key headers.
func (cp *compiledPolicy) keySignature(h http.Header) string {
	if len(cp.keyHeaders) == 0 {
		return ""
	}
	var b strings.Builder
	for _, n := range cp.keyHeaders {
		b.WriteString(n)
		b.WriteByte(':')
		b.WriteString(normValues(h[n]))
		b.WriteByte('\n')
	}
	return b.String()
}
