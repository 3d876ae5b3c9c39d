package engine

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startOps runs an engine on policy (written to dir/policy.yaml) with the options
// adjusted by tune, and returns it once its listeners are bound. The engine is stopped
// (and Run's result checked) when the test ends.
func startOps(t *testing.T, dir, policy string, tune func(*Options)) *Engine {
	t.Helper()
	e, cancel, done := launch(t, dir, policy, tune)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return e
}

// launch starts Run and waits until the engine is ready; the caller stops it.
func launch(t *testing.T, dir, policy string, tune func(*Options)) (*Engine, context.CancelFunc, <-chan error) {
	t.Helper()
	p := filepath.Join(dir, "policy.yaml")
	writeFile(t, p, policy)
	opts := Options{PolicyPath: p, Logger: slog.New(slog.DiscardHandler), AccessLog: io.Discard, DrainTimeout: 5 * time.Second}
	if tune != nil {
		tune(&opts)
	}
	e, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for e.ready() != nil {
		select {
		case err := <-done:
			t.Fatalf("Run ended early: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("engine not ready")
		}
	}
	return e, cancel, done
}

// addr returns the first bound address of kind as host:port.
func addr(t *testing.T, e *Engine, kind string) string {
	t.Helper()
	a := e.Addrs()[kind]
	if len(a) == 0 {
		t.Fatalf("no %s listener (have %v)", kind, e.Addrs())
	}
	return a[0].String()
}

// tlsOrigin is an HTTPS origin on loopback and a pool trusting its certificate.
func tlsOrigin(t *testing.T, body string) (*httptest.Server, *x509.CertPool) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	return srv, roots
}

// do sends req with c and returns the status and body; err for a transport failure.
func do(c *http.Client, req *http.Request) (int, string, error) {
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func mustReq(t *testing.T, method, u, host string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	return req
}

// reloadPolicy is one of the two policies the zero-drop test alternates: they differ
// in the list file (a.txt names alpha.test, b.txt beta.test) and in a path rule.
func reloadPolicy(v, poolA, poolB string, tlsPort string) string {
	return fmt.Sprintf(`
forward: {listen: ["127.0.0.1:0"], connect_ports: [%s]}
reverse:
  listen: ["127.0.0.1:0"]
  routes: [{name: app, host: [app.test, alpha.test, beta.test], pool: app}]
pools:
  app: {policy: round_robin, members: [{url: %q}, {url: %q}]}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
lists: {bad: {format: domains, path: %s.txt}}
rules:
  - {name: bad-list-%s, list: [bad], action: block}
  - {name: no-admin-%s, path: ["/admin-%s/**"], action: block}
`, tlsPort, poolA, poolB, v, v, v, v)
}

// TestZeroDropReloads reloads the policy 20 times, alternating two policies, while 9
// clients send requests without pause through the forward door (plain HTTP and CONNECT
// tunnels to a TLS origin, with and without keep-alive) and the reverse door (a pool
// of two origins). No request may fail, every answer must be one of the two policies'
// answers, and after each reload the new policy's verdicts apply.
func TestZeroDropReloads(t *testing.T) {
	plain := newOrigin(t, "plain", nil)
	a := newOrigin(t, "a", nil)
	b := newOrigin(t, "b", nil)
	secure, roots := tlsOrigin(t, "tls ok")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.txt"), "alpha.test\n")
	writeFile(t, filepath.Join(dir, "b.txt"), "beta.test\n")
	tlsPort := secure.URL[strings.LastIndexByte(secure.URL, ':')+1:]
	policies := map[string]string{"a": reloadPolicy("a", a.URL, b.URL, tlsPort), "b": reloadPolicy("b", a.URL, b.URL, tlsPort)}
	e := startOps(t, dir, policies["a"], nil)
	fwd := &url.URL{Scheme: "http", Host: addr(t, e, "forward")}
	rev := "http://" + addr(t, e, "reverse")

	var (
		mu       sync.Mutex
		failures []string
		done     atomic.Int64
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, fmt.Sprintf(format, args...))
	}
	progress := make(chan struct{}, 1)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	worker := func(name string, c *http.Client, step func(c *http.Client, i int) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.CloseIdleConnections()
			for i := 0; ctx.Err() == nil; i++ {
				if err := step(c, i); err != nil {
					fail("%s request %d: %v", name, i, err)
				}
				done.Add(1)
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		}()
	}
	// expect checks one answer: ok (status 200 and body prefix) or, when blocked is
	// not empty, a 403 naming the rule.
	expect := func(code int, body string, err error, okPrefix, blockedRule string) error {
		switch {
		case err != nil:
			return err
		case code == 200 && strings.HasPrefix(body, okPrefix):
			return nil
		case blockedRule != "" && code == 403 && strings.Contains(body, blockedRule):
			return nil
		}
		return fmt.Errorf("status %d body %.80q", code, body)
	}
	for n := range 3 { // forward, plain HTTP
		tr := &http.Transport{Proxy: http.ProxyURL(fwd), DisableKeepAlives: n == 0}
		worker(fmt.Sprintf("forward-http-%d", n), &http.Client{Transport: tr, Timeout: 5 * time.Second}, func(c *http.Client, i int) error {
			if i%2 == 0 {
				code, body, err := do(c, mustReq(t, "GET", plain.URL+"/ok", ""))
				return expect(code, body, err, "from plain", "")
			}
			code, body, err := do(c, mustReq(t, "GET", plain.URL+"/admin-a/x", ""))
			return expect(code, body, err, "from plain", "no-admin-a")
		})
	}
	for n := range 3 { // forward, CONNECT tunnels
		tr := &http.Transport{Proxy: http.ProxyURL(fwd), DisableKeepAlives: n != 0, TLSClientConfig: &tls.Config{RootCAs: roots}}
		worker(fmt.Sprintf("forward-connect-%d", n), &http.Client{Transport: tr, Timeout: 5 * time.Second}, func(c *http.Client, i int) error {
			code, body, err := do(c, mustReq(t, "GET", secure.URL+"/ok", ""))
			return expect(code, body, err, "tls ok", "")
		})
	}
	for n := range 3 { // reverse door
		tr := &http.Transport{DisableKeepAlives: n == 0}
		worker(fmt.Sprintf("reverse-%d", n), &http.Client{Transport: tr, Timeout: 5 * time.Second}, func(c *http.Client, i int) error {
			if i%2 == 0 {
				code, body, err := do(c, mustReq(t, "GET", rev+"/", "app.test"))
				return expect(code, body, err, "from ", "")
			}
			code, body, err := do(c, mustReq(t, "GET", rev+"/", "alpha.test"))
			return expect(code, body, err, "from ", "bad-list-a")
		})
	}
	waitProgress := func(n int) {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for range n {
			select {
			case <-progress:
			case <-timeout:
				t.Fatalf("clients made no progress (%d done)", done.Load())
			}
		}
	}
	// check asserts the verdicts of policy v from a fresh client.
	fresh := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(fwd), DisableKeepAlives: true}, Timeout: 5 * time.Second}
	direct := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	check := func(v string) {
		t.Helper()
		other := map[string]string{"a": "b", "b": "a"}[v]
		host := map[string]string{"a": "alpha.test", "b": "beta.test"}
		if code, body, err := do(fresh, mustReq(t, "GET", plain.URL+"/admin-"+v+"/x", "")); err != nil || code != 403 || !strings.Contains(body, "no-admin-"+v) {
			t.Fatalf("policy %s: /admin-%s/x = %d %.60q %v, want 403 by no-admin-%s", v, v, code, body, err, v)
		}
		if code, _, err := do(fresh, mustReq(t, "GET", plain.URL+"/admin-"+other+"/x", "")); err != nil || code != 200 {
			t.Fatalf("policy %s: /admin-%s/x = %d %v, want 200", v, other, code, err)
		}
		if code, _, err := do(direct, mustReq(t, "GET", rev+"/", host[v])); err != nil || code != 403 {
			t.Fatalf("policy %s: reverse %s = %d %v, want 403", v, host[v], code, err)
		}
		if code, _, err := do(direct, mustReq(t, "GET", rev+"/", host[other])); err != nil || code != 200 {
			t.Fatalf("policy %s: reverse %s = %d %v, want 200", v, host[other], code, err)
		}
	}
	// One tunnel and one keep-alive proxy connection held open across every reload
	// (raw, so that no client library can quietly redial).
	tunnel := openTunnel(t, fwd.Host, secure, roots)
	held := newRawConn(t, fwd.Host)
	onHeld := func(i int) {
		t.Helper()
		if body := tunnel.get(t, "/held"); body != "tls ok" {
			t.Fatalf("held tunnel after reload %d: %q", i, body)
		}
		if body := held.get(t, plain.URL+"/held"); body != "from plain" {
			t.Fatalf("held proxy connection after reload %d: %q", i, body)
		}
	}
	policyPath := filepath.Join(dir, "policy.yaml")
	start := time.Now()
	check("a")
	onHeld(0)
	for i := range 20 {
		waitProgress(9)
		v := []string{"b", "a"}[i%2]
		writeFile(t, policyPath, policies[v])
		if err := e.Reload(); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		if e.Version() != i+2 {
			t.Fatalf("version %d after reload %d", e.Version(), i)
		}
		check(v)
		onHeld(i + 1)
	}
	waitProgress(9)
	stop()
	wg.Wait()
	took := time.Since(start)
	if len(failures) > 0 {
		t.Fatalf("%d failed requests of %d; first: %s", len(failures), done.Load(), strings.Join(failures[:min(5, len(failures))], "; "))
	}
	if a.hits.Load() == 0 || b.hits.Load() == 0 {
		t.Fatalf("pool members unused: a=%d b=%d", a.hits.Load(), b.hits.Load())
	}
	t.Logf("%d requests, 0 failed, 20 reloads in %v", done.Load(), took.Round(time.Millisecond))
}

// rawConn is one HTTP/1.1 connection used request after request.
type rawConn struct {
	c  net.Conn
	br *bufio.Reader
}

func newRawConn(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{c: c, br: bufio.NewReader(c)}
}

// get sends GET target (an absolute URL through a proxy, or a path) on the
// connection and returns the body of a 200 answer.
func (rc *rawConn) get(t *testing.T, target string) string {
	t.Helper()
	host := "origin.test"
	if u, err := url.Parse(target); err == nil && u.Host != "" {
		host = u.Host
	}
	rc.c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(rc.c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, host)
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		t.Fatalf("GET %s on a held connection: %v", target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s on a held connection: %d %v", target, resp.StatusCode, err)
	}
	return string(b)
}

// openTunnel opens a CONNECT tunnel through the proxy at proxyAddr to origin and
// speaks TLS to it inside.
func openTunnel(t *testing.T, proxyAddr string, origin *httptest.Server, roots *x509.CertPool) *rawConn {
	t.Helper()
	rc := newRawConn(t, proxyAddr)
	target := strings.TrimPrefix(origin.URL, "https://")
	fmt.Fprintf(rc.c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	resp, err := http.ReadResponse(rc.br, &http.Request{Method: "CONNECT"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT %s: %v %v", target, resp, err)
	}
	if rc.br.Buffered() > 0 {
		t.Fatal("bytes after the CONNECT answer")
	}
	tc := tls.Client(rc.c, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS in the tunnel: %v", err)
	}
	return &rawConn{c: tc, br: bufio.NewReader(tc)}
}

// TestReloadRebindsOnlyChangedListener moves the forward listener to another address:
// the new one serves, a request in flight on the old one completes, the old one then
// refuses connections, and a keep-alive connection on the reverse listener (whose
// address did not change) keeps working across the reload.
func TestReloadRebindsOnlyChangedListener(t *testing.T) {
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	slow := newOrigin(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			<-release
		}
		io.WriteString(w, "done "+r.URL.Path)
	})
	dir := t.TempDir()
	policy := func(fwdAddr string) string {
		return fmt.Sprintf(`
forward: {listen: [%q]}
reverse:
  listen: ["127.0.0.1:0"]
  routes: [{name: app, host: [app.test], pool: app}]
pools: {app: {members: [{url: %q}]}}
resolver: {egress: {allow: ["127.0.0.0/8", "::1/128"]}}
admin: {listen: "127.0.0.1:0"}
`, fwdAddr, slow.URL)
	}
	e := startOps(t, dir, policy("127.0.0.1:0"), nil)
	oldFwd := addr(t, e, "forward")
	revAddr := addr(t, e, "reverse")
	adminAddr := addr(t, e, "admin")

	// A keep-alive connection on the reverse listener.
	rc, err := net.Dial("tcp", revAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	rbuf := bufio.NewReader(rc)
	rawGet := func(path string) {
		t.Helper()
		fmt.Fprintf(rc, "GET %s HTTP/1.1\r\nHost: app.test\r\n\r\n", path)
		resp, err := http.ReadResponse(rbuf, nil)
		if err != nil {
			t.Fatalf("reverse keep-alive connection: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "done "+path {
			t.Fatalf("reverse %s: %d %q", path, resp.StatusCode, body)
		}
	}
	rawGet("/before")

	// A request in flight on the old forward listener.
	oldClient := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: oldFwd})}}
	type result struct {
		code int
		body string
		err  error
	}
	inflight := make(chan result, 1)
	go func() {
		code, body, err := do(oldClient, mustReq(t, "GET", slow.URL+"/slow", ""))
		inflight <- result{code, body, err}
	}()
	<-arrived

	writeFile(t, filepath.Join(dir, "policy.yaml"), policy("[::1]:0"))
	if err := e.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	newFwd := addr(t, e, "forward")
	if len(e.Addrs()["forward"]) != 1 || !strings.HasPrefix(newFwd, "[::1]:") {
		t.Fatalf("forward listeners after reload: %v", e.Addrs()["forward"])
	}
	if got := addr(t, e, "reverse"); got != revAddr {
		t.Fatalf("reverse listener moved: %s → %s", revAddr, got)
	}
	if got := addr(t, e, "admin"); got != adminAddr {
		t.Fatalf("admin listener moved: %s → %s", adminAddr, got)
	}
	newClient := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: newFwd})}, Timeout: 5 * time.Second}
	if code, body, err := do(newClient, mustReq(t, "GET", slow.URL+"/new", "")); err != nil || code != 200 || body != "done /new" {
		t.Fatalf("new forward listener: %d %q %v", code, body, err)
	}
	rawGet("/after") // the same connection, across the reload

	close(release)
	r := <-inflight
	if r.err != nil || r.code != 200 || r.body != "done /slow" {
		t.Fatalf("request in flight on the old listener: %d %q %v", r.code, r.body, r.err)
	}
	// The old listener is shut down in the background once drained: wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", oldFwd, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("old forward address %s still accepts connections", oldFwd)
		}
		time.Sleep(10 * time.Millisecond)
	}
	rawGet("/later")
	if resp, err := http.Get("http://" + adminAddr + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("admin after reload: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// TestReloadWhileDrainingBindsNothing: a reload (SIGHUP, or the file watcher) that
// arrives while Run drains swaps the policy but must not bind listeners again, since
// nobody would close them; /readyz fails from the start of the drain.
func TestReloadWhileDrainingBindsNothing(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	slow := newOrigin(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "done")
	})
	e, cancel, done := launch(t, t.TempDir(), "forward: {listen: [\"127.0.0.1:0\"]}\nresolver: {egress: {allow: [\"127.0.0.0/8\"]}}\n", nil)
	defer cancel()
	deadline := time.Now().Add(5 * time.Second)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: addr(t, e, "forward")})}}
	inflight := make(chan error, 1)
	go func() {
		code, body, err := do(client, mustReq(t, "GET", slow.URL+"/slow", ""))
		if err == nil && (code != 200 || body != "done") {
			err = fmt.Errorf("%d %q", code, body)
		}
		inflight <- err
	}()
	<-arrived
	cancel() // Run starts draining; the request above holds it
	for e.ready() == nil {
		if time.Now().After(deadline) {
			t.Fatal("still ready while draining")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := e.Reload(); err != nil {
		t.Fatalf("Reload while draining: %v", err)
	}
	if got := e.Addrs(); len(got) != 0 {
		t.Fatalf("listeners bound while draining: %v", got)
	}
	close(release)
	if err := <-inflight; err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDrainTimeoutClosesTunnels: a tunnel still open when Options.DrainTimeout passes
// is closed and Run returns; one request on it before the drain still works.
func TestDrainTimeoutClosesTunnels(t *testing.T) {
	secure, roots := tlsOrigin(t, "tls ok")
	port := secure.URL[strings.LastIndexByte(secure.URL, ':')+1:]
	e, cancel, done := launch(t, t.TempDir(), "forward: {listen: [\"127.0.0.1:0\"], connect_ports: ["+port+"]}\nresolver: {egress: {allow: [\"127.0.0.0/8\"]}}\n",
		func(o *Options) { o.DrainTimeout = 300 * time.Millisecond })
	defer cancel()
	tunnel := openTunnel(t, addr(t, e, "forward"), secure, roots)
	if body := tunnel.get(t, "/"); body != "tls ok" {
		t.Fatalf("tunnel: %q", body)
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the drain timeout")
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Fatalf("Run returned after %v, before the drain timeout", took)
	}
	tunnel.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := tunnel.br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the tunnel is still open after the drain: %v", err)
	}
}
