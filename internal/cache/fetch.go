package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// shared sends the request to the origin, or waits for the identical request
// already on its way (request coalescing) and answers from what it stored. e is
// the stored response being revalidated, or nil on a miss.
func (x *exchange) shared(e *entry) (*http.Response, error) {
	if x.req.Method != http.MethodGet || x.rcc.noCache || hasConditional(x.req.Header) {
		return x.fetch(e, nil)
	}
	f, leader := x.c.flight.join(x.key)
	if leader {
		return x.fetch(e, f)
	}
	arrived := x.c.now()
	t := time.NewTimer(x.c.cfg.CoalesceTimeout)
	defer t.Stop()
	f.waiters.Add(1)
	defer f.waiters.Add(-1)
	select {
	case <-f.done:
	case <-t.C:
		return x.fetch(e, nil)
	case <-x.req.Context().Done():
		return nil, x.req.Context().Err()
	}
	if ne := x.pick(x.c.store.get(x.key)); ne != nil && !(len(x.req.Header["Authorization"]) > 0 && !ne.cc.authOK()) {
		now := x.c.now()
		age, life := ne.currentAge(now), ne.lifetime(x.cp.p.MaxTTL)
		// A response the origin sent after this request arrived answers it as
		// well as a request of its own would, even if it must be revalidated
		// for later requests (no-cache, max-age=0).
		if x.usable(ne, age, life) || !ne.resTime.Before(arrived) {
			x.c.stats.collapsed.Add(1)
			x.st.collapsed = true
			if x.st.fwd == "" {
				x.st.fwd = "miss"
			}
			return x.respond(ne, age, life, true), nil
		}
		e = ne
	}
	return x.fetch(e, nil)
}

func hasConditional(h http.Header) bool {
	return len(h["If-None-Match"]) > 0 || len(h["If-Modified-Since"]) > 0
}

// fetch asks the origin, validating e when it has validators, and stores what
// may be stored. It finishes f once the outcome is known.
func (x *exchange) fetch(e *entry, f *flight) (*http.Response, error) {
	c := x.c
	oreq := x.req
	conditional := e != nil && e.hasValidator()
	if conditional {
		oreq = x.originRequest(e)
	}
	c.stats.misses.Add(1)
	x.gen, x.filled = c.store.beginFill(x.key), false
	defer func() {
		if !x.filled {
			c.store.endFill(x.key)
		}
	}()
	reqTime := c.now()
	res, err := x.next.RoundTrip(oreq)
	resTime := c.now()
	if err == nil && conditional && res.StatusCode == http.StatusNotModified {
		drain(res.Body)
		if validatorMatches(e, res) {
			ne := c.merge(e, res, reqTime, resTime)
			if ne.shareable() {
				c.store.replace(x.key, e, ne)
			} else {
				c.store.remove(x.key)
			}
			f.finish()
			c.stats.revalidated.Add(1)
			x.st.fwd, x.st.fwdStatus = "stale", http.StatusNotModified
			out := x.respond(ne, ne.currentAge(c.now()), ne.lifetime(x.cp.p.MaxTTL), true)
			if sc := res.Header["Set-Cookie"]; len(sc) > 0 {
				out.Header["Set-Cookie"] = sc
			}
			return out, nil
		}
		// The 304 is for another representation (RFC 9111 §4.3.3): ask again.
		oreq = x.originRequest(nil)
		reqTime = c.now()
		res, err = x.next.RoundTrip(oreq)
		resTime = c.now()
	}
	if err != nil {
		f.finish()
		if e != nil {
			if r := x.staleOnError(e, err, 0); r != nil {
				return r, nil
			}
		}
		return nil, err
	}
	if e != nil && serverError(res.StatusCode) {
		if r := x.staleOnError(e, nil, res.StatusCode); r != nil {
			drain(res.Body)
			f.finish()
			return r, nil
		}
	}
	if e != nil && x.req.Method == http.MethodHead && res.StatusCode == http.StatusOK && headMatches(e, res) {
		// RFC 9111 §4.3.5: a HEAD response freshens the stored GET response.
		if ne := c.merge(e, res, reqTime, resTime); ne.shareable() {
			c.store.replace(x.key, e, ne)
		}
	}
	x.st.fwdStatus = res.StatusCode
	if x.st.fwd == "" {
		x.st.fwd = "miss"
	}
	return x.store(res, reqTime, resTime, f), nil
}

// headMatches reports whether a HEAD response describes the stored response e:
// the same strong ETag, or without ETags the same Last-Modified, and no other
// Content-Length.
func headMatches(e *entry, res *http.Response) bool {
	if cl := res.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(e.body)) {
		return false
	}
	et := res.Header.Get("Etag")
	switch {
	case et != "" || e.etag != "":
		return et == e.etag && !strings.HasPrefix(et, "W/")
	case e.lastMod != "":
		return res.Header.Get("Last-Modified") == e.lastMod
	}
	return false
}

func serverError(code int) bool {
	return code == 500 || code == 502 || code == 503 || code == 504
}

func drain(b io.ReadCloser) {
	if b == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, b, 64<<10)
	_ = b.Close()
}

// originRequest is the request sent to the origin in place of the client's:
// the client's validators are replaced by e's (nil: none).
func (x *exchange) originRequest(e *entry) *http.Request {
	r := x.req.Clone(x.req.Context())
	for _, h := range conditionalHeaders {
		delete(r.Header, h)
	}
	if e != nil {
		if e.etag != "" {
			r.Header["If-None-Match"] = []string{e.etag}
		}
		if e.lastMod != "" {
			r.Header["If-Modified-Since"] = []string{e.lastMod}
		}
	}
	return r
}

// staleOnError serves e stale when the origin failed (err, or a 5xx status) and
// stale-if-error (RFC 5861 §4) or serve_stale_when_down allows it; else nil.
func (x *exchange) staleOnError(e *entry, err error, status int) *http.Response {
	now := x.c.now()
	age, life := e.currentAge(now), e.lifetime(x.cp.p.MaxTTL)
	stale := age - life
	x.st.fwdStatus = status
	if !e.cc.mustRevalidate && !e.cc.proxyRevalidate {
		if (e.cc.sie >= 0 && stale <= e.cc.sie) || (x.rcc.sie >= 0 && stale <= x.rcc.sie) {
			return x.serveStale(e, age, life, "stale-if-error")
		}
	}
	if err != nil && x.c.cfg.ServeStaleWhenDown && x.c.isDown(err) &&
		!e.cc.revalidateStrict() && !e.cc.unqualifiedNoCache && stale <= x.c.cfg.MaxStaleWhenDown {
		return x.serveStale(e, age, life, "origin-down")
	}
	return nil
}

// downError is implemented by errors that mean "the origin is down".
type downError interface{ OriginDown() bool }

// isDown reports whether err means the origin cannot be reached at all.
func (c *Cache) isDown(err error) bool {
	for _, d := range c.down {
		if errors.Is(err, d) {
			return true
		}
	}
	var de downError
	if errors.As(err, &de) && de.OriginDown() {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	// The origin took the request and closed or reset the connection
	// without a response.
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// store returns res to the client, storing it on the way when RFC 9111 §3 and
// the configuration allow; the body is stored as the client reads it.
func (x *exchange) store(res *http.Response, reqTime, resTime time.Time, f *flight) *http.Response {
	c := x.c
	reason := "method"
	var e *entry
	if x.req.Method == http.MethodGet {
		cc := parseRespCC(res.Header)
		reason = noStoreReason(x.req, &x.rcc, res, &cc)
		if reason == "" && res.ContentLength > c.cfg.MaxObjectBytes {
			reason = "too-large"
		}
		if reason == "" {
			e = c.newEntry(x.req, res, cc, x.keyHdr, reqTime, resTime)
			// Keep only what can be reused: fresh for a while, revalidatable,
			// or servable stale.
			reusable := e.lifetime(x.cp.p.MaxTTL) > 0 && !e.cc.unqualifiedNoCache
			if !reusable && !e.hasValidator() && e.cc.swr < 0 && e.cc.sie < 0 && !c.cfg.ServeStaleWhenDown {
				reason = "no-freshness"
			}
		}
	}
	if reason != "" {
		f.finish()
		if x.st.detail == "" {
			x.st.detail = reason
		}
		x.st.apply(res.Header)
		return res
	}
	x.st.stored = true
	x.st.ttl, x.st.hasTTL = e.lifetime(x.cp.p.MaxTTL)-e.currentAge(resTime), true
	x.st.apply(res.Header)
	key, gen := x.key, x.gen
	x.filled = true
	done := func(body []byte, reserved int64, ok bool) {
		defer f.finish()
		defer c.store.endFill(key)
		if !ok || (res.ContentLength >= 0 && int64(len(body)) != res.ContentLength) {
			c.store.release(reserved)
			return
		}
		if cap(body)-len(body) > len(body)/8 {
			body = bytes.Clone(body)
		}
		if body == nil {
			body = []byte{}
		}
		e.setBody(body)
		if c.store.put(key, e, gen, c.cfg.MaxVariants, reserved) {
			c.toTier(key)
		}
	}
	if res.Body == nil || res.Body == http.NoBody || res.ContentLength == 0 {
		done(nil, 0, true)
		return res
	}
	res.Body = &teeBody{rc: res.Body, max: c.cfg.MaxObjectBytes, want: res.ContentLength, s: c.store, done: done}
	return res
}

// fillStep bounds how far a fill's buffer grows ahead of the bytes received.
const (
	fillFirst = 32 << 10
	fillStep  = 1 << 20
)

// teeBody streams an origin body to the client while keeping a copy to store.
// Its buffer grows with the bytes received (never ahead of them by more than
// their size or fillStep), each growth reserved from the store's budget.
// Storing is abandoned, and relaying goes on, when the body outgrows max, the
// budget for fills is spent, or the client stops reading.
type teeBody struct {
	rc   io.ReadCloser
	max  int64
	want int64 // Content-Length, or -1
	s    *store
	done func(body []byte, reserved int64, ok bool)

	mu       sync.Mutex
	buf      []byte
	reserved int64 // bytes reserved from s: cap(buf)
	fin      bool
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	t.mu.Lock()
	if !t.fin {
		switch {
		case n > 0 && int64(len(t.buf)+n) > t.max:
			t.finishLocked(false)
		case n > 0 && !t.grow(n):
			t.finishLocked(false)
		case n > 0:
			t.buf = append(t.buf, p[:n]...)
		}
		switch {
		case t.fin:
		case err == io.EOF:
			t.finishLocked(true)
		case err != nil:
			t.finishLocked(false)
		}
	}
	t.mu.Unlock()
	return n, err
}

// grow makes room for n more bytes, reserving the growth; false when the
// budget is spent.
func (t *teeBody) grow(n int) bool {
	need := int64(len(t.buf) + n)
	if need <= int64(cap(t.buf)) {
		return true
	}
	c := int64(cap(t.buf))
	nc := max(need, c+min(max(c, fillFirst), fillStep))
	if t.want > 0 && nc > t.want {
		nc = max(t.want, need)
	}
	nc = min(nc, max(t.max, need))
	if !t.s.reserve(nc - c) {
		return false
	}
	t.reserved += nc - c
	nb := make([]byte, len(t.buf), nc)
	copy(nb, t.buf)
	t.buf = nb
	return true
}

func (t *teeBody) finishLocked(ok bool) {
	t.fin = true
	b, r := t.buf, t.reserved
	t.buf, t.reserved = nil, 0
	t.done(b, r, ok)
}

func (t *teeBody) Close() error {
	t.mu.Lock()
	if !t.fin {
		t.finishLocked(false)
	}
	t.mu.Unlock()
	return t.rc.Close()
}

// hitBody serves a stored body; the bytes are shared read-only by all hits.
type hitBody struct {
	b   []byte
	off int
}

func (h *hitBody) Read(p []byte) (int, error) {
	if h.off >= len(h.b) {
		return 0, io.EOF
	}
	n := copy(p, h.b[h.off:])
	h.off += n
	return n, nil
}

// WriteTo writes the rest of the body in one call (io.Copy uses it).
func (h *hitBody) WriteTo(w io.Writer) (int64, error) {
	if h.off >= len(h.b) {
		return 0, nil
	}
	n, err := w.Write(h.b[h.off:])
	h.off += n
	return int64(n), err
}

func (h *hitBody) Close() error { return nil }

// invalidate removes the target URI and the same-origin Location and
// Content-Location of a successful unsafe request (RFC 9111 §4.4).
func (x *exchange) invalidate(res *http.Response) {
	scheme, host := originOf(x.req)
	k := x.cp.key(scheme, host, x.req.URL)
	x.c.store.remove(k)
	x.c.dropTier(k, false, true)
	base := &url.URL{Scheme: scheme, Host: host, Path: x.req.URL.Path, RawPath: x.req.URL.RawPath}
	for _, name := range [...]string{"Location", "Content-Location"} {
		v := res.Header.Get(name)
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil {
			continue
		}
		u = base.ResolveReference(u)
		s, h := normOrigin(u.Scheme, u.Host)
		if s == scheme && h == host {
			k := x.cp.key(s, h, u)
			x.c.store.remove(k)
			x.c.dropTier(k, false, true)
		}
	}
}

// refreshInBackground revalidates e once, owned by the Cache (stale-while-
// revalidate): concurrent stale hits for the same key start one refresh.
func (x *exchange) refreshInBackground(e *entry) {
	c := x.c
	if _, busy := c.refresh.LoadOrStore(x.key, struct{}{}); busy {
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.refresh.Delete(x.key)
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.BackgroundRefreshTimeout)
	ctx = WithPolicy(ctx, x.cp.p)
	if o, ok := x.req.Context().Value(originKey{}).(origin); ok {
		ctx = context.WithValue(ctx, originKey{}, o)
	}
	r := x.req.Clone(ctx)
	r.Method, r.Body, r.ContentLength = http.MethodGet, http.NoBody, 0
	delete(r.Header, "Cache-Control")
	delete(r.Header, "Pragma")
	bx := &exchange{c: c, next: x.next, cp: x.cp, req: r, key: x.key, keyHdr: x.keyHdr,
		rcc: reqCC{maxAge: -1, maxStale: -1, minFresh: -1, sie: -1}}
	go func() {
		defer c.wg.Done()
		defer cancel()
		defer c.refresh.Delete(bx.key)
		res, err := bx.fetch(e, nil)
		if err != nil {
			c.log.Debug("cache: background refresh failed", "key", bx.key, "error", err)
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
	}()
}
