package reverse

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/cache"
	"github.com/portcullis/portcullis/internal/pool"
)

// laneFixture is one Handler in front of a caching route, served twice: on
// the lane (Listen with the *Handler) and on plain net/http (Listen with a
// func), so the two fronts can be compared on the same state.
type laneFixture struct {
	origin      *testOrigin
	fresh       *countingFresh
	lane, plain string // host:port
	laneSrv     *Server
	h           *Handler
	log         *recordLog
}

// laneStats returns what the lane answered and handed off so far.
func (f *laneFixture) laneStats() (answered, handedOff uint64) { return f.laneSrv.LaneStats() }

func startLaneFixture(t *testing.T, cfg Config) *laneFixture {
	t.Helper()
	f := &laneFixture{log: &recordLog{}}
	f.origin = newTestOrigin(t, "o", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/nocache":
			w.Header().Set("Cache-Control", "no-store")
		default:
			w.Header().Set("Cache-Control", "public, max-age=600")
		}
		w.Header().Set("ETag", `"e1"`)
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "posted %s", b)
			return
		}
		fmt.Fprintf(w, "body of %s", r.URL.Path)
	})
	c, err := cache.New(cache.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	wrap := func(_ string, rt http.RoundTripper) http.RoundTripper {
		ct := c.WrapPolicy(&cache.Policy{Enabled: true}, rt)
		f.fresh = &countingFresh{RoundTripper: ct, fs: ct.(FreshServer)}
		return f.fresh
	}
	if len(cfg.Routes) == 0 {
		cfg.Routes = []Route{{Name: "site", Host: []string{"app.example.test"}, Pool: "p"}}
	}
	cfg.Listen = []string{"127.0.0.1:0"}
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("config: %v", errs)
	}
	h, err := New(Options{Config: cfg, Pools: map[string]*pool.Pool{"p": newTestPool(t, pool.Config{}, f.origin.url())}, Wrap: wrap, Log: f.log})
	if err != nil {
		t.Fatal(err)
	}
	serve := func(handler http.Handler) (string, *Server) {
		srv, err := Listen(&cfg, handler, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		plain, _ := srv.Addrs()
		return plain[0].String(), srv
	}
	f.h = h
	f.lane, f.laneSrv = serve(h)
	f.plain, _ = serve(http.HandlerFunc(h.ServeHTTP))
	return f
}

// warm fetches path through plain net/http and waits for its access-log
// entry: by then the cache has stored the response (the entry is written
// after the body was copied through the cache), so the next request is a hit.
func (f *laneFixture) warm(t *testing.T, path string) {
	t.Helper()
	n := len(f.log.entries())
	rc := dialClient(t, f.plain)
	rc.send(get(path))
	if res, _ := rc.response("GET"); res.StatusCode != 200 {
		t.Fatalf("warming %s: %d", path, res.StatusCode)
	}
	waitFor(t, "the warming request's log entry", func() bool { return len(f.log.entries()) > n })
}

// clientConn is a raw keep-alive client connection.
type clientConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialClient(t *testing.T, addr string) *clientConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &clientConn{t: t, c: c, r: bufio.NewReader(c)}
}

func (rc *clientConn) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

// response reads one response to a request with method.
func (rc *clientConn) response(method string) (*http.Response, string) {
	rc.t.Helper()
	res, err := http.ReadResponse(rc.r, &http.Request{Method: method})
	if err != nil {
		rc.t.Fatalf("reading a response: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		rc.t.Fatalf("reading a body: %v", err)
	}
	res.Body.Close()
	return res, string(b)
}

func get(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: app.example.test\r\n\r\n"
}

// TestLaneServesHitsThenHandsOff: on one connection, hits are answered by
// the lane; the first request it cannot answer (a miss) moves the connection
// to net/http, which serves that request and the following hits correctly.
func TestLaneServesHitsThenHandsOff(t *testing.T) {
	f := startLaneFixture(t, Config{})
	f.warm(t, "/a")
	origin := f.origin.hits.Load()

	rc := dialClient(t, f.lane)
	for i := range 3 {
		rc.send(get("/a"))
		res, body := rc.response("GET")
		if res.StatusCode != 200 || body != "body of /a" || !strings.Contains(res.Header.Get("Cache-Status"), "hit") {
			t.Fatalf("hit %d: %d %q Cache-Status %q", i, res.StatusCode, body, res.Header.Get("Cache-Status"))
		}
		if res.Header.Get("Date") == "" || res.ContentLength != int64(len(body)) {
			t.Fatalf("hit %d: Date %q Content-Length %d", i, res.Header.Get("Date"), res.ContentLength)
		}
	}
	if a, h := f.laneStats(); a != 3 || h != 0 {
		t.Fatalf("the lane answered %d and handed off %d, want 3 and 0", a, h)
	}
	if got := f.origin.hits.Load(); got != origin {
		t.Fatalf("hits reached the origin: %d requests, want %d", got, origin)
	}
	rc.send(get("/b")) // a miss: handed off
	if res, body := rc.response("GET"); res.StatusCode != 200 || body != "body of /b" {
		t.Fatalf("miss after hits: %d %q", res.StatusCode, body)
	}
	rc.send(get("/a")) // net/http now serves this connection, through ServeFresh
	if res, body := rc.response("GET"); res.StatusCode != 200 || body != "body of /a" {
		t.Fatalf("hit after the hand-off: %d %q", res.StatusCode, body)
	}
	if got := f.origin.hits.Load(); got != origin+1 {
		t.Fatalf("origin saw %d requests, want %d (only the miss)", got, origin+1)
	}
	if a, h := f.laneStats(); a != 3 || h != 1 {
		t.Fatalf("the lane answered %d and handed off %d, want 3 and 1", a, h)
	}
	if got := len(f.log.entries()); got != 1+3+2 {
		t.Fatalf("%d access-log entries, want 6 (one per request)", got)
	}
}

// TestLanePipelined: requests sent in one write are answered in order, also
// when one in the middle (a POST with a body) must go to net/http.
func TestLanePipelined(t *testing.T) {
	f := startLaneFixture(t, Config{})
	f.warm(t, "/a")
	rc := dialClient(t, f.lane)
	rc.send(get("/a") + get("/a") +
		"HEAD /a HTTP/1.1\r\nHost: app.example.test\r\n\r\n" +
		"POST /form HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 5\r\n\r\nhello" +
		get("/a"))
	want := []struct{ method, body string }{{"GET", "body of /a"}, {"GET", "body of /a"}, {"HEAD", ""}, {"POST", "posted hello"}, {"GET", "body of /a"}}
	for i, w := range want {
		res, body := rc.response(w.method)
		if res.StatusCode != 200 || body != w.body {
			t.Fatalf("response %d: %d %q, want 200 %q", i, res.StatusCode, body, w.body)
		}
		if w.method == "HEAD" && res.ContentLength != int64(len("body of /a")) {
			t.Fatalf("HEAD: Content-Length %d, want the GET's", res.ContentLength)
		}
	}
	if a, h := f.laneStats(); a != 3 || h != 1 {
		t.Fatalf("the lane answered %d and handed off %d, want 3 (two GETs and the HEAD before the POST) and 1 (the POST)", a, h)
	}
}

// opaqueListener hides its connections' type, so the lane cannot reach the
// descriptor and reads with Read.
type opaqueListener struct{ net.Listener }

type opaqueConn struct{ net.Conn }

func (l opaqueListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return opaqueConn{c}, nil
}

// TestLaneWithoutRawConn: on connections without a raw descriptor the lane
// reads with Read and answers the same: hits (also pipelined), then a miss
// handed to net/http, then a hit there.
func TestLaneWithoutRawConn(t *testing.T) {
	f := startLaneFixture(t, Config{})
	f.warm(t, "/a")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lane := NewLane(&http.Server{Handler: f.h, IdleTimeout: time.Minute}, func() *Handler { return f.h }, nil)
	served := make(chan error, 1)
	go func() { served <- lane.Serve(opaqueListener{ln}) }()
	t.Cleanup(func() {
		lane.Shutdown(context.Background())
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	rc := dialClient(t, ln.Addr().String())
	rc.send(get("/a"))
	rc.send(get("/a") + get("/a"))
	for i := range 3 {
		if res, body := rc.response("GET"); res.StatusCode != 200 || body != "body of /a" {
			t.Fatalf("hit %d: %d %q", i, res.StatusCode, body)
		}
	}
	rc.send(get("/c") + get("/a"))
	for _, want := range []string{"body of /c", "body of /a"} {
		if res, body := rc.response("GET"); res.StatusCode != 200 || body != want {
			t.Fatalf("after the hits: %d %q, want %q", res.StatusCode, body, want)
		}
	}
	if a, h := lane.Stats(); a != 3 || h != 1 {
		t.Fatalf("the lane answered %d and handed off %d, want 3 and 1", a, h)
	}
}

// TestLaneSameAnswersAsNetHTTP sends raw requests — ordinary, odd and
// hostile — to the lane and to plain net/http in front of the same Handler:
// the status (and, for 200s, the body) must be the same. The lane declines
// everything it would have to guess about, so net/http decides those.
func TestLaneSameAnswersAsNetHTTP(t *testing.T) {
	f := startLaneFixture(t, Config{})
	const host = "Host: app.example.test\r\n"
	cases := map[string]string{
		"hit":                   get("/a"),
		"hit, odd case":         "GET /a HTTP/1.1\r\nhOsT: app.example.test\r\nuser-AGENT: x\r\n\r\n",
		"hit with query":        "GET /a?x=1 HTTP/1.1\r\n" + host + "\r\n",
		"unknown host":          "GET /a HTTP/1.1\r\nHost: other.example.test\r\n\r\n",
		"dot segment":           "GET /x/../a HTTP/1.1\r\n" + host + "\r\n",
		"encoded NUL":           "GET /a%00 HTTP/1.1\r\n" + host + "\r\n",
		"no Host":               "GET /a HTTP/1.1\r\n\r\n",
		"two Hosts":             "GET /a HTTP/1.1\r\n" + host + host + "\r\n",
		"bad Host":              "GET /a HTTP/1.1\r\nHost: a b\r\n\r\n",
		"absolute form":         "GET http://app.example.test/a HTTP/1.1\r\n" + host + "\r\n",
		"HTTP/1.0":              "GET /a HTTP/1.0\r\n" + host + "\r\n",
		"HTTP/2 preface":        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"lower-case method":     "get /a HTTP/1.1\r\n" + host + "\r\n",
		"bare LF":               "GET /a HTTP/1.1\n" + host + "\n",
		"obs-fold":              "GET /a HTTP/1.1\r\n" + host + "X-A: 1\r\n 2\r\n\r\n",
		"space before colon":    "GET /a HTTP/1.1\r\n" + host + "X-A : 1\r\n\r\n",
		"control in value":      "GET /a HTTP/1.1\r\n" + host + "X-A: 1\x01\r\n\r\n",
		"GET with CL":           "GET /a HTTP/1.1\r\n" + host + "Content-Length: 3\r\n\r\nabc",
		"CL and TE":             "GET /a HTTP/1.1\r\n" + host + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"TE chunked GET":        "GET /a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"Expect":                "GET /a HTTP/1.1\r\n" + host + "Expect: 100-continue\r\n\r\n",
		"Upgrade":               "GET /a HTTP/1.1\r\n" + host + "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"Connection names X":    "GET /a HTTP/1.1\r\n" + host + "Connection: X-A\r\nX-A: 1\r\n\r\n",
		"space in target":       "GET /a b HTTP/1.1\r\n" + host + "\r\n",
		"fragment":              "GET /a#f HTTP/1.1\r\n" + host + "\r\n",
		"huge head":             "GET /a HTTP/1.1\r\n" + host + "X-Big: " + strings.Repeat("b", 8000) + "\r\n\r\n",
		"client no-cache":       "GET /a HTTP/1.1\r\n" + host + "Pragma: no-cache\r\n\r\n",
		"conditional":           "GET /a HTTP/1.1\r\n" + host + "If-None-Match: \"e1\"\r\n\r\n",
		"range":                 "GET /a HTTP/1.1\r\n" + host + "Range: bytes=0-1\r\n\r\n",
		"authorization":         "GET /a HTTP/1.1\r\n" + host + "Authorization: Basic eDp5\r\n\r\n",
		"HEAD hit":              "HEAD /a HTTP/1.1\r\n" + host + "\r\n",
		"Connection: close hit": "GET /a HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n",
	}
	for name, req := range cases {
		var status [2]int
		var body [2]string
		for i, addr := range []string{f.plain, f.lane} {
			f.warm(t, "/a") // the same state for both: a case may invalidate /a (an unknown method does)
			status[i], body[i] = statusOf(t, addr, req)
		}
		if status[0] != status[1] || (status[0] == 200 && body[0] != body[1]) {
			t.Errorf("%s: net/http %d %q, lane %d %q", name, status[0], body[0], status[1], body[1])
		}
	}
}

// statusOf sends req on a new connection and returns the status and body of
// the response, or 0 when the server closed the connection without one.
func statusOf(t *testing.T, addr, req string) (int, string) {
	t.Helper()
	rc := dialClient(t, addr)
	rc.send(req)
	method, _, _ := strings.Cut(req, " ")
	res, err := http.ReadResponse(rc.r, &http.Request{Method: method})
	if err != nil {
		return 0, ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestLaneConnectionClose: a request with Connection: close gets its answer
// with Connection: close, and then the lane closes the connection.
func TestLaneConnectionClose(t *testing.T) {
	f := startLaneFixture(t, Config{})
	f.warm(t, "/a")
	rc := dialClient(t, f.lane)
	rc.send("GET /a HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n" + get("/a"))
	res, _ := rc.response("GET")
	if !res.Close {
		t.Fatalf("response without Connection: close: %v", res.Header)
	}
	if _, err := rc.r.ReadByte(); err != io.EOF {
		t.Fatalf("after Connection: close the connection stays open (read: %v)", err)
	}
}

// TestLaneRateLimit: a rate-limited route answers hits on the lane until the
// client's burst is spent, then 429 with Retry-After; the miss that filled
// the cache (served by net/http) took its token too.
func TestLaneRateLimit(t *testing.T) {
	f := startLaneFixture(t, Config{Limits: Limits{Rate: Rate(1.0 / 60), Burst: 3}})
	f.warm(t, "/a")
	rc := dialClient(t, f.lane)
	var statuses []int
	for range 4 {
		rc.send(get("/a"))
		res, _ := rc.response("GET")
		statuses = append(statuses, res.StatusCode)
		if res.StatusCode == 429 && res.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if fmt.Sprint(statuses) != "[200 200 429 429]" {
		t.Fatalf("statuses %v, want two hits (burst 3, one token taken by the miss) then 429s", statuses)
	}
	if a, h := f.laneStats(); a != 4 || h != 0 {
		t.Fatalf("the lane answered %d and handed off %d, want 4 and 0", a, h)
	}
}

// TestLaneHeaderTimeout: a client that sends part of a request head and then
// nothing is disconnected after limits.header_timeout.
func TestLaneHeaderTimeout(t *testing.T) {
	f := startLaneFixture(t, Config{Limits: Limits{HeaderTimeout: 300 * time.Millisecond}})
	rc := dialClient(t, f.lane)
	start := time.Now()
	rc.send("GET /a HTTP/1.1\r\nHost: app.exa")
	_, err := rc.r.ReadByte()
	if err == nil {
		t.Fatal("the server answered an incomplete request")
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection was still open after %v", time.Since(start))
	}
}

// TestLaneShutdown: Serve returns after ctx ends; idle lane connections are
// closed, and a request in flight on net/http is finished first.
func TestLaneShutdown(t *testing.T) {
	release := make(chan struct{})
	var inSlow atomic.Bool
	arrived := make(chan struct{})
	o := newTestOrigin(t, "o", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=600")
		if r.URL.Path == "/slow" && inSlow.CompareAndSwap(false, true) {
			close(arrived)
			<-release
		}
		io.WriteString(w, "ok "+r.URL.Path)
	})
	cfg := Config{Listen: []string{"127.0.0.1:0"}, Routes: []Route{{Name: "site", Pool: "p"}}}
	c, err := cache.New(cache.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lg := &recordLog{}
	h, err := New(Options{Config: cfg, Pools: map[string]*pool.Pool{"p": newTestPool(t, pool.Config{}, o.url())}, Log: lg,
		Wrap: func(_ string, rt http.RoundTripper) http.RoundTripper {
			return c.WrapPolicy(&cache.Policy{Enabled: true}, rt)
		}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Listen(&cfg, h, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	plain, _ := srv.Addrs()
	addr := plain[0].String()

	warm := dialClient(t, addr)
	warm.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n") // a miss: handed to net/http
	warm.response("GET")
	waitFor(t, "the miss's log entry (the response is stored)", func() bool { return len(lg.entries()) == 1 })
	idle := dialClient(t, addr)
	idle.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n") // a hit: answered on the lane
	idle.response("GET")
	if a, h := srv.LaneStats(); a != 1 || h != 1 {
		t.Fatalf("the lane answered %d and handed off %d, want 1 and 1", a, h)
	}
	busy := dialClient(t, addr)
	busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-arrived
	cancel()
	if _, err := idle.r.ReadByte(); err != io.EOF {
		t.Fatalf("idle lane connection after shutdown: %v, want EOF", err)
	}
	close(release)
	if res, body := busy.response("GET"); res.StatusCode != 200 || body != "ok /slow" {
		t.Fatalf("request in flight at shutdown: %d %q", res.StatusCode, body)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

// TestPlainTargetAsParseRequestURI: the allocation-free reading of simple
// targets gives what url.ParseRequestURI gives, for every byte in and around
// its character set, at the start, middle and end of the path and in the
// query.
func TestPlainTargetAsParseRequestURI(t *testing.T) {
	for c := 0x21; c < 0x7f; c++ {
		for _, tmpl := range []string{"/%c", "/a%cb", "/a%c", "/a?%c", "/%c?x", "/a%c?", "/%c/"} {
			target := fmt.Sprintf(tmpl, c)
			var u url.URL
			if !plainTarget(target, &u) {
				continue
			}
			want, err := url.ParseRequestURI(target)
			if err != nil {
				t.Errorf("%q: taken, but ParseRequestURI fails: %v", target, err)
				continue
			}
			if u != *want {
				t.Errorf("%q: %#v, ParseRequestURI gives %#v", target, u, *want)
			}
		}
	}
}

// FuzzParseLaneHead: whatever the lane's parser takes, net/http reads the
// same way (method, target, URL, Host, header fields, no body).
func FuzzParseLaneHead(f *testing.F) {
	for _, s := range []string{
		get("/a"),
		"HEAD /a?b=c HTTP/1.1\r\nHost: h:8080\r\nAccept: */*\r\nAccept: text/html\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: [::1]:80\r\nPragma: no-cache\r\nConnection: keep-alive, close\r\n\r\n",
		"GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\nhost: h\r\nX:\r\nY: \t v \t\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX-\xff: 1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX: \xff\xfe\r\n\r\n",
		"GET /a-b._~/!$&'()*+,;=:@?q=1&r=%zz HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a? HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET //x/y HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a%20b HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a\"b<c>{d}|e^f`g\\h HTTP/1.1\r\nHost: h\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hdr := http.Header{}
		h, _, ok := parseLaneHead(s, hdr, nil, new(url.URL))
		if !ok {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(s)))
		if err != nil {
			t.Fatalf("the lane takes %q, net/http refuses it: %v", s, err)
		}
		if req.Method != h.method || req.RequestURI != h.target || req.Host != h.host || req.Close != h.close || *req.URL != *h.url {
			t.Fatalf("%q: lane %+v, net/http %s %s host %q close %v", s, h, req.Method, req.RequestURI, req.Host, req.Close)
		}
		if fmt.Sprint(req.Header) != fmt.Sprint(hdr) {
			t.Fatalf("%q: lane header %v, net/http %v", s, hdr, req.Header)
		}
		if req.ContentLength != 0 || len(req.TransferEncoding) > 0 {
			t.Fatalf("%q: the lane takes a request with a body", s)
		}
	})
}
