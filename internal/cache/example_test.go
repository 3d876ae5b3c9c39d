package cache_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"

	"github.com/portcullis/portcullis/internal/cache"
)

// A reverse proxy whose transport is the cache: the second request is a hit.
func ExampleCache_WrapPolicy() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=60")
		_, _ = io.WriteString(w, "hello")
	}))
	defer origin.Close()

	c, err := cache.New(cache.Config{MaxBytes: 64 << 20}, nil)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	target, _ := url.Parse(origin.URL)
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: c.WrapPolicy(&cache.Policy{Enabled: true}, http.DefaultTransport),
	})
	defer proxy.Close()

	for range 2 {
		res, err := http.Get(proxy.URL + "/hello.txt")
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fmt.Printf("%s %s\n", body, cache.Result(res.Header))
	}
	fmt.Println(c.Stats().Hits, "hit")
	// Output:
	// hello miss
	// hello hit
	// 1 hit
}
