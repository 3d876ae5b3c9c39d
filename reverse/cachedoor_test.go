package reverse

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/cache"
	"github.com/portcullis/portcullis/internal/pool"
)

// cacheDoor is a door with one caching route, served as the engine serves
// it.
type cacheDoor struct {
	origin *testOrigin
	fresh  *countingFresh
	addr   string // host:port
	h      *Handler
	log    *recordLog
}

func startCacheDoor(t *testing.T, cfg Config) *cacheDoor {
	t.Helper()
	f := &cacheDoor{log: &recordLog{}}
	f.origin = newTestOrigin(t, "o", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Header().Set("ETag", `"e1"`)
		fmt.Fprintf(w, "body of %s", r.URL.Path)
	})
	c, err := cache.New(cache.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	wrap := func(_ string, rt http.RoundTripper) http.RoundTripper {
		ct := c.WrapPolicy(&cache.Policy{Enabled: true}, rt)
		f.fresh = &countingFresh{RoundTripper: ct, fs: ct.(FreshServer)}
		return f.fresh
	}
	if len(cfg.Routes) == 0 {
		cfg.Routes = []Route{{Name: "site", Host: []string{"app.example.test"}, Pool: "p"}}
	}
	cfg.Listen = []string{"127.0.0.1:0"}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	h, err := New(Options{Config: cfg, Pools: map[string]*pool.Pool{"p": newTestPool(t, pool.Config{}, f.origin.url())}, Wrap: wrap, Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	var stop func()
	f.addr, stop = serveDoor(t, &cfg, h, nil)
	t.Cleanup(stop)
	return f
}

// warm fetches path and waits for its access-log entry: by then the cache
// has stored the response (the entry is written after the body was copied
// through the cache), so the next request is a hit.
func (f *cacheDoor) warm(t *testing.T, path string) {
	t.Helper()
	n := len(f.log.entries())
	rc := dialClient(t, f.addr)
	rc.send(get(path))
	if res, _ := rc.response("GET"); res.StatusCode != 200 {
		t.Fatalf("warming %s: %d", path, res.StatusCode)
	}
	waitFor(t, "the warming request's log entry", func() bool { return len(f.log.entries()) > n })
}

// clientConn is a raw keep-alive client connection.
type clientConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialClient(t *testing.T, addr string) *clientConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &clientConn{t: t, c: c, r: bufio.NewReader(c)}
}

func (rc *clientConn) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

// response reads one response to a request with method.
func (rc *clientConn) response(method string) (*http.Response, string) {
	rc.t.Helper()
	res, err := http.ReadResponse(rc.r, &http.Request{Method: method})
	if err != nil {
		rc.t.Fatalf("reading a response: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		rc.t.Fatalf("reading a body: %v", err)
	}
	res.Body.Close()
	return res, string(b)
}

func get(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: app.example.test\r\n\r\n"
}

// TestPipelinedHits: pipelined requests for a cached path are answered in
// order from the cache, the origin seeing none of them.
func TestPipelinedHits(t *testing.T) {
	f := startCacheDoor(t, Config{})
	f.warm(t, "/a")
	origin := f.origin.hits.Load()
	rc := dialClient(t, f.addr)
	rc.send(get("/a") + get("/a") + get("/a"))
	for i := range 3 {
		if res, body := rc.response("GET"); res.StatusCode != 200 || body != "body of /a" || res.Close {
			t.Fatalf("hit %d: %d %q close=%v", i, res.StatusCode, body, res.Close)
		}
	}
	if got := f.origin.hits.Load(); got != origin {
		t.Fatalf("the origin saw %d more requests", got-origin)
	}
}
