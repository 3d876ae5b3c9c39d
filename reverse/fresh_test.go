package reverse

import (
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/cache"
	"github.com/portcullis/portcullis/internal/pool"
)

// plainRT hides a transport's ServeFresh, so the door proxies every request.
type plainRT struct{ http.RoundTripper }

// countingFresh counts the requests its FreshServer answered.
type countingFresh struct {
	http.RoundTripper
	fs     FreshServer
	served atomic.Int64
}

func (c *countingFresh) ServeFresh(w http.ResponseWriter, r *http.Request, scheme string, edit *cache.Edit, now time.Time) (string, bool) {
	ct, ok := c.fs.ServeFresh(w, r, scheme, edit, now)
	if ok {
		c.served.Add(1)
	}
	return ct, ok
}

// cachedDoor is a door whose route "site" (hide_origin) goes through a cache,
// with or without the fresh-hit fast path.
type cachedDoor struct {
	*door
	origin *testOrigin
	cache  *cache.Cache
	log    *recordLog
	fresh  *countingFresh // nil: fast path hidden
}

// startCachedDoorTLS is startCachedDoor with tls.mode (""/"internal").
func startCachedDoorTLS(t *testing.T, fast bool, tlsMode string) *cachedDoor {
	return startCachedDoorOpts(t, fast, tlsMode, true)
}

// startCachedDoorOpts is startCachedDoorTLS with hide_origin on or off (off,
// the fast path sends the stored header as rendered bytes).
func startCachedDoorOpts(t *testing.T, fast bool, tlsMode string, hide bool) *cachedDoor {
	t.Helper()
	now := time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC)
	cd := &cachedDoor{log: &recordLog{}}
	cd.origin = newTestOrigin(t, "o", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Date", now.Format(http.TimeFormat))
		h.Set("Cache-Control", "public, max-age=60")
		h.Set("ETag", `"v1"`)
		h.Set("Server", "origin-httpd/1.0")
		h.Set("X-Powered-By", "php")
		if r.URL.Path == "/vary-xff" {
			h.Set("Vary", "X-Forwarded-For")
		}
		io.WriteString(w, "body of "+r.URL.Path)
	})
	c, err := cache.New(cache.Config{}, nil, cache.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cd.cache = c
	wrap := func(_ string, rt http.RoundTripper) http.RoundTripper {
		ct := c.WrapPolicy(&cache.Policy{Enabled: true}, rt)
		if !fast {
			return plainRT{ct}
		}
		fs, ok := ct.(FreshServer)
		if !ok {
			t.Fatal("the cache transport does not implement FreshServer")
		}
		cd.fresh = &countingFresh{RoundTripper: ct, fs: fs}
		return cd.fresh
	}
	p := newTestPool(t, pool.Config{}, cd.origin.url())
	cfg := Config{
		Routes: []Route{{Name: "site", Host: []string{"app.example.test"}, Pool: "p", HideOrigin: hide}},
		Hide:   Hide{Server: "portcullis"},
		TLS:    TLSConfig{Mode: tlsMode},
	}
	cd.door = startDoor(t, cfg, map[string]*pool.Pool{"p": p}, Options{Wrap: wrap, Log: cd.log})
	return cd
}

// TestFreshHitSameAsProxiedHit sends the same requests to a door with the
// fresh-hit fast path and to one without it, and requires identical statuses,
// headers, bodies, access-log entries and origin traffic; the fast door must
// have answered the fresh hits itself and declined what it may not answer.
// Either way the stored header goes as the bytes the entry keeps rendered
// (with hide_origin, rendered with the origin hidden).
func TestFreshHitSameAsProxiedHit(t *testing.T) {
	t.Run("hide_origin", func(t *testing.T) { testFreshHitSameAsProxiedHit(t, true) })
	t.Run("plain", func(t *testing.T) { testFreshHitSameAsProxiedHit(t, false) })
}

func testFreshHitSameAsProxiedHit(t *testing.T, hide bool) {
	slow, fast := startCachedDoorOpts(t, false, "", hide), startCachedDoorOpts(t, true, "", hide)
	cases := []struct {
		name, method, path string
		hdr                map[string]string
		fastServed         bool // the fast path answers it (after the first GET stored it)
	}{
		{"miss", "GET", "/a", nil, false},
		{"hit", "GET", "/a", nil, true},
		{"head hit", "HEAD", "/a", nil, true},
		{"conditional 304", "GET", "/a", map[string]string{"If-None-Match": `"v1"`}, true},
		{"conditional no match", "GET", "/a", map[string]string{"If-None-Match": `"v0"`}, true},
		{"range", "GET", "/a", map[string]string{"Range": "bytes=0-3"}, false},
		{"client no-cache", "GET", "/a", map[string]string{"Cache-Control": "no-cache"}, false},
		{"connection names a field", "GET", "/a", map[string]string{"Connection": "X-Trace", "X-Trace": "1"}, false},
		{"hit after revalidation", "GET", "/a", nil, true},
		{"vary on a rewritten field: miss", "GET", "/vary-xff", nil, false},
		{"vary on a rewritten field: hit", "GET", "/vary-xff", nil, false},
		{"query httputil re-encodes", "GET", "/a?x=1;y=2", nil, false},
		{"bad escape in the query", "GET", "/a?x=%zz", nil, false},
		{"other path", "GET", "/b", nil, false},
	}
	for n, tc := range cases {
		var got [2]struct {
			status int
			body   string
			hdr    http.Header
		}
		for i, cd := range []*cachedDoor{slow, fast} {
			var before int64
			if cd.fresh != nil {
				before = cd.fresh.served.Load()
			}
			hdr := map[string]string{"Host": "app.example.test"}
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			got[i].status, got[i].body, got[i].hdr = fetch(t, client(t, cd.plain, nil, false), tc.method, "http://app.example.test"+tc.path, hdr)
			// The entry is logged just after the response is sent: wait for it,
			// so that entries line up with cases.
			waitFor(t, "the access-log entry", func() bool { return len(cd.log.entries()) == n+1 })
			if i == 1 {
				if served := cd.fresh.served.Load() - before; served != map[bool]int64{false: 0, true: 1}[tc.fastServed] {
					t.Errorf("%s: fast path answered %d requests, want fast=%v", tc.name, served, tc.fastServed)
				}
			}
		}
		if got[0].status != got[1].status || got[0].body != got[1].body || !reflect.DeepEqual(got[0].hdr, got[1].hdr) {
			t.Errorf("%s: proxied %d %q %v\nfast %d %q %v", tc.name, got[0].status, got[0].body, got[0].hdr, got[1].status, got[1].body, got[1].hdr)
		}
		if h := got[1].hdr; hide && (h.Get("Server") != "portcullis" || h.Get("X-Powered-By") != "") {
			t.Errorf("%s: origin not hidden: %v", tc.name, h)
		}
		if h := got[1].hdr; !hide && got[1].status == 200 && (h.Get("Server") != "origin-httpd/1.0" || h.Get("Cache-Status") == "" || len(h["Date"]) != 1) {
			t.Errorf("%s: header %v", tc.name, h)
		}
	}
	if n := fast.fresh.served.Load(); n != 5 {
		t.Errorf("fast path answered %d requests, want 5", n)
	}
	if s, f := slow.origin.hits.Load(), fast.origin.hits.Load(); s != f || s < 3 {
		t.Errorf("origin requests: proxied door %d, fast door %d", s, f)
	}
	if s, f := slow.cache.Stats(), fast.cache.Stats(); s.Hits != f.Hits || s.Misses != f.Misses || s.Hits < 5 {
		t.Errorf("cache stats differ: proxied %+v, fast %+v", s, f)
	}
	se, fe := slow.log.entries(), fast.log.entries()
	if len(se) != len(cases) || len(fe) != len(cases) {
		t.Fatalf("access log: %d and %d entries, want %d", len(se), len(fe), len(cases))
	}
	for i := range se {
		a, b := se[i], fe[i]
		if a.Status != b.Status || a.BytesOut != b.BytesOut || (a.Upstream == "") != (b.Upstream == "") || a.Error != b.Error ||
			a.URL != b.URL || a.Method != b.Method || a.Rule != b.Rule || a.Action != b.Action ||
			a.Cache != b.Cache || a.ContentType != b.ContentType {
			t.Errorf("%s: access log differs:\nproxied %+v\nfast    %+v", cases[i].name, a, b)
		}
	}
	if hit := fe[1]; hit.Status != 200 || hit.BytesOut != int64(len("body of /a")) || hit.Upstream != "" ||
		hit.Cache != "hit" || hit.ContentType != "text/plain; charset=utf-8" {
		t.Errorf("hit logged as %+v", hit)
	}
	if fe[3].Status != http.StatusNotModified || fe[3].BytesOut != 0 {
		t.Errorf("conditional hit logged as %+v", fe[3])
	}
}

// TestFreshHitOverHTTP2: over TLS and HTTP/2 the fast path answers the second
// request, with the origin hidden and the cache's own headers.
func TestFreshHitOverHTTP2(t *testing.T) {
	cd := startCachedDoorTLS(t, true, "internal")
	c := client(t, cd.secure, cd.caPool, true)
	for i := range 2 {
		res, err := c.Get("https://app.example.test/h2")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.ProtoMajor != 2 || res.StatusCode != 200 || string(body) != "body of /h2" {
			t.Fatalf("request %d: %s %d %q %v", i, res.Proto, res.StatusCode, body, err)
		}
		if h := res.Header; h.Get("Server") != "portcullis" || h.Get("X-Powered-By") != "" {
			t.Errorf("request %d: header %v", i, h)
		}
		if h := res.Header; i == 1 && (h.Get("Cache-Status") != "Portcullis; hit; ttl=60" || h.Get("Age") != "0") {
			t.Errorf("second request: Cache-Status %q, Age %q", h.Get("Cache-Status"), h.Get("Age"))
		}
	}
	// A GET with a body is not answered from the cache (either path).
	req, _ := http.NewRequest("GET", "https://app.example.test/h2", strings.NewReader("x"))
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if n := cd.fresh.served.Load(); n != 1 || cd.origin.hits.Load() != 2 {
		t.Errorf("fast path served %d, origin saw %d requests; want 1 and 2", n, cd.origin.hits.Load())
	}
}
