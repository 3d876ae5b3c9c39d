package pool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/upstream"
)

// DialError wraps a failure to connect to a member: nothing reached it, so a
// retry on another member is safe whatever the method.
type DialError struct {
	Err error
}

// Error implements error.
func (e *DialError) Error() string { return "dial member: " + e.Err.Error() }

// Unwrap returns the underlying error (a *net.OpError, a timeout…).
func (e *DialError) Unwrap() error { return e.Err }

// newTransport builds one member's client (internal/upstream): keep-alive with
// a bounded idle pool, the configured timeouts, HTTP/2 (Go's transport) to https
// members that offer it by ALPN, no proxy from the environment and no
// transparent compression (the client's Accept-Encoding passes through
// unchanged). proxy, for a parent proxy member, is the member itself (with its
// credentials): requests go to it in absolute form with Proxy-Authorization,
// https ones through a CONNECT. A failed dial is a *DialError.
func newTransport(cfg *Config, tc *tls.Config, proxy *url.URL) *upstream.Client {
	d := &net.Dialer{KeepAlive: 30 * time.Second}
	return upstream.New(upstream.Config{
		Proxy: proxy,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, &DialError{Err: err}
			}
			return c, nil
		},
		DialTimeout:           cfg.Dial,
		TLS:                   clientTLSFor(tc),
		TLSHandshakeTimeout:   cfg.TLSHandshake,
		ResponseHeaderTimeout: cfg.ResponseHeader,
		IdleTimeout:           cfg.Idle,
		MaxIdle:               cfg.MaxIdlePerMember,
		MaxIdlePerHost:        cfg.MaxIdlePerMember,
		HTTP2:                 true,
	})
}

// Transport returns the pool as an http.RoundTripper: each request goes to the
// member the policy selects for the key in its context (WithKey), with its URL
// rewritten to that member (*Info in the context, if any, learns which);
// failures count toward passive health and are
// retried on another member when safe, within retries.max and the retry budget.
// It returns ErrNoHealthyMember when no member is available, or the last
// member's error (a *DialError when the connection failed).
func (p *Pool) Transport() http.RoundTripper { return (*poolTransport)(p) }

type poolTransport Pool

// maxTried bounds the members remembered per request without allocating.
const maxTried = 8

// RoundTrip implements http.RoundTripper.
func (t *poolTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	p := (*Pool)(t)
	s := p.state.Load()
	ctx := req.Context()
	info := infoFrom(ctx)
	var key string
	if info != nil {
		key = info.Key
	}
	rc := s.cfg.Retries
	p.budget.deposit(rc.BudgetRatio)

	replayable := req.Body == nil || req.Body == http.NoBody
	var guard *guardBody
	if !replayable {
		if req.GetBody != nil && idempotent(req) {
			replayable = true
		} else {
			guard = &guardBody{rc: req.Body}
			defer guard.finish()
		}
	}
	maxRetries := max(rc.Max, 0)

	var tried [maxTried]*Member
	var lastErr error
	for attempt := 0; ; attempt++ {
		m := p.pick(s, key, tried[:min(attempt, maxTried)])
		if m == nil {
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, p.noHealthy(s)
		}
		out, tb, err := outRequest(req, m, attempt, guard, s.cfg.Parent)
		if err != nil {
			return nil, err
		}
		if info != nil {
			info.Member, info.Attempts = m.name, attempt+1
		}
		m.st.inFlight.Add(1)
		resp, err := m.rt.RoundTrip(out)
		if err == nil {
			if slices.Contains(s.cfg.Passive.UnhealthyStatus, resp.StatusCode) {
				p.recordFailure(s, m, fmt.Errorf("status %d", resp.StatusCode))
			} else {
				p.recordSuccess(m)
			}
			resp.Body = trackBody(tb, resp.Body, m.st)
			return resp, nil
		}
		m.st.inFlight.Add(-1)
		if ctx.Err() != nil || (guard != nil && guard.failed()) {
			// The client went away or its body failed (too big, too slow):
			// not the member's fault, and nothing to retry.
			return nil, err
		}
		p.recordFailure(s, m, err)
		lastErr = err
		var de *DialError
		safe := (errors.As(err, &de) && (guard == nil || !guard.touched())) ||
			(replayable && idempotent(req))
		if !safe || attempt >= maxRetries || !p.budget.withdraw(rc.MinPerSecond, p.now()) {
			return nil, err
		}
		if attempt < maxTried {
			tried[attempt] = m
		}
	}
}

// pick selects a member for key that has not been tried yet: the policy's
// choice when untried, else the least loaded untried available member.
func (p *Pool) pick(s *state, key string, tried []*Member) *Member {
	m := s.selector.Select(p, key)
	if m == nil || !wasTried(tried, m) {
		return m
	}
	var best *Member
	for _, c := range s.members {
		if c.Available() && !wasTried(tried, c) && (best == nil || lessLoaded(c, best)) {
			best = c
		}
	}
	return best
}

func wasTried(tried []*Member, m *Member) bool {
	for _, t := range tried {
		if t.st == m.st {
			return true
		}
	}
	return false
}

// outRequest returns a shallow copy of req addressed to m (for a parent proxy,
// keeping its URL: m's transport sends it through m), and the trackedBody its
// response's body will be wrapped in. A request's Host header is left as the
// caller set it.
func outRequest(req *http.Request, m *Member, attempt int, guard *guardBody, parent bool) (*http.Request, *trackedBody, error) {
	o := new(struct { // one allocation for the three
		req http.Request
		url url.URL
		tb  trackedBody
	})
	o.req = *req
	o.url = *req.URL
	out, u := &o.req, &o.url
	if !parent {
		u.Scheme = m.URL.Scheme
		u.Host = m.URL.Host
		if prefix := m.URL.Path; prefix != "" && prefix != "/" {
			u.Path = joinPath(prefix, u.Path)
			if u.RawPath != "" {
				u.RawPath = joinPath(m.URL.EscapedPath(), u.RawPath)
			}
		}
	}
	out.URL = u
	out.RequestURI = ""
	switch {
	case guard != nil:
		out.Body = guard
	case attempt > 0 && req.GetBody != nil && req.Body != nil && req.Body != http.NoBody:
		b, err := req.GetBody()
		if err != nil {
			return nil, nil, err
		}
		out.Body = b
	}
	return out, &o.tb, nil
}

func joinPath(a, b string) string {
	switch as, bs := strings.HasSuffix(a, "/"), strings.HasPrefix(b, "/"); {
	case as && bs:
		return a + b[1:]
	case !as && !bs:
		return a + "/" + b
	}
	return a + b
}

// idempotent reports whether req may be sent twice (RFC 9110 §9.2.2).
func idempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	_, ok := req.Header["Idempotency-Key"]
	return ok
}

// guardBody lets a request body that cannot be replayed be offered to another
// member when the first could not even be dialled: it remembers whether any of
// it was read, and holds back a Close that comes before any Read. It also
// remembers a failed Read, so that a client's bad body is not held against
// the member.
type guardBody struct {
	rc io.ReadCloser

	mu       sync.Mutex
	read     bool
	readErr  bool // a Read failed with something other than EOF
	deferred bool // Close arrived before any Read
	done     bool
}

func (g *guardBody) Read(b []byte) (int, error) {
	g.mu.Lock()
	g.read = true
	g.mu.Unlock()
	n, err := g.rc.Read(b)
	if err != nil && err != io.EOF {
		g.mu.Lock()
		g.readErr = true
		g.mu.Unlock()
	}
	return n, err
}

// failed reports whether reading the body failed.
func (g *guardBody) failed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.readErr
}

func (g *guardBody) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.read || g.done {
		return g.rc.Close()
	}
	g.deferred = true
	return nil
}

func (g *guardBody) touched() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.read
}

// finish closes the body if a Close was held back; later Closes pass through.
func (g *guardBody) finish() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.done = true
	if g.deferred {
		g.deferred = false
		g.rc.Close()
	}
}

// trackBody wraps a response body in tb so the member's in-flight count drops
// when the body is closed. Bodies of 101 responses stay writable (WebSockets).
func trackBody(tb *trackedBody, b io.ReadCloser, st *memberState) io.ReadCloser {
	tb.ReadCloser, tb.st = b, st
	if w, ok := b.(io.Writer); ok {
		return trackedRWC{trackedBody: tb, w: w}
	}
	return tb
}

type trackedBody struct {
	io.ReadCloser
	st   *memberState
	done atomic.Bool
}

func (b *trackedBody) Close() error {
	if b.done.CompareAndSwap(false, true) {
		b.st.inFlight.Add(-1)
	}
	return b.ReadCloser.Close()
}

// SpliceTo passes internal/relay's socket-to-socket copy on to the member
// transport's body (internal/upstream's); ok false (nothing done) when that
// body cannot.
func (b *trackedBody) SpliceTo(w func(prefix []byte, src net.Conn, n int64) (int64, bool, error)) (n int64, ok bool, rerr, werr error) {
	if sb, is := b.ReadCloser.(interface {
		SpliceTo(func([]byte, net.Conn, int64) (int64, bool, error)) (int64, bool, error, error)
	}); is {
		return sb.SpliceTo(w)
	}
	return 0, false, nil, nil
}

// trackedRWC keeps a switched-protocol body writable.
type trackedRWC struct {
	*trackedBody
	w io.Writer
}

func (b trackedRWC) Write(p []byte) (int, error) { return b.w.Write(p) }

// budget limits retries to a share of requests (Finagle/Envoy style) so that a
// sick pool is not hammered: each request deposits ratio of a token, each retry
// takes a whole one; min_per_second retries a second are always allowed.
type budget struct {
	milli  atomic.Int64 // tokens × 1000
	second atomic.Int64 // unix second of the free allowance window
	used   atomic.Int64 // free retries used in that second
}

// budgetCapMilli caps saved tokens so a long quiet spell does not bank a storm.
const budgetCapMilli = 100 * 1000

func (b *budget) deposit(ratio float64) {
	if v := b.milli.Add(int64(ratio * 1000)); v > budgetCapMilli {
		b.milli.CompareAndSwap(v, budgetCapMilli)
	}
}

func (b *budget) withdraw(minPerSecond int, now time.Time) bool {
	sec := now.Unix()
	if old := b.second.Load(); old != sec && b.second.CompareAndSwap(old, sec) {
		b.used.Store(0)
	}
	if b.used.Add(1) <= int64(minPerSecond) {
		return true
	}
	if b.milli.Add(-1000) >= 0 {
		return true
	}
	b.milli.Add(1000)
	return false
}
