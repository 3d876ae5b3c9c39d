package engine

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// observed is an engine with both doors, a cached route, a blocklist and an admin
// listener writing a Squid-format access log, with its origins.
type observed struct {
	e                 *Engine
	dir, logPath      string
	plain, a, b, stat *countingOrigin
	secure            *httptest.Server
	roots             *x509.CertPool
	fwd               *url.URL
	rev, admin        string
	policy            string
}

func startObserved(t *testing.T) *observed {
	t.Helper()
	o := &observed{dir: t.TempDir()}
	o.plain = newOrigin(t, "plain", nil)
	o.a = newOrigin(t, "a", nil)
	o.b = newOrigin(t, "b", nil)
	o.stat = newOrigin(t, "static", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Header().Set("Content-Type", "image/png")
		io.WriteString(w, "static body")
	})
	o.secure, o.roots = tlsOrigin(t, "tls ok")
	o.logPath = filepath.Join(o.dir, "access.log")
	writeFile(t, filepath.Join(o.dir, "bad.txt"), "blocked.test\n")
	o.policy = fmt.Sprintf(`
forward: {listen: ["127.0.0.1:0"], connect_ports: [%s]}
reverse:
  listen: ["127.0.0.1:0"]
  routes:
    - {name: app, host: [app.test], pool: app}
    - {name: static, host: [static.test], pool: static, cache: static}
pools:
  app: {policy: round_robin, members: [{url: %q}, {url: %q}]}
  static: {members: [{url: %q}]}
cache: {max_bytes: 16MiB}
cache_policies: {static: {enabled: true}}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
lists: {bad: {format: domains, path: bad.txt}}
rules:
  - {name: bad-list, list: [bad], action: block, category: testing}
admin: {listen: "127.0.0.1:0", log: {format: squid, path: %q}}
`, o.secure.URL[strings.LastIndexByte(o.secure.URL, ':')+1:], o.a.URL, o.b.URL, o.stat.URL, o.logPath)
	o.e = startOps(t, o.dir, o.policy, nil)
	o.fwd = &url.URL{Scheme: "http", Host: addr(t, o.e, "forward")}
	o.rev = "http://" + addr(t, o.e, "reverse")
	o.admin = "http://" + addr(t, o.e, "admin")
	return o
}

// traffic sends the mix every observability test reads back: through the forward
// door one allowed GET carrying a cookie and proxy credentials, three blocked GETs,
// one CONNECT tunnel (closed after its request), one request with credentials in the
// URL; through the reverse door four requests to the app pool and four to the cached
// route (one miss, three hits).
func (o *observed) traffic(t *testing.T) {
	t.Helper()
	fc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(o.fwd), DisableKeepAlives: true}, Timeout: 5 * time.Second}
	req := mustReq(t, "GET", o.plain.URL+"/ok", "")
	req.Header.Set("Cookie", "session=cookie-secret")
	req.Header.Set("Proxy-Authorization", "Basic dTpwcm94eS1zZWNyZXQ=") // u:proxy-secret
	if code, _, err := do(fc, req); err != nil || code != 200 {
		t.Fatalf("allowed GET: %d %v", code, err)
	}
	for range 3 {
		if code, body, err := do(fc, mustReq(t, "GET", "http://blocked.test/page", "")); err != nil || code != 403 || !strings.Contains(body, "bad-list") {
			t.Fatalf("blocked GET: %d %v", code, err)
		}
	}
	tc := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(o.fwd), DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: o.roots}}, Timeout: 5 * time.Second}
	if code, body, err := do(tc, mustReq(t, "GET", o.secure.URL+"/tunnelled", "")); err != nil || code != 200 || body != "tls ok" {
		t.Fatalf("CONNECT: %d %q %v", code, body, err)
	}
	c, err := net.Dial("tcp", o.fwd.Host)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(o.plain.URL, "http://")
	fmt.Fprintf(c, "GET http://user:userinfo-secret@%s/userinfo HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host, host)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("userinfo GET: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.Close()
	rc := &http.Client{Timeout: 5 * time.Second}
	for _, h := range []string{"app.test", "static.test"} {
		for range 4 {
			if code, _, err := do(rc, mustReq(t, "GET", o.rev+"/logo.png", h)); err != nil || code != 200 {
				t.Fatalf("reverse %s: %d %v", h, code, err)
			}
		}
	}
}

// scrape reads /metrics over HTTP and parses it.
func scrape(t *testing.T, admin string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return mfs
}

// value sums the samples of name whose labels include want (a histogram counts its
// observations).
func value(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	mf := mfs[name]
	if mf == nil {
		return 0
	}
	sum := 0.0
next:
	for _, m := range mf.GetMetric() {
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// metricWant is one expectation: the metric moved by delta (or, with abs, equals it).
type metricWant struct {
	name   string
	labels map[string]string
	delta  float64
	abs    bool
}

// waitMetrics scrapes until every want holds (the doors log an entry after the
// response is sent, so counters may trail the client by a moment) or fails.
func waitMetrics(t *testing.T, admin string, before map[string]*dto.MetricFamily, wants []metricWant) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		after := scrape(t, admin)
		var bad []string
		for _, w := range wants {
			got := value(after, w.name, w.labels)
			if !w.abs {
				got -= value(before, w.name, w.labels)
			}
			if got != w.delta {
				bad = append(bad, fmt.Sprintf("%s%v = %v, want %v", w.name, w.labels, got, w.delta))
			}
		}
		if len(bad) == 0 {
			return after
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics:\n  %s", strings.Join(bad, "\n  "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMetricsMove scrapes /metrics before and after the traffic mix and a good and a
// failed reload, and checks the counters moved by what was sent.
func TestMetricsMove(t *testing.T) {
	o := startObserved(t)
	before := scrape(t, o.admin)
	o.traffic(t)
	fwd := map[string]string{"door": "forward"}
	waitMetrics(t, o.admin, before, []metricWant{
		{name: "portcullis_requests_total", labels: map[string]string{"door": "forward", "action": "block", "rule": "bad-list", "category": "testing", "code": "4xx"}, delta: 3},
		{name: "portcullis_requests_total", labels: map[string]string{"door": "forward", "action": "allow", "code": "2xx"}, delta: 3}, // GET, userinfo GET, tunnel
		{name: "portcullis_requests_total", labels: map[string]string{"door": "reverse", "action": "allow", "code": "2xx"}, delta: 8},
		{name: "portcullis_requests_total", labels: map[string]string{"door": "reverse", "code": "4xx"}, delta: 0},
		{name: "portcullis_tunnel_duration_seconds", labels: fwd, delta: 1},
		{name: "portcullis_request_duration_seconds", labels: fwd, delta: 5},
		// Not yet: portcullis_pool_request_duration_seconds{pool="app"} (the reverse door
		// does not fill admin.Entry.Pool).
		{name: "portcullis_cache_hits_total", delta: 3},
		{name: "portcullis_cache_misses_total", delta: 1},
		{name: "portcullis_pool_member_healthy", labels: map[string]string{"pool": "app", "member": o.a.URL}, delta: 1, abs: true},
		{name: "portcullis_pool_member_healthy", labels: map[string]string{"pool": "app", "member": o.b.URL}, delta: 1, abs: true},
		{name: "portcullis_list_entries", labels: map[string]string{"list": "bad"}, delta: 1, abs: true},
	})
	if got := value(scrape(t, o.admin), "portcullis_sent_bytes_total", fwd) - value(before, "portcullis_sent_bytes_total", fwd); got < float64(len("from plain")+len("tls ok")) {
		t.Fatalf("forward bytes sent moved by %v", got)
	}

	// A good reload, then a failed one.
	before = scrape(t, o.admin)
	if err := o.e.Reload(); err != nil {
		t.Fatal(err)
	}
	waitMetrics(t, o.admin, before, []metricWant{
		{name: "portcullis_policy_reloads_total", labels: map[string]string{"result": "ok"}, delta: 1},
		{name: "portcullis_policy_last_reload_success", delta: 1, abs: true},
		{name: "portcullis_policy_info", labels: map[string]string{"version": "2"}, delta: 1, abs: true},
		{name: "portcullis_policy_info", labels: map[string]string{"version": "1"}, delta: 0, abs: true},
	})
	writeFile(t, filepath.Join(o.dir, "policy.yaml"), o.policy+"no_such_section: 1\n")
	before = scrape(t, o.admin)
	if err := o.e.Reload(); err == nil {
		t.Fatal("broken policy loaded")
	}
	waitMetrics(t, o.admin, before, []metricWant{
		{name: "portcullis_policy_reloads_total", labels: map[string]string{"result": "error"}, delta: 1},
		{name: "portcullis_policy_reloads_total", labels: map[string]string{"result": "ok"}, delta: 0},
		{name: "portcullis_policy_last_reload_success", delta: 0, abs: true},
		{name: "portcullis_policy_info", labels: map[string]string{"version": "2"}, delta: 1, abs: true},
	})
}
