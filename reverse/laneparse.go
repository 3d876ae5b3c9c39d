package reverse

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// laneHead is a request head the lane takes, as parseLaneHead read it.
type laneHead struct {
	method string   // http.MethodGet or http.MethodHead
	target string   // origin-form request target
	url    *url.URL // target as net/http parses it
	host   string   // the one Host field
	close  bool     // Connection: close
}

// laneMaxFields bounds the header fields of a request the lane takes.
const laneMaxFields = 64

// laneTakesPrefix reports whether a request starting with b may be one the
// lane takes: it begins with "GET " or "HEAD " (or a prefix of them). Anything
// else goes to net/http at once, without waiting for the whole head.
func laneTakesPrefix(b []byte) bool {
	for _, m := range [...]string{"GET ", "HEAD "} {
		n := min(len(b), len(m))
		if string(b[:n]) == m[:n] {
			return true
		}
	}
	return false
}

// plainTarget fills u as url.ParseRequestURI would for a target whose path
// holds only characters url leaves unescaped in a path (letters, digits and
// -._~/$&+,;=:@), the common case, without allocating; it reports false
// (u untouched) for any other target.
func plainTarget(t string, u *url.URL) bool {
	path, query, hasQuery := strings.Cut(t, "?")
	for i := 0; i < len(path); i++ {
		c := path[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/$&+,;=:@", c) >= 0) {
			return false
		}
	}
	if strings.HasPrefix(path, "//") {
		return false
	}
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	return true
}

// parseLaneHead reads a request head s (request line, header fields, and the
// empty line, each ending in CRLF) into hdr (which must be empty), appending
// field values to vals, and reports whether it is a request the lane takes.
//
// The lane takes only what it can read without doubt: an HTTP/1.1 GET or HEAD
// in origin form, CRLF line ends, no obs-fold, field names of token
// characters, field values without control characters, exactly one valid
// Host, no Content-Length, Transfer-Encoding, Expect, Upgrade or
// HTTP2-Settings (so no body and no protocol switch), a Connection field
// naming only close and keep-alive, and at most laneMaxFields fields.
// Everything else — including requests net/http would refuse — is declined
// and goes to net/http with its bytes untouched, so the lane never decides
// how an ambiguous request is read. For the requests it takes, hdr is what
// net/http would build: canonical names, values trimmed of spaces and tabs,
// Host moved out, and Pragma: no-cache copied to Cache-Control when that is
// absent.
func parseLaneHead(s string, hdr http.Header, vals []string, u *url.URL) (laneHead, []string, bool) {
	var h laneHead
	line, s, ok := strings.Cut(s, "\r\n")
	if !ok || !plainLine(line) {
		return h, vals, false
	}
	switch {
	case strings.HasPrefix(line, "GET "):
		h.method, line = http.MethodGet, line[4:]
	case strings.HasPrefix(line, "HEAD "):
		h.method, line = http.MethodHead, line[5:]
	default:
		return h, vals, false
	}
	target, ok := strings.CutSuffix(line, " HTTP/1.1")
	if !ok || !laneTarget(target) {
		return h, vals, false
	}
	if !plainTarget(target, u) {
		var err error
		if u, err = url.ParseRequestURI(target); err != nil {
			return h, vals, false
		}
	}
	h.target, h.url = target, u
	hosts := 0
	for fields := 0; ; fields++ {
		line, s, ok = strings.Cut(s, "\r\n")
		if !ok || fields > laneMaxFields || !plainLine(line) {
			return h, vals, false
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !httpguts.ValidHeaderFieldName(name) {
			return h, vals, false // also obs-fold: a leading space is not a token
		}
		value = strings.Trim(value, " \t")
		if !httpguts.ValidHeaderFieldValue(value) {
			return h, vals, false
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		switch key {
		case "Host":
			hosts++
			h.host = value
			continue
		case "Content-Length", "Transfer-Encoding", "Expect", "Upgrade", "Http2-Settings":
			return h, vals, false
		case "Connection":
			c, other := connectionTokens(value)
			if other {
				return h, vals, false // names a hop-by-hop field the proxy would remove
			}
			h.close = h.close || c
		}
		if prev, dup := hdr[key]; dup {
			hdr[key] = append(prev, value)
			continue
		}
		vals = append(vals, value)
		hdr[key] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	if s != "" || hosts != 1 || !httpguts.ValidHostHeader(h.host) {
		return h, vals, false
	}
	if p := hdr["Pragma"]; len(p) > 0 && p[0] == "no-cache" {
		if _, ok := hdr["Cache-Control"]; !ok {
			hdr["Cache-Control"] = []string{"no-cache"}
		}
	}
	return h, vals, true
}

// plainLine reports whether a line holds no CR or LF (a bare one is declined).
func plainLine(s string) bool {
	return strings.IndexByte(s, '\n') < 0 && strings.IndexByte(s, '\r') < 0
}

// laneTarget reports whether t is an origin-form target of visible ASCII
// without a fragment.
func laneTarget(t string) bool {
	if t == "" || t[0] != '/' {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// connectionTokens reports whether a Connection field value names close, and
// whether it names anything but close and keep-alive.
func connectionTokens(v string) (close, other bool) {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		switch t = strings.Trim(t, " \t"); {
		case strings.EqualFold(t, "close"):
			close = true
		case strings.EqualFold(t, "keep-alive"), t == "":
		default:
			other = true
		}
	}
	return close, other
}
