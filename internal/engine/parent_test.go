package engine

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
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
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/certs"
)

// testParent is a small forward proxy on loopback standing in for a regional
// filtering proxy: it records what it was asked, demands Proxy-Authorization
// when auth is set, relays absolute-form requests and CONNECT tunnels, and marks
// its answers to plain requests with X-Parent.
type testParent struct {
	name string
	auth string // expected Proxy-Authorization ("" = none required)
	srv  *httptest.Server

	mu   sync.Mutex
	seen []string // "METHOD target auth-ok"
}

func newTestParent(t *testing.T, name, auth string) *testParent {
	t.Helper()
	p := &testParent{name: name, auth: auth}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *testParent) URL() string { return p.srv.URL }

func (p *testParent) record(r *http.Request, ok bool) {
	target := r.URL.String()
	if r.Method == http.MethodConnect {
		target = r.Host
	}
	p.mu.Lock()
	p.seen = append(p.seen, fmt.Sprintf("%s %s auth=%v", r.Method, target, ok))
	p.mu.Unlock()
}

func (p *testParent) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

func (p *testParent) serve(w http.ResponseWriter, r *http.Request) {
	ok := p.auth == "" || r.Header.Get("Proxy-Authorization") == p.auth
	p.record(r, ok)
	if !ok {
		w.Header().Set("Proxy-Authenticate", `Basic realm="regional"`)
		w.WriteHeader(http.StatusProxyAuthRequired)
		return
	}
	if r.Method == http.MethodConnect {
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer up.Close()
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = io.Copy(up, brw)
			if tc, ok := up.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
		}()
		_, _ = io.Copy(c, up)
		c.Close()
		<-done
		return
	}
	if !r.URL.IsAbs() {
		http.Error(w, "not a proxy request", http.StatusBadRequest)
		return
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp, err := (&http.Transport{Proxy: nil}).RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.Header().Set("X-Parent", p.name)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// kill stops the parent: its listener and every connection to it close.
func (p *testParent) kill() {
	p.srv.Listener.Close()
	p.srv.CloseClientConnections()
}

// TestForwardThroughParentProxies sends plain HTTP and CONNECT tunnels through
// the forward door to a pool of two parent proxies that demand credentials:
// both go to the first parent with Proxy-Authorization from the credentials
// file; once it is killed, every later request (the first included) is served
// through the second, the client seeing no error; the password never appears in
// the access log or the operational log.
func TestForwardThroughParentProxies(t *testing.T) {
	const user, pass = "school-42", "s3cret-Pa55"
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	p1 := newTestParent(t, "p1", auth)
	p2 := newTestParent(t, "p2", auth)

	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "plain origin "+r.URL.Path)
	}))
	defer origin.Close()
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secure origin "+r.URL.Path)
	}))
	defer secure.Close()
	_, securePort, _ := net.SplitHostPort(secure.Listener.Addr().String())
	_, plainPort, _ := net.SplitHostPort(origin.Listener.Addr().String())

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "parent.pass"), user+":"+pass+"\n")
	// The egress allowance names the origins' ports only: the destinations,
	// IP literals, are checked by the guard; the parents, on other loopback
	// ports, are dialled without it.
	policy := fmt.Sprintf(`
forward:
  listen: ["127.0.0.1:0"]
  connect_ports: [443, %[1]s]
resolver: {egress: {allow: ["127.0.0.1/32:%[1]s,%[2]s"]}}
pools:
  regional:
    parent: true
    credentials_file: parent.pass
    policy: first
    health: {tcp: true, interval: 1h}
    passive: {max_fails: 1, cooldown: 1h}
    members:
      - url: %[3]s
      - url: %[4]s
rules:
  - {name: via-regional, pool: regional, action: allow}
`, securePort, plainPort, p1.URL(), p2.URL())
	proxyURL, accessLog, opsLog := startParentEngine(t, dir, policy)
	roots := secure.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: roots}, DisableKeepAlives: true,
	}}
	get := func(u, want string) {
		t.Helper()
		resp, err := client.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != want {
			t.Fatalf("GET %s: %d %q, want 200 %q", u, resp.StatusCode, b, want)
		}
	}

	get(origin.URL+"/a", "plain origin /a")
	get(secure.URL+"/b", "secure origin /b")
	want1 := []string{"GET " + origin.URL + "/a auth=true", "CONNECT " + secure.Listener.Addr().String() + " auth=true"}
	if got := p1.requests(); strings.Join(got, "\n") != strings.Join(want1, "\n") {
		t.Fatalf("first parent saw %q, want %q", got, want1)
	}
	if got := p2.requests(); len(got) != 0 {
		t.Fatalf("second parent saw %q before the first failed", got)
	}

	p1.kill()
	for i := range 6 {
		if i%2 == 0 {
			get(fmt.Sprintf("%s/c%d", origin.URL, i), fmt.Sprintf("plain origin /c%d", i))
		} else {
			get(fmt.Sprintf("%s/c%d", secure.URL, i), fmt.Sprintf("secure origin /c%d", i))
		}
	}
	got2 := p2.requests()
	if len(got2) != 6 {
		t.Fatalf("second parent saw %d requests, want 6: %q", len(got2), got2)
	}
	for _, s := range got2 {
		if !strings.HasSuffix(s, "auth=true") {
			t.Errorf("second parent: %s", s)
		}
	}
	if n := len(p1.requests()); n != 2 {
		t.Errorf("first parent saw %d requests, want only the 2 before it was killed", n)
	}

	// The access log names the parent that served (for the admin), never the credentials.
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(accessLog.String(), "\n") < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("access log has %d lines, want 8:\n%s", strings.Count(accessLog.String(), "\n"), accessLog.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	logs := accessLog.String() + opsLog.String()
	for _, secret := range []string{pass, base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the logs contain the parent's credentials (%q):\n%s", secret, logs)
		}
	}
	if !strings.Contains(accessLog.String(), strings.TrimPrefix(p2.URL(), "http://")) {
		t.Errorf("access log does not name the second parent:\n%s", accessLog.String())
	}
}

// startParentEngine runs an engine on policy (written in dir) and returns its
// forward door's URL, access log and operational log.
func startParentEngine(t *testing.T, dir, policy string) (proxyURL *url.URL, accessLog, opsLog *lockedBuffer) {
	t.Helper()
	pf := filepath.Join(dir, "policy.yaml")
	writeFile(t, pf, policy)
	accessLog, opsLog = &lockedBuffer{}, &lockedBuffer{}
	e, err := New(Options{PolicyPath: pf, Logger: slog.New(slog.NewTextHandler(opsLog, nil)), AccessLog: accessLog, DrainTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for e.ready() != nil {
		if time.Now().After(deadline) {
			t.Fatal("engine not ready")
		}
		time.Sleep(5 * time.Millisecond) // polling readiness with a deadline
	}
	return mustURL("http://" + e.Addrs()["forward"][0].String()), accessLog, opsLog
}

// TestParentDoesNotBypassEgressGuard: a destination written as an internal IP
// literal is refused by the egress guard (403) before anything is sent to the
// parent, for plain HTTP and CONNECT alike.
func TestParentDoesNotBypassEgressGuard(t *testing.T) {
	p1 := newTestParent(t, "p1", "")
	dir := t.TempDir()
	proxyURL, _, _ := startParentEngine(t, dir, fmt.Sprintf(`
forward: {listen: ["127.0.0.1:0"], connect_ports: [443, 22]}
pools:
  regional: {parent: true, members: [{url: %s}]}
rules:
  - {name: via-regional, pool: regional, action: allow}
`, p1.URL()))
	resp, err := (&http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}).Get("http://10.1.2.3/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET http://10.1.2.3/: %d, want 403", resp.StatusCode)
	}
	c, err := net.Dial("tcp", proxyURL.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n")
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	cresp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	if cresp.StatusCode != http.StatusForbidden {
		t.Errorf("CONNECT 127.0.0.1:22: %d, want 403", cresp.StatusCode)
	}
	if got := p1.requests(); len(got) != 0 {
		t.Fatalf("the parent was asked %q", got)
	}
}

// TestParentPoolPolicyErrors: misused parent pools are reported at the field,
// FILE:LINE:COL.
func TestParentPoolPolicyErrors(t *testing.T) {
	for _, tc := range []struct{ name, policy, want string }{
		{"https member", `
forward: {listen: ["127.0.0.1:0"]}
pools:
  up:
    parent: true
    members:
      - url: https://proxy.example:3128
`, ":7:14: pools.up.members[0].url: a parent proxy is http://host:port"},
		{"member without port", `
forward: {listen: ["127.0.0.1:0"]}
pools:
  up:
    parent: true
    members: [{url: "http://proxy.example"}]
`, ":6:21: pools.up.members[0].url: a parent proxy is http://host:port"},
		{"unknown pool", `
forward: {listen: ["127.0.0.1:0"]}
pools:
  up: {parent: true, members: [{url: "http://127.0.0.1:3128"}]}
rules:
  - {name: r, pool: upstream, action: allow}
`, ":6:21: rules[0].pool: unknown pool \"upstream\" (defined: up)"},
		{"forward rule naming an origin pool", `
forward: {listen: ["127.0.0.1:0"]}
pools:
  web: {members: [{url: "http://127.0.0.1:8080"}]}
rules:
  - {name: r, door: [forward], pool: web, action: allow}
`, "rules[0].pool: pool \"web\" is not a parent proxy pool"},
		{"credentials without parent", `
forward: {listen: ["127.0.0.1:0"]}
pools:
  web: {credentials_file: x, members: [{url: "http://127.0.0.1:8080"}]}
`, ":4:27: pools.web.credentials_file: only parent proxies"},
		{"missing credentials file", `
forward: {listen: ["127.0.0.1:0"]}
pools:
  up: {parent: true, credentials_file: nope.pass, members: [{url: "http://127.0.0.1:3128"}]}
`, ":4:40: pools.up.credentials_file: cannot read"},
		{"reverse rule naming a parent pool", `
reverse: {listen: ["127.0.0.1:0"], routes: [{name: app, pool: web}]}
pools:
  up: {parent: true, members: [{url: "http://127.0.0.1:3128"}]}
  web: {members: [{url: "http://127.0.0.1:8080"}]}
rules:
  - {name: r, door: [reverse], pool: up, action: allow}
`, ":7:38: rules[0].pool: pool \"up\" is a parent proxy pool"},
		{"route naming a parent pool", `
reverse: {listen: ["127.0.0.1:0"], routes: [{name: app, pool: up}]}
pools:
  up: {parent: true, members: [{url: "http://127.0.0.1:3128"}]}
`, "reverse.routes[0].pool: pool \"up\" is a parent proxy pool"},
		{"health GET on a parent", `
forward: {listen: ["127.0.0.1:0"]}
pools:
  up: {parent: true, health: {path: /}, members: [{url: "http://127.0.0.1:3128"}]}
`, "pools.up.health.path: parent proxies are checked with health.tcp: true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pf := filepath.Join(dir, "policy.yaml")
			writeFile(t, pf, tc.policy)
			_, err := New(Options{PolicyPath: pf, Logger: slog.New(slog.DiscardHandler), AccessLog: io.Discard})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), pf+":") {
				t.Fatalf("err = %v, want it to name %s", err, pf)
			}
		})
	}
}

// TestParentCredentialsFileErrorHidesContent: a malformed credentials file is
// reported without quoting what is in it.
func TestParentCredentialsFileErrorHidesContent(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bad.pass"), "onlyasecretnocolon\n")
	pf := filepath.Join(dir, "policy.yaml")
	writeFile(t, pf, `
forward: {listen: ["127.0.0.1:0"]}
pools:
  up: {parent: true, credentials_file: bad.pass, members: [{url: "http://127.0.0.1:3128"}]}
`)
	_, err := New(Options{PolicyPath: pf, Logger: slog.New(slog.DiscardHandler), AccessLog: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "pools.up.credentials_file:") || !strings.Contains(err.Error(), "want user:password") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "onlyasecret") {
		t.Fatalf("the error quotes the file's content: %v", err)
	}
	_ = os.Remove(filepath.Join(dir, "bad.pass"))
}

// TestReverseIgnoresParentPoolInVerdict: a rule for every door naming a parent
// pool sends forward requests to the parent, while the reverse door keeps
// sending its requests to the route's own pool.
func TestReverseIgnoresParentPoolInVerdict(t *testing.T) {
	p1 := newTestParent(t, "p1", "")
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "origin")
	}))
	defer origin.Close()
	e := runEngine(t, fmt.Sprintf(`
reverse: {listen: ["127.0.0.1:0"], routes: [{name: app, pool: web}]}
pools:
  regional: {parent: true, members: [{url: %s}]}
  web: {members: [{url: %s}]}
rules:
  - {name: via-regional, pool: regional, action: allow}
`, p1.URL(), origin.URL))
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get("http://" + e.Addrs()["reverse"][0].String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "origin" {
		t.Fatalf("reverse door: %d %q, want the route's origin", resp.StatusCode, b)
	}
	if got := p1.requests(); len(got) != 0 {
		t.Fatalf("the parent was asked %q by the reverse door", got)
	}
}

// TestInspectedHTTPSThroughParent: requests inside an inspected tunnel whose
// verdict names a parent pool reach the origin through a CONNECT to the parent
// (with the credentials), and the origin's certificate is verified with the
// pool's tls.ca_file.
func TestInspectedHTTPSThroughParent(t *testing.T) {
	const user, pass = "school-42", "pw"
	p1 := newTestParent(t, "p1", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "origin page "+r.URL.Path)
	}))
	defer origin.Close()
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	ca, err := certs.CreateCA(certPath, keyPath, certs.InspectionCAName)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "origin.pem"), string(pemCert(origin.Certificate())))
	writeFile(t, filepath.Join(dir, "parent.pass"), user+":"+pass)
	_, port, _ := net.SplitHostPort(origin.Listener.Addr().String())
	proxyURL, _, _ := startParentEngine(t, dir, fmt.Sprintf(`
forward:
  listen: ["127.0.0.1:0"]
  connect_ports: [%[1]s]
  ca_cert: ca.pem
  ca_key: ca.key
resolver: {egress: {allow: ["127.0.0.1/32:%[1]s"]}}
pools:
  regional:
    parent: true
    credentials_file: parent.pass
    tls: {ca_file: %[3]s}
    members: [{url: %[2]s}]
rules:
  - {name: look-inside, pool: regional, action: inspect}
`, port, p1.URL(), filepath.Join(dir, "origin.pem")))
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := client.Get(origin.URL + "/inside")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "origin page /inside" {
		t.Fatalf("inspected GET: %d %q", resp.StatusCode, b)
	}
	want := "CONNECT " + origin.Listener.Addr().String() + " auth=true"
	if got := p1.requests(); len(got) != 1 || got[0] != want {
		t.Fatalf("parent saw %q, want [%q]", got, want)
	}
}
