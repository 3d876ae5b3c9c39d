package cache

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkHit measures the RoundTripper's fresh-hit path: lookup, freshness,
// header clone, Age and Cache-Status, body reader.
func BenchmarkHit(b *testing.B) {
	body := strings.Repeat("x", 4096)
	c, rt, req := warmHit(b, body)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := rt.RoundTrip(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	})
	b.StopTimer()
	if st := c.Stats(); st.Misses != 1 {
		b.Fatalf("hits went to the origin: %+v", st)
	}
}

// BenchmarkHitReverseProxy measures whole cache hits over loopback HTTP: a
// client, an http.Server with httputil.ReverseProxy whose transport is the
// cache, and a 1 KiB object (the bench/ "cacheable" scenario's shape).
func BenchmarkHitReverseProxy(b *testing.B) {
	body := strings.Repeat("x", 1024)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=60")
		_, _ = io.WriteString(w, body)
	}))
	defer origin.Close()
	c, err := New(Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	target, _ := url.Parse(origin.URL)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	rp := &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport:  c.WrapPolicy(&Policy{Enabled: true}, tr),
		BufferPool: &bufPool{},
	}
	proxy := httptest.NewServer(rp)
	defer proxy.Close()
	ctr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer ctr.CloseIdleConnections()
	client := &http.Client{Transport: ctr}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := client.Get(proxy.URL + "/cacheable")
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	})
	b.StopTimer()
	if st := c.Stats(); st.Misses != 1 {
		b.Fatalf("hits went to the origin: %+v", st)
	}
}

type bufPool struct{ p sync.Pool }

func (b *bufPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufPool) Put(buf []byte) { b.p.Put(&buf) }

// discardWriter is a ResponseWriter that keeps nothing (its header map is
// reused), so BenchmarkServeFresh counts only the cache's own allocations.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }

// BenchmarkServeFresh measures the fresh-hit fast path a server uses
// (ServeFresh): lookup, freshness, header copy with shared Age and
// Cache-Status values, body write.
func BenchmarkServeFresh(b *testing.B) {
	body := strings.Repeat("x", 1024)
	_, rt, req := warmHit(b, body)
	fs := rt.(interface {
		ServeFresh(http.ResponseWriter, *http.Request, string, *Edit, time.Time) (string, bool)
	})
	in := httptest.NewRequest("GET", "/static/app.css", nil)
	in.Host = req.URL.Host
	in.Header = req.Header
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			if _, ok := fs.ServeFresh(w, in, "http", nil, time.Time{}); !ok || w.status != 200 {
				b.Fatal("not served from the cache")
			}
		}
	})
}

// warmHit starts an origin serving body as a cacheable stylesheet, and returns
// a cache holding it, the cache's RoundTripper (Wrap) and the request that
// hits it.
func warmHit(b *testing.B, body string) (*Cache, http.RoundTripper, *http.Request) {
	return warmWith(b, "/static/app.css", func(h http.Header) {
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("Content-Type", "text/css")
		h.Set("ETag", `"abc123"`)
		h.Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
		h.Set("Server", "origin")
	}, body)
}

// warmWith starts an origin answering body with the header fields set
// sets, and returns a cache holding its answer for path, the cache's
// RoundTripper (Wrap) and the request that hits it.
func warmWith(tb testing.TB, path string, set func(http.Header), body string) (*Cache, http.RoundTripper, *http.Request) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set(w.Header())
		_, _ = io.WriteString(w, body)
	}))
	tb.Cleanup(origin.Close)
	c, err := New(Config{}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	rt := c.WrapPolicy(&Policy{Enabled: true}, tr)
	req, _ := http.NewRequestWithContext(context.Background(), "GET", origin.URL+path, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("User-Agent", "bench")
	warm, err := rt.RoundTrip(req)
	if err != nil {
		tb.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, warm.Body)
	warm.Body.Close()
	return c, rt, req
}
