package h2

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// headerBlock collects one decoded header block and what is wrong with it.
type headerBlock struct {
	id                                        uint32
	endStream                                 bool
	selfDep                                   bool
	wire                                      int    // encoded bytes so far
	size                                      uint32 // RFC 9113 list size so far
	max                                       uint32
	tooLarge                                  bool
	invalid                                   string // why the block is malformed (stream error PROTOCOL_ERROR)
	regular                                   bool   // a regular field was seen
	npseudo                                   int
	method, scheme, authority, path, protocol string
	seen                                      uint8 // pseudo fields seen, one bit each
	fields                                    []hpack.HeaderField
}

const (
	seenMethod = 1 << iota
	seenScheme
	seenAuthority
	seenPath
	seenProtocol
)

func (hb *headerBlock) reset(max uint32) {
	fields := hb.fields[:0]
	*hb = headerBlock{max: max, fields: fields}
}

func (hb *headerBlock) bad(why string) {
	if hb.invalid == "" {
		hb.invalid = why
	}
}

// emit is the hpack decoder's callback: it checks each field as RFC 9113
// §8.2 and §8.3 ask.
func (hb *headerBlock) emit(f hpack.HeaderField) {
	hb.size += f.Size()
	if hb.size > hb.max {
		hb.tooLarge = true
	}
	if hb.tooLarge || hb.invalid != "" {
		return
	}
	if !httpguts.ValidHeaderFieldValue(f.Value) {
		hb.bad("invalid value of " + f.Name)
		return
	}
	if strings.HasPrefix(f.Name, ":") {
		if hb.regular {
			hb.bad("pseudo-header after a regular field")
			return
		}
		hb.npseudo++
		var bit uint8
		var dst *string
		switch f.Name {
		case ":method":
			bit, dst = seenMethod, &hb.method
		case ":scheme":
			bit, dst = seenScheme, &hb.scheme
		case ":authority":
			bit, dst = seenAuthority, &hb.authority
		case ":path":
			bit, dst = seenPath, &hb.path
		case ":protocol":
			bit, dst = seenProtocol, &hb.protocol
		default:
			hb.bad("unknown pseudo-header " + f.Name)
			return
		}
		if hb.seen&bit != 0 {
			hb.bad("duplicate " + f.Name)
			return
		}
		hb.seen |= bit
		*dst = f.Value
		return
	}
	hb.regular = true
	if !validFieldName(f.Name) {
		hb.bad("invalid field name")
		return
	}
	switch f.Name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		hb.bad("connection-specific field " + f.Name) // RFC 9113 §8.2.2
		return
	case "te":
		if f.Value != "trailers" {
			hb.bad("te other than trailers")
			return
		}
	}
	hb.fields = append(hb.fields, f)
}

// validFieldName: a token, in lower case (RFC 9113 §8.2.1).
func validFieldName(s string) bool {
	if !httpguts.ValidHeaderFieldName(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return true
}

type requestError string

func (e requestError) Error() string { return string(e) }

// newRequest fills r (and u, its URL) with the request a complete,
// well-formed header block stands for; it reports the declared
// Content-Length (-1: none). r and u live in the stream, so that a request
// costs one allocation for its state, not one per part; so does vals, the
// home of the header's values when they fit in it.
func (c *conn) newRequest(hb *headerBlock, r *http.Request, u *url.URL, vals []string) (int64, error) {
	if hb.seen&seenMethod == 0 || hb.method == "" || !validMethod(hb.method) {
		return 0, requestError("bad :method")
	}
	if hb.seen&seenProtocol != 0 {
		return 0, requestError("extended CONNECT is not offered")
	}
	requestURI := hb.path
	if hb.method == http.MethodConnect {
		if hb.seen&(seenScheme|seenPath) != 0 || hb.authority == "" {
			return 0, requestError("malformed CONNECT")
		}
		*u = url.URL{Host: hb.authority}
		requestURI = hb.authority
	} else {
		if hb.seen&seenScheme == 0 || hb.seen&seenPath == 0 || hb.path == "" || hb.scheme == "" {
			return 0, requestError("missing :scheme or :path")
		}
		if hb.path == "*" {
			if hb.method != http.MethodOptions {
				return 0, requestError(":path * outside OPTIONS")
			}
		} else if (hb.scheme == "http" || hb.scheme == "https") && hb.path[0] != '/' {
			return 0, requestError(":path not absolute")
		}
		if err := parsePath(hb.path, u); err != nil {
			return 0, requestError("bad :path")
		}
	}
	header := make(http.Header, len(hb.fields))
	// One backing array for the values: a field seen once (nearly all)
	// costs no allocation of its own.
	if len(hb.fields) <= len(vals) {
		vals = vals[:len(hb.fields)]
	} else {
		vals = make([]string, len(hb.fields))
	}
	var cookies []string
	for i, f := range hb.fields {
		if f.Name == "cookie" {
			cookies = append(cookies, f.Value)
			continue
		}
		k := canonicalKey(f.Name)
		if vv, ok := header[k]; ok {
			header[k] = append(vv, f.Value)
			continue
		}
		vals[i] = f.Value
		header[k] = vals[i : i+1 : i+1]
	}
	if len(cookies) > 0 {
		// RFC 9113 §8.2.3: crumbs are joined for HTTP/1.1 consumers.
		header["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	host := hb.authority
	if hv, ok := header["Host"]; ok {
		if len(hv) != 1 || (host != "" && !strings.EqualFold(hv[0], host)) {
			return 0, requestError("Host differs from :authority")
		}
		if host == "" {
			host = hv[0]
		}
		delete(header, "Host")
	}
	declared := int64(-1)
	if cl, ok := header["Content-Length"]; ok {
		for _, v := range cl {
			n, err := strconv.ParseUint(v, 10, 63)
			if err != nil || (declared >= 0 && int64(n) != declared) {
				return 0, requestError("bad content-length")
			}
			declared = int64(n)
		}
		if len(cl) > 1 {
			header["Content-Length"] = cl[:1]
		}
	}
	if hb.endStream && declared > 0 {
		return 0, requestError("content-length without a body")
	}
	var trailer http.Header
	for _, v := range header["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			k = http.CanonicalHeaderKey(textproto(k))
			if httpguts.ValidTrailerHeader(k) {
				if trailer == nil {
					trailer = make(http.Header)
				}
				trailer[k] = nil
			}
		}
	}
	delete(header, "Trailer") // as Go's server: the declaration lives in Request.Trailer
	// As Go's server: r.TLS only for :scheme https (and CONNECT), so that a
	// door can tell a proxied http:// request on a TLS connection from a
	// request for the site itself (the forward TLS door relies on it).
	tlsState := c.tlsState
	if hb.scheme != "" && hb.scheme != "https" {
		tlsState = nil
	}
	*r = http.Request{
		Method:     hb.method,
		URL:        u,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     header,
		Host:       host,
		RemoteAddr: c.remoteAddr,
		RequestURI: requestURI,
		TLS:        tlsState,
		Trailer:    trailer,
	}
	switch {
	case hb.endStream:
		r.ContentLength = 0
		r.Body = http.NoBody
	case declared >= 0:
		r.ContentLength = declared
	default:
		r.ContentLength = -1
	}
	return declared, nil
}

// parsePath sets u to url.ParseRequestURI(p): for the common :path (an
// absolute path of characters that need no escaping, and maybe a query)
// directly, without the allocation ParseRequestURI makes; anything else
// through ParseRequestURI.
func parsePath(p string, u *url.URL) error {
	if len(p) > 0 && p[0] == '/' {
		i := 0
		for i < len(p) && plainPathByte(p[i]) {
			i++
		}
		switch {
		case i == len(p):
			*u = url.URL{Path: p}
			return nil
		case p[i] == '?' && !hasCTL(p[i+1:]):
			*u = url.URL{Path: p[:i], RawQuery: p[i+1:], ForceQuery: i+1 == len(p)}
			return nil
		}
	}
	v, err := url.ParseRequestURI(p)
	if err != nil {
		return err
	}
	*u = *v
	return nil
}

// plainPathByte: c stands for itself in a URL path (url.URL keeps no
// RawPath for a path of these).
func plainPathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '/', '-', '.', '_', '~', '$', '&', '+', ',', ':', ';', '=', '@':
		return true
	}
	return false
}

func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

func textproto(s string) string { return strings.TrimSpace(s) }

func validMethod(m string) bool {
	for i := 0; i < len(m); i++ {
		if !httpguts.IsTokenRune(rune(m[i])) {
			return false
		}
	}
	return true
}

// canonicalKey is http.CanonicalHeaderKey without an allocation for the
// common fields.
func canonicalKey(lower string) string {
	if k, ok := commonCanonical[lower]; ok {
		return k
	}
	return http.CanonicalHeaderKey(lower)
}

// lowerKey is the wire (lower-case) name of a header key.
func lowerKey(k string) string {
	if l, ok := commonLower[k]; ok {
		return l
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(k)
		}
	}
	return k
}

var commonCanonical, commonLower = commonKeys()

func commonKeys() (map[string]string, map[string]string) {
	names := []string{"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Age", "Access-Control-Allow-Credentials", "Access-Control-Allow-Headers", "Access-Control-Allow-Methods",
		"Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Access-Control-Max-Age",
		"Access-Control-Request-Headers", "Access-Control-Request-Method", "Allow", "Authorization",
		"Cache-Control", "Cache-Status", "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
		"Content-Location", "Content-Range", "Content-Type", "Cookie", "Date", "Dnt", "Etag", "Expect", "Expires",
		"Forwarded", "From", "Host", "If-Match", "If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since",
		"Last-Modified", "Link", "Location", "Max-Forwards", "Origin", "Pragma", "Priority", "Proxy-Authenticate",
		"Proxy-Authorization", "Range", "Referer", "Refresh", "Retry-After", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile",
		"Sec-Ch-Ua-Platform", "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "Server",
		"Set-Cookie", "Strict-Transport-Security", "Te", "Trailer", "Upgrade-Insecure-Requests", "User-Agent",
		"Vary", "Via", "Www-Authenticate", "X-Content-Type-Options", "X-Forwarded-For", "X-Forwarded-Host",
		"X-Forwarded-Proto", "X-Frame-Options", "X-Real-Ip", "X-Request-Id", "X-Requested-With", "X-Xss-Protection"}
	canon := make(map[string]string, len(names))
	lower := make(map[string]string, len(names))
	for _, n := range names {
		l := strings.ToLower(n)
		canon[l] = n
		lower[n] = l
	}
	return canon, lower
}
