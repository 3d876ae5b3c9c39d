package reverse

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/internal/admin"
	"github.com/portcullis/portcullis/internal/benchwire"
	"github.com/portcullis/portcullis/internal/cache"
	"github.com/portcullis/portcullis/internal/h1"
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

// nopLog is an access logger that keeps nothing: the door fills its entry
// as it does for the engine's metrics with the log off.
type nopLog struct{}

func (nopLog) Log(*accesslog.Entry) {}

// hitWriter is a ResponseWriter that keeps nothing (its header map is
// reused), so that BenchmarkDoorHit counts only the door's and the cache's
// allocations.
type hitWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *hitWriter) Header() http.Header         { return w.h }
func (w *hitWriter) WriteHeader(code int)        { w.status = code }
func (w *hitWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }

// hitDoor is the door of scenario c: a route with the shared cache in front
// of a cacheable origin, an allowing policy and an access logger that keeps
// nothing, warmed with one request.
func hitDoor(b *testing.B) (*Handler, *cache.Cache) {
	return hitDoorWith(b, false, nopLog{})
}

// hitDoorWith is hitDoor with hide_origin on the route or not, and log as
// the door's access logger.
func hitDoorWith(b *testing.B, hide bool, log accesslog.Logger) (*Handler, *cache.Cache) {
	origin, c := cacheableOrigin(b)
	h := benchHandler(b, origin, func(_ string, rt http.RoundTripper) http.RoundTripper {
		return c.WrapPolicy(&cache.Policy{Enabled: true}, rt)
	}, hide)
	h.log = log
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://127.0.0.1/cacheable", nil))
	if rec.Code != 200 {
		b.Fatalf("warming: status %d", rec.Code)
	}
	return h, c
}

// BenchmarkDoorHit measures a fresh cache hit through the door's handler
// alone (no connection): routing, verdict, cache lookup, the answer, the
// access-log entry. Its allocs/op are the door's and the cache's per hit.
func BenchmarkDoorHit(b *testing.B) {
	h, c := hitDoor(b)
	benchDoorHit(b, h, c)
}

// BenchmarkDoorHitCounted is BenchmarkDoorHit with the loggers the engine
// gives a door when its access log is off (the binary's bench policy): the
// Prometheus metrics and the status page's counters.
func BenchmarkDoorHitCounted(b *testing.B) {
	log := accesslog.Multi(admin.NewMetrics(prometheus.NewRegistry()), admin.NewStatus(nil))
	h, c := hitDoorWith(b, false, log)
	benchDoorHit(b, h, c)
}

// BenchmarkDoorHitHidden is BenchmarkDoorHit on a route with hide_origin:
// every hit has the origin's identifying fields removed.
func BenchmarkDoorHitHidden(b *testing.B) {
	h, c := hitDoorWith(b, true, nopLog{})
	benchDoorHit(b, h, c)
}

// BenchmarkDoorHitRaw is BenchmarkDoorHitCounted on a writer that takes the
// header rendered, as internal/h1's does: the binary's hit with its access
// log off.
func BenchmarkDoorHitRaw(b *testing.B) {
	log := accesslog.Multi(admin.NewMetrics(prometheus.NewRegistry()), admin.NewStatus(nil))
	h, c := hitDoorWith(b, false, log)
	benchDoorHitOn(b, h, c, true)
}

// BenchmarkDoorHitRawLogged is BenchmarkDoorHitRaw with the JSON access log
// on (written to io.Discard), as the engine fans an entry out: the log
// line's cost per hit.
func BenchmarkDoorHitRawLogged(b *testing.B) {
	a, err := accesslog.NewWriter(accesslog.Config{Format: accesslog.FormatJSON}, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	log := accesslog.Multi(a, admin.NewMetrics(prometheus.NewRegistry()), admin.NewStatus(nil))
	h, c := hitDoorWith(b, false, log)
	benchDoorHitOn(b, h, c, true)
}

// rawHitWriter is a hitWriter that takes header fields rendered, as
// internal/h1's writer does (cache.ServeFresh then copies no header map).
type rawHitWriter struct {
	hitWriter
	raw []byte
}

func (w *rawHitWriter) SetRawHeader(fields []byte, _ int64, _ bool) bool {
	w.raw = fields
	return true
}

func benchDoorHit(b *testing.B, h *Handler, c *cache.Cache) { benchDoorHitOn(b, h, c, false) }

// benchDoorHitOn runs parallel hits on h, on writers that take the header
// rendered (raw) or as a map.
func benchDoorHitOn(b *testing.B, h *Handler, c *cache.Cache, raw bool) {
	b.ReportAllocs()
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/cacheable", nil)
		req.RemoteAddr = "127.0.0.1:40000"
		req.Header.Set("User-Agent", "wrk")
		rw := &rawHitWriter{hitWriter: hitWriter{h: http.Header{}}}
		var w http.ResponseWriter = &rw.hitWriter
		if raw {
			w = rw
		}
		for pb.Next() {
			clear(rw.h)
			rw.n, rw.raw = 0, nil
			h.ServeHTTP(w, req)
			if rw.status != 200 || rw.n != 1024 || raw != (rw.raw != nil) {
				b.Fatalf("status %d, %d bytes, raw header %v", rw.status, rw.n, rw.raw != nil)
			}
		}
	})
	b.StopTimer()
	if st := c.Stats(); st.Misses != 1 {
		b.Fatalf("hits went to the origin: %+v", st)
	}
}

// BenchmarkH1DoorHit is scenario c in one process: keep-alive clients on
// loopback send GET /cacheable to the door served by internal/h1 (as the
// binary serves it) and read each answer with a parser that does not
// allocate, so allocs/op are the server's per hit.
func BenchmarkH1DoorHit(b *testing.B) {
	h, c := hitDoor(b)
	benchH1DoorHit(b, h, c)
}

// BenchmarkH1DoorHitHidden is BenchmarkH1DoorHit on a route with
// hide_origin.
func BenchmarkH1DoorHitHidden(b *testing.B) {
	h, c := hitDoorWith(b, true, nopLog{})
	benchH1DoorHit(b, h, c)
}

func benchH1DoorHit(b *testing.B, h *Handler, c *cache.Cache) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &h1.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	req := []byte("GET /cacheable HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: wrk\r\n\r\n")
	b.ReportAllocs()
	defer reportCPU(b)()
	benchwire.Clients(b, ln.Addr().String(), req, 1024, 8192)
	b.StopTimer()
	if st := c.Stats(); st.Misses != 1 {
		b.Fatalf("hits went to the origin: %+v", st)
	}
}

// BenchmarkH1Reverse1MiB is scenario b in one process: keep-alive clients
// on loopback GET 1 MiB through the door served by internal/h1 (as the
// binary serves it) from an origin on loopback; cpu-ns/op counts the
// origin's and the clients' work too (the same on every run).
func BenchmarkH1Reverse1MiB(b *testing.B) {
	const size = 1 << 20
	benchH1Proxied(b, benchOrigin(b, size).URL, true, size, 64<<10)
}

// benchH1Proxied runs keep-alive clients on loopback, each reading with a
// buffer of bufSize, that GET size bytes through the door served by
// internal/h1 from origin, the route with hide_origin or not.
func benchH1Proxied(b *testing.B, origin string, hide bool, size, bufSize int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &h1.Server{Handler: benchHandler(b, origin, nil, hide), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	req := []byte("GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: wrk\r\n\r\n")
	b.ReportAllocs()
	b.SetBytes(int64(size))
	defer reportCPU(b)()
	benchwire.Clients(b, ln.Addr().String(), req, size, bufSize)
}

// BenchmarkH1Reverse1KiB is scenario a in one process: keep-alive clients
// on loopback GET 1 KiB through the door served by internal/h1 (as the
// binary serves it, no hide_origin) from an origin that allocates nothing,
// so allocs/op are the server's per proxied request (h1, door, relay, pool,
// upstream client); cpu-ns/op counts the origin's and the clients' work too.
func BenchmarkH1Reverse1KiB(b *testing.B) {
	benchH1Proxied(b, benchwire.Origin(b), false, 1024, 8192)
}
