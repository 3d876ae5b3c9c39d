package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// runEngine runs the engine on policy and returns it once every listener is bound.
func runEngine(t testing.TB, policy string) *Engine {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(p, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{PolicyPath: p, Logger: slog.New(slog.DiscardHandler), AccessLog: io.Discard, DrainTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	deadline := time.Now().Add(5 * time.Second)
	for e.ready() != nil {
		if time.Now().After(deadline) {
			t.Fatal("engine not ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return e
}

type countingOrigin struct {
	*httptest.Server
	hits atomic.Int64
}

func newOrigin(t *testing.T, name string, h func(w http.ResponseWriter, r *http.Request)) *countingOrigin {
	o := &countingOrigin{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			return
		}
		o.hits.Add(1)
		w.Header().Set("Server", "secret-backend/1.0")
		w.Header().Set("X-Member", name)
		if h != nil {
			h(w, r)
			return
		}
		io.WriteString(w, "from "+name)
	}))
	t.Cleanup(o.Close)
	return o
}

func TestReverseThroughEngine(t *testing.T) {
	a := newOrigin(t, "a", nil)
	b := newOrigin(t, "b", nil)
	static := newOrigin(t, "static", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=60")
		io.WriteString(w, "static body")
	})
	e := runEngine(t, fmt.Sprintf(`
reverse:
  listen: ["127.0.0.1:0"]
  routes:
    - {name: app, host: [app.example.test], pool: app, hide_origin: true}
    - {name: static, host: [static.example.test], pool: static, cache: static}
pools:
  app:
    policy: round_robin
    members: [{url: %q}, {url: %q}]
  static:
    members: [{url: %q}]
cache: {max_bytes: 16MiB}
cache_policies:
  static: {enabled: true}
admin: {listen: "127.0.0.1:0"}
`, a.URL, b.URL, static.URL))
	base := "http://" + e.Addrs()["reverse"][0].String()
	get := func(host, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for range 10 {
		if resp := get("app.example.test", "/"); resp.StatusCode != 200 || resp.Header.Get("Server") != "" {
			t.Fatalf("app: %d, Server %q", resp.StatusCode, resp.Header.Get("Server"))
		}
	}
	if a.hits.Load() != 5 || b.hits.Load() != 5 {
		t.Fatalf("round robin: a=%d b=%d, want 5/5", a.hits.Load(), b.hits.Load())
	}
	first := get("static.example.test", "/logo.png")
	second := get("static.example.test", "/logo.png")
	if static.hits.Load() != 1 {
		t.Fatalf("static origin hits = %d, want 1 (second from cache)", static.hits.Load())
	}
	if cs := second.Header.Get("Cache-Status"); !strings.Contains(cs, "Portcullis; hit") {
		t.Fatalf("Cache-Status = %q (first %q)", cs, first.Header.Get("Cache-Status"))
	}
	if resp := get("unknown.example.test", "/"); resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("unknown host: %d", resp.StatusCode)
	}
	// The admin listener reports the pools.
	resp, err := http.Get("http://" + e.Addrs()["admin"][0].String() + "/pools")
	if err != nil {
		t.Fatal(err)
	}
	var pools []struct {
		Name    string
		Members []struct {
			URL     string
			Healthy bool
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&pools); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(pools) != 2 || pools[0].Name != "app" || len(pools[0].Members) != 2 || !pools[0].Members[0].Healthy {
		t.Fatalf("pools = %+v", pools)
	}
}

func TestReverseRuleBlocksPath(t *testing.T) {
	o := newOrigin(t, "o", nil)
	e := runEngine(t, fmt.Sprintf(`
reverse:
  listen: ["127.0.0.1:0"]
  routes: [{name: site, host: [site.example.test], pool: p}]
pools:
  p: {members: [{url: %q}]}
rules:
  - {name: no-admin, door: [reverse], path: ["/admin", "/admin/*"], action: block, reason: staff only}
`, o.URL))
	req, _ := http.NewRequest("GET", "http://"+e.Addrs()["reverse"][0].String()+"/admin/users", nil)
	req.Host = "site.example.test"
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "no-admin") || !strings.Contains(string(body), "staff only") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if o.hits.Load() != 0 {
		t.Fatal("a blocked request reached the origin")
	}

	// The reverse door's block page is in the visitor's language too.
	req.Header.Set("Accept-Language", "es-MX,es;q=0.9,en;q=0.5")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Language") != "es" ||
		!strings.Contains(string(body), "Esta página está bloqueada") || !strings.Contains(string(body), "staff only") {
		t.Fatalf("Spanish visitor: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Language"), body)
	}
}
