package forward

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/certs"
	"github.com/portcullis/portcullis/internal/upstream"
	"github.com/portcullis/portcullis/rules"
)

// inspectEnv is a TLS origin reachable as "example.com:<port>" through a proxy
// whose transport and dialer map every name to the origin, plus a CA.
type inspectEnv struct {
	origin *httptest.Server
	port   string
	ca     *certs.CA
	caPool *x509.CertPool
	dial   DialFunc
	tr     *upstream.Client
}

func newInspectEnv(t testing.TB, handler http.Handler) *inspectEnv {
	t.Helper()
	origin := httptest.NewUnstartedServer(handler)
	origin.EnableHTTP2 = true
	origin.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected here
	origin.StartTLS()
	t.Cleanup(origin.Close)
	dir := t.TempDir()
	ca, err := certs.CreateCA(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key"), certs.InspectionCAName)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	target := origin.Listener.Addr().String()
	var d net.Dialer
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, target) // every name is the origin
	}
	tc := (&Config{}).TransportConfig()
	tc.Dial = dial
	tc.TLSClientConfig = &tls.Config{RootCAs: origin.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	tr := NewTransport(tc)
	t.Cleanup(tr.CloseIdleConnections)
	_, port, _ := net.SplitHostPort(target)
	return &inspectEnv{origin: origin, port: port, ca: ca, caPool: pool, dial: dial, tr: tr}
}

// url is https://host:port/path on the origin's port.
func (e *inspectEnv) url(host, path string) string { return "https://" + host + ":" + e.port + path }

// proxyOpts returns Options for a proxy in front of the env with policy.
func (e *inspectEnv) proxyOpts(t testing.TB, policy rules.Evaluator, cfg *Config) Options {
	if cfg == nil {
		cfg = &Config{}
	}
	cfg.ConnectPorts = []int{mustAtoi(t, e.port)}
	return Options{Config: cfg, Policy: policy, CA: e.ca, Transport: e.tr, Dial: e.dial}
}

func mustAtoi(t testing.TB, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// client trusts the CA (and not the origin's own certificate).
func (e *inspectEnv) client(t *testing.T, tp *testProxy, h2 bool) *http.Client {
	tr := &http.Transport{Proxy: http.ProxyURL(tp.url), TLSClientConfig: &tls.Config{RootCAs: e.caPool}, ForceAttemptHTTP2: h2}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// inspectPolicy inspects everything, blocks paths under /blocked/ and the host
// blocked.example.
func inspectPolicy(f *rules.Facts) rules.Verdict {
	switch {
	case f.Host == "blocked.example" || f.SNI == "blocked.example":
		return rules.Verdict{Action: rules.ActionBlock, Rule: "no-blocked", Category: "testing", Reason: "Blocked site"}
	case strings.HasPrefix(f.Path, "/blocked/"):
		return rules.Verdict{Action: rules.ActionBlock, Rule: "no-shorts", Category: "video", Reason: "Short videos are blocked"}
	case f.Method == http.MethodConnect:
		return rules.Verdict{Action: rules.ActionInspect, Rule: "inspect-all"}
	}
	return rules.Verdict{Action: rules.ActionAllow, Rule: "default"}
}

func originHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Origin-Proto", r.Proto)
		_, _ = io.WriteString(w, "origin says hi to "+r.URL.Path)
	})
}

func TestInspectionPathRulesHTTP1AndHTTP2(t *testing.T) {
	env := newInspectEnv(t, originHandler())
	tp := startProxy(t, env.proxyOpts(t, rules.EvaluatorFunc(inspectPolicy), nil))
	for _, h2 := range []bool{false, true} {
		c := env.client(t, tp, h2)
		resp, err := c.Get(env.url("example.com", "/watch"))
		if err != nil {
			t.Fatalf("h2=%v: %v", h2, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "origin says hi to /watch" {
			t.Fatalf("h2=%v: %d %q", h2, resp.StatusCode, b)
		}
		if h2 && resp.ProtoMajor != 2 {
			t.Errorf("client spoke %s inside the inspected tunnel, want HTTP/2", resp.Proto)
		}
		if resp.TLS == nil || resp.TLS.PeerCertificates[0].Issuer.CommonName != "Portcullis inspection CA" {
			t.Fatalf("h2=%v: not inspected", h2)
		}
		req, _ := http.NewRequest("GET", env.url("example.com", "/blocked/abc"), nil)
		req.Header.Set("Accept", "text/html")
		resp, err = c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !bytes.Contains(b, []byte("no-shorts")) || !bytes.Contains(b, []byte("https://example.com:"+env.port+"/blocked/abc")) {
			t.Fatalf("h2=%v: blocked path: %d %s", h2, resp.StatusCode, b)
		}
	}
	// Every inner request has its own access-log entry, besides the CONNECT's.
	var inner int
	deadline := time.After(10 * time.Second)
	for inner < 4 {
		select {
		case e := <-tp.log.ch:
			if e.Method == "GET" && strings.HasPrefix(e.URL, "https://example.com:") {
				inner++
				if strings.Contains(e.URL, "/blocked/") != (e.Status == 403) {
					t.Errorf("inner entry %+v", e)
				}
			}
		case <-deadline:
			t.Fatalf("only %d inner log entries", inner)
		}
	}
}

func TestInspectionBadUpstreamCertificateShown(t *testing.T) {
	env := newInspectEnv(t, originHandler())
	opts := env.proxyOpts(t, rules.EvaluatorFunc(inspectPolicy), nil)
	untrusting := NewTransport(TransportConfig{Dial: env.dial}) // system roots: the test origin is unknown
	defer untrusting.CloseIdleConnections()
	opts.Transport = untrusting
	tp := startProxy(t, opts)
	resp, err := env.client(t, tp, false).Get(env.url("example.com", "/"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 || !bytes.Contains(b, []byte("certificate could not be verified")) {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

func TestSNIBlockedWithoutInspection(t *testing.T) {
	env := newInspectEnv(t, originHandler())
	opts := env.proxyOpts(t, hostPolicy("no-blocked", "blocked.example"), nil)
	opts.CA = nil
	tp := startProxy(t, opts)
	for _, target := range []string{"127.0.0.1:" + env.port, "allowed.example:" + env.port} {
		resp, c, _ := tp.rawRequest(t, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: CONNECT status %d", target, resp.StatusCode)
		}
		tc := tls.Client(c, &tls.Config{ServerName: "blocked.example", InsecureSkipVerify: true})
		if err := tc.Handshake(); err == nil {
			t.Fatalf("%s: handshake with a blocked SNI succeeded", target)
		}
		e := tp.log.next(t)
		if e.Action != "block" || e.Rule != "no-blocked" || e.Status != 403 {
			t.Fatalf("%s: log %+v", target, e)
		}
	}
}

func TestSNIAllowedTunnelIsByteIdentical(t *testing.T) {
	payload := randomBytes(1 << 20)
	env := newInspectEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(payload) }))
	var sawSNI []string
	var mu sync.Mutex
	policy := rules.EvaluatorFunc(func(f *rules.Facts) rules.Verdict {
		mu.Lock()
		sawSNI = append(sawSNI, f.SNI)
		mu.Unlock()
		return rules.Verdict{Action: rules.ActionAllow, Rule: "default"}
	})
	opts := env.proxyOpts(t, policy, nil)
	opts.CA = nil
	tp := startProxy(t, opts)
	tr := &http.Transport{Proxy: http.ProxyURL(tp.url), TLSClientConfig: &tls.Config{
		RootCAs: env.origin.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs, ServerName: "example.com"}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://127.0.0.1:" + env.port + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(b, payload) {
		t.Fatal("payload differs through the SNI-checked tunnel")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sawSNI) != 2 || sawSNI[0] != "" || sawSNI[1] != "example.com" {
		t.Fatalf("policy saw SNIs %q, want the CONNECT then example.com", sawSNI)
	}
}

func TestSNIMustMatchRefusesFronting(t *testing.T) {
	env := newInspectEnv(t, originHandler())
	opts := env.proxyOpts(t, nil, &Config{SNIMustMatch: true})
	opts.CA = nil
	tp := startProxy(t, opts)
	resp, c, _ := tp.rawRequest(t, "CONNECT front.example:"+env.port+" HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	if err := tls.Client(c, &tls.Config{ServerName: "hidden.example", InsecureSkipVerify: true}).Handshake(); err == nil {
		t.Fatal("fronted handshake succeeded")
	}
	if e := tp.log.next(t); e.Rule != "sni_must_match" {
		t.Fatalf("log %+v", e)
	}
}

func TestInspectToBlockShowsBlockPageOverTLS(t *testing.T) {
	env := newInspectEnv(t, originHandler())
	policy := hostPolicy("no-blocked", "blocked.example")
	tp := startProxy(t, env.proxyOpts(t, policy, &Config{CAClients: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}))
	c := env.client(t, tp, false)
	resp, err := c.Get(env.url("www.blocked.example", "/some/page"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !bytes.Contains(b, []byte("Rule: no-blocked")) || !bytes.Contains(b, []byte("https://www.blocked.example:"+env.port+"/some/page")) {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	// Allowed sites are not inspected: the client sees the origin's own certificate.
	tr := &http.Transport{Proxy: http.ProxyURL(tp.url), TLSClientConfig: &tls.Config{RootCAs: env.origin.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}}
	defer tr.CloseIdleConnections()
	resp, err = (&http.Client{Transport: tr}).Get(env.url("example.com", "/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.TLS.PeerCertificates[0].Issuer.CommonName == "Portcullis inspection CA" {
		t.Fatal("allowed site was inspected")
	}
}

func TestWebSocketThroughInspection(t *testing.T) {
	env := newInspectEnv(t, wsEchoHandler(1000))
	// The origin offers h2; the door's client speaks HTTP/1.1 for the upgrade.
	tp := startProxy(t, env.proxyOpts(t, rules.EvaluatorFunc(inspectPolicy), nil))
	resp, c, _ := tp.rawRequest(t, "CONNECT example.com:"+env.port+" HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	tc := tls.Client(c, &tls.Config{ServerName: "example.com", RootCAs: env.caPool, NextProtos: []string{"http/1.1"}})
	if _, err := io.WriteString(tc, "GET /ws HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(tc)
	wsResp, err := http.ReadResponse(br, nil)
	if err != nil || wsResp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", wsResp, err)
	}
	for _, msg := range []string{"one\n", "two\n"} {
		_, _ = io.WriteString(tc, msg)
		if got, err := br.ReadString('\n'); err != nil || got != "echo:"+msg {
			t.Fatalf("echo %q %v", got, err)
		}
	}
}

func TestLoadRootCAs(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	ca, err := certs.CreateCA(cert, key, certs.InspectionCAName)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	if roots, err := LoadRootCAs(cert); err != nil || !roots.Equal(pool) {
		t.Fatalf("LoadRootCAs: %v", err)
	}
	if _, err := LoadRootCAs(key); err == nil {
		t.Fatal("LoadRootCAs accepted a key file")
	}
}

func TestInspectedClientStallingHandshakeIsDropped(t *testing.T) {
	env := newInspectEnv(t, originHandler())
	tp := startProxy(t, env.proxyOpts(t, rules.EvaluatorFunc(inspectPolicy), &Config{SNIPeekTimeout: 200 * time.Millisecond}))
	resp, c, br := tp.rawRequest(t, "CONNECT example.com:"+env.port+" HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	if _, err := c.Write([]byte{0x16, 0x03, 0x01}); err != nil { // a ClientHello that never completes
		t.Fatal(err)
	}
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("stalled handshake kept open: %v after %v", err, time.Since(start))
	}
	var ne net.Error
	if _, err := br.ReadByte(); errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the test's own deadline fired: the proxy did not close")
	}
}

// verdictRecorder is a transport that records the verdict each request carries.
type verdictRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen []string
}

func (v *verdictRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	verdict, ok := rules.VerdictFrom(r.Context())
	v.mu.Lock()
	v.seen = append(v.seen, fmt.Sprintf("%s:%v:%s", r.URL.Path, ok, verdict.Rule))
	v.mu.Unlock()
	return v.next.RoundTrip(r)
}

func TestVerdictTravelsToTheTransport(t *testing.T) {
	env := newInspectEnv(t, originHandler())
	rec := &verdictRecorder{next: env.tr}
	policy := rules.EvaluatorFunc(func(f *rules.Facts) rules.Verdict {
		if f.Method == http.MethodConnect {
			return rules.Verdict{Action: rules.ActionInspect, Rule: "inspect-all"}
		}
		return rules.Verdict{Action: rules.ActionAllow, Rule: "rule-for-" + f.Scheme, Cache: "short"}
	})
	opts := env.proxyOpts(t, policy, nil)
	opts.Transport = rec
	tp := startProxy(t, opts)
	plain := newRecordingOrigin(t)
	for _, u := range []string{plain.URL + "/plain", env.url("example.com", "/inner")} {
		resp, err := env.client(t, tp, false).Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := strings.Join(rec.seen, ","); got != "/plain:true:rule-for-http,/inner:true:rule-for-https" {
		t.Fatalf("transport saw %s", got)
	}
}

// TestInnerHostCannotLeaveTheTunnel: inside an inspected tunnel to
// example.com:PORT, a request whose Host names another host or port is
// answered 421 and nothing is dialed for it; a Host naming the tunnel's
// authority (with or without its port) is served.
func TestInnerHostCannotLeaveTheTunnel(t *testing.T) {
	env := newInspectEnv(t, originHandler())
	var mu sync.Mutex
	var dialed []string
	opts := env.proxyOpts(t, rules.EvaluatorFunc(inspectPolicy), nil)
	tc := (&Config{}).TransportConfig()
	tc.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, addr)
		mu.Unlock()
		return env.dial(ctx, network, addr)
	}
	tc.TLSClientConfig = env.tr.Config().TLS
	tr := NewTransport(tc)
	t.Cleanup(tr.CloseIdleConnections)
	opts.Transport = tr
	tp := startProxy(t, opts)

	authority := "example.com:" + env.port
	send := inspectedTunnel(t, tp, env, authority)
	ask := func(host string) *http.Response {
		t.Helper()
		return send("GET /inner HTTP/1.1\r\nHost: " + host + "\r\n\r\n")
	}
	for _, host := range []string{"other.test:" + env.port, "example.com:1", "127.0.0.1:" + env.port, "blocked.example"} {
		if resp := ask(host); resp.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("Host %s inside the tunnel to %s: %d, want 421", host, authority, resp.StatusCode)
		}
	}
	for _, host := range []string{authority, "EXAMPLE.com.:" + env.port} {
		if resp := ask(host); resp.StatusCode != 200 {
			t.Errorf("Host %s inside the tunnel to %s: %d, want 200", host, authority, resp.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range dialed {
		if a != authority {
			t.Errorf("dialed %s for a request inside the tunnel to %s", a, authority)
		}
	}
	if len(dialed) == 0 {
		t.Errorf("nothing dialed: the allowed requests did not reach the origin")
	}
}

// bufConn reads through r (which may hold bytes already read from Conn).
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// inspectedTunnel opens an inspected tunnel to authority through tp (as
// example.com, trusting env's CA, HTTP/1.1) and returns a function that sends
// one raw request head inside it and reads the response (body read and closed).
func inspectedTunnel(t *testing.T, tp *testProxy, env *inspectEnv, authority string) func(raw string) *http.Response {
	t.Helper()
	c, br := tp.dialRaw(t)
	if _, err := io.WriteString(c, "CONNECT "+authority+" HTTP/1.1\r\nHost: "+authority+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	tc := tls.Client(&bufConn{Conn: c, r: br}, &tls.Config{ServerName: "example.com", RootCAs: env.caPool, NextProtos: []string{"http/1.1"}})
	tbr := bufio.NewReader(tc)
	return func(raw string) *http.Response {
		t.Helper()
		if _, err := io.WriteString(tc, raw); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(tbr, nil)
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return resp
	}
}

// TestForwardDotSegmentsRefused: a path rule on /blocked/ is not bypassed with
// "." and ".." segments (plain or percent-encoded), in plain HTTP and inside
// an inspected tunnel: such a path is refused with 400, as the reverse door
// does (rules.PathRefused), and the origin never sees it.
func TestForwardDotSegmentsRefused(t *testing.T) {
	var seen sync.Map
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.URL.Path, true)
		_, _ = io.WriteString(w, "origin says hi to "+r.URL.Path)
	})
	plainOrigin := httptest.NewServer(handler)
	t.Cleanup(plainOrigin.Close)
	env := newInspectEnv(t, handler)
	opts := env.proxyOpts(t, rules.EvaluatorFunc(inspectPolicy), nil)
	opts.Transport = nil // plain requests go to plainOrigin, inner ones through env's transport below
	tp := startProxy(t, opts)
	inner := startProxy(t, env.proxyOpts(t, rules.EvaluatorFunc(inspectPolicy), nil))
	paths := []string{"/x/../blocked/a", "/./blocked/a", "/x/%2e%2e/blocked/a", "/x/%2E./blocked/a", "/x/..%2fblocked/a", "/%2e/blocked/a"}
	plainHost := strings.TrimPrefix(plainOrigin.URL, "http://")
	send := inspectedTunnel(t, inner, env, "example.com:"+env.port)
	for _, path := range paths {
		resp, _, _ := tp.rawRequest(t, "GET http://"+plainHost+path+" HTTP/1.1\r\nHost: "+plainHost+"\r\n\r\n")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain GET %s: %d %q, want 400", path, resp.StatusCode, b)
		}
		resp = send("GET " + path + " HTTP/1.1\r\nHost: example.com:" + env.port + "\r\n\r\n")
		if resp.StatusCode != http.StatusBadRequest {
			b, _ := io.ReadAll(resp.Body)
			t.Errorf("inspected GET %s: %d %q, want 400", path, resp.StatusCode, b)
		}
	}
	seen.Range(func(k, _ any) bool {
		t.Errorf("the origin saw %s", k)
		return true
	})
	// An ordinary path is still served.
	if resp := send("GET /fine/a.b/c HTTP/1.1\r\nHost: example.com:" + env.port + "\r\n\r\n"); resp.StatusCode != 200 {
		t.Errorf("inspected GET /fine/a.b/c: %d", resp.StatusCode)
	}
}

// TestBlockPageConnectionBounded: a block-page connection (a blocked site
// shown its page over TLS) answers requests on one kept connection, each
// with the block page for its own URL, and closes after
// blockTLSMaxRequests of them.
func TestBlockPageConnectionBounded(t *testing.T) {
	env := newInspectEnv(t, originHandler())
	tp := startProxy(t, env.proxyOpts(t, hostPolicy("no-blocked", "blocked.example"), &Config{CAClients: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}))
	resp, c, _ := tp.rawRequest(t, "CONNECT blocked.example:"+env.port+" HTTP/1.1\r\nHost: blocked.example\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %d", resp.StatusCode)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	tc := tls.Client(c, &tls.Config{ServerName: "blocked.example", RootCAs: env.caPool})
	br := bufio.NewReader(tc)
	for i := 1; i <= blockTLSMaxRequests; i++ {
		path := "/page-" + strconv.Itoa(i)
		if _, err := io.WriteString(tc, "GET "+path+" HTTP/1.1\r\nHost: blocked.example\r\n\r\n"); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !bytes.Contains(b, []byte("https://blocked.example"+path)) {
			t.Fatalf("response %d: %d %s", i, resp.StatusCode, b)
		}
		if resp.Close != (i == blockTLSMaxRequests) {
			t.Fatalf("response %d: Connection: close is %v", i, resp.Close)
		}
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the connection stayed open after the last answered request")
	}
}

// TestInspectedRequestBodyTimeout: request_body_timeout holds inside an
// inspected tunnel as for plain requests, over HTTP/1.1 and HTTP/2: a client
// that stops sending its request body gets 408 and the access log says why;
// the origin's answer never comes. Before inspected tunnels were served by
// the door's own muxes, the door waited for such a body until the tunnel's
// idle timeout.
func TestInspectedRequestBodyTimeout(t *testing.T) {
	env := newInspectEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // never ends: the proxy answers first
	}))
	tp := startProxy(t, env.proxyOpts(t, rules.EvaluatorFunc(inspectPolicy), &Config{RequestBodyTimeout: 300 * time.Millisecond}))
	check := func(name string, status int) {
		t.Helper()
		if status != http.StatusRequestTimeout {
			t.Fatalf("%s: a stalled body got %d, want 408", name, status)
		}
		deadline := time.After(10 * time.Second)
		for {
			select {
			case e := <-tp.log.ch:
				if e.Method != http.MethodPost {
					continue
				}
				if e.Status != http.StatusRequestTimeout || !strings.Contains(e.Error, "request_body_timeout") {
					t.Fatalf("%s: log entry %+v", name, e)
				}
				return
			case <-deadline:
				t.Fatalf("%s: no log entry for the POST", name)
			}
		}
	}

	// HTTP/1.1, by hand: a head announcing 100 bytes, then 10.
	resp, c, _ := tp.rawRequest(t, "CONNECT example.com:"+env.port+" HTTP/1.1\r\nHost: example.com\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %d", resp.StatusCode)
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	tc := tls.Client(c, &tls.Config{ServerName: "example.com", RootCAs: env.caPool, NextProtos: []string{"http/1.1"}})
	if _, err := io.WriteString(tc, "POST /upload HTTP/1.1\r\nHost: example.com:"+env.port+"\r\nContent-Length: 100\r\n\r\n"+strings.Repeat("a", 10)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatalf("HTTP/1.1: %v", err)
	}
	resp.Body.Close()
	check("HTTP/1.1", resp.StatusCode)

	// HTTP/2, with Go's client: a body that sends 10 bytes and stalls.
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte(strings.Repeat("a", 10))) }()
	req, _ := http.NewRequest(http.MethodPost, env.url("example.com", "/upload"), pr)
	req.ContentLength = 100
	resp, err = env.client(t, tp, true).Do(req)
	if err != nil {
		t.Fatalf("HTTP/2: %v", err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("the client spoke %s inside the tunnel", resp.Proto)
	}
	check("HTTP/2", resp.StatusCode)
}

// TestDrainedDoorHandsNewTunnelsOn: once a door's inspected tunnels were
// told to drain (DrainInspected), a tunnel it terminates later (its CONNECT
// decided just before a reload) is served by the door in force
// (Options.Current), over HTTP/1.1 and HTTP/2; with no other door (a
// shutdown) it is closed after the handshake, never served.
func TestDrainedDoorHandsNewTunnelsOn(t *testing.T) {
	env := newInspectEnv(t, originHandler())
	next, err := New(env.proxyOpts(t, rules.EvaluatorFunc(inspectPolicy), nil))
	if err != nil {
		t.Fatal(err)
	}
	var inForce atomic.Pointer[Proxy]
	opts := env.proxyOpts(t, rules.EvaluatorFunc(inspectPolicy), nil)
	opts.Current = inForce.Load
	tp := startProxy(t, opts)
	wait := tp.DrainInspected()
	if wait == nil {
		t.Fatal("DrainInspected: nothing to wait for on a door with a CA")
	}
	for _, h2 := range []bool{false, true} {
		// The drained door is still the one in force: closed.
		if resp, err := env.client(t, tp, h2).Get(env.url("example.com", "/late")); err == nil {
			resp.Body.Close()
			t.Fatalf("h2=%v: a tunnel terminated by the drained door was served: %d", h2, resp.StatusCode)
		}
		// A reload put next in force: it serves the tunnel.
		inForce.Store(next)
		resp, err := env.client(t, tp, h2).Get(env.url("example.com", "/late"))
		if err != nil {
			t.Fatalf("h2=%v: %v", h2, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "origin says hi to /late" || (resp.ProtoMajor == 2) != h2 {
			t.Fatalf("h2=%v: %d %s %q", h2, resp.StatusCode, resp.Proto, b)
		}
		inForce.Store(nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := wait(ctx); err != nil {
		t.Fatalf("wait: %v", err)
	}
}
