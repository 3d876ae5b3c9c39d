package admin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string, auth func(*http.Request)) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != nil {
		auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

func bearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func TestServerTokenProtectsEverythingButProbes(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewMetrics(reg)
	ready := errors.New("policy not loaded")
	srv := httptest.NewServer(NewServer(ServerOptions{
		Token:    "s3cret",
		Registry: reg,
		Status:   NewStatus(nil),
		Ready:    func() error { return ready },
		Extra: map[string]http.Handler{"GET /ca.pem": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "PEM")
		})},
	}))
	defer srv.Close()

	if code, body, _ := get(t, srv.URL+"/healthz", nil); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body, _ := get(t, srv.URL+"/readyz", nil); code != 503 || !strings.Contains(body, "policy not loaded") {
		t.Errorf("/readyz not ready: %d %q", code, body)
	}
	ready = nil
	if code, _, _ := get(t, srv.URL+"/readyz", nil); code != 200 {
		t.Errorf("/readyz ready: %d", code)
	}

	protected := []string{"/metrics", "/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=1",
		"/status.json", "/", "/ca.pem"}
	for _, p := range protected {
		code, _, h := get(t, srv.URL+p, nil)
		if code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("%s without token: %d", p, code)
		}
		if code, _, _ := get(t, srv.URL+p, bearer("wrong")); code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: %d", p, code)
		}
		if code, _, _ := get(t, srv.URL+p, bearer("s3cret0")); code != http.StatusUnauthorized {
			t.Errorf("%s with a longer token: %d", p, code)
		}
		if code, _, _ := get(t, srv.URL+p, bearer("s3cret")); code != http.StatusOK {
			t.Errorf("%s with the token: %d", p, code)
		}
		if code, _, _ := get(t, srv.URL+p, func(r *http.Request) { r.SetBasicAuth("admin", "s3cret") }); code != http.StatusOK {
			t.Errorf("%s with basic auth: %d", p, code)
		}
	}
	if _, body, _ := get(t, srv.URL+"/debug/pprof/goroutine?debug=1", bearer("s3cret")); !strings.Contains(body, "goroutine") {
		t.Errorf("pprof goroutine profile: %.200q", body)
	}
	if code, _, _ := get(t, srv.URL+"/nope", bearer("s3cret")); code != http.StatusNotFound {
		t.Errorf("unknown path: %d", code)
	}
	resp, err := http.Post(srv.URL+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST without token: %d", resp.StatusCode)
	}
}

func TestServerWithoutTokenOrOptions(t *testing.T) {
	srv := httptest.NewServer(NewServer(ServerOptions{}))
	defer srv.Close()
	if code, _, _ := get(t, srv.URL+"/debug/pprof/", nil); code != 200 {
		t.Errorf("pprof without token configured: %d", code)
	}
	if code, _, _ := get(t, srv.URL+"/metrics", nil); code != http.StatusNotFound {
		t.Errorf("/metrics without registry: %d", code)
	}
	code, body, h := get(t, srv.URL+"/", nil)
	if code != 200 || !strings.Contains(body, "no pools configured") || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("empty page: %d %q", code, h)
	}
	if code, body, _ := get(t, srv.URL+"/status.json", nil); code != 200 || !strings.Contains(body, `"traffic"`) {
		t.Errorf("empty status.json: %d %s", code, body)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/status.json", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /status.json: %d", resp.StatusCode)
	}
}

// testSnapshot is the engine state the page tests show.
func testSnapshot(loaded time.Time) Snapshot {
	return Snapshot{
		Pools: []PoolStatus{
			{Name: "web", Members: []MemberStatus{
				{URL: "http://10.0.0.11:8080", Healthy: true, InFlight: 3, Failures: 1},
				{URL: "http://10.0.0.12:8080", Healthy: false, Ejected: true, RecentFailures: 5, Failures: 17, LastError: "dial tcp 10.0.0.12:8080: connection refused"},
			}},
			{Name: "api", Members: []MemberStatus{{URL: "http://10.0.1.5:9000", Healthy: true, InFlight: 12}}},
		},
		Cache:  &CacheStatus{Hits: 750, Misses: 200, Stale: 50, Evictions: 4, Bytes: 52 << 20, Objects: 1834},
		Policy: PolicyStatus{Version: "school-2026-11-26.3", LoadedAt: loaded, Error: "policy.yaml:41:7: rules[3].action: unknown action \"alow\""},
		Lists:  []ListStatus{{Name: "ut1/adult", Entries: 4_700_112}, {Name: "ut1/games", Entries: 14_551}, {Name: "local-allow", Entries: 12}},
		Certificates: []CertStatus{
			{Name: "shop.example.org", Issuer: "R11", NotAfter: loaded.Add(61*24*time.Hour + 12*time.Hour), DaysLeft: 61.5,
				OCSPStapled: true, OCSPNextUpdate: loaded.Add(3*24*time.Hour + 12*time.Hour)},
			{Name: "old.example.org", Issuer: "R10", NotAfter: loaded.Add(10 * 24 * time.Hour), DaysLeft: 10},
			{Name: "new.example.org", Error: "acme: new.example.org: 429 rateLimited", ErrorAt: loaded},
		},
	}
}

func TestStatusJSON(t *testing.T) {
	s, c := newTestStatus()
	for range 30 {
		s.Log(entry("forward", "GET", "http://tiktok.example/", "block", 403, func(e *accesslog.Entry) { e.Category = "social" }))
	}
	c.advance(time.Second)
	srv := httptest.NewServer(NewServer(ServerOptions{Status: s, Snapshot: func() Snapshot { return testSnapshot(c.t) }}))
	defer srv.Close()
	code, body, h := get(t, srv.URL+"/status.json", nil)
	if code != 200 || h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("%d %v", code, h)
	}
	var d struct {
		Traffic struct {
			Blocked           uint64  `json:"blocked"`
			TopBlockedDomains []Count `json:"top_blocked_domains"`
			TopClients        []Count `json:"top_clients"`
			TopUsers          []Count `json:"top_users"`
		} `json:"traffic"`
		Pools  []PoolStatus `json:"pools"`
		Cache  *CacheStatus `json:"cache"`
		Policy PolicyStatus `json:"policy"`
		Lists  []ListStatus `json:"lists"`
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	if d.Traffic.Blocked != 30 || len(d.Traffic.TopBlockedDomains) != 1 || d.Traffic.TopBlockedDomains[0] != (Count{"tiktok.example", 30}) ||
		len(d.Traffic.TopClients) != 1 || d.Traffic.TopClients[0] != (Count{"127.0.0.1", 30}) || d.Traffic.TopUsers == nil {
		t.Errorf("traffic: %+v", d.Traffic)
	}
	if len(d.Pools) != 2 || d.Pools[0].Members[1].LastError == "" || d.Cache.Hits != 750 ||
		d.Policy.Version != "school-2026-11-26.3" || !d.Policy.LoadedAt.Equal(c.t) || d.Lists[0].Entries != 4_700_112 {
		t.Errorf("snapshot: %s", body)
	}
}
