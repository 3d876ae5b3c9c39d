package reverse

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"testing"

	"github.com/portcullis/portcullis/internal/cache"
	"github.com/portcullis/portcullis/internal/pool"
	"github.com/portcullis/portcullis/rules"
)

// benchOrigin serves a fixed body of n bytes with its Content-Length.
func benchOrigin(b *testing.B, n int) *httptest.Server {
	body := bytes.Repeat([]byte("x"), n)
	clen := strconv.Itoa(n)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", clen) // as bench/origin does
		w.Write(body)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// benchGet runs parallel keep-alive GETs against url and checks the size.
func benchGet(b *testing.B, target string, n int) {
	tr := &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.SetBytes(int64(n))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(target)
			if err != nil {
				b.Error(err)
				return
			}
			got, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if got != int64(n) || resp.StatusCode != 200 {
				b.Errorf("status %d, %d bytes", resp.StatusCode, got)
				return
			}
		}
	})
}

// benchDoor fronts origin with the reverse door (one route, a policy that
// allows, round robin over one member) on loopback.
func benchDoor(b *testing.B, origin string) *httptest.Server { return benchDoorWrap(b, origin, nil) }

// benchDoorWrap is benchDoor with Options.Wrap.
func benchDoorWrap(b *testing.B, origin string, wrap func(string, http.RoundTripper) http.RoundTripper) *httptest.Server {
	srv := httptest.NewServer(benchHandler(b, origin, wrap, true))
	b.Cleanup(srv.Close)
	return srv
}

// benchHandler is the door of the benchmarks: one route to a pool with
// origin, allowed by the policy, the transport wrapped by wrap.
func benchHandler(b *testing.B, origin string, wrap func(string, http.RoundTripper) http.RoundTripper, hideOrigin bool) *Handler {
	p, err := pool.New("bench", pool.Config{Members: []pool.MemberConfig{{URL: origin}}, MaxIdlePerMember: 256}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	h, err := New(Options{
		Config: Config{Routes: []Route{{Name: "bench", Host: []string{"127.0.0.1"}, Pool: "bench", HideOrigin: hideOrigin}}},
		Policy: rules.EvaluatorFunc(func(*rules.Facts) rules.Verdict { return rules.Verdict{Action: rules.ActionAllow, Rule: "default"} }),
		Pools:  map[string]*pool.Pool{"bench": p},
		Wrap:   wrap,
	})
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// cacheableOrigin starts an origin answering 1 KiB that caches may keep for
// ten minutes, and a cache in front of which doors put it.
func cacheableOrigin(b *testing.B) (string, *cache.Cache) {
	body := bytes.Repeat([]byte("x"), 1024)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	}))
	b.Cleanup(origin.Close)
	c, err := cache.New(cache.Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return origin.URL, c
}

// BenchmarkReverse1KiB: client → door → origin, 1 KiB responses.
func BenchmarkReverse1KiB(b *testing.B) {
	origin := benchOrigin(b, 1024)
	benchGet(b, benchDoor(b, origin.URL).URL+"/x", 1024)
}

// BenchmarkDirect1KiB: client → origin, the ceiling.
func BenchmarkDirect1KiB(b *testing.B) {
	benchGet(b, benchOrigin(b, 1024).URL+"/x", 1024)
}

// BenchmarkHTTPUtil1KiB: client → Go's bare reverse proxy (net/http/httputil) → origin, for comparison.
func BenchmarkHTTPUtil1KiB(b *testing.B) {
	origin := benchOrigin(b, 1024)
	u, _ := url.Parse(origin.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256}
	srv := httptest.NewServer(rp)
	b.Cleanup(srv.Close)
	benchGet(b, srv.URL+"/x", 1024)
}

// BenchmarkReverse1MiB: client → door → origin, 1 MiB responses.
func BenchmarkReverse1MiB(b *testing.B) {
	origin := benchOrigin(b, 1<<20)
	benchGet(b, benchDoor(b, origin.URL).URL+"/x", 1<<20)
}

// BenchmarkHandler1KiB measures the door's handler alone (recorder in front,
// real origin behind): the per-request cost of our code plus internal/relay.
func BenchmarkHandler1KiB(b *testing.B) {
	origin := benchOrigin(b, 1024)
	door := benchDoor(b, origin.URL)
	h := door.Config.Handler
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/x", nil)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 || rec.Body.Len() != 1024 {
				b.Errorf("status %d, %d bytes", rec.Code, rec.Body.Len())
				return
			}
		}
	})
}

// BenchmarkCacheHit1KiB: client → door with the shared cache (fresh hits,
// answered by the FreshServer fast path) for a 1 KiB object, as bench/
// scenario c.
func BenchmarkCacheHit1KiB(b *testing.B) { benchCacheHit(b, true) }

// BenchmarkCacheHitProxied1KiB is BenchmarkCacheHit1KiB with the fast path
// hidden: hits go through internal/relay and the cache's RoundTrip.
func BenchmarkCacheHitProxied1KiB(b *testing.B) { benchCacheHit(b, false) }

func benchCacheHit(b *testing.B, fast bool) {
	origin, c := cacheableOrigin(b)
	srv := benchDoorWrap(b, origin, func(_ string, rt http.RoundTripper) http.RoundTripper {
		ct := c.WrapPolicy(&cache.Policy{Enabled: true}, rt)
		if !fast {
			return plainRT{ct}
		}
		return ct
	})
	benchGet(b, srv.URL+"/cacheable", 1024)
	b.StopTimer()
	if st := c.Stats(); st.Misses != 1 {
		b.Fatalf("hits went to the origin: %+v", st)
	}
}
