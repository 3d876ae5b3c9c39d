package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPolicyIgnoreQueryKeyHeadersBypass(t *testing.T) {
	w := newWorld(t, Config{}, func(rw http.ResponseWriter, r *http.Request, n int64) {
		rw.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprintf(rw, "%s n=%d", r.URL.RawQuery, n)
	})
	w.setPolicy(&Policy{Enabled: true, IgnoreQuery: []string{"utm_*", "fbclid"}, BypassPaths: []string{"/api/", "*.php"}, KeyHeaders: []string{"x-tenant"}})
	a := w.get("/p?id=1&utm_source=x")
	b := w.get("/p?utm_medium=y&id=1&fbclid=z")
	w.expectOrigin(1)
	if b.body != a.body || !strings.Contains(a.body, "utm_source=x") {
		t.Fatalf("ignored params: %q vs %q", a.body, b.body)
	}
	w.get("/p?id=2")
	w.expectOrigin(2)
	w.get("/p?id=1", "X-Tenant", "blue")
	w.get("/p?id=1", "X-Tenant", "blue")
	w.expectOrigin(3)
	r := w.get("/api/x")
	w.get("/api/x")
	w.get("/index.php")
	w.get("/index.php")
	w.expectOrigin(7)
	expectStatus(t, r, "fwd=bypass")
}

func TestNoOrDisabledPolicyPassesThrough(t *testing.T) {
	w := newWorld(t, Config{}, fixed("x", "Cache-Control", "max-age=60"))
	w.setPolicy(&Policy{Enabled: false})
	r := w.get("/")
	w.get("/")
	w.setPolicy(nil)
	w.get("/")
	w.expectOrigin(3)
	if r.cacheStatus() != "" {
		t.Fatalf("disabled policy annotated the response: %q", r.cacheStatus())
	}
}

func TestPurgeURLAndPrefix(t *testing.T) {
	w := newWorld(t, Config{}, fixed("x", "Cache-Control", "max-age=600"))
	for _, p := range []string{"/static/a.css", "/static/b.js", "/static/img/c.png", "/index.html"} {
		w.get(p)
	}
	w.expectOrigin(4)
	admin := httptest.NewServer(w.c.PurgeHandler())
	defer admin.Close()
	purge := func(method, q string) (int, int) {
		req, _ := http.NewRequest(method, admin.URL+"/?"+q, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out struct{ Purged int }
		_ = json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out.Purged
	}
	if code, n := purge("PURGE", "url=http://www.example.test/static/a.css"); code != 200 || n != 1 {
		t.Fatalf("purge url: %d %d", code, n)
	}
	w.get("/static/a.css")
	w.get("/static/b.js")
	w.expectOrigin(5)
	if code, n := purge("POST", "prefix=http://WWW.example.test:80/static/"); code != 200 || n != 3 {
		t.Fatalf("purge prefix: %d %d", code, n)
	}
	w.get("/static/b.js")
	w.get("/static/img/c.png")
	w.get("/index.html")
	w.expectOrigin(7)
	if code, _ := purge("GET", "url=http://www.example.test/"); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET purge: %d", code)
	}
	if code, _ := purge("DELETE", "url=/relative"); code != http.StatusBadRequest {
		t.Fatalf("relative purge: %d", code)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := Config{MaxBytes: 1000, MaxObjectBytes: -1, CoalesceTimeout: -1, DefaultHeuristicFraction: 2, MaxVariants: -1}
	errs := bad.Validate()
	want := []string{"max_bytes", "max_object_bytes", "coalesce_timeout", "default_heuristic_fraction", "max_variants"}
	if len(errs) != len(want) {
		t.Fatalf("errors = %v", errs)
	}
	for i, e := range errs {
		if e.Path != want[i] {
			t.Fatalf("error %d at %q, want %q", i, e.Path, want[i])
		}
	}
	if _, err := New(bad, nil); err == nil {
		t.Fatal("New accepted an invalid config")
	}
	if errs := (&Config{}).Validate(); len(errs) != 0 {
		t.Fatalf("zero config: %v", errs)
	}
	if errs := (&Config{MaxBytes: 2 << 20, MaxObjectBytes: 4 << 20}).Validate(); len(errs) != 1 || errs[0].Path != "max_object_bytes" {
		t.Fatalf("object larger than cache: %v", errs)
	}
	p := Policy{MaxTTL: -1, IgnoreQuery: []string{"[a"}, BypassPaths: []string{"api"}, KeyHeaders: []string{"bad header"}}
	perrs := p.Validate()
	wantP := []string{"max_ttl", "ignore_query[0]", "bypass_paths[0]", "key_headers[0]"}
	if len(perrs) != len(wantP) {
		t.Fatalf("policy errors = %v", perrs)
	}
	for i, e := range perrs {
		if e.Path != wantP[i] {
			t.Fatalf("policy error %d at %q, want %q", i, e.Path, wantP[i])
		}
	}
}

func TestPolicyMaxTTL(t *testing.T) {
	w := newWorld(t, Config{}, fixed("x", "Cache-Control", "max-age=3600"))
	w.setPolicy(&Policy{Enabled: true, MaxTTL: 60e9})
	w.get("/")
	w.clk.Advance(59e9)
	w.get("/")
	w.expectOrigin(1)
	w.clk.Advance(2e9)
	w.get("/")
	w.expectOrigin(2)
}

func TestCacheStatusAndResult(t *testing.T) {
	cases := []struct {
		st   cacheStatus
		want string
		res  string
	}{
		{cacheStatus{hit: true, ttl: 42e9, hasTTL: true}, "Portcullis; hit; ttl=42", "hit"},
		{cacheStatus{hit: true, ttl: -3e9, hasTTL: true}, "Portcullis; hit; ttl=-3", "stale"},
		{cacheStatus{fwd: "uri-miss", fwdStatus: 200, stored: true, ttl: 60e9, hasTTL: true}, "Portcullis; fwd=uri-miss; fwd-status=200; ttl=60; stored", "miss"},
		{cacheStatus{fwd: "miss", fwdStatus: 200, collapsed: true}, "Portcullis; fwd=miss; fwd-status=200; collapsed", "miss"},
		{cacheStatus{fwd: "stale", fwdStatus: 304}, "Portcullis; fwd=stale; fwd-status=304", "revalidated"},
		{cacheStatus{fwd: "bypass", detail: "policy"}, "Portcullis; fwd=bypass; detail=policy", "bypass"},
		{cacheStatus{fwd: "stale", detail: "origin-down", ttl: -9e9, hasTTL: true}, "Portcullis; fwd=stale; ttl=-9; detail=origin-down", "stale"},
		{cacheStatus{fwd: "stale", fwdStatus: 503, detail: "stale-if-error"}, "Portcullis; fwd=stale; fwd-status=503; detail=stale-if-error", "stale"},
	}
	for _, tc := range cases {
		if got := tc.st.String(); got != tc.want {
			t.Errorf("String = %q, want %q", got, tc.want)
		}
		h := http.Header{"Cache-Status": {"upstream; hit"}}
		tc.st.apply(h)
		if len(h["Cache-Status"]) != 2 || h["Cache-Status"][1] != tc.want {
			t.Errorf("apply = %v", h["Cache-Status"])
		}
		if got := Result(h); got != tc.res {
			t.Errorf("Result(%q) = %q, want %q", tc.want, got, tc.res)
		}
	}
}

func TestDirectiveParsing(t *testing.T) {
	h := http.Header{"Cache-Control": {`Max-Age=10, max-age=99, private="X-A, x-b", no-cache="X-C"`, ` s-maxage=5 ,must-revalidate,stale-if-error=30`}}
	cc := parseRespCC(h)
	if cc.maxAge != 10e9 || cc.sMaxAge != 5e9 || len(cc.privateFields) == 0 || cc.unqualifiedPrivate || !cc.mustRevalidate || cc.sie != 30e9 {
		t.Fatalf("parsed %+v", cc)
	}
	if strings.Join(cc.privateFields, ",") != "X-A,X-B" || strings.Join(cc.noCacheFields, ",") != "X-C" || cc.unqualifiedNoCache {
		t.Fatalf("fields %v %v", cc.privateFields, cc.noCacheFields)
	}
	if cc := parseRespCC(http.Header{"Cache-Control": {"max-age=abc"}}); cc.maxAge != 0 || !cc.invalidFreshnessInfo {
		t.Fatalf("invalid max-age: %+v", cc)
	}
	if cc := parseRespCC(http.Header{"Cache-Control": {"max-age=99999999999999"}}); cc.maxAge != maxDelta {
		t.Fatalf("huge max-age: %v", cc.maxAge)
	}
	r := parseReqCC(http.Header{"Cache-Control": {"max-stale, min-fresh=3, only-if-cached"}})
	if !r.maxStaleAny || r.minFresh != 3e9 || !r.onlyIfCached || r.noCache {
		t.Fatalf("request %+v", r)
	}
	if r := parseReqCC(http.Header{"Pragma": {"no-cache"}}); !r.noCache {
		t.Fatal("Pragma: no-cache ignored")
	}
	if r := parseReqCC(http.Header{"Pragma": {"no-cache"}, "Cache-Control": {"max-age=5"}}); r.noCache {
		t.Fatal("Pragma must be ignored when Cache-Control is present")
	}
}

func TestWrapPolicyDefaultAndOverride(t *testing.T) {
	w := newWorld(t, Config{}, fixed("x", "Cache-Control", "max-age=60"))
	rt := w.c.WrapPolicy(&Policy{Enabled: true}, http.DefaultTransport)
	client := &http.Client{Transport: rt}
	get := func(ctx context.Context) {
		req, _ := http.NewRequestWithContext(ctx, "GET", w.origin.URL+"/d", nil)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		drain(res.Body)
	}
	get(context.Background())
	get(context.Background())
	w.expectOrigin(1)
	get(WithPolicy(context.Background(), &Policy{Enabled: false}))
	get(WithPolicy(context.Background(), nil))
	w.expectOrigin(3)
}

func TestPoisoningInputsBypass(t *testing.T) {
	w := newWorld(t, Config{}, func(rw http.ResponseWriter, r *http.Request, n int64) {
		rw.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprintf(rw, "n=%d", n)
	})
	req, _ := http.NewRequest("GET", w.proxy.URL+"/fat", strings.NewReader("body changes the answer"))
	res, err := w.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	drain(res.Body)
	if !strings.Contains(res.Header.Get("Cache-Status"), "fwd=bypass") {
		t.Fatalf("GET with body: %q", res.Header.Get("Cache-Status"))
	}
	r := w.get("/o", "X-HTTP-Method-Override", "DELETE")
	expectStatus(t, r, "fwd=bypass", "detail=method-override")
	w.get("/fat")
	w.get("/o")
	w.expectOrigin(4)
}

// TestPurgeWithoutPort: a reverse door on a non-default port stores what its
// clients ask for under host:port; a purge of the URL without the port, or
// with the default port, removes it as well as the spelling with the port.
func TestPurgeWithoutPort(t *testing.T) {
	w := newWorld(t, Config{}, fixed("x", "Cache-Control", "max-age=600"))
	get := func(host, path string) {
		t.Helper()
		req, _ := http.NewRequest("GET", w.proxy.URL+path, nil)
		req.Host = host
		res, err := w.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	for _, tc := range []struct {
		stored, purge string
		prefix        bool
	}{
		{"site.test:8080", "http://site.test/a", false},
		{"site.test:8080", "http://site.test:80/a", false},
		{"site.test:8080", "http://site.test:8080/a", false},
		{"site.test", "http://site.test/a", false},
		{"site.test:8080", "http://site.test/", true},
		{"[::1]:8080", "http://[::1]/a", false},
	} {
		get(tc.stored, "/a")
		before := w.count.Load()
		get(tc.stored, "/a")
		if w.count.Load() != before {
			t.Fatalf("%s/a was not stored", tc.stored)
		}
		var ok bool
		if tc.prefix {
			ok = w.c.PurgePrefix(tc.purge) == 1
		} else {
			ok = w.c.Purge(tc.purge)
		}
		if !ok {
			t.Errorf("purging %s (prefix %v) found nothing stored for Host %s", tc.purge, tc.prefix, tc.stored)
		}
		get(tc.stored, "/a")
		if w.count.Load() != before+1 {
			t.Errorf("purging %s (prefix %v) left /a of Host %s stored", tc.purge, tc.prefix, tc.stored)
		}
		w.c.PurgePrefix("http://" + tc.stored + "/")
	}
	// A purge naming another port leaves it.
	get("site.test:8080", "/b")
	if w.c.Purge("http://site.test:9090/b") {
		t.Error("a purge for port 9090 removed the entry of port 8080")
	}
}
