package cache

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFreshHitMakesNoOriginRequest(t *testing.T) {
	w := newWorld(t, Config{}, fixed("hello", "Cache-Control", "max-age=60", "X-Origin", "yes"))
	r1 := w.get("/a")
	expectStatus(t, r1, "Portcullis", "fwd=uri-miss", "fwd-status=200", "stored")
	w.clk.Advance(10 * time.Second)
	r2 := w.get("/a")
	w.expectOrigin(1)
	if r2.body != "hello" || r2.header.Get("X-Origin") != "yes" || r2.status != 200 {
		t.Fatalf("hit = %d %q %v", r2.status, r2.body, r2.header)
	}
	expectStatus(t, r2, "Portcullis; hit", "ttl=50")
	if age := r2.header.Get("Age"); age != "10" {
		t.Fatalf("Age = %q, want 10", age)
	}
	if st := w.c.Stats(); st.Hits != 1 || st.Misses != 1 || st.Objects != 1 || st.Bytes <= 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestAgeIncludesUpstreamAge(t *testing.T) {
	w := newWorld(t, Config{}, fixed("x", "Cache-Control", "max-age=60", "Age", "30"))
	w.get("/")
	w.clk.Advance(10 * time.Second)
	r := w.get("/")
	if r.header.Get("Age") != "40" {
		t.Fatalf("Age = %q, want 40", r.header.Get("Age"))
	}
	w.clk.Advance(21 * time.Second) // age 61 > 60
	w.get("/")
	w.expectOrigin(2)
}

func TestStaleRevalidatesWithETagAndMerges304(t *testing.T) {
	w := newWorld(t, Config{}, func(rw http.ResponseWriter, r *http.Request, n int64) {
		rw.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			rw.Header().Set("Cache-Control", "max-age=100")
			rw.Header().Set("X-Version", "2")
			rw.WriteHeader(http.StatusNotModified)
			return
		}
		rw.Header().Set("Cache-Control", "max-age=10")
		rw.Header().Set("X-Version", "1")
		_, _ = rw.Write([]byte("body-v1"))
	})
	w.get("/r")
	w.clk.Advance(20 * time.Second)
	r := w.get("/r")
	w.expectOrigin(2)
	if got := w.originHeader().Get("If-None-Match"); got != `"v1"` {
		t.Fatalf("origin If-None-Match = %q", got)
	}
	if r.status != 200 || r.body != "body-v1" || r.header.Get("X-Version") != "2" {
		t.Fatalf("revalidated = %d %q X-Version=%q", r.status, r.body, r.header.Get("X-Version"))
	}
	expectStatus(t, r, "fwd=stale", "fwd-status=304")
	w.clk.Advance(50 * time.Second) // fresh for 100 s after the 304
	r = w.get("/r")
	w.expectOrigin(2)
	expectStatus(t, r, "hit")
	if r.header.Get("Cache-Control") != "max-age=100" {
		t.Fatalf("merged Cache-Control = %q", r.header.Get("Cache-Control"))
	}
}

func TestStaleRevalidatesWithLastModified(t *testing.T) {
	var lm string
	w := newWorld(t, Config{}, nil)
	lm = w.clk.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	w.setHandler(func(rw http.ResponseWriter, r *http.Request, n int64) {
		rw.Header().Set("Last-Modified", lm)
		rw.Header().Set("Cache-Control", "max-age=5")
		if r.Header.Get("If-Modified-Since") == lm {
			rw.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = rw.Write([]byte("lm-body"))
	})
	w.get("/lm")
	w.clk.Advance(6 * time.Second)
	r := w.get("/lm")
	w.expectOrigin(2)
	if w.originHeader().Get("If-Modified-Since") != lm || w.originHeader().Get("If-None-Match") != "" {
		t.Fatalf("validators sent = %v", w.originHeader())
	}
	if r.body != "lm-body" {
		t.Fatalf("body %q", r.body)
	}
}

func TestNonMatching304RefetchesUnconditionally(t *testing.T) {
	w := newWorld(t, Config{}, func(rw http.ResponseWriter, r *http.Request, n int64) {
		rw.Header().Set("Cache-Control", "max-age=1")
		if r.Header.Get("If-None-Match") != "" {
			rw.Header().Set("ETag", `"other"`)
			rw.WriteHeader(http.StatusNotModified)
			return
		}
		rw.Header().Set("ETag", fmt.Sprintf(`"v%d"`, n))
		fmt.Fprintf(rw, "body %d", n)
	})
	w.get("/")
	w.clk.Advance(2 * time.Second)
	r := w.get("/")
	w.expectOrigin(3)
	if r.body != "body 3" {
		t.Fatalf("body = %q", r.body)
	}
}

func TestVarySeparatesVariants(t *testing.T) {
	w := newWorld(t, Config{}, func(rw http.ResponseWriter, r *http.Request, n int64) {
		rw.Header().Set("Cache-Control", "max-age=60")
		rw.Header().Set("Vary", "Accept-Language")
		fmt.Fprintf(rw, "lang=%s", r.Header.Get("Accept-Language"))
	})
	en := w.get("/v", "Accept-Language", "en")
	fr := w.get("/v", "Accept-Language", "fr")
	expectStatus(t, fr, "fwd=vary-miss")
	w.expectOrigin(2)
	en2 := w.get("/v", "Accept-Language", "en")
	fr2 := w.get("/v", "Accept-Language", "fr")
	none := w.get("/v")
	w.expectOrigin(3)
	if en.body != "lang=en" || en2.body != "lang=en" || fr2.body != "lang=fr" || fr.body != "lang=fr" || none.body != "lang=" {
		t.Fatalf("bodies %q %q %q %q %q", en.body, en2.body, fr.body, fr2.body, none.body)
	}
	expectStatus(t, en2, "hit")
	expectStatus(t, fr2, "hit")
}

func TestVaryStarNeverMatches(t *testing.T) {
	w := newWorld(t, Config{}, fixed("x", "Cache-Control", "max-age=60", "Vary", "*"))
	w.get("/")
	w.get("/")
	w.expectOrigin(2)
}

func TestNeverSharedPrivateNoStoreSetCookie(t *testing.T) {
	for _, tc := range [][]string{
		{"Cache-Control", "private, max-age=60"},
		{"Cache-Control", "no-store, max-age=60"},
		{"Cache-Control", "max-age=60", "Set-Cookie", "session=alice"},
	} {
		t.Run(tc[1], func(t *testing.T) {
			w := newWorld(t, Config{}, func(rw http.ResponseWriter, r *http.Request, n int64) {
				for i := 0; i < len(tc); i += 2 {
					rw.Header().Add(tc[i], tc[i+1])
				}
				fmt.Fprintf(rw, "for client %s", r.Header.Get("X-Client"))
			})
			a := w.get("/me", "X-Client", "alice")
			b := w.get("/me", "X-Client", "bob")
			w.expectOrigin(2)
			if a.body != "for client alice" || b.body != "for client bob" {
				t.Fatalf("alice %q, bob %q %v", a.body, b.body, b.header)
			}
		})
	}
}

func TestMustUnderstandIgnoresNoStoreForKnownStatus(t *testing.T) {
	w := newWorld(t, Config{}, fixed("x", "Cache-Control", "must-understand, no-store, max-age=60"))
	w.get("/")
	w.get("/")
	w.expectOrigin(1)
	w.setHandler(func(rw http.ResponseWriter, r *http.Request, n int64) {
		rw.Header().Set("Cache-Control", "must-understand, max-age=60")
		rw.WriteHeader(299)
	})
	w.get("/u")
	w.get("/u")
	w.expectOrigin(3)
}

func TestPrivateAndNoCacheQualifiedFields(t *testing.T) {
	w := newWorld(t, Config{}, fixed("x", "Cache-Control", `max-age=60, private="X-User", no-cache="X-Token"`,
		"X-User", "alice", "X-Token", "t1", "ETag", `"e"`))
	first := w.get("/")
	if first.header.Get("X-User") != "alice" {
		t.Fatal("the first client must get its own X-User")
	}
	r := w.get("/")
	w.expectOrigin(1)
	if r.header.Get("X-User") != "" || r.header.Get("X-Token") != "" {
		t.Fatalf("hit leaked qualified fields: %v", r.header)
	}
}

func TestResponseNoCacheAlwaysRevalidates(t *testing.T) {
	w := newWorld(t, Config{}, func(rw http.ResponseWriter, r *http.Request, n int64) {
		rw.Header().Set("Cache-Control", "no-cache, max-age=60")
		rw.Header().Set("ETag", `"n"`)
		if r.Header.Get("If-None-Match") == `"n"` {
			rw.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = rw.Write([]byte("nc"))
	})
	w.get("/")
	r := w.get("/")
	w.expectOrigin(2)
	if r.body != "nc" || w.originHeader().Get("If-None-Match") != `"n"` {
		t.Fatalf("body %q, origin saw %v", r.body, w.originHeader())
	}
}

func TestSMaxAgeOverridesMaxAge(t *testing.T) {
	w := newWorld(t, Config{}, fixed("x", "Cache-Control", "max-age=0, s-maxage=60"))
	w.get("/")
	r := w.get("/")
	w.expectOrigin(1)
	expectStatus(t, r, "hit")
}

func TestExpiresAndInvalidExpires(t *testing.T) {
	w := newWorld(t, Config{}, nil)
	w.setHandler(func(rw http.ResponseWriter, r *http.Request, n int64) {
		if r.URL.Path == "/ok" {
			rw.Header().Set("Expires", w.clk.Now().Add(30*time.Second).UTC().Format(http.TimeFormat))
		} else {
			rw.Header().Set("Expires", "0")
		}
	})
	w.get("/ok")
	w.clk.Advance(20 * time.Second)
	w.get("/ok")
	w.expectOrigin(1)
	w.clk.Advance(20 * time.Second)
	w.get("/ok")
	w.expectOrigin(2)
	w.get("/bad")
	w.get("/bad")
	w.expectOrigin(4)
}

func TestHeuristicFreshnessOnlyWhereAllowed(t *testing.T) {
	w := newWorld(t, Config{}, nil)
	lm := w.clk.Now().Add(-100 * time.Hour).UTC().Format(http.TimeFormat)
	w.setHandler(func(rw http.ResponseWriter, r *http.Request, n int64) {
		rw.Header().Set("Last-Modified", lm)
		if r.URL.Path == "/302" {
			rw.Header().Set("Location", "/x")
			rw.WriteHeader(http.StatusFound)
		}
	})
	w.get("/200")
	w.clk.Advance(9 * time.Hour) // 10% of 100 h = 10 h
	r := w.get("/200")
	w.expectOrigin(1)
	expectStatus(t, r, "hit")
	w.get("/302")
	w.get("/302")
	w.expectOrigin(3)
}

func TestAuthorizationRules(t *testing.T) {
	w := newWorld(t, Config{}, fixed("secret", "Cache-Control", "max-age=60"))
	w.get("/a", "Authorization", "Bearer a")
	w.get("/a", "Authorization", "Bearer a")
	w.get("/a")
	w.expectOrigin(3) // not stored for an authorized request without public/s-maxage/must-revalidate
	w.setHandler(fixed("shared", "Cache-Control", "public, max-age=60"))
	w.get("/p", "Authorization", "Bearer a")
	r := w.get("/p", "Authorization", "Bearer b")
	w.expectOrigin(4)
	expectStatus(t, r, "hit")
	// a response stored without authorization is not reused for an authorized request
	w.setHandler(fixed("anon", "Cache-Control", "max-age=60"))
	w.get("/q")
	w.get("/q", "Authorization", "Bearer a")
	w.expectOrigin(6)
}

func TestRequestDirectives(t *testing.T) {
	w := newWorld(t, Config{}, fixed("x", "Cache-Control", "max-age=60", "ETag", `"e"`))
	w.get("/")
	w.clk.Advance(10 * time.Second)
	r := w.get("/", "Cache-Control", "no-cache")
	w.expectOrigin(2)
	expectStatus(t, r, "fwd=request")
	w.get("/", "Pragma", "no-cache")
	w.expectOrigin(3)
	w.clk.Advance(10 * time.Second)
	w.get("/", "Cache-Control", "max-age=5")
	w.expectOrigin(4)
	w.clk.Advance(10 * time.Second)
	w.get("/", "Cache-Control", "min-fresh=55")
	w.expectOrigin(5)
	w.clk.Advance(120 * time.Second)
	r = w.get("/", "Cache-Control", "max-stale=200")
	w.expectOrigin(5)
	expectStatus(t, r, "hit", "ttl=-")
	r = w.get("/", "Cache-Control", "only-if-cached, max-age=1")
	w.expectOrigin(5)
	if r.status != http.StatusGatewayTimeout {
		t.Fatalf("only-if-cached stale: %d", r.status)
	}
	r = w.get("/none", "Cache-Control", "only-if-cached")
	if r.status != http.StatusGatewayTimeout {
		t.Fatalf("only-if-cached miss: %d", r.status)
	}
	w.get("/ns", "Cache-Control", "no-store")
	w.get("/ns")
	w.expectOrigin(7)
}

func TestClientConditionalAnsweredFromCache(t *testing.T) {
	w := newWorld(t, Config{}, nil)
	lm := w.clk.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	w.setHandler(fixed("cond", "Cache-Control", "max-age=60", "ETag", `W/"w1"`, "Last-Modified", lm))
	w.get("/")
	r := w.get("/", "If-None-Match", `"x", "w1"`)
	if r.status != http.StatusNotModified || r.body != "" || r.header.Get("ETag") != `W/"w1"` {
		t.Fatalf("If-None-Match: %d %q %v", r.status, r.body, r.header)
	}
	r = w.get("/", "If-Modified-Since", lm)
	if r.status != http.StatusNotModified {
		t.Fatalf("If-Modified-Since: %d", r.status)
	}
	r = w.get("/", "If-None-Match", `"other"`)
	if r.status != 200 || r.body != "cond" {
		t.Fatalf("non-matching: %d %q", r.status, r.body)
	}
	w.expectOrigin(1)
}

func TestHeadAnsweredFromGet(t *testing.T) {
	w := newWorld(t, Config{}, fixed("0123456789", "Cache-Control", "max-age=60"))
	w.get("/")
	r := w.do(http.MethodHead, "/")
	w.expectOrigin(1)
	if r.status != 200 || r.header.Get("Content-Length") != "10" {
		t.Fatalf("HEAD: %d %v", r.status, r.header)
	}
}

func TestUnsafeMethodsInvalidate(t *testing.T) {
	w := newWorld(t, Config{}, func(rw http.ResponseWriter, r *http.Request, n int64) {
		if r.Method == http.MethodPost {
			rw.Header().Set("Location", "/other")
			rw.Header().Set("Content-Location", "http://elsewhere.test/third")
			rw.WriteHeader(http.StatusCreated)
			return
		}
		rw.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprintf(rw, "n=%d", n)
	})
	w.get("/item")
	w.get("/other")
	w.get("/item")
	w.get("/other")
	w.expectOrigin(2)
	w.do(http.MethodPost, "/item")
	w.expectOrigin(3)
	r := w.get("/item")
	w.get("/other")
	w.expectOrigin(5)
	if r.body != "n=4" {
		t.Fatalf("after POST: %q", r.body)
	}
	// an error response does not invalidate
	w.setHandler(func(rw http.ResponseWriter, r *http.Request, n int64) {
		if r.Method == http.MethodDelete {
			rw.WriteHeader(http.StatusForbidden)
			return
		}
		rw.Header().Set("Cache-Control", "max-age=60")
	})
	w.do(http.MethodDelete, "/item")
	w.get("/item")
	w.expectOrigin(6)
}

func TestCacheableStatuses(t *testing.T) {
	cases := []struct {
		code   int
		cc     string
		stored bool
	}{
		{404, "", true}, // heuristically cacheable, but no Last-Modified: no freshness, no validator
		{404, "max-age=60", true},
		{500, "max-age=60", true},
		{500, "", false},
		{302, "max-age=60", true},
		{206, "max-age=60", false},
	}
	for _, tc := range cases {
		t.Run(strconv.Itoa(tc.code)+tc.cc, func(t *testing.T) {
			w := newWorld(t, Config{}, func(rw http.ResponseWriter, r *http.Request, n int64) {
				if tc.cc != "" {
					rw.Header().Set("Cache-Control", tc.cc)
				}
				if tc.code == 206 {
					rw.Header().Set("Content-Range", "bytes 0-0/10")
				}
				rw.WriteHeader(tc.code)
			})
			w.get("/")
			w.get("/")
			want := int64(2)
			if tc.stored && tc.cc != "" {
				want = 1
			}
			w.expectOrigin(want)
		})
	}
}

func TestRangeFromStoredResponse(t *testing.T) {
	w := newWorld(t, Config{}, fixed("0123456789", "Cache-Control", "max-age=60", "ETag", `"r1"`))
	r := w.get("/", "Range", "bytes=0-3")
	w.expectOrigin(1) // a miss with Range goes to the origin untouched
	w.get("/")
	for _, tc := range []struct {
		rng, body, cr string
		code          int
	}{
		{"bytes=2-5", "2345", "bytes 2-5/10", 206},
		{"bytes=7-", "789", "bytes 7-9/10", 206},
		{"bytes=-2", "89", "bytes 8-9/10", 206},
		{"bytes=5-100", "56789", "bytes 5-9/10", 206},
		{"bytes=20-30", "", "bytes */10", 416},
		{"bytes=0-1,3-4", "0123456789", "", 200},
	} {
		r = w.get("/", "Range", tc.rng)
		if r.status != tc.code || r.body != tc.body || r.header.Get("Content-Range") != tc.cr {
			t.Errorf("%s: %d %q %q", tc.rng, r.status, r.body, r.header.Get("Content-Range"))
		}
	}
	if r = w.get("/", "Range", "bytes=0-1", "If-Range", `"r1"`); r.status != 206 || r.body != "01" {
		t.Errorf("If-Range matching: %d %q", r.status, r.body)
	}
	if r = w.get("/", "Range", "bytes=0-1", "If-Range", `"old"`); r.status != 200 || r.body != "0123456789" {
		t.Errorf("If-Range not matching: %d %q", r.status, r.body)
	}
	w.expectOrigin(2)
}

func TestCDNCacheControlTakesPrecedence(t *testing.T) {
	w := newWorld(t, Config{}, fixed("x", "Cache-Control", "no-store", "CDN-Cache-Control", "max-age=60"))
	w.get("/")
	w.get("/")
	w.expectOrigin(1)
	w.setHandler(fixed("y", "Cache-Control", "max-age=60", "CDN-Cache-Control", "no-store"))
	w.get("/b")
	w.get("/b")
	w.expectOrigin(3)
}

func TestStrictCacheControlSyntax(t *testing.T) {
	for _, cc := range []string{"max-age =60", "max-age= 60", "max-age=-60", "max-age=6.0", `max-age="60"`, "max-age="} {
		t.Run(cc, func(t *testing.T) {
			w := newWorld(t, Config{}, fixed("x", "Cache-Control", cc))
			w.get("/")
			w.get("/")
			w.expectOrigin(2)
		})
	}
	w := newWorld(t, Config{}, fixed("x", "Cache-Control", "PUBLIC , Max-Age=60"))
	w.get("/")
	w.get("/")
	w.expectOrigin(1)
}

func TestNotModifiedWithPrivateOrSetCookie(t *testing.T) {
	w := newWorld(t, Config{}, func(rw http.ResponseWriter, r *http.Request, n int64) {
		rw.Header().Set("ETag", `"p"`)
		if r.Header.Get("If-None-Match") == `"p"` {
			rw.Header().Set("Set-Cookie", "who="+r.Header.Get("X-Client"))
			if r.URL.Path == "/private" {
				rw.Header().Set("Cache-Control", "private, max-age=60")
			} else {
				rw.Header().Set("Cache-Control", "max-age=60")
			}
			rw.WriteHeader(http.StatusNotModified)
			return
		}
		rw.Header().Set("Cache-Control", "max-age=1")
		_, _ = rw.Write([]byte("page"))
	})
	for _, path := range []string{"/cookie", "/private"} {
		w.get(path)
	}
	w.clk.Advance(5 * time.Second)
	a := w.get("/cookie", "X-Client", "alice")
	if a.body != "page" || a.header.Get("Set-Cookie") != "who=alice" {
		t.Fatalf("revalidating client: %q %v", a.body, a.header)
	}
	b := w.get("/cookie", "X-Client", "bob")
	expectStatus(t, b, "hit")
	if b.header.Get("Set-Cookie") != "" {
		t.Fatalf("another client got the 304's cookie: %v", b.header)
	}
	w.get("/private", "X-Client", "alice")
	before := w.count.Load()
	w.get("/private", "X-Client", "bob")
	if w.count.Load() != before+1 {
		t.Fatal("a response made private by a 304 was served to another client")
	}
}

func TestHeadFreshensStoredGet(t *testing.T) {
	w := newWorld(t, Config{}, func(rw http.ResponseWriter, r *http.Request, n int64) {
		rw.Header().Set("ETag", `"h"`)
		rw.Header().Set("X-N", strconv.FormatInt(n, 10))
		if r.Method == http.MethodHead {
			rw.Header().Set("Cache-Control", "max-age=100")
			rw.Header().Set("Content-Length", "4")
			return
		}
		rw.Header().Set("Cache-Control", "max-age=1")
		_, _ = rw.Write([]byte("body"))
	})
	w.get("/")
	w.clk.Advance(5 * time.Second)
	w.do(http.MethodHead, "/", "Cache-Control", "no-cache") // this origin answers HEAD with 200 even when validators match
	r := w.get("/")
	w.expectOrigin(2)
	if r.body != "body" || r.header.Get("X-N") != "2" {
		t.Fatalf("after HEAD: %q X-N=%s", r.body, r.header.Get("X-N"))
	}
}

// TestExpiresParsedStrictly checks RFC 9111 §5.3: an Expires that is not
// exactly an HTTP-date (the spellings http-tests/cache-tests uses) is in the
// past, while the three valid forms, in any letter case, give freshness.
func TestExpiresParsedStrictly(t *testing.T) {
	cases := []struct {
		expires []string
		cached  bool
	}{
		{[]string{"Thu, 18 Aug 2050 02:01:18 GMT"}, true},
		{[]string{"Thursday, 18-Aug-50 02:01:18 GMT"}, true},
		{[]string{"Thu Aug  8 02:01:18 2050"}, true},
		{[]string{"THU, 18 AUG 2050 02:01:18 gMT"}, true},
		{[]string{"Thu, 18 Aug 2050 2:01:18 GMT"}, false},    // one-digit hour
		{[]string{"Thu, 18  Aug  2050 02:01:18 GMT"}, false}, // several spaces
		{[]string{"Thu, 18 Aug 2050 02:01:18 GMT", "Thu, 18 Aug 2050 02:01:19 GMT"}, false},
		{[]string{"Thu, 18 Aug 2050 02:01:18 UTC"}, false},
		{[]string{"Thu, 18 Aug 50 02:01:18 GMT"}, false},
		{[]string{"Thu 18 Aug 2050 02:01:18 GMT"}, false},
		{[]string{"Thu, 18-Aug-2050 02:01:18 GMT"}, false},
		{[]string{"Thu, 18 Aug 2050 02.01.18 GMT"}, false},
		{[]string{"0"}, false},
	}
	w := newWorld(t, Config{}, nil)
	w.setHandler(func(rw http.ResponseWriter, r *http.Request, n int64) {
		i, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/e/"))
		for _, v := range cases[i].expires {
			rw.Header().Add("Expires", v)
		}
		rw.Header().Set("Last-Modified", "Mon, 01 Jan 2001 00:00:00 GMT")
		_, _ = io.WriteString(rw, "x")
	})
	for i, tc := range cases {
		if got := w.reused("/e/" + strconv.Itoa(i)); got != tc.cached {
			t.Errorf("Expires %q: reused %v, want %v", tc.expires, got, tc.cached)
		}
	}
}

// reused GETs path twice and reports whether the second was answered without
// the origin.
func (w *world) reused(path string) bool {
	w.t.Helper()
	w.get(path)
	before := w.count.Load()
	w.get(path)
	return w.count.Load() == before
}

// TestAgeListUsesFirstMember checks the Age parsing http-tests/cache-tests
// expects: the first member of the first line counts ("7200, 0" is old), and
// a value that is not a number is ignored.
func TestAgeListUsesFirstMember(t *testing.T) {
	cases := []struct {
		age    []string
		cached bool
	}{
		{[]string{"7200, 0"}, false},
		{[]string{"0, 7200"}, true},
		{[]string{"7200", "0"}, false},
		{[]string{"0", "7200"}, true},
		{[]string{"7200;foo=bar"}, false},
		{[]string{"abc"}, true},
		{[]string{"-7200"}, true},
		{[]string{"2147483648"}, false},
	}
	w := newWorld(t, Config{}, nil)
	w.setHandler(func(rw http.ResponseWriter, r *http.Request, n int64) {
		i, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/a/"))
		rw.Header().Set("Cache-Control", "max-age=3600")
		for _, v := range cases[i].age {
			rw.Header().Add("Age", v)
		}
		_, _ = io.WriteString(rw, "x")
	})
	for i, tc := range cases {
		if got := w.reused("/a/" + strconv.Itoa(i)); got != tc.cached {
			t.Errorf("Age %q: reused %v, want %v", tc.age, got, tc.cached)
		}
	}
}
