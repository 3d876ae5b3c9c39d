package cache

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/portcullis/portcullis/internal/relay"
)

// ServeFresh is the fast path for fresh hits at a server (the reverse door).
// When the cache holds a response for r that it would serve without
// contacting the origin, ServeFresh writes it to w exactly as the RoundTrip
// path would have produced it (stored header, Age, Cache-Status, the client's
// own conditional request answered with 304) and returns true. Otherwise it
// writes nothing and returns false, and the caller proxies r as usual through
// this RoundTripper, which then decides everything (misses, validation, stale
// serving, ranges, coalescing).
//
// r is the incoming server request: scheme is the client-facing scheme and
// r.Host the public host, as the caller's outgoing request would carry them.
// ServeFresh declines requests whose outgoing form could differ in what the
// cache looks at (hop-by-hop fields named in Connection, a Vary or key header
// that a proxy rewrites, such as X-Forwarded-For, a query httputil re-encodes),
// ranges and every request
// the RoundTrip path would not answer from a fresh entry. now is when the
// request arrived, as the caller read the clock for it (a door reads it once
// per request): the entry's age is taken at that time (a Cache built
// WithClock reads its own clock instead, as does a zero now). edit, if not nil,
// changes the response header just before it is written (origin hiding). The
// stored header's value slices are shared with w's header: callers must replace
// values, never modify them in place.
//
// When w (or a writer it unwraps to) takes rendered header fields (the
// HTTP/1.1 engine's SetRawHeader), the header goes as the bytes the entry
// keeps rendered (with edit made, if any) for the current second: nothing is
// copied into w's header map, which then holds neither Cache-Status nor
// Content-Type. So ServeFresh returns the stored Content-Type for the access
// log; a request it answered is a hit there.
func (t *transport) ServeFresh(w http.ResponseWriter, r *http.Request, scheme string, edit *Edit, now time.Time) (contentType string, ok bool) {
	var x exchange
	e, age, life := t.lookupFresh(&x, r, scheme, now)
	if e == nil {
		return "", false
	}
	t.c.stats.hits.Add(1)
	x.st.hit = true
	x.st.ttl, x.st.hasTTL = life-age, true
	if notModified(r.Header, e) {
		res := x.notModifiedResponse(e, age)
		writeHeader(w, res.Header, edit, res.StatusCode)
		return "", true // a 304 has no Content-Type
	}
	hv := e.hitValues(age, life, &x.st, edit)
	rh := rawHeaderOf(w)
	if hv.raw == nil || rh == nil || !rh.SetRawHeader(hv.raw, int64(len(e.body)), true) {
		dst := w.Header()
		for k, v := range e.tmpl {
			dst[k] = v
		}
		dst["Age"] = hv.age
		dst["Cache-Status"] = hv.status
		edit.Apply(dst)
	}
	w.WriteHeader(e.status)
	if r.Method != http.MethodHead && len(e.body) > 0 {
		_, _ = w.Write(e.body) // a failed write is the caller's writer's to record
	}
	return e.ctype, true
}

// Edit is a fixed change to a stored response's header on its way to a
// client (the reverse door's origin hiding): the fields Remove names
// (canonical names) are deleted, then Set's fields replace theirs. ServeFresh
// keeps a stored header rendered with an Edit for a second of age, so an
// Edit must not change once in use (a new policy makes a new one).
type Edit struct {
	Remove []string
	Set    http.Header // its value slices are shared with the headers edited
}

// Apply makes ed's change to h; a nil ed changes nothing.
func (ed *Edit) Apply(h http.Header) {
	if ed == nil {
		return
	}
	for _, name := range ed.Remove {
		delete(h, name)
	}
	for k, v := range ed.Set {
		h[k] = v
	}
}

// rawHeaderWriter is a ResponseWriter that takes header fields rendered
// (internal/h1's).
type rawHeaderWriter interface {
	SetRawHeader(fields []byte, contentLength int64, withDate bool) bool
}

// rawHeaderOf returns w, or the writer it wraps (Unwrap, as
// http.ResponseController follows), as a rawHeaderWriter; nil when none is.
func rawHeaderOf(w http.ResponseWriter) rawHeaderWriter {
	for range 8 {
		if rh, ok := w.(rawHeaderWriter); ok {
			return rh
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

// lookupFresh returns the stored entry ServeFresh would answer r with, with
// its age at now (see ServeFresh) and freshness lifetime, or nil. It fills x
// for the answer.
func (t *transport) lookupFresh(x *exchange, r *http.Request, scheme string, now time.Time) (e *entry, age, life time.Duration) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return nil, 0, 0
	}
	cp := t.policy(r.Context())
	if cp == nil || queryRewritten(r.URL.RawQuery) {
		return nil, 0, 0
	}
	if quietFields(r.Header) {
		// None of the fields below is there: the path and the body decide.
		if cp.bypass(r.URL.Path) || hasBody(r) {
			return nil, 0, 0
		}
	} else if bypassDetail(cp, r) != "" || len(r.Header["Range"]) > 0 || !plainConnection(r.Header) {
		return nil, 0, 0
	}
	for _, n := range cp.keyHeaders {
		if proxyRewrites(n) {
			return nil, 0, 0
		}
	}
	*x = exchange{c: t.c, cp: cp, req: r}
	x.scheme, x.host = t.normOrigin(scheme, r.Host)
	var kbuf [256]byte
	_, vs, e := x.lookup(kbuf[:0])
	if x.rcc.onlyIfCached {
		return nil, 0, 0 // rare; RoundTrip also answers the 504
	}
	for _, v := range vs {
		for _, n := range v.varyNames {
			if proxyRewrites(n) {
				return nil, 0, 0
			}
		}
	}
	if e == nil || !x.authorized(e) {
		return nil, 0, 0
	}
	age, life = x.freshnessAt(e, t.c.at(now))
	if !x.usable(e, age, life) {
		return nil, 0, 0
	}
	return e, age, life
}

// quietFields reports whether h holds none of the fields that make
// lookupFresh decline a request (those bypassDetail looks at, Range and
// Connection), found in one pass over h's few fields instead of a map
// lookup per name, most of them of names a request does not hold. A header
// of many fields is not scanned (false: each name is looked up).
func quietFields(h http.Header) bool {
	if len(h) > 16 {
		return false
	}
	for k := range h {
		switch k {
		case "If-Match", "If-Unmodified-Since", "Range", "Upgrade", "Connection",
			"X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
			"X-Original-Url", "X-Rewrite-Url":
			return false
		}
	}
	return true
}

// writeHeader copies h into w's header, applies edit and writes status.
func writeHeader(w http.ResponseWriter, h http.Header, edit *Edit, status int) {
	dst := w.Header()
	for k, v := range h {
		dst[k] = v
	}
	edit.Apply(dst)
	w.WriteHeader(status)
}

// plainConnection reports whether h's Connection field names nothing but
// keep-alive and close: other names are hop-by-hop fields a proxy removes
// before the request reaches the cache.
func plainConnection(h http.Header) bool {
	for _, line := range h["Connection"] {
		for _, t := range splitList(line) {
			if !strings.EqualFold(t, "keep-alive") && !strings.EqualFold(t, "close") {
				return false
			}
		}
	}
	return true
}

// queryRewritten reports whether httputil.ReverseProxy re-encodes the query
// q before the request reaches the cache (a ';' or a malformed escape), which
// changes the cache key.
func queryRewritten(q string) bool {
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case ';':
			return true
		case '%':
			if i+2 >= len(q) || !isHex(q[i+1]) || !isHex(q[i+2]) {
				return true
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// proxyRewrites reports whether a reverse proxy may change the request field
// n (canonical) on its way to the cache: hop-by-hop fields, the forwarding
// fields, HTTP/2 settings, and User-Agent (httputil sets an empty one).
func proxyRewrites(n string) bool {
	if relay.IsHopByHop(n) {
		return true
	}
	switch n {
	case "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded", "Http2-Settings", "User-Agent":
		return true
	}
	return false
}

// hitValues are a hit's Age and Cache-Status field values for one age and TTL
// in whole seconds, shared read-only by the hits of that second, and the
// whole stored header with them (and edit made) rendered as field lines (nil
// when it holds a field the writer must frame itself).
type hitValues struct {
	ageSec, ttlSec int64
	edit           *Edit
	age, status    []string
	raw            []byte
}

// hitCache remembers the last hitValues of an entry: unedited (plain) and
// with the last Edit that asked (edited).
type hitCache struct{ plain, edited atomic.Pointer[hitValues] }

// hitValues returns the Age and Cache-Status values for a hit on e, and the
// header rendered with edit made, reusing the previous ones while the age
// and TTL seconds and the edit stay the same.
func (e *entry) hitValues(age, life time.Duration, st *cacheStatus, edit *Edit) *hitValues {
	a, ttl := int64(age/time.Second), int64((life-age)/time.Second)
	var memo *atomic.Pointer[hitValues]
	if e.hits != nil {
		memo = &e.hits.plain
		if edit != nil {
			memo = &e.hits.edited
		}
		if hv := memo.Load(); hv != nil && hv.ageSec == a && hv.ttlSec == ttl && hv.edit == edit {
			return hv
		}
	}
	hv := &hitValues{ageSec: a, ttlSec: ttl, edit: edit, age: []string{strconv.FormatInt(a, 10)}, status: []string{st.String()}}
	if edit == nil {
		hv.raw = renderFields(e.tmpl, hv)
	} else {
		// The header ServeFresh would otherwise fill in w's map, rendered.
		h := make(http.Header, len(e.tmpl)+len(edit.Set))
		for k, v := range e.tmpl {
			h[k] = v
		}
		h["Age"], h["Cache-Status"] = hv.age, hv.status
		edit.Apply(h)
		hv.raw = renderFields(h, nil)
	}
	if memo != nil {
		memo.Store(hv)
	}
	return hv
}

// renderFields renders the hit template h, with hv's Age and Cache-Status
// (h's own when hv is nil), as internal/h1 writes a header map: keys sorted, invalid names left out,
// values trimmed of surrounding blanks with CR and LF turned into spaces,
// Content-Length left to the writer. It returns nil when h holds a field
// that frames the message or names the connection (a stored response never
// should), or no Date.
func renderFields(h http.Header, hv *hitValues) []byte {
	if _, ok := h["Date"]; !ok {
		return nil
	}
	keys := make([]string, 0, len(h))
	n := 0
	for k, vs := range h {
		switch k {
		case "Content-Length":
			continue
		case "Transfer-Encoding", "Connection", "Trailer":
			return nil
		}
		if len(vs) == 0 || !httpguts.ValidHeaderFieldName(k) || strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		keys = append(keys, k)
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	slices.Sort(keys)
	b := make([]byte, 0, n+32)
	for _, k := range keys {
		vs := h[k]
		switch {
		case hv == nil:
		case k == "Age":
			vs = hv.age
		case k == "Cache-Status":
			vs = hv.status
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			v = strings.Trim(v, " \t")
			for i := 0; i < len(v); i++ {
				c := v[i]
				if c == '\r' || c == '\n' {
					c = ' '
				}
				b = append(b, c)
			}
			b = append(b, "\r\n"...)
		}
	}
	return b
}
