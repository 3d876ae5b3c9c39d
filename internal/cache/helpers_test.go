package cache

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable clock shared by the cache and the test origin, so tests
// age responses without sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// world is a loopback origin that counts its requests, a reverse proxy on
// loopback whose transport is the cache, and a client.
type world struct {
	t       *testing.T
	clk     *clock
	c       *Cache
	policy  *Policy
	origin  *httptest.Server
	proxy   *httptest.Server
	count   atomic.Int64
	mu      sync.Mutex
	handler func(w http.ResponseWriter, r *http.Request, n int64)
	lastReq http.Header
	client  *http.Client
}

func newWorld(t *testing.T, cfg Config, h func(w http.ResponseWriter, r *http.Request, n int64), opts ...Option) *world {
	t.Helper()
	w := &world{t: t, clk: newClock(), handler: h, policy: &Policy{Enabled: true}}
	w.origin = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		n := w.count.Add(1)
		w.mu.Lock()
		w.lastReq = r.Header.Clone()
		h := w.handler
		w.mu.Unlock()
		rw.Header().Set("Date", w.clk.Now().UTC().Format(http.TimeFormat))
		h(rw, r, n)
	}))
	t.Cleanup(w.origin.Close)
	c, err := New(cfg, nil, append([]Option{WithClock(w.clk.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	w.c = c
	target, _ := url.Parse(w.origin.URL)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
		},
		Transport: c.Wrap(tr),
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	w.proxy = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		p := w.policy
		w.mu.Unlock()
		ctx := WithPolicy(r.Context(), p)
		ctx = WithOrigin(ctx, "http", r.Host)
		rp.ServeHTTP(rw, r.WithContext(ctx))
	}))
	t.Cleanup(w.proxy.Close)
	ctr := &http.Transport{}
	t.Cleanup(ctr.CloseIdleConnections)
	w.client = &http.Client{Transport: ctr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return w
}

func (w *world) setHandler(h func(w http.ResponseWriter, r *http.Request, n int64)) {
	w.mu.Lock()
	w.handler = h
	w.mu.Unlock()
}

func (w *world) setPolicy(p *Policy) {
	w.mu.Lock()
	w.policy = p
	w.mu.Unlock()
}

func (w *world) originHeader() http.Header {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastReq
}

type result struct {
	status int
	header http.Header
	body   string
}

func (r result) cacheStatus() string { return r.header.Get("Cache-Status") }

// do sends method path with header pairs ("Name", "value", …) to the proxy.
func (w *world) do(method, path string, hdr ...string) result {
	w.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, w.proxy.URL+path, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	req.Host = "www.example.test"
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	res, err := w.client.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	return result{status: res.StatusCode, header: res.Header, body: string(b)}
}

func (w *world) get(path string, hdr ...string) result {
	w.t.Helper()
	return w.do(http.MethodGet, path, hdr...)
}

// expectOrigin fails unless the origin has seen exactly n requests.
func (w *world) expectOrigin(n int64) {
	w.t.Helper()
	if got := w.count.Load(); got != n {
		w.t.Fatalf("origin saw %d requests, want %d", got, n)
	}
}

func expectStatus(t *testing.T, r result, parts ...string) {
	t.Helper()
	cs := r.cacheStatus()
	for _, p := range parts {
		if !strings.Contains(cs, p) {
			t.Fatalf("Cache-Status %q lacks %q", cs, p)
		}
	}
}

// fixed returns a handler answering 200 with body and the header pairs.
func fixed(body string, hdr ...string) func(http.ResponseWriter, *http.Request, int64) {
	return func(w http.ResponseWriter, _ *http.Request, _ int64) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Add(hdr[i], hdr[i+1])
		}
		_, _ = io.WriteString(w, body)
	}
}
