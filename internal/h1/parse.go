package h1

import (
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"github.com/portcullis/portcullis/internal/fieldtext"
	"golang.org/x/net/http/httpguts"
)

// Error is a request head the parser refuses: the status it is answered
// with (and the connection closed) and why.
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string {
	return strconv.Itoa(e.Status) + " " + http.StatusText(e.Status) + ": " + e.Reason
}

func bad(reason string) *Error { return &Error{Status: http.StatusBadRequest, Reason: reason} }

// The refusals of the framing headers: each is a way to make two parsers
// read one byte stream as different requests (request smuggling).
var (
	errCLTE      = bad("Content-Length with Transfer-Encoding")
	errTE10      = bad("Transfer-Encoding in an HTTP/1.0 request")
	errFold      = bad("obsolete line folding in a header field")
	errSpace     = bad("whitespace in a field name")
	errMultiCL   = bad("more than one Content-Length")
	errBadCL     = bad("bad Content-Length")
	errBareCR    = bad("a CR not followed by LF")
	errNoHost    = bad("missing required Host header")
	errManyHosts = bad("too many Host headers")
	errBadHost   = bad("malformed Host header")
	errLine      = bad("malformed request line")
	errMethod    = bad("invalid method")
	errTarget    = bad("malformed request target")
	errNoTarget  = bad("empty request target")
	errAuthority = bad("CONNECT target is not host:port")
	errVersion   = bad("malformed HTTP version")
	errField     = bad("malformed header line")
	errName      = bad("invalid header field name")
	errValue     = bad("invalid header field value")
	errTrailer   = bad("bad Trailer key")
	errTE        = &Error{Status: http.StatusNotImplemented, Reason: "unsupported transfer encoding"}
	errProto     = &Error{Status: http.StatusHTTPVersionNotSupported, Reason: "unsupported protocol version"}
	errExpect    = &Error{Status: http.StatusExpectationFailed, Reason: "unsupported Expect"}
	errTooLarge  = &Error{Status: http.StatusRequestHeaderFieldsTooLarge, Reason: "request header too large"}
	errURITooBig = &Error{Status: http.StatusRequestURITooLong, Reason: "request target too long"}
)

// head is what a request head says about its framing and its connection,
// beside the http.Request it fills.
type head struct {
	contentLength int64 // 0 without a body
	chunked       bool
	close         bool // the connection ends after this request
	keepAlive10   bool // an HTTP/1.0 request asked to keep the connection
	expect        bool // Expect: 100-continue, with a body
}

// parseHead reads the request head s (request line, fields, and the empty
// line) into r and u (r.URL is set to u), using vals for the header values.
// It is strict: see the package comment for what it refuses.
func parseHead(s string, r *http.Request, u *url.URL, vals []string, te *[1]string) (head, *Error) {
	var h head
	line, s := nextLine(s)
	if strings.IndexByte(line, '\r') >= 0 {
		return h, errBareCR
	}
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 {
		return h, errLine // HTTP/0.9 ("GET /") included
	}
	if method == "" || !fieldtext.IsToken(method) {
		return h, errMethod
	}
	if target == "" {
		return h, errNoTarget
	}
	if !validTarget(target) {
		return h, errTarget
	}
	major, minor, ok := parseVersion(proto)
	if !ok {
		return h, errVersion
	}
	if major != 1 {
		return h, errProto
	}
	*r = http.Request{Method: method, Proto: proto, ProtoMajor: major, ProtoMinor: minor, RequestURI: target, URL: u}
	if err := parseTarget(method, target, u); err != nil {
		return h, err
	}

	// Fields: count the lines first so that one slice holds every value.
	n := strings.Count(s, "\n")
	if n > len(vals) {
		vals = make([]string, n)
	}
	hdr := make(http.Header, n)
	var host, cl, teVal string
	hosts, cls, tes := 0, 0, 0
	for {
		line, s = nextLine(s)
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return h, errFold
		}
		colon := strings.IndexByte(line, ':')
		if colon < 0 {
			if strings.IndexByte(line, '\r') >= 0 {
				return h, errBareCR
			}
			return h, errField
		}
		name, value := line[:colon], fieldtext.TrimOWS(line[colon+1:])
		for i := 0; i < len(name); i++ {
			if c := name[i]; !fieldtext.IsTokenByte(c) {
				if c == ' ' || c == '\t' {
					return h, errSpace
				}
				return h, errName
			}
		}
		if name == "" {
			return h, errName
		}
		for i := 0; i < len(value); i++ {
			if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
				if c == '\r' {
					return h, errBareCR
				}
				return h, errValue
			}
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		switch key {
		case "Host":
			hosts++
			host = value
			continue
		case "Transfer-Encoding":
			tes++
			teVal = value
			continue
		case "Content-Length":
			cls++
			cl = value
		}
		if prev, ok := hdr[key]; ok {
			hdr[key] = append(prev, value)
			continue
		}
		vals[0] = value
		hdr[key] = vals[:1:1]
		vals = vals[1:]
	}
	r.Header = hdr

	// Host: the target's authority first (absolute form), else the field.
	if minor >= 1 && method != http.MethodConnect {
		if hosts == 0 {
			return h, errNoHost
		}
	}
	if hosts > 1 {
		return h, errManyHosts
	}
	if hosts == 1 && !httpguts.ValidHostHeader(host) {
		return h, errBadHost
	}
	r.Host = u.Host
	if r.Host == "" {
		r.Host = host
	}

	// Framing (RFC 9112 §6).
	switch {
	case tes > 0:
		if minor == 0 {
			return h, errTE10
		}
		if cls > 0 {
			return h, errCLTE
		}
		if tes > 1 || !strings.EqualFold(teVal, "chunked") {
			return h, errTE
		}
		h.chunked, h.contentLength = true, -1
		te[0] = "chunked"
		r.TransferEncoding = te[:]
	case cls > 1:
		return h, errMultiCL
	case cls == 1:
		n, ok := parseDecimal(cl)
		if !ok {
			return h, errBadCL
		}
		h.contentLength = n
	}
	r.ContentLength = h.contentLength

	if declared, ok := hdr["Trailer"]; ok && h.chunked {
		// As net/http: a Trailer field counts with a chunked body only,
		// and moves to r.Trailer.
		delete(hdr, "Trailer")
		if err := declareTrailer(r, declared); err != nil {
			return h, err
		}
	}
	if e, ok := hdr["Expect"]; ok && len(e) > 0 && e[0] != "" {
		switch {
		case !strings.EqualFold(e[0], "100-continue") || len(e) > 1:
			return h, errExpect
		case minor >= 1 && h.contentLength != 0:
			h.expect = true
		}
	}
	closeTok, keepTok := connectionTokens(hdr["Connection"])
	if minor == 0 {
		h.close = !keepTok
		h.keepAlive10 = keepTok
	} else {
		h.close = closeTok
	}
	r.Close = h.close
	// As net/http: Pragma: no-cache stands for Cache-Control: no-cache.
	if p, ok := hdr["Pragma"]; ok && len(p) > 0 && p[0] == "no-cache" {
		if _, ok := hdr["Cache-Control"]; !ok {
			hdr["Cache-Control"] = []string{"no-cache"}
		}
	}
	return h, nil
}

// nextLine returns the first line of s without its line end (CRLF or a bare
// LF, which RFC 9112 §2.2 lets a recipient accept) and the rest.
func nextLine(s string) (line, rest string) {
	i := strings.IndexByte(s, '\n')
	if i < 0 {
		return s, ""
	}
	line, rest = s[:i], s[i+1:]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, rest
}

// parseTarget fills u from the request target in its four forms (RFC 9112
// §3.2): origin ("/path?q"), absolute ("http://host/path"), authority
// ("host:port", CONNECT only) and asterisk ("*").
func parseTarget(method, target string, u *url.URL) *Error {
	switch {
	case method == http.MethodConnect && target[0] != '/':
		v, err := url.ParseRequestURI("http://" + target)
		if err != nil {
			return errTarget
		}
		if v.Host == "" || v.Path != "" || v.RawQuery != "" || v.User != nil || v.Fragment != "" {
			return errAuthority
		}
		*u = *v
		u.Scheme = ""
	case target[0] == '/':
		if !plainTarget(target, u) {
			v, err := url.ParseRequestURI(target)
			if err != nil {
				return errTarget
			}
			*u = *v
		}
	case target == "*":
		*u = url.URL{Path: "*"}
	default:
		if !plainAbsolute(target, u) {
			v, err := url.ParseRequestURI(target)
			if err != nil {
				return errTarget
			}
			*u = *v
		}
	}
	return nil
}

// plainAbsolute fills u as url.ParseRequestURI would for an absolute-form
// target (a forward proxy's request: "http://host:port/path?query") whose
// scheme is "http://" or "https://" in lower case, whose host is a name or an
// IPv4 address of letters, digits, '-' and '.' with at most a port of digits
// (no user information, IPv6 literal or escape), and whose path and query
// plainTarget takes, without allocating; it reports false (u untouched) for
// any other target.
func plainAbsolute(t string, u *url.URL) bool {
	var scheme string
	switch {
	case strings.HasPrefix(t, "http://"):
		scheme = "http"
	case strings.HasPrefix(t, "https://"):
		scheme = "https"
	default:
		return false
	}
	rest := t[len(scheme)+len("://"):]
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	host := rest[:end]
	if !plainHost(host) || !plainTarget(rest[end:], u) {
		return false
	}
	u.Scheme, u.Host = scheme, host
	return true
}

// plainHost reports whether h is a non-empty name of letters, digits, '-'
// and '.', followed by nothing or by ':' and one or more digits.
func plainHost(h string) bool {
	name, port, hasPort := strings.Cut(h, ":")
	if name == "" || (hasPort && port == "") {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	for i := 0; i < len(port); i++ {
		if c := port[i]; c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// plainTarget fills u as url.ParseRequestURI would for an origin-form target
// whose path holds only characters url leaves unescaped in a path (letters,
// digits and -._~/$&+,;=:@), the common case, without allocating; it reports
// false (u untouched) for any other target.
func plainTarget(t string, u *url.URL) bool {
	path, query, hasQuery := strings.Cut(t, "?")
	for i := 0; i < len(path); i++ {
		c := path[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/$&+,;=:@", c) >= 0) {
			return false
		}
	}
	if strings.HasPrefix(path, "//") || strings.IndexByte(query, '#') >= 0 {
		return false
	}
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	return true
}

// validTarget reports whether t is a non-empty target without controls or
// spaces (bytes above 0x7f pass, as net/http lets them).
func validTarget(t string) bool {
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// parseVersion reads "HTTP/d.d" (net/http reads no other shape).
func parseVersion(p string) (major, minor int, ok bool) {
	switch p {
	case "HTTP/1.1":
		return 1, 1, true
	case "HTTP/1.0":
		return 1, 0, true
	}
	if len(p) != 8 || !strings.HasPrefix(p, "HTTP/") || p[6] != '.' {
		return 0, 0, false
	}
	ma, mi := p[5], p[7]
	if ma < '0' || ma > '9' || mi < '0' || mi > '9' {
		return 0, 0, false
	}
	return int(ma - '0'), int(mi - '0'), true
}

// parseDecimal reads a Content-Length: digits only (no sign, no list), at
// most 2^63-1.
func parseDecimal(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// declareTrailer fills r.Trailer with the keys a Trailer field names
// (values nil until the body's end), refusing framing fields, as net/http.
func declareTrailer(r *http.Request, declared []string) *Error {
	for _, v := range declared {
		for k := range strings.SplitSeq(v, ",") {
			k = textproto.CanonicalMIMEHeaderKey(fieldtext.TrimOWS(k))
			switch k {
			case "":
				continue
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return errTrailer
			}
			if r.Trailer == nil {
				r.Trailer = make(http.Header)
			}
			r.Trailer[k] = nil
		}
	}
	return nil
}

// connectionTokens reports whether Connection fields name close and keep-alive.
func connectionTokens(vs []string) (closeTok, keep bool) {
	for _, v := range vs {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			switch t = fieldtext.TrimOWS(t); {
			case strings.EqualFold(t, "close"):
				closeTok = true
			case strings.EqualFold(t, "keep-alive"):
				keep = true
			}
		}
	}
	return closeTok, keep
}

// hasToken reports whether a comma-separated field value names tok.
func hasToken(vs []string, tok string) bool {
	for _, v := range vs {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(fieldtext.TrimOWS(t), tok) {
				return true
			}
		}
	}
	return false
}

// headEnd returns the length of the head at the start of b through its
// empty line, or -1 with the offset from which to search again once more
// bytes arrived.
func headEnd(b []byte, from int) (end, next int) {
	for i := from; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1, len(b)
		}
		k := i + j + 1 // just after the LF
		switch {
		case k < len(b) && b[k] == '\n':
			return k + 1, 0
		case k+1 < len(b) && b[k] == '\r' && b[k+1] == '\n':
			return k + 2, 0
		case k >= len(b) || (k+1 >= len(b) && b[k] == '\r'):
			return -1, i + j // look at this LF again with more bytes
		}
		i = k
	}
}
