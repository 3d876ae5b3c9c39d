package engine

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// observed is an engine with both doors, a cached route, a blocklist and an admin
// listener writing an access log in the given format, with its origins.
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

func startObserved(t *testing.T, format string) *observed {
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
	logSpec := fmt.Sprintf("{format: %s, path: %q}", format, o.logPath)
	if format == "off" {
		logSpec = "{off: true}"
	}
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
admin: {listen: "127.0.0.1:0", log: %s}
`, o.secure.URL[strings.LastIndexByte(o.secure.URL, ':')+1:], o.a.URL, o.b.URL, o.stat.URL, logSpec)
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
	o := startObserved(t, "json")
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
		// does not fill accesslog.Entry.Pool).
		{name: "portcullis_cache_hits_total", delta: 3},
		{name: "portcullis_cache_misses_total", delta: 1},
		{name: "portcullis_pool_member_healthy", labels: map[string]string{"pool": "app", "member": o.a.URL}, delta: 1, abs: true},
		{name: "portcullis_pool_member_healthy", labels: map[string]string{"pool": "app", "member": o.b.URL}, delta: 1, abs: true},
		{name: "portcullis_list_entries", labels: map[string]string{"list": "bad"}, delta: 1, abs: true},
		{name: "portcullis_access_log_written_lines_total", delta: trafficLines},
		{name: "portcullis_access_log_dropped_lines_total", delta: 0},
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

// TestAccessLogOff: with log: {off: true} no line is written anywhere, and the
// metrics still count every request.
func TestAccessLogOff(t *testing.T) {
	o := startObserved(t, "off")
	before := scrape(t, o.admin)
	o.traffic(t)
	waitMetrics(t, o.admin, before, []metricWant{
		{name: "portcullis_requests_total", labels: map[string]string{"door": "reverse", "action": "allow", "code": "2xx"}, delta: 8},
		{name: "portcullis_access_log_written_lines_total", delta: 0},
	})
	if _, err := os.Stat(o.logPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an access log file exists: %v", err)
	}
}

// TestSquidAccessLogThroughEngine reads the Squid-format access log the traffic mix
// wrote back, field by field (logformat squid: time.ms elapsed client code/status
// bytes method URL user hierarchy/peer type), and checks that no credential or cookie
// reached it.
func TestSquidAccessLogThroughEngine(t *testing.T) {
	o := startObserved(t, "squid")
	o.traffic(t)
	lines := readLog(t, o.logPath, trafficLines) // 6 forward (GET, 3 blocked, tunnel, userinfo GET) + 8 reverse
	type rec struct{ code, bytes, method, url, user, hier, ctype string }
	var recs []rec
	timeRE := regexp.MustCompile(`^\d{10}\.\d{3}$`)
	codeRE := regexp.MustCompile(`^(TCP_[A-Z_]+|NONE_NONE)/\d{3}$`)
	hierRE := regexp.MustCompile(`^[A-Z_]+/\S+$`) // HIER_DIRECT, HIER_NONE, ANY_OLD_PARENT…
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 10 {
			t.Fatalf("%d fields in %q", len(f), l)
		}
		if !timeRE.MatchString(f[0]) || !codeRE.MatchString(f[3]) || !hierRE.MatchString(f[8]) || f[2] != "127.0.0.1" {
			t.Fatalf("not Squid's layout: %q", l)
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			t.Fatalf("elapsed %q in %q", f[1], l)
		}
		if _, err := strconv.Atoi(f[4]); err != nil {
			t.Fatalf("bytes %q in %q", f[4], l)
		}
		recs = append(recs, rec{f[3], f[4], f[5], f[6], f[7], f[8], f[9]})
	}
	find := func(pred func(rec) bool) []rec {
		var out []rec
		for _, r := range recs {
			if pred(r) {
				out = append(out, r)
			}
		}
		return out
	}
	secureHost := strings.TrimPrefix(o.secure.URL, "https://")
	checks := []struct {
		what string
		pred func(rec) bool
		n    int
	}{
		{"allowed GET", func(r rec) bool {
			return r.code == "TCP_MISS/200" && r.method == "GET" && r.url == o.plain.URL+"/ok" && r.bytes == strconv.Itoa(len("from plain")) && r.hier == "HIER_DIRECT/127.0.0.1"
		}, 1},
		{"blocked GET", func(r rec) bool {
			return r.code == "TCP_DENIED/403" && r.url == "http://blocked.test/page" && strings.HasPrefix(r.hier, "HIER_NONE/")
		}, 3},
		{"tunnel", func(r rec) bool {
			return r.code == "TCP_TUNNEL/200" && r.method == "CONNECT" && r.url == secureHost && r.hier == "HIER_DIRECT/127.0.0.1"
		}, 1},
		{"userinfo GET", func(r rec) bool { return r.url == o.plain.URL+"/userinfo" }, 1},
		{"reverse app", func(r rec) bool {
			return r.code == "TCP_MISS/200" && r.url == "http://app.test/logo.png" && r.bytes == "6" && strings.HasSuffix(r.hier, "/127.0.0.1")
		}, 4},
		// Cache hits reach no upstream. (They should also read TCP_HIT with the content
		// type: the reverse door does not fill accesslog.Entry.Cache or ContentType yet.)
		{"cache hits", func(r rec) bool {
			return strings.HasSuffix(r.code, "/200") && r.url == "http://static.test/logo.png" && r.hier == "HIER_NONE/-"
		}, 3},
		{"cache miss", func(r rec) bool {
			return r.code == "TCP_MISS/200" && r.url == "http://static.test/logo.png" && strings.HasSuffix(r.hier, "/127.0.0.1")
		}, 1},
		{"anonymous", func(r rec) bool { return r.user == "-" }, trafficLines},
	}
	for _, c := range checks {
		if got := find(c.pred); len(got) != c.n {
			t.Errorf("%s: %d lines match, want %d\n%s", c.what, len(got), c.n, strings.Join(lines, "\n"))
		}
	}
	noSecrets(t, lines)
}

// trafficLines is how many access-log lines the traffic mix makes: 6 through the
// forward door (GET, 3 blocked, tunnel, userinfo GET) and 8 through the reverse door.
const trafficLines = 14

// readLog polls path until it has n lines (the log is written in the background).
func readLog(t *testing.T, path string, n int) []string {
	t.Helper()
	var lines []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if s := strings.TrimRight(string(b), "\n"); s != "" {
			lines = strings.Split(s, "\n")
		}
		if len(lines) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(lines) != n {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), n, strings.Join(lines, "\n"))
	}
	return lines
}

// noSecrets fails if the traffic mix's credentials or cookie reached the log.
func noSecrets(t *testing.T, lines []string) {
	t.Helper()
	all := strings.ToLower(strings.Join(lines, "\n"))
	for _, secret := range []string{"secret", "cookie", "session", "dtpwcm94", "basic"} {
		if strings.Contains(all, secret) {
			t.Errorf("the access log contains %q:\n%s", secret, all)
		}
	}
}

// TestCombinedAccessLogThroughEngine reads the combined-format log of the traffic mix
// back with the format's grammar.
func TestCombinedAccessLogThroughEngine(t *testing.T) {
	o := startObserved(t, "combined")
	o.traffic(t)
	lines := readLog(t, o.logPath, trafficLines)
	re := regexp.MustCompile(`^127\.0\.0\.1 - - \[([^\]]+)\] "([A-Z]+) (\S+) (HTTP/[0-9.]+)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"$`)
	counts := map[string]int{}
	for _, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("not combined format: %q", l)
		}
		if _, err := time.Parse("02/Jan/2006:15:04:05 -0700", m[1]); err != nil {
			t.Fatalf("time %q: %v", m[1], err)
		}
		counts[m[2]+" "+m[3]+" "+m[5]]++
	}
	for k, n := range map[string]int{
		"GET " + o.plain.URL + "/ok 200":       1,
		"GET http://blocked.test/page 403":     3,
		"GET " + o.plain.URL + "/userinfo 200": 1,
		"CONNECT " + o.secure.URL[8:] + " 200": 1,
		"GET http://app.test/logo.png 200":     4,
		"GET http://static.test/logo.png 200":  4,
	} {
		if counts[k] != n {
			t.Errorf("%q: %d lines, want %d (have %v)", k, counts[k], n, counts)
		}
	}
	noSecrets(t, lines)
}

// chromium runs headless Chromium with args then url and returns its standard output.
// It skips the test when Chromium is not installed, unless CI=true.
func chromium(t *testing.T, url string, args ...string) string {
	t.Helper()
	const bin = "/usr/bin/chromium"
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is required in CI: %v", err)
		}
		t.Skipf("no %s", bin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=3000"}, args...)
	cmd := exec.CommandContext(ctx, bin, append(all, url)...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

// TestStatusPageInChromium runs both doors, sends the traffic mix, reloads once, and
// checks in headless Chromium that the admin status page shows the real data: the
// blocked domain and its category, both pool members, the cache hit ratio (3 hits, 1
// miss) and the policy version. The screenshot is left in the test's temp dir
// (go test -run StatusPage -v prints where).
func TestStatusPageInChromium(t *testing.T) {
	o := startObserved(t, "json")
	o.traffic(t)
	if err := o.e.Reload(); err != nil {
		t.Fatal(err)
	}
	// The page is fed by the access-log entries: wait until all 14 are counted.
	deadline := time.Now().Add(5 * time.Second)
	for o.e.shared.obs.status.Report().Requests < 14 {
		if time.Now().After(deadline) {
			t.Fatalf("status saw %d requests", o.e.shared.obs.status.Report().Requests)
		}
		time.Sleep(10 * time.Millisecond)
	}
	dom := chromium(t, o.admin+"/", "--dump-dom")
	text := tagRE.ReplaceAllString(dom, " ")
	for _, want := range []string{"blocked.test", "testing", o.a.URL, o.b.URL, o.stat.URL, "75.0%", "healthy"} {
		if !strings.Contains(text, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if !regexp.MustCompile(`id="policy-version">2<`).MatchString(dom) {
		t.Errorf("status page does not show policy version 2")
	}
	if !regexp.MustCompile(`id="policy-error"[^>]*hidden`).MatchString(dom) {
		t.Errorf("the reload-error banner is shown after a good reload")
	}
	if t.Failed() {
		t.Logf("page text:\n%s", strings.Join(strings.Fields(text), " "))
	}
	shot := filepath.Join(t.TempDir(), "status.png")
	chromium(t, o.admin+"/", "--screenshot="+shot, "--window-size=1280,900", "--hide-scrollbars")
	b, err := os.ReadFile(shot)
	if err != nil || len(b) < 10_000 || string(b[1:4]) != "PNG" {
		t.Fatalf("screenshot %s: %d bytes, %v", shot, len(b), err)
	}
	t.Logf("screenshot: %s", shot)
	if dir := os.Getenv("PORTCULLIS_KEEP_SCREENSHOT"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "status.png"), b, 0o644)
	}
}

var tagRE = regexp.MustCompile(`<[^>]*>`)
