package reverse

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/internal/pool"
	"github.com/portcullis/portcullis/rules"
)

func TestRouting(t *testing.T) {
	names := []string{"app", "wild", "api", "glob", "post", "hdr", "static"}
	pools := map[string]*pool.Pool{}
	for _, n := range names {
		pools[n] = newTestPool(t, pool.Config{}, newTestOrigin(t, n, nil).url())
	}
	cfg := Config{Routes: []Route{
		{Name: "api", Host: []string{"app.example.test"}, PathPrefix: "/api/", Pool: "api"},
		{Name: "glob", Host: []string{"app.example.test"}, PathGlob: "/img/*.png", Pool: "glob"},
		{Name: "post", Host: []string{"app.example.test"}, Methods: []string{"POST"}, Pool: "post"},
		{Name: "hdr", Host: []string{"app.example.test"}, Header: map[string]string{"X-Beta": "1"}, Pool: "hdr"},
		{Name: "app", Host: []string{"app.example.test"}, Pool: "app"},
		{Name: "wild", Host: []string{"*.example.test"}, Pool: "wild"},
		{Name: "static", Host: []string{"static.other.test"}, Pool: "static"},
	}}
	d := startDoor(t, cfg, pools, Options{})
	c := client(t, d.plain, nil, false)
	cases := []struct {
		method, host, path string
		hdr                map[string]string
		want               string // member name, or status
	}{
		{"GET", "app.example.test", "/", nil, "app"},
		{"GET", "APP.example.test.", "/x", nil, "app"},
		{"GET", "app.example.test:8080", "/x", nil, "app"},
		{"GET", "app.example.test", "/api/v1", nil, "api"},
		{"GET", "app.example.test", "/apiv1", nil, "app"},
		{"GET", "app.example.test", "/img/a.png", nil, "glob"},
		{"GET", "app.example.test", "/img/sub/a.png", nil, "app"},
		{"POST", "app.example.test", "/form", nil, "post"},
		{"GET", "app.example.test", "/", map[string]string{"X-Beta": "1"}, "hdr"},
		{"GET", "app.example.test", "/", map[string]string{"X-Beta": "2"}, "app"},
		{"GET", "b.example.test", "/", nil, "wild"},
		{"GET", "a.b.example.test", "/", nil, "wild"},
		{"GET", "example.test", "/", nil, "404"},
		{"GET", "static.other.test", "/", nil, "static"},
		{"GET", "unknown.test", "/", nil, "404"},
		{"GET", "app.example.test", "/a/../etc", nil, "400"},
	}
	for _, tc := range cases {
		hdr := map[string]string{"Host": tc.host}
		for k, v := range tc.hdr {
			hdr[k] = v
		}
		status, body, _ := fetch(t, c, tc.method, "http://x"+tc.path, hdr)
		got := body
		if status != http.StatusOK {
			got = strconv.Itoa(status)
		}
		if got != tc.want {
			t.Errorf("%s %s%s %v: got %q, want %q", tc.method, tc.host, tc.path, tc.hdr, got, tc.want)
		}
	}
}

// recordLog keeps access-log entries.
type recordLog struct {
	mu sync.Mutex
	es []accesslog.Entry
}

func (l *recordLog) Log(e *accesslog.Entry) { l.mu.Lock(); l.es = append(l.es, *e); l.mu.Unlock() }
func (l *recordLog) entries() []accesslog.Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]accesslog.Entry(nil), l.es...)
}

func TestPolicyDecides(t *testing.T) {
	o := newTestOrigin(t, "app", nil)
	pools := map[string]*pool.Pool{"app": newTestPool(t, pool.Config{}, o.url())}
	var mu sync.Mutex
	var seen []rules.Facts
	policy := rules.EvaluatorFunc(func(f *rules.Facts) rules.Verdict {
		mu.Lock()
		seen = append(seen, *f)
		mu.Unlock()
		if strings.HasPrefix(f.Path, "/admin") {
			return rules.Verdict{Action: rules.ActionBlock, Rule: "no-admin"}
		}
		if f.Path == "/quiet" {
			return rules.Verdict{Action: rules.ActionBlock, Rule: "q", Quiet: true}
		}
		return rules.Verdict{Action: rules.ActionAllow, Rule: "ok"}
	})
	log := &recordLog{}
	cfg := Config{Routes: []Route{{Name: "site", Host: []string{"app.example.test"}, Pool: "app"}}}
	d := startDoor(t, cfg, pools, Options{Policy: policy, Log: log})
	c := client(t, d.plain, nil, false)
	host := map[string]string{"Host": "app.example.test"}
	if s, _, _ := fetch(t, c, "GET", "http://x/admin/users?id=1", host); s != http.StatusForbidden {
		t.Errorf("blocked path: status %d, want 403", s)
	}
	if s, _, _ := fetch(t, c, "GET", "http://x/quiet", host); s != http.StatusNoContent {
		t.Errorf("quiet block: status %d, want 204", s)
	}
	if s, body, _ := fetch(t, c, "GET", "http://x/ok", host); s != 200 || body != "app" {
		t.Errorf("allowed: %d %q", s, body)
	}
	if o.hits.Load() != 1 {
		t.Errorf("origin saw %d requests, want only the allowed one", o.hits.Load())
	}
	f := seen[0]
	if f.Door != rules.DoorReverse || f.Route != "site" || f.Host != "app.example.test" || f.Port != 80 ||
		f.Method != "GET" || f.Scheme != "http" || f.Query != "id=1" || f.Client != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("facts %+v", f)
	}
	// A block page supplied by the engine is used for blocks.
	custom := startDoor(t, cfg, pools, Options{Policy: policy, BlockPage: func(w http.ResponseWriter, r *http.Request, v *rules.Verdict) {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "blocked by "+v.Rule)
	}})
	if s, body, _ := fetch(t, client(t, custom.plain, nil, false), "GET", "http://x/admin", host); s != 403 || body != "blocked by no-admin" {
		t.Errorf("custom block page: %d %q", s, body)
	}
	// Entries are logged once the response is out: wait for the third.
	waitFor(t, "three log entries", func() bool { return len(log.entries()) == 3 })
	es := log.entries()
	if e := es[0]; e.Door != "reverse" || e.Action != "block" || e.Rule != "no-admin" || e.Status != 403 || e.Upstream != "" {
		t.Errorf("blocked entry %+v", e)
	}
	if e := es[2]; e.Action != "allow" || e.Status != 200 || e.Upstream != o.url() || e.BytesOut != 3 || e.URL != "http://app.example.test/ok" {
		t.Errorf("allowed entry %+v", e)
	}
}

func TestForwardedHeaders(t *testing.T) {
	o := newTestOrigin(t, "app", func(w http.ResponseWriter, r *http.Request) {
		for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded"} {
			fmt.Fprintf(w, "%s=%s\n", h, strings.Join(r.Header.Values(h), "|"))
		}
	})
	pools := map[string]*pool.Pool{"app": newTestPool(t, pool.Config{}, o.url())}
	spoof := map[string]string{
		"Host": "app.example.test", "X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https",
		"X-Forwarded-Host": "evil.test", "Forwarded": "for=6.6.6.6",
	}
	route := []Route{{Name: "site", Pool: "app"}}

	untrusted := startDoor(t, Config{Routes: route, ForwardedHeaders: ForwardedHeaders{Forwarded: true}}, pools, Options{})
	_, body, _ := fetch(t, client(t, untrusted.plain, nil, false), "GET", "http://x/", spoof)
	want := "X-Forwarded-For=127.0.0.1\nX-Forwarded-Proto=http\nX-Forwarded-Host=app.example.test\n" +
		`Forwarded=for=127.0.0.1;proto=http;host="app.example.test"` + "\n"
	if body != want {
		t.Errorf("untrusted client: origin saw\n%s\nwant\n%s", body, want)
	}

	trusted := startDoor(t, Config{Routes: route, ForwardedHeaders: ForwardedHeaders{
		Forwarded: true, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	}}, pools, Options{})
	_, body, _ = fetch(t, client(t, trusted.plain, nil, false), "GET", "http://x/", spoof)
	want = "X-Forwarded-For=6.6.6.6, 127.0.0.1\nX-Forwarded-Proto=https\nX-Forwarded-Host=evil.test\n" +
		`Forwarded=for=6.6.6.6, for=127.0.0.1;proto=http;host="app.example.test"` + "\n"
	if body != want {
		t.Errorf("trusted proxy: origin saw\n%s\nwant\n%s", body, want)
	}

	off := false
	none := startDoor(t, Config{Routes: route, ForwardedHeaders: ForwardedHeaders{XForwardedFor: &off, XForwardedHost: &off, XForwardedProto: &off}}, pools, Options{})
	_, body, _ = fetch(t, client(t, none.plain, nil, false), "GET", "http://x/", spoof)
	if want := "X-Forwarded-For=\nX-Forwarded-Proto=\nX-Forwarded-Host=\nForwarded=\n"; body != want {
		t.Errorf("headers off: origin saw\n%s\nwant\n%s", body, want)
	}
}

func TestHideOrigin(t *testing.T) {
	var loc string
	o := newTestOrigin(t, "app", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "Apache/2.4.1 (Unix)")
		w.Header().Set("X-Powered-By", "PHP/5.6")
		w.Header().Set("Location", loc+"/login?next=%2F")
		w.WriteHeader(http.StatusFound)
	})
	loc = o.url()
	dead := newTestOrigin(t, "dead", nil)
	deadURL := dead.url()
	dead.srv.Close()
	pools := map[string]*pool.Pool{
		"app":  newTestPool(t, pool.Config{}, o.url()),
		"dead": newTestPool(t, pool.Config{Retries: pool.RetryConfig{Max: -1}, Health: pool.HealthConfig{Path: "/health", Fall: 1}}, deadURL),
	}
	cfg := Config{
		Routes: []Route{
			{Name: "site", Host: []string{"app.example.test"}, Pool: "app", HideOrigin: true},
			{Name: "gone", Host: []string{"gone.example.test"}, Pool: "dead", HideOrigin: true},
		},
		Hide: Hide{Server: "portcullis"},
	}
	d := startDoor(t, cfg, pools, Options{})
	c := client(t, d.plain, nil, false)
	status, _, hdr := fetch(t, c, "GET", "http://x/", map[string]string{"Host": "app.example.test"})
	if status != http.StatusFound || hdr.Get("Server") != "portcullis" || hdr.Get("X-Powered-By") != "" {
		t.Errorf("status %d headers %v: want 302, Server replaced, X-Powered-By gone", status, hdr)
	}
	if got, want := hdr.Get("Location"), "http://app.example.test/login?next=%2F"; got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
	// 502 (member refuses) then 503 (member down by its health check; the
	// last member is never ejected passively): no member address anywhere.
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(deadURL, "http://"))
	for i, want := range []int{http.StatusBadGateway, http.StatusServiceUnavailable} {
		if i == 1 {
			pools["dead"].CheckNow(context.Background())
		}
		status, body, hdr := fetch(t, c, "GET", "http://x/", map[string]string{"Host": "gone.example.test"})
		if status != want {
			t.Errorf("dead pool: status %d, want %d", status, want)
		}
		all := body + fmt.Sprint(hdr)
		if strings.Contains(all, "127.0.0.1") || strings.Contains(all, port) || hdr.Get("Server") != "portcullis" {
			t.Errorf("error response reveals the member or its server: %q %v", body, hdr)
		}
	}
}

func TestRateLimit(t *testing.T) {
	o := newTestOrigin(t, "app", nil)
	pools := map[string]*pool.Pool{"app": newTestPool(t, pool.Config{}, o.url())}
	cfg := Config{
		Limits: Limits{Rate: 20, Burst: 5},
		Routes: []Route{
			{Name: "site", Host: []string{"app.example.test"}, Pool: "app"},
			{Name: "burst", Host: []string{"burst.example.test"}, Pool: "app", Limits: &Limits{Rate: 0.5, Burst: 5}},
			{Name: "open", Host: []string{"open.example.test"}, Pool: "app", Limits: &Limits{Rate: 100000, Burst: 100000}},
		},
	}
	d := startDoor(t, cfg, pools, Options{})
	c := client(t, d.plain, nil, false)
	// The burst passes, then 429 with Retry-After (a token every 2 s).
	burst := map[string]string{"Host": "burst.example.test"}
	for i := range 5 {
		if s, _, _ := fetch(t, c, "GET", "http://x/", burst); s != 200 {
			t.Fatalf("request %d within the burst: %d", i, s)
		}
	}
	status, _, hdr := fetch(t, c, "GET", "http://x/", burst)
	if status != http.StatusTooManyRequests {
		t.Fatalf("after the burst: %d, want 429", status)
	}
	if ra, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
		t.Errorf("Retry-After %q", hdr.Get("Retry-After"))
	}
	// Over 600 ms and at least 40 requests as fast as they go (a loaded
	// machine may make few requests in 600 ms), about burst + rate × time pass.
	host := map[string]string{"Host": "app.example.test"}
	start := time.Now()
	ok := 0
	for n := 0; n < 40 || time.Since(start) < 600*time.Millisecond; n++ {
		if s, _, _ := fetch(t, c, "GET", "http://x/", host); s == 200 {
			ok++
		}
	}
	elapsed := time.Since(start).Seconds()
	if hi := 5 + int(20*elapsed) + 1; ok < 8 || ok > hi { // burst + rate × time
		t.Errorf("%d requests passed in %.2fs at 20/s burst 5, want between 8 and %d", ok, elapsed, hi)
	}
	// A route with its own limits is unaffected.
	if s, _, _ := fetch(t, c, "GET", "http://x/", map[string]string{"Host": "open.example.test"}); s != 200 {
		t.Errorf("route with its own limit: %d", s)
	}
}

func TestRateLimiterBounded(t *testing.T) {
	rl := NewRateLimiter(64)
	now := time.Now()
	for i := range 1000 {
		addr := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		if ok, _ := rl.Allow("r", addr, 1, 1, now); !ok {
			t.Fatalf("first request of a new client refused")
		}
	}
	if n := rl.Len(); n > 64 {
		t.Errorf("limiter holds %d clients, bound 64", n)
	}
}

func TestBodyLimits(t *testing.T) {
	o := newTestOrigin(t, "app", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return
		}
		fmt.Fprint(w, n)
	})
	pools := map[string]*pool.Pool{"app": newTestPool(t, pool.Config{}, o.url())}
	cfg := Config{
		Limits: Limits{MaxBodyBytes: 1000, BodyTimeout: 400 * time.Millisecond},
		Routes: []Route{{Name: "site", Pool: "app"}},
	}
	d := startDoor(t, cfg, pools, Options{})
	c := client(t, d.plain, nil, false)
	post := func(body io.Reader, length int64) int {
		req, _ := http.NewRequest("POST", "http://app.example.test/", body)
		req.ContentLength = length
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := post(strings.NewReader(strings.Repeat("a", 1000)), 1000); s != 200 {
		t.Errorf("body at the limit: %d", s)
	}
	if s := post(strings.NewReader(strings.Repeat("a", 1001)), 1001); s != http.StatusRequestEntityTooLarge {
		t.Errorf("declared length over the limit: %d, want 413", s)
	}
	if s := post(io.MultiReader(strings.NewReader(strings.Repeat("a", 5000))), -1); s != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked body over the limit: %d, want 413", s)
	}
	// A body that stalls is cut at body_timeout.
	conn, err := net.Dial("tcp", d.plain)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	io.WriteString(conn, "POST / HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 500\r\n\r\nabc")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 408") {
		t.Errorf("stalled body: %q %v, want 408", line, err)
	}
	if el := time.Since(start); el < 300*time.Millisecond || el > 3*time.Second {
		t.Errorf("stalled body cut after %v, want ≈400ms", el)
	}
}

func TestSlowloris(t *testing.T) {
	o := newTestOrigin(t, "app", nil)
	pools := map[string]*pool.Pool{"app": newTestPool(t, pool.Config{}, o.url())}
	cfg := Config{Limits: Limits{HeaderTimeout: 500 * time.Millisecond}, Routes: []Route{{Name: "site", Pool: "app"}}}
	d := startDoor(t, cfg, pools, Options{})

	conn, err := net.Dial("tcp", d.plain)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cut := make(chan time.Duration, 1)
	start := time.Now()
	go func() {
		// Dribble the request line and headers, one byte every 50 ms.
		msg := "GET / HTTP/1.1\r\nHost: app.example.test\r\nX-Slow: " + strings.Repeat("x", 200)
		for i := 0; i < len(msg); i++ {
			if _, err := conn.Write([]byte{msg[i]}); err != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	go func() {
		b := make([]byte, 512)
		for {
			if _, err := conn.Read(b); err != nil {
				cut <- time.Since(start)
				return
			}
		}
	}()
	// A normal client is served meanwhile.
	c := client(t, d.plain, nil, false)
	for range 5 {
		if s, _, _ := fetch(t, c, "GET", "http://app.example.test/", nil); s != 200 {
			t.Errorf("normal client: %d", s)
		}
	}
	select {
	case el := <-cut:
		if el < 400*time.Millisecond {
			t.Errorf("slow client cut after %v, before the 500ms header timeout", el)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("slow client still connected after 3s with a 500ms header timeout")
	}
}

func TestConnLimits(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ll := LimitListener(ln, 0, 2)
	defer ll.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ll.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	a1, a2 := <-accepted, <-accepted
	// The third is closed by the limiter: its read ends.
	conns[2].SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := conns[2].Read(make([]byte, 1)); err == nil {
		t.Fatal("third connection from one client was served")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("third connection from one client left open")
	}
	// Closing one frees a slot.
	a1.Close()
	c4, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	select {
	case a3 := <-accepted:
		a3.Close()
	case <-time.After(3 * time.Second):
		t.Fatal("slot not freed after a connection closed")
	}
	a2.Close()
}

func TestRedirectHTTPS(t *testing.T) {
	o := newTestOrigin(t, "app", nil)
	pools := map[string]*pool.Pool{"app": newTestPool(t, pool.Config{}, o.url())}
	cfg := Config{RedirectHTTPS: true, TLS: TLSConfig{Mode: "internal"}, Routes: []Route{{Name: "site", Host: []string{"app.example.test"}, Pool: "app"}}}
	d := startDoor(t, cfg, pools, Options{})
	status, _, hdr := fetch(t, client(t, d.plain, nil, false), "GET", "http://app.example.test/a?b=c", nil)
	_, port, _ := net.SplitHostPort(d.secure)
	_ = port // the test listens on :0, so the configured port is "0"
	if status != http.StatusPermanentRedirect || !strings.HasPrefix(hdr.Get("Location"), "https://app.example.test:0/a?b=c") {
		t.Errorf("redirect %d %q", status, hdr.Get("Location"))
	}
	status, body, _ := fetch(t, client(t, d.secure, d.caPool, true), "GET", "https://app.example.test/", nil)
	if status != 200 || body != "app" {
		t.Errorf("over https: %d %q", status, body)
	}
}

// rawRequest writes a request on a new connection and returns the status line.
func rawRequest(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, req)
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

func TestRejectsSmuggling(t *testing.T) {
	o := newTestOrigin(t, "app", nil)
	pools := map[string]*pool.Pool{"app": newTestPool(t, pool.Config{}, o.url())}
	d := startDoor(t, Config{Routes: []Route{{Name: "site", Pool: "app"}}}, pools, Options{})
	for name, req := range map[string]string{
		"two CL":        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
		"obfuscated TE": "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
	} {
		if got := rawRequest(t, d.plain, req); !strings.HasPrefix(got, "HTTP/1.1 4") && !strings.HasPrefix(got, "HTTP/1.1 5") {
			t.Errorf("%s: %q, want a 4xx refusal", name, got)
		}
	}
	if o.hits.Load() != 0 {
		t.Errorf("origin received %d ambiguous requests", o.hits.Load())
	}
}

func TestMinBodyRateDeadline(t *testing.T) {
	start := time.Unix(1000, 0)
	b := &deadlineBody{start: start, minRate: 1000}
	if got, want := b.deadline(), start.Add(DefaultMinBodyGrace); !got.Equal(want) {
		t.Errorf("nothing read: deadline %v, want start+grace %v", got, want)
	}
	b.n = 3000 // 3 s worth at 1000 B/s
	if got, want := b.deadline(), start.Add(DefaultMinBodyGrace+3*time.Second); !got.Equal(want) {
		t.Errorf("3000 B read: deadline %v, want %v", got, want)
	}
	b.end = start.Add(2 * time.Second) // body_timeout is earlier
	if got := b.deadline(); !got.Equal(b.end) {
		t.Errorf("with body_timeout: deadline %v, want %v", got, b.end)
	}
}

func TestMaxConnsWaits(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ll := LimitListener(ln, 1, 0)
	accepted := make(chan net.Conn, 2)
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			c, err := ll.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	defer func() { ll.Close(); <-acceptDone }()
	c1, _ := net.Dial("tcp", ln.Addr().String())
	defer c1.Close()
	a1 := <-accepted
	c2, _ := net.Dial("tcp", ln.Addr().String())
	defer c2.Close()
	select {
	case <-accepted:
		t.Fatal("second connection accepted while max_conns=1 was in use")
	case <-time.After(200 * time.Millisecond):
	}
	a1.Close()
	select {
	case a2 := <-accepted:
		a2.Close()
	case <-time.After(3 * time.Second):
		t.Fatal("second connection not accepted after the first closed")
	}
}
