package admin

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches /metrics over HTTP and parses the text exposition format.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value returns the sample of family name whose labels include want (pairs of name,
// value); for histograms, the sample count. -1 when absent.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func entry(door, method, url, action string, status int, mod func(*accesslog.Entry)) *accesslog.Entry {
	e := &accesslog.Entry{Time: time.Now(), Door: door, Client: netip.MustParseAddr("127.0.0.1"), Method: method,
		URL: url, Action: action, Status: status, Duration: 20 * time.Millisecond}
	if mod != nil {
		mod(e)
	}
	return e
}

func TestMetricsCountersMove(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	srv := httptest.NewServer(NewServer(ServerOptions{Registry: reg}))
	defer srv.Close()

	before := scrape(t, srv.URL)
	if v := value(before, "portcullis_requests_total"); v != -1 {
		t.Fatalf("requests counted before any request: %v", v)
	}

	m.Log(entry("forward", "GET", "http://example.com/", "allow", 200, func(e *accesslog.Entry) { e.BytesIn, e.BytesOut = 10, 1000 }))
	m.Log(entry("forward", "GET", "http://example.com/", "allow", 200, func(e *accesslog.Entry) { e.BytesOut = 500 }))
	m.Log(entry("forward", "GET", "http://games.example/", "block", 403, func(e *accesslog.Entry) { e.Rule, e.Category = "no-games", "games" }))
	m.Log(entry("forward", "CONNECT", "example.com:443", "tunnel", 200, func(e *accesslog.Entry) { e.Duration = 90 * time.Second; e.BytesIn = 7 }))
	m.Log(entry("reverse", "GET", "https://app.example/x", "allow", 502, func(e *accesslog.Entry) { e.Pool, e.Error = "web", "dial tcp: refused" }))
	m.Log(entry("dns", "A", "ads.example.", "block", 5, func(e *accesslog.Entry) { e.Category = "ads" }))
	m.Log(entry("dns", "AAAA", "example.org.", "allow", 0, func(e *accesslog.Entry) { e.Answer = "AAAA" }))
	m.Log(entry("dns", "A", "nope.example.", "allow", 3, nil))

	f := scrape(t, srv.URL)
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"portcullis_requests_total", []string{"door", "forward", "action", "allow", "code", "2xx"}, 2},
		{"portcullis_requests_total", []string{"door", "forward", "action", "block", "rule", "no-games", "category", "games", "code", "4xx"}, 1},
		{"portcullis_requests_total", []string{"door", "forward", "action", "tunnel"}, 1},
		{"portcullis_requests_total", []string{"door", "reverse", "code", "5xx"}, 1},
		{"portcullis_requests_total", []string{"door", "dns", "action", "block", "code", "REFUSED"}, 1},
		{"portcullis_requests_total", []string{"door", "dns", "code", "NXDOMAIN"}, 1},
		{"portcullis_request_errors_total", []string{"door", "reverse"}, 1},
		{"portcullis_request_duration_seconds", []string{"door", "forward"}, 3},
		{"portcullis_tunnel_duration_seconds", []string{"door", "forward"}, 1},
		{"portcullis_pool_request_duration_seconds", []string{"pool", "web"}, 1},
		{"portcullis_received_bytes_total", []string{"door", "forward"}, 17},
		{"portcullis_sent_bytes_total", []string{"door", "forward"}, 1500},
		{"portcullis_dns_answers_total", []string{"answer", "blocked"}, 1},
		{"portcullis_dns_answers_total", []string{"answer", "AAAA"}, 1},
		{"portcullis_dns_answers_total", []string{"answer", "NXDOMAIN"}, 1},
	}
	for _, c := range checks {
		if got := value(f, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	m.Log(entry("forward", "GET", "http://example.com/", "allow", 204, nil))
	f = scrape(t, srv.URL)
	if got := value(f, "portcullis_requests_total", "door", "forward", "action", "allow", "code", "2xx"); got != 3 {
		t.Errorf("counter did not move: %v", got)
	}
}

func TestMetricsFromEngineFunctions(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	var hits atomic.Int64
	hits.Store(5)
	if err := m.RegisterCache(func() CacheStatus {
		return CacheStatus{Hits: hits.Load(), Misses: 3, Stale: 1, Evictions: 2, Bytes: 4096, Objects: 7}
	}); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterPools(func() []PoolStatus {
		return []PoolStatus{{Name: "web", Members: []MemberStatus{
			{URL: "http://127.0.0.1:8081", Healthy: true, InFlight: 4},
			{URL: "http://127.0.0.1:8082", Healthy: false, RecentFailures: 3, Failures: 9},
		}}}
	}); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterLists(func() []ListStatus { return []ListStatus{{Name: "ut1-adult", Entries: 123456}} }); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterGaugeFunc("portcullis_tunnels_open", "Tunnels open now.", func() float64 { return 2 }); err != nil {
		t.Fatal(err)
	}
	a, err := accesslog.NewWriter(accesslog.Config{}, failingWriter{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterAccessLog(a); err != nil {
		t.Fatal(err)
	}
	a.Log(benchEntry())
	a.Close()
	if err := m.RegisterLists(func() []ListStatus { return nil }); err == nil {
		t.Error("registering lists twice succeeded")
	}

	srv := httptest.NewServer(NewServer(ServerOptions{Registry: reg}))
	defer srv.Close()
	f := scrape(t, srv.URL)
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"portcullis_cache_hits_total", nil, 5},
		{"portcullis_cache_misses_total", nil, 3},
		{"portcullis_cache_stale_total", nil, 1},
		{"portcullis_cache_evictions_total", nil, 2},
		{"portcullis_cache_bytes", nil, 4096},
		{"portcullis_cache_objects", nil, 7},
		{"portcullis_pool_member_healthy", []string{"pool", "web", "member", "http://127.0.0.1:8081"}, 1},
		{"portcullis_pool_member_healthy", []string{"pool", "web", "member", "http://127.0.0.1:8082"}, 0},
		{"portcullis_pool_member_in_flight", []string{"member", "http://127.0.0.1:8081"}, 4},
		{"portcullis_pool_member_recent_failures", []string{"member", "http://127.0.0.1:8082"}, 3},
		{"portcullis_pool_member_failures_total", []string{"member", "http://127.0.0.1:8082"}, 9},
		{"portcullis_list_entries", []string{"list", "ut1-adult"}, 123456},
		{"portcullis_tunnels_open", nil, 2},
		{"portcullis_access_log_dropped_lines_total", nil, 1},
		{"portcullis_access_log_written_lines_total", nil, 0},
	}
	for _, c := range checks {
		if got := value(f, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	hits.Store(8)
	if got := value(scrape(t, srv.URL), "portcullis_cache_hits_total"); got != 8 {
		t.Errorf("cache hits not read at scrape time: %v", got)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestMetricsSetPolicy(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	srv := httptest.NewServer(NewServer(ServerOptions{Registry: reg}))
	defer srv.Close()
	at := time.Unix(1_800_000_000, 0)

	m.SetPolicy("v1", at, nil)
	m.SetPolicy("v2-broken", at.Add(time.Minute), errors.New("line 3: unknown action"))
	f := scrape(t, srv.URL)
	if value(f, "portcullis_policy_info", "version", "v1") != 1 || value(f, "portcullis_policy_info", "version", "v2-broken") != -1 {
		t.Errorf("policy_info after failed reload: %v", f["portcullis_policy_info"])
	}
	if value(f, "portcullis_policy_last_reload_success") != 0 ||
		value(f, "portcullis_policy_reloads_total", "result", "error") != 1 ||
		value(f, "portcullis_policy_loaded_timestamp_seconds") != 1_800_000_000 {
		t.Errorf("reload state wrong: %v %v", f["portcullis_policy_last_reload_success"], f["portcullis_policy_reloads_total"])
	}

	m.SetPolicy("v2", at.Add(2*time.Minute), nil)
	f = scrape(t, srv.URL)
	if value(f, "portcullis_policy_info", "version", "v1") != -1 || value(f, "portcullis_policy_info", "version", "v2") != 1 {
		t.Errorf("policy_info after reload: %v", f["portcullis_policy_info"])
	}
	if value(f, "portcullis_policy_last_reload_success") != 1 || value(f, "portcullis_policy_reloads_total", "result", "ok") != 2 ||
		value(f, "portcullis_policy_loaded_timestamp_seconds") != 1_800_000_120 {
		t.Errorf("reload state wrong after success")
	}
}
