package cache

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/fieldtext"
)

// entryOverhead is the fixed cost charged per stored response on top of its
// body and header bytes: the entry, its header map and slices, its node.
const entryOverhead = 512

// entry is one stored response (one Vary variant of a URL). It is immutable once
// stored; a 304 builds a new one.
type entry struct {
	status  int
	header  http.Header // stored fields: hop-by-hop and private=… fields removed
	tmpl    http.Header // header minus no-cache=… fields plus Age and Cache-Status slots, cloned per hit
	body    []byte      // shared read-only by every hit
	reqTime time.Time   // request_time (RFC 9111 §4.2.3)
	resTime time.Time   // response_time
	date    time.Time
	ageVal  time.Duration // Age field value at receipt
	life    time.Duration // freshness lifetime, before the policy's max_ttl
	cc      respCC
	etag    string
	lastMod string
	lmTime  time.Time
	ctype   string // Content-Type, for the access log of a hit ServeFresh answers

	varyNames []string // canonical names from Vary
	varyVals  []string // the storing request's normalised values for varyNames
	keyHdr    string   // the storing request's policy key-header values
	size      int64
	hits      *hitCache // Age and Cache-Status values of the latest fresh hit (ServeFresh)
}

// absent marks a Vary-named field missing from the request.
const absent = "\x00"

// normValues joins a field's lines and normalises list whitespace, so that
// "gzip,deflate" and "gzip, deflate" select the same variant.
func normValues(vs []string) string {
	switch len(vs) {
	case 0:
		return absent
	case 1:
		if !strings.ContainsAny(vs[0], ", \t") {
			return vs[0]
		}
	}
	var b strings.Builder
	for _, v := range vs {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(p)
		}
	}
	return b.String()
}

// varyOf returns the canonical names in the response's Vary, and whether it has "*".
func varyOf(h http.Header) (names []string, star bool) {
	for _, line := range h["Vary"] {
		for _, n := range splitList(line) {
			if n == "*" {
				return nil, true
			}
			if fieldtext.IsToken(n) {
				names = append(names, canonical(n))
			}
		}
	}
	return names, false
}

// matches reports whether e may answer a request with header h and policy
// key-header signature keyHdr (RFC 9111 §4.1).
func (e *entry) matches(h http.Header, keyHdr string) bool {
	if e.keyHdr != keyHdr {
		return false
	}
	for i, n := range e.varyNames {
		if normValues(h[n]) != e.varyVals[i] {
			return false
		}
	}
	return true
}

// sameVariant reports whether e and o were stored for the same secondary key.
func (e *entry) sameVariant(o *entry) bool {
	if e.keyHdr != o.keyHdr || len(e.varyNames) != len(o.varyNames) {
		return false
	}
	for i := range e.varyNames {
		if e.varyNames[i] != o.varyNames[i] || e.varyVals[i] != o.varyVals[i] {
			return false
		}
	}
	return true
}

// heuristicStatus lists the status codes cacheable by default (RFC 9110 §15.1).
func heuristicStatus(code int) bool {
	switch code {
	case 200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// understoodStatus lists the final status codes whose caching requirements this
// cache implements (for must-understand).
func understoodStatus(code int) bool {
	switch code {
	case 200, 203, 204, 300, 301, 302, 303, 307, 308,
		400, 403, 404, 405, 410, 414, 421, 451,
		500, 501, 502, 503, 504:
		return true
	}
	return false
}

// currentAge is RFC 9111 §4.2.3's current_age at now.
func (e *entry) currentAge(now time.Time) time.Duration {
	apparent := max(e.resTime.Sub(e.date), 0)
	corrected := e.ageVal + e.resTime.Sub(e.reqTime)
	initial := max(apparent, corrected)
	return initial + max(now.Sub(e.resTime), 0)
}

// lifetime is the freshness lifetime under the policy's cap.
func (e *entry) lifetime(maxTTL time.Duration) time.Duration {
	if maxTTL > 0 && e.life > maxTTL {
		return maxTTL
	}
	return e.life
}

// hasValidator reports whether e can be revalidated with a conditional request.
func (e *entry) hasValidator() bool { return e.etag != "" || e.lastMod != "" }

// computeLifetime applies RFC 9111 §4.2.1 and §4.2.2 to a stored response.
func (c *Cache) computeLifetime(e *entry) time.Duration {
	switch {
	case e.cc.sMaxAge >= 0:
		return e.cc.sMaxAge
	case e.cc.maxAge >= 0:
		return e.cc.maxAge
	}
	if ex, ok := e.header["Expires"]; ok {
		// Invalid dates, such as "0", a one-digit hour or several lines, are
		// in the past (§5.3).
		if len(ex) != 1 {
			return 0
		}
		t, ok := parseHTTPDate(strings.TrimSpace(ex[0]))
		if !ok {
			return 0
		}
		return max(t.Sub(e.date), 0)
	}
	if e.cc.invalidFreshnessInfo {
		return 0
	}
	if !heuristicStatus(e.status) && !e.cc.public {
		return 0
	}
	if e.lmTime.IsZero() || !e.lmTime.Before(e.date) {
		return 0
	}
	h := time.Duration(float64(e.date.Sub(e.lmTime)) * c.cfg.DefaultHeuristicFraction)
	return min(h, c.cfg.MaxHeuristicTTL)
}

// ageOf reads the Age field as the http-tests cache suite expects of a
// cache: the first member of the first line ("7200, 0" is 7200 and "0, 7200"
// is 0, parameters after ';' dropped); an invalid value (not a non-negative
// integer) is ignored, as RFC 9111 §5.1 allows.
func ageOf(lines []string) time.Duration {
	if len(lines) == 0 {
		return 0
	}
	v, _, _ := strings.Cut(lines[0], ",")
	v, _, _ = strings.Cut(v, ";")
	if a, ok := parseDelta(strings.TrimSpace(v)); ok {
		return a
	}
	return 0
}

// explicitFreshness reports whether the response carries explicit freshness.
func explicitFreshness(h http.Header, cc *respCC) bool {
	_, exp := h["Expires"]
	return exp || cc.maxAge >= 0 || cc.sMaxAge >= 0
}

// noStoreReason returns why a response to a GET must not be stored (RFC 9111 §3),
// or "" when it may be.
func noStoreReason(req *http.Request, rcc *reqCC, res *http.Response, cc *respCC) string {
	code := res.StatusCode
	switch {
	case code < 200 || code == 206 || code == 304:
		return "status"
	case rcc.noStore:
		return "request-no-store"
	case cc.mustUnderstand && !understoodStatus(code):
		return "must-understand"
	case cc.noStore && !(cc.mustUnderstand && understoodStatus(code)):
		return "no-store"
	case cc.unqualifiedPrivate:
		return "private"
	case req.Header.Get("Authorization") != "" && !cc.authOK():
		return "authorization"
	case len(res.Header["Set-Cookie"]) > 0:
		return "set-cookie"
	case res.Header.Get("Content-Range") != "":
		return "partial"
	}
	if _, star := varyOf(res.Header); star {
		return "vary-star"
	}
	if !explicitFreshness(res.Header, cc) && !heuristicStatus(code) && !cc.public {
		return "not-cacheable-by-default"
	}
	return ""
}

// newEntry snapshots a response's stored header fields (the body comes later).
func (c *Cache) newEntry(req *http.Request, res *http.Response, cc respCC, keyHdr string, reqTime, resTime time.Time) *entry {
	h := res.Header.Clone()
	stripHop(h)
	for _, f := range cc.privateFields {
		delete(h, f) // private="f": a shared cache must not store f
	}
	delete(h, "Cache-Status")
	e := &entry{status: res.StatusCode, header: h, reqTime: reqTime, resTime: resTime, cc: cc, keyHdr: keyHdr}
	e.varyNames, _ = varyOf(h)
	e.varyVals = make([]string, len(e.varyNames))
	for i, n := range e.varyNames {
		e.varyVals[i] = normValues(req.Header[n])
	}
	c.refreshMeta(e)
	return e
}

// refreshMeta recomputes what e derives from its header fields.
func (c *Cache) refreshMeta(e *entry) {
	h := e.header
	e.date = e.resTime
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		e.date = d
	} else {
		h.Set("Date", e.resTime.UTC().Format(http.TimeFormat))
	}
	e.ageVal = ageOf(h["Age"])
	delete(h, "Age")
	e.etag = h.Get("Etag")
	e.ctype = h.Get("Content-Type")
	e.lastMod = h.Get("Last-Modified")
	e.lmTime = time.Time{}
	if t, err := http.ParseTime(e.lastMod); err == nil {
		e.lmTime = t
	}
	e.life = c.computeLifetime(e)
}

// setBody attaches the complete body and fixes the size and Content-Length.
func (e *entry) setBody(b []byte) {
	e.body = b
	e.header["Content-Length"] = []string{strconv.Itoa(len(b))}
	e.seal()
}

// seal builds the hit template and computes the size once e is complete.
func (e *entry) seal() {
	t := make(http.Header, len(e.header)+2)
	for k, v := range e.header {
		t[k] = v
	}
	for _, f := range e.cc.noCacheFields {
		delete(t, f)
	}
	t["Age"] = []string{""}
	t["Cache-Status"] = []string{""}
	e.tmpl = t
	e.hits = new(hitCache)
	hs := headerSize(e.header)
	e.size = entryOverhead + int64(cap(e.body)) + 2*hs
}

func headerSize(h http.Header) int64 {
	n := int64(0)
	for k, vs := range h {
		n += int64(len(k)) + 16
		for _, v := range vs {
			n += int64(len(v)) + 16
		}
	}
	return n
}

// merge returns a copy of e updated by a 304 response (RFC 9111 §3.2, §4.3.4).
func (c *Cache) merge(e *entry, res *http.Response, reqTime, resTime time.Time) *entry {
	ne := *e
	ne.header = e.header.Clone()
	upd := res.Header.Clone()
	stripHop(upd)
	for k, v := range upd {
		switch k {
		case "Content-Length", "Vary", "Cache-Status", "Content-Range", "Set-Cookie":
			continue // Set-Cookie is for the client that asked, never for the store
		}
		ne.header[k] = v
	}
	if _, ok := upd["Age"]; !ok {
		delete(ne.header, "Age")
	}
	if _, ok := upd["Date"]; !ok {
		delete(ne.header, "Date")
	}
	_, cc1 := upd["Cache-Control"]
	_, cc2 := upd["Cdn-Cache-Control"]
	if cc1 || cc2 {
		ne.cc = parseRespCC(ne.header)
	}
	for _, f := range ne.cc.privateFields {
		delete(ne.header, f)
	}
	ne.reqTime, ne.resTime = reqTime, resTime
	c.refreshMeta(&ne)
	ne.seal()
	return &ne
}

// validatorMatches reports whether a 304 selects e for update (RFC 9111 §4.3.4).
func validatorMatches(e *entry, res *http.Response) bool {
	if et := res.Header.Get("Etag"); et != "" {
		if strings.HasPrefix(et, "W/") {
			return e.etag != "" && weakEqual(et, e.etag)
		}
		return e.etag == et
	}
	if lm := res.Header.Get("Last-Modified"); lm != "" && e.lastMod != "" {
		return lm == e.lastMod
	}
	return true
}

func weakEqual(a, b string) bool {
	return strings.TrimPrefix(a, "W/") == strings.TrimPrefix(b, "W/")
}

// shareable reports whether e may still be kept for other clients after its
// fields changed (a 304 may add private or no-store).
func (e *entry) shareable() bool {
	if e.cc.unqualifiedPrivate {
		return false
	}
	return !e.cc.noStore || (e.cc.mustUnderstand && understoodStatus(e.status))
}
