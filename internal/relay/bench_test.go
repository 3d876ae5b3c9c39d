package relay

import (
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
)

// The benchmarks compare Serve with Go's reverse proxy (net/http/httputil) on the same
// loopback origin, client and server: ns/op and allocs/op (-benchmem) of
// one keep-alive GET of a 1 KiB body through each.
//
//	go test -run '^$' -bench . -benchmem ./internal/relay

var kib = strings.Repeat("x", 1024)

func benchOrigin(b *testing.B) (*url.URL, *http.Transport) {
	o := origin(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1024")
		io.WriteString(w, kib)
	})
	u, _ := url.Parse(o.URL)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(tr.CloseIdleConnections)
	return u, tr
}

func benchClient(b *testing.B, target string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := c.Get(target)
		if err != nil {
			b.Fatal(err)
		}
		if n, _ := io.Copy(io.Discard, resp.Body); n != 1024 {
			b.Fatalf("%d bytes", n)
		}
		resp.Body.Close()
	}
}

// BenchmarkRelay1KiB: client → Serve → origin.
func BenchmarkRelay1KiB(b *testing.B) {
	u, tr := benchOrigin(b)
	rl := New()
	opts := &Options{Transport: tr}
	front := origin(b, func(w http.ResponseWriter, r *http.Request) {
		Prepare(r, false)
		r.URL.Scheme, r.URL.Host = "http", u.Host
		if _, err := rl.Serve(w, r, opts); err != nil {
			b.Error(err)
		}
	})
	benchClient(b, front.URL)
}

// BenchmarkHTTPUtil1KiB: client → net/http/httputil's reverse proxy → origin, the same way.
func BenchmarkHTTPUtil1KiB(b *testing.B) {
	u, tr := benchOrigin(b)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = tr
	front := origin(b, rp.ServeHTTP)
	benchClient(b, front.URL)
}
