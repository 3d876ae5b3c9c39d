package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// cachedPolicy fronts originURL as site.test through the shared cache.
func cachedPolicy(originURL string) string {
	return fmt.Sprintf(`
reverse:
  listen: ["127.0.0.1:0"]
  routes: [{name: site, host: [site.test], pool: site, cache: on}]
pools:
  site: {members: [{url: %q}]}
cache: {max_bytes: 8MiB}
cache_policies:
  on: {enabled: true}
`, originURL)
}

// reflectingOrigin echoes the request's forwarding headers into a publicly
// cacheable body — the shape of page that cache poisoning targets — and marks
// /account/* pages private with a session cookie.
func reflectingOrigin(t *testing.T) *origin {
	return startOrigin(t, func(c net.Conn, r *http.Request) bool {
		body := "host=" + r.Header.Get("X-Forwarded-Host") + " scheme=" + r.Header.Get("X-Forwarded-Proto") +
			" override=" + r.Header.Get("X-Original-URL") + r.Header.Get("X-Rewrite-URL") + " path=" + r.URL.Path
		cc := "public, max-age=60"
		extra := ""
		if strings.HasPrefix(r.URL.Path, "/account") {
			cc = "private, no-store"
			extra = "Set-Cookie: sid=victim-session\r\n"
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nCache-Control: %s\r\n%sContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", cc, extra, len(body), body)
		return true
	})
}

// TestCachePoisoningUnkeyedHeaders: headers the cache does not key on, sent by an
// attacker, cannot change the response a later visitor gets from the cache.
func TestCachePoisoningUnkeyedHeaders(t *testing.T) {
	o := reflectingOrigin(t)
	p := startProxy(t, cachedPolicy(o.url()), nil, "reverse")
	addr := p.addrs["reverse"]
	poison := "GET /page HTTP/1.1\r\nHost: site.test\r\nX-Forwarded-Host: evil.test\r\nX-Forwarded-Proto: gopher\r\n" +
		"X-Original-URL: /evil\r\nX-Rewrite-URL: /evil\r\nForwarded: host=evil.test\r\nConnection: close\r\n\r\n"
	rawExchange(t, addr, poison)
	resps := rawExchange(t, addr, "GET /page HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n")
	if len(resps) != 1 || resps[0].StatusCode != 200 {
		t.Fatalf("victim: %v", statuses(resps))
	}
	if b := bodyOf(resps[0]); strings.Contains(b, "evil") || strings.Contains(b, "gopher") {
		t.Fatalf("victim got a poisoned page: %q", b)
	}
	// The cache is really on: the next visitor is served without the origin.
	n := len(o.requests())
	rawExchange(t, addr, "GET /page HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n")
	if len(o.requests()) != n {
		t.Fatal("the page was not cached: the poisoning check proves nothing")
	}
}

// TestCacheDeceptionPrivatePage: a private page asked for with a static-looking
// suffix is never stored, so another visitor never sees it.
func TestCacheDeceptionPrivatePage(t *testing.T) {
	o := reflectingOrigin(t)
	p := startProxy(t, cachedPolicy(o.url()), nil, "reverse")
	addr := p.addrs["reverse"]
	for _, pth := range []string{"/account/profile.css", "/account/x.js", "/account.png", "/account/%2e%2e/style.css"} {
		rawExchange(t, addr, "GET "+pth+" HTTP/1.1\r\nHost: site.test\r\nCookie: sid=victim-session\r\nConnection: close\r\n\r\n")
		before := len(o.requests())
		resps := rawExchange(t, addr, "GET "+pth+" HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n")
		for _, r := range resps {
			if strings.Contains(fmt.Sprint(r.Header), "victim-session") && len(o.requests()) == before {
				t.Errorf("%s: a second visitor got the victim's cookie from the cache", pth)
			}
		}
		if len(resps) == 1 && resps[0].StatusCode == 200 && len(o.requests()) == before {
			t.Errorf("%s: served from the cache although private", pth)
		}
	}
}

// TestCacheForwardsTheHostItKeysOn: the cache keys "SITE.Test.:80" as
// site.test, so the origin must be asked for site.test too, never for the
// spelling the client chose: otherwise a page built from the raw Host would be
// stored for, and served to, every visitor of site.test.
func TestCacheForwardsTheHostItKeysOn(t *testing.T) {
	o := reflectingOrigin(t)
	p := startProxy(t, cachedPolicy(o.url()), nil, "reverse")
	addr := p.addrs["reverse"]
	for _, host := range []string{"SITE.Test.:80", "site.test.", "Site.Test"} {
		before := len(o.requests())
		resps := rawExchange(t, addr, "GET /host-"+strings.TrimSuffix(host, ":80")+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
		if len(resps) != 1 || resps[0].StatusCode != 200 {
			t.Fatalf("Host %q: %v", host, statuses(resps))
		}
		reqs := o.requests()
		if len(reqs) != before+1 {
			t.Fatalf("Host %q: the origin saw %d requests, want 1", host, len(reqs)-before)
		}
		if got := reqs[len(reqs)-1].Host; got != "site.test" {
			t.Errorf("Host %q: the origin was asked for %q, the cache keys it as site.test", host, got)
		}
	}
	// And every spelling is one key: one origin request for all of them.
	before := len(o.requests())
	for _, host := range []string{"SITE.Test.:80", "site.test", "site.test.", "Site.Test:80"} {
		rawExchange(t, addr, "GET /same HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
	}
	if n := len(o.requests()) - before; n != 1 {
		t.Errorf("four spellings of site.test made %d origin requests, want 1", n)
	}
}

// TestCacheServesStaleWhenTheOriginClosesWithoutAResponse: when the origin
// accepts the request and closes the connection without answering, a stored
// response that may be served stale (stale-if-error, or
// serve_stale_when_down) is served instead of 502; one that may not is not.
func TestCacheServesStaleWhenTheOriginClosesWithoutAResponse(t *testing.T) {
	for _, tc := range []struct {
		name, cc, cache string
		stale           bool
	}{
		{"stale-if-error", "max-age=0, stale-if-error=600", "{max_bytes: 8MiB}", true},
		{"serve_stale_when_down", "max-age=0", "{max_bytes: 8MiB, serve_stale_when_down: true}", true},
		{"must-revalidate", "max-age=0, must-revalidate", "{max_bytes: 8MiB, serve_stale_when_down: true}", false},
		{"neither", "max-age=0, stale-if-error=0", "{max_bytes: 8MiB}", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			hangUp := false
			o := startOrigin(t, func(c net.Conn, r *http.Request) bool {
				mu.Lock()
				h := hangUp
				mu.Unlock()
				if h {
					return false // close without a response
				}
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nCache-Control: %s\r\nContent-Length: 4\r\n\r\ngood", tc.cc)
				return true
			})
			policy := strings.Replace(cachedPolicy(o.url()), "cache: {max_bytes: 8MiB}", "cache: "+tc.cache, 1)
			p := startProxy(t, policy, nil, "reverse")
			get := "GET /page HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n"
			if rs := rawExchange(t, p.addrs["reverse"], get); len(rs) != 1 || bodyOf(rs[0]) != "good" {
				t.Fatalf("first GET: %v", statuses(rs))
			}
			mu.Lock()
			hangUp = true
			mu.Unlock()
			before := len(o.requests())
			rs := rawExchange(t, p.addrs["reverse"], get)
			if len(o.requests()) == before {
				t.Fatal("the origin was not asked: the check proves nothing")
			}
			if len(rs) != 1 {
				t.Fatalf("second GET: %v", statuses(rs))
			}
			switch {
			case tc.stale && (rs[0].StatusCode != 200 || bodyOf(rs[0]) != "good"):
				t.Fatalf("origin hung up: got %d, want the stale 200", rs[0].StatusCode)
			case !tc.stale && rs[0].StatusCode != http.StatusBadGateway:
				t.Fatalf("origin hung up: got %d, want 502 (this response may not be served stale)", rs[0].StatusCode)
			}
		})
	}
}

// TestCachePurgeWithoutPort: the reverse door listens on a non-default port,
// so its clients send Host site.test:PORT and the cache keys their pages with
// the port; POST /cache/purge on the admin listener with the page's URL
// without the port (as an operator writes it) removes it, as does the URL
// with the port.
func TestCachePurgeWithoutPort(t *testing.T) {
	o := reflectingOrigin(t)
	policy := cachedPolicy(o.url()) + "admin:\n  listen: \"127.0.0.1:0\"\n  log: {path: $DIR/access.log}\n"
	p := startProxy(t, policy, nil, "reverse", "admin")
	addr := p.addrs["reverse"]
	_, port, _ := net.SplitHostPort(addr)
	host := "site.test:" + port
	get := func() {
		t.Helper()
		if rs := rawExchange(t, addr, "GET /page HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n"); len(rs) != 1 || rs[0].StatusCode != 200 {
			t.Fatalf("GET /page: %v", statuses(rs))
		}
	}
	for _, purgeURL := range []string{"http://site.test/page", "http://site.test:" + port + "/page", "http://SITE.test:80/page"} {
		get()
		before := len(o.requests())
		get()
		if len(o.requests()) != before {
			t.Fatal("the page was not cached: the purge check proves nothing")
		}
		res, err := http.Post("http://"+p.addrs["admin"]+"/cache/purge?url="+url.QueryEscape(purgeURL), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(body), `"purged":1`) {
			t.Errorf("purge %s: %d %s", purgeURL, res.StatusCode, body)
		}
		get()
		if len(o.requests()) != before+1 {
			t.Errorf("after purging %s the page was still served from the cache", purgeURL)
		}
	}
}
