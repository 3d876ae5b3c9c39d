package cache

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// transport is the RoundTripper returned by Cache.Wrap.
type transport struct {
	c    *Cache
	next http.RoundTripper
	def  *Policy         // used when the request's context has no policy
	defc *compiledPolicy // def compiled (nil: caching off), for requests without one

	// origin is the last scheme and host ServeFresh normalised, with their
	// normal forms: a door's hits mostly name the same site.
	origin atomic.Pointer[originMemo]
}

// originMemo is a scheme and host as sent and as normOrigin makes them.
type originMemo struct{ scheme, host, nscheme, nhost string }

// normOrigin is normOrigin, remembering the last answer.
func (t *transport) normOrigin(scheme, host string) (string, string) {
	if m := t.origin.Load(); m != nil && m.scheme == scheme && m.host == host {
		return m.nscheme, m.nhost
	}
	m := &originMemo{scheme: scheme, host: host}
	m.nscheme, m.nhost = normOrigin(scheme, host)
	t.origin.Store(m)
	return m.nscheme, m.nhost
}

// policy returns the compiled policy of a request with context ctx, or nil
// when caching is off for it; the default's is kept in t.
func (t *transport) policy(ctx context.Context) *compiledPolicy {
	if p, ok := ctx.Value(policyKey{}).(*Policy); ok {
		return t.c.compiled(p)
	}
	return t.defc
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	cp := t.policy(req.Context())
	if cp == nil {
		return t.next.RoundTrip(req)
	}
	x := &exchange{c: t.c, next: t.next, cp: cp, req: withNormalHost(req)}
	return x.run()
}

// withNormalHost returns req, or a copy of it whose Host is the normalised
// form the cache keys on (lower case, no trailing dot, no default port): the
// origin must see the host the key names, or a page it builds from
// "Site.TEST.:80" would be stored for, and served to, "site.test".
func withNormalHost(req *http.Request) *http.Request {
	sent := req.Host
	if sent == "" {
		sent = req.URL.Host
	}
	if _, h := normOrigin(req.URL.Scheme, sent); h != sent {
		req = req.WithContext(req.Context())
		req.Host = h
	}
	return req
}

// exchange is one request's way through the cache.
type exchange struct {
	c      *Cache
	next   http.RoundTripper
	cp     *compiledPolicy
	req    *http.Request
	rcc    reqCC
	scheme string
	host   string
	key    string
	keyHdr string
	gen    uint64 // from store.beginFill, while fetch runs
	filled bool   // store handed the fill's end to the response body
	st     cacheStatus
}

// safe methods do not invalidate (RFC 9110 §9.2.1).
func safeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

var conditionalHeaders = [...]string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"}

func (x *exchange) run() (*http.Response, error) {
	c, req := x.c, x.req
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return x.other()
	}
	h := req.Header
	if detail := bypassDetail(x.cp, req); detail != "" {
		return x.pass("bypass", detail)
	}
	ranged := len(h["Range"]) > 0
	x.scheme, x.host = originOf(req)
	var kbuf [256]byte
	kb, vs, e := x.lookup(kbuf[:0])
	switch {
	case e != nil:
	case len(vs) == 0:
		x.st.fwd = "uri-miss"
	default:
		x.st.fwd = "vary-miss"
	}
	if e != nil && !x.authorized(e) {
		e, x.st.fwd, x.st.detail = nil, "request", "authorization"
	}
	if e == nil {
		x.key = string(kb)
		if x.rcc.onlyIfCached {
			return x.gatewayTimeout(), nil
		}
		if ranged {
			return x.pass(x.st.fwd, "range")
		}
		if res := x.fromTier(kb); res != nil {
			return res, nil
		}
		return x.shared(nil)
	}

	age, life := x.freshness(e)
	if x.usable(e, age, life) {
		c.stats.hits.Add(1)
		x.st.hit = true
		return x.respond(e, age, life, false), nil
	}
	x.key = string(kb)
	if ranged {
		x.st.fwd = "stale"
		return x.pass(x.st.fwd, "range")
	}
	if stale := age - life; stale > 0 && !x.rcc.noCache && !e.cc.unqualifiedNoCache {
		if x.maxStaleOK(e, stale) {
			return x.serveStale(e, age, life, ""), nil
		}
		clientOK := (x.rcc.maxAge < 0 || age <= x.rcc.maxAge) && x.rcc.minFresh < 0
		if clientOK && e.cc.swr >= 0 && stale <= e.cc.swr && !e.cc.mustRevalidate && !e.cc.proxyRevalidate && req.Method == http.MethodGet {
			x.refreshInBackground(e)
			return x.serveStale(e, age, life, ""), nil
		}
	}
	if x.rcc.onlyIfCached {
		return x.gatewayTimeout(), nil
	}
	if age < life && !e.cc.unqualifiedNoCache {
		x.st.fwd = "request"
	} else {
		x.st.fwd = "stale"
	}
	return x.shared(e)
}

// bypassDetail returns why a GET or HEAD must not use the cache (the
// Cache-Status detail), or "" when it may.
func bypassDetail(cp *compiledPolicy, req *http.Request) string {
	h := req.Header
	switch {
	case cp.bypass(req.URL.Path):
		return "policy"
	case len(h["If-Match"]) > 0 || len(h["If-Unmodified-Since"]) > 0 || (len(h["Range"]) > 0 && req.Method != http.MethodGet):
		return "precondition"
	case len(h["Upgrade"]) > 0:
		return "upgrade"
	// A GET with a body or a method override could make the origin answer
	// something other than what the key says (cache poisoning, CPDoS).
	case hasBody(req):
		return "body"
	case len(h["X-Http-Method-Override"]) > 0 || len(h["X-Http-Method"]) > 0 || len(h["X-Method-Override"]) > 0:
		return "method-override"
	// Path overrides that IIS, Symfony and Zend honour: unkeyed, they would let one
	// client store another page under this URL.
	case len(h["X-Original-Url"]) > 0 || len(h["X-Rewrite-Url"]) > 0:
		return "url-override"
	}
	return ""
}

// hasBody reports whether req has a body, or may have one.
func hasBody(req *http.Request) bool {
	return req.ContentLength > 0 || (req.ContentLength < 0 && req.Body != nil && req.Body != http.NoBody)
}

// prepare reads the request's secondary key and directives and appends its
// primary key (from x.scheme and x.host) to kb.
func (x *exchange) prepare(kb []byte) []byte {
	h := x.req.Header
	kb = x.cp.appendKey(kb, x.scheme, x.host, x.req.URL)
	x.keyHdr = x.cp.keySignature(h)
	x.rcc = reqCC{maxAge: -1, maxStale: -1, minFresh: -1, sie: -1}
	if len(h["Cache-Control"]) > 0 || len(h["Pragma"]) > 0 {
		x.rcc = parseReqCC(h)
	}
	return kb
}

// lookup is the cache's one lookup, for RoundTrip and ServeFresh alike: it
// reads the request's secondary key and directives (prepare), appends the
// primary key to kb, and returns it with the variants stored under it and
// the newest that matches the request (nil: none).
func (x *exchange) lookup(kb []byte) (key []byte, vs []*entry, e *entry) {
	kb = x.prepare(kb)
	vs = x.c.store.getBytes(kb)
	return kb, vs, x.pick(vs)
}

// authorized reports whether e may answer a request with its Authorization
// (RFC 9111 §3.5).
func (x *exchange) authorized(e *entry) bool {
	return len(x.req.Header["Authorization"]) == 0 || e.cc.authOK()
}

// freshness returns e's current age and its freshness lifetime under the
// policy's max_ttl.
func (x *exchange) freshness(e *entry) (age, life time.Duration) {
	return x.freshnessAt(e, x.c.now())
}

// freshnessAt is freshness at the time now.
func (x *exchange) freshnessAt(e *entry, now time.Time) (age, life time.Duration) {
	return e.currentAge(now), e.lifetime(x.cp.p.MaxTTL)
}

// pick returns the newest stored variant that may answer the request.
func (x *exchange) pick(vs []*entry) *entry {
	for _, e := range vs {
		if e.matches(x.req.Header, x.keyHdr) {
			return e
		}
	}
	return nil
}

// usable reports whether e may be served without contacting the origin
// (RFC 9111 §4, with the request's directives of §5.2.1).
func (x *exchange) usable(e *entry, age, life time.Duration) bool {
	r := &x.rcc
	switch {
	case r.noCache, e.cc.unqualifiedNoCache, age >= life:
		return false
	case r.maxAge >= 0 && age > r.maxAge:
		return false
	case r.minFresh >= 0 && life-age < r.minFresh:
		return false
	}
	return true
}

// maxStaleOK reports whether the client's max-stale lets it take e stale.
func (x *exchange) maxStaleOK(e *entry, stale time.Duration) bool {
	if e.cc.revalidateStrict() {
		return false
	}
	return x.rcc.maxStaleAny || (x.rcc.maxStale >= 0 && stale <= x.rcc.maxStale)
}

// serveStale answers with e although it is stale.
func (x *exchange) serveStale(e *entry, age, life time.Duration, detail string) *http.Response {
	x.c.stats.stale.Add(1)
	x.st.hit = detail == ""
	if !x.st.hit {
		x.st.fwd = "stale"
		x.st.detail = detail
	}
	return x.respond(e, age, life, false)
}

// other handles methods the cache does not answer: unsafe ones invalidate.
func (x *exchange) other() (*http.Response, error) {
	x.c.stats.bypass.Add(1)
	res, err := x.next.RoundTrip(x.req)
	if err != nil {
		return nil, err
	}
	if !safeMethod(x.req.Method) && res.StatusCode >= 200 && res.StatusCode < 400 {
		x.invalidate(res)
	}
	x.st.fwd, x.st.fwdStatus = "method", res.StatusCode
	x.st.apply(res.Header)
	return res, nil
}

// pass forwards the request untouched by the cache.
func (x *exchange) pass(fwd, detail string) (*http.Response, error) {
	x.c.stats.bypass.Add(1)
	res, err := x.next.RoundTrip(x.req)
	if err != nil {
		return nil, err
	}
	x.st.fwd, x.st.fwdStatus, x.st.detail = fwd, res.StatusCode, detail
	x.st.apply(res.Header)
	return res, nil
}

// respond builds the response to the client from e. validated says the origin
// just confirmed e, so no-cache="field" fields may be sent.
func (x *exchange) respond(e *entry, age, life time.Duration, validated bool) *http.Response {
	if b := x.req.Body; b != nil && b != http.NoBody {
		_ = b.Close() // RoundTrip closes the request body, even when next never sees it
	}
	x.st.ttl, x.st.hasTTL = life-age, true
	if notModified(x.req.Header, e) {
		return x.notModifiedResponse(e, age)
	}
	var h http.Header
	ageStr := strconv.FormatInt(int64(age/time.Second), 10)
	if validated {
		h = e.header.Clone()
		h["Age"] = []string{ageStr}
		x.st.apply(h)
	} else {
		// The template already holds the Age and Cache-Status slots, so one
		// Clone makes the whole header.
		h = e.tmpl.Clone()
		if x.st == (cacheStatus{hit: true, ttl: x.st.ttl, hasTTL: true}) {
			// A plain hit: this second's values are shared by all its hits.
			hv := e.hitValues(age, life, &x.st, nil)
			h["Age"][0], h["Cache-Status"][0] = hv.age[0], hv.status[0]
		} else {
			h["Age"][0] = ageStr
			h["Cache-Status"][0] = x.st.String()
		}
	}
	if e.status == http.StatusOK && x.req.Method == http.MethodGet && len(x.req.Header["Range"]) > 0 {
		if r := x.rangeResponse(e, h); r != nil {
			return r
		}
	}
	hr := &hitResponse{}
	hr.res = http.Response{
		Status:        e.statusLine(),
		StatusCode:    e.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		ContentLength: int64(len(e.body)),
		Request:       x.req,
	}
	if x.req.Method == http.MethodHead || len(e.body) == 0 {
		hr.res.Body = http.NoBody
	} else {
		hr.body.b = e.body
		hr.res.Body = &hr.body
	}
	return &hr.res
}

// hitResponse allocates a hit's response and body reader together.
type hitResponse struct {
	res  http.Response
	body hitBody
}

func (e *entry) statusLine() string {
	if e.status == http.StatusOK {
		return "200 OK"
	}
	return strconv.Itoa(e.status) + " " + http.StatusText(e.status)
}

// notModifiedHeaders are the fields a 304 carries (RFC 9110 §15.4.5).
var notModifiedHeaders = [...]string{"Cache-Control", "Content-Location", "Date", "Etag", "Expires", "Vary", "Last-Modified"}

func (x *exchange) notModifiedResponse(e *entry, age time.Duration) *http.Response {
	h := make(http.Header, len(notModifiedHeaders)+2)
	for _, k := range notModifiedHeaders {
		if v, ok := e.header[k]; ok {
			h[k] = v[:len(v):len(v)]
		}
	}
	h["Age"] = []string{strconv.FormatInt(int64(age/time.Second), 10)}
	x.st.apply(h)
	return &http.Response{
		Status: "304 Not Modified", StatusCode: http.StatusNotModified,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: http.NoBody, Request: x.req,
	}
}

// gatewayTimeout answers only-if-cached requests the cache cannot satisfy
// (RFC 9111 §5.2.1.7).
func (x *exchange) gatewayTimeout() *http.Response {
	x.st.fwd, x.st.detail = "", "only-if-cached"
	h := http.Header{"Content-Length": {"0"}}
	x.st.apply(h)
	return &http.Response{
		Status: "504 Gateway Timeout", StatusCode: http.StatusGatewayTimeout,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: http.NoBody, Request: x.req,
	}
}

// notModified evaluates the client's own conditional request against e
// (RFC 9111 §4.3.2, RFC 9110 §13.2.2).
func notModified(h http.Header, e *entry) bool {
	if e.status != http.StatusOK {
		return false
	}
	if inm := h["If-None-Match"]; len(inm) > 0 {
		if e.etag == "" {
			return false
		}
		for _, line := range inm {
			for _, t := range splitList(line) {
				if t == "*" || weakEqual(t, e.etag) {
					return true
				}
			}
		}
		return false
	}
	ims := h["If-Modified-Since"]
	if len(ims) == 0 {
		return false
	}
	t, err := http.ParseTime(ims[0])
	if err != nil {
		return false
	}
	lm := e.lmTime
	if lm.IsZero() {
		lm = e.date
	}
	return !lm.After(t)
}

// rangeResponse answers a single byte range from a stored 200 (RFC 9110 §14),
// or nil to send the whole response (multiple ranges, unknown units).
func (x *exchange) rangeResponse(e *entry, h http.Header) *http.Response {
	if ir := x.req.Header.Get("If-Range"); ir != "" && !ifRangeMatches(ir, e) {
		return nil
	}
	size := int64(len(e.body))
	start, end, ok := parseRange(x.req.Header.Get("Range"), size)
	if !ok {
		return nil
	}
	res := &http.Response{Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h, Request: x.req}
	if start < 0 {
		res.Status, res.StatusCode = "416 Range Not Satisfiable", http.StatusRequestedRangeNotSatisfiable
		h["Content-Range"] = []string{"bytes */" + strconv.FormatInt(size, 10)}
		h["Content-Length"] = []string{"0"}
		res.Body = http.NoBody
		return res
	}
	res.Status, res.StatusCode = "206 Partial Content", http.StatusPartialContent
	h["Content-Range"] = []string{"bytes " + strconv.FormatInt(start, 10) + "-" + strconv.FormatInt(end, 10) + "/" + strconv.FormatInt(size, 10)}
	h["Content-Length"] = []string{strconv.FormatInt(end-start+1, 10)}
	res.ContentLength = end - start + 1
	res.Body = &hitBody{b: e.body[start : end+1]}
	return res
}

// parseRange parses a single "bytes=" range against size. ok is false when the
// field should be ignored; start is -1 when the range is unsatisfiable.
func parseRange(v string, size int64) (start, end int64, ok bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false
	}
	if first == "" { // suffix: the last N bytes
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, false
		}
		if n == 0 || size == 0 {
			return -1, -1, true
		}
		return max(size-n, 0), size - 1, true
	}
	s, err := strconv.ParseInt(first, 10, 64)
	if err != nil || s < 0 {
		return 0, 0, false
	}
	e := size - 1
	if last != "" {
		if e, err = strconv.ParseInt(last, 10, 64); err != nil || e < s {
			return 0, 0, false
		}
		e = min(e, size-1)
	}
	if s >= size {
		return -1, -1, true
	}
	return s, e, true
}

// ifRangeMatches evaluates If-Range against e (RFC 9110 §13.1.5): a strong ETag
// equal to e's, or e's exact Last-Modified date.
func ifRangeMatches(v string, e *entry) bool {
	if strings.HasPrefix(v, `"`) || strings.HasPrefix(v, "W/") {
		return !strings.HasPrefix(v, "W/") && e.etag == v && !strings.HasPrefix(e.etag, "W/")
	}
	return e.lastMod != "" && v == e.lastMod
}
