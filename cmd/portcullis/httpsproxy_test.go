package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/net/http2"
)

// The forward door over TLS (forward.tls_listen): an HTTPS proxy, driven
// through the real binary with curl, Go's HTTP/2 client and Chromium.

// httpsProxyWorld is a plain HTTP origin, an HTTPS origin (its certificate in
// originPEM) and a directory for the policy, its htpasswd file (alice,
// "alice-pw") and the state directory (XDG_STATE_HOME) of the internal CA.
type httpsProxyWorld struct {
	dir        string
	plain      *httptest.Server // answers "plain origin: PATH"
	secure     *httptest.Server // answers "secure origin: PATH"; /big is 1 MiB
	originPEM  string           // the HTTPS origin's certificate, for curl --cacert
	originPort string
}

const bigBody = 1 << 20

func newHTTPSProxyWorld(t *testing.T) *httpsProxyWorld {
	t.Helper()
	w := &httpsProxyWorld{dir: t.TempDir()}
	w.plain = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, "plain origin: %s", r.URL.Path)
	}))
	t.Cleanup(w.plain.Close)
	w.secure = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			_, _ = rw.Write(bytes.Repeat([]byte("x"), bigBody))
			return
		}
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(rw, "<!DOCTYPE html><title>secure</title><p id=msg>secure origin: %s</p>", r.URL.Path)
	}))
	w.secure.EnableHTTP2 = true
	w.secure.StartTLS()
	t.Cleanup(w.secure.Close)
	_, w.originPort, _ = net.SplitHostPort(w.secure.Listener.Addr().String())
	w.originPEM = filepath.Join(w.dir, "origin.pem")
	writePEM(t, w.originPEM, "CERTIFICATE", w.secure.Certificate().Raw)
	h, err := bcrypt.GenerateFromPassword([]byte("alice-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	w.write(t, "htpasswd", "alice:"+string(h)+"\n")
	t.Setenv("XDG_STATE_HOME", filepath.Join(w.dir, "state")) // the binary's internal CA
	return w
}

func (w *httpsProxyWorld) write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(w.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// roots is a pool of the certificates in the PEM file at path.
func (w *httpsProxyWorld) roots(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(path)
	pool := x509.NewCertPool()
	if err != nil || !pool.AppendCertsFromPEM(b) {
		t.Fatalf("no certificate in %s: %v", path, err)
	}
	return pool
}

// internalCA is where the binary keeps the internal CA's certificate.
func (w *httpsProxyWorld) internalCA() string {
	return filepath.Join(w.dir, "state", "portcullis", "reverse-ca.crt")
}

// logLine waits (20 s at most) for a line of the access log holding s.
func (w *httpsProxyWorld) logLine(t *testing.T, s string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(w.dir, "access.log"))
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.Contains(line, s) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access log line holds %s; the log:\n%s", s, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

var tlsListenRE = regexp.MustCompile(`forward-tls=(\S+)`)
var reverseTLSListenRE = regexp.MustCompile(`reverse-tls=(\S+)`)

// run starts the binary on policy and returns it with its TLS door's address.
func (w *httpsProxyWorld) run(t *testing.T, policy string) (*proc, string) {
	t.Helper()
	p, running := spawn(t, "run", "--config", w.write(t, "policy.yaml", policy))
	m := tlsListenRE.FindStringSubmatch(running)
	if m == nil {
		t.Fatalf("no forward-tls listener in %q", running)
	}
	return p, strings.Trim(m[1], `"`)
}

func needCurl(t *testing.T) string {
	t.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is required in CI")
		}
		t.Skip("curl not installed")
	}
	return curl
}

// curlResult is what curl reports of one transfer.
type curlResult struct {
	code    string // %{http_code}: the last response's status ("000" for none)
	connect string // %{http_connect}: the status of the CONNECT, "000" when none
	headers string // every response head (-D -), CONNECT's included
	body    string
}

func runCurl(t *testing.T, curl string, args ...string) curlResult {
	t.Helper()
	dir := t.TempDir()
	hdr, body := filepath.Join(dir, "h"), filepath.Join(dir, "b")
	args = append([]string{"-s", "--max-time", "30", "-D", hdr, "-o", body, "-w", "%{http_code} %{http_connect}"}, args...)
	out, err := exec.Command(curl, args...).Output()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	h, _ := os.ReadFile(hdr)
	b, _ := os.ReadFile(body)
	code, connect, _ := strings.Cut(string(out), " ")
	return curlResult{code: code, connect: connect, headers: string(h), body: string(b)}
}

// signInPolicy is the TLS door with sign-in and the internal CA.
func (w *httpsProxyWorld) signInPolicy(extra string) string {
	return `forward:
  listen: ["127.0.0.1:0"]
  tls_listen: ["127.0.0.1:0"]
  tls: {mode: internal}
  connect_ports: [` + w.originPort + `]
  auth: {htpasswd_file: htpasswd}
` + extra + `resolver: {egress: {allow: ["127.0.0.0/8"]}}
admin: {listen: "off", log: {path: access.log}}
`
}

// TestHTTPSProxyCurl: curl --proxy https://… with the internal CA as
// --proxy-cacert: a plain-HTTP request and a CONNECT to an HTTPS origin are
// asked to sign in (407 with Proxy-Authenticate) without credentials and
// served with them; the access log shows the door, the user and the TLS mark.
func TestHTTPSProxyCurl(t *testing.T) {
	curl := needCurl(t)
	w := newHTTPSProxyWorld(t)
	_, door := w.run(t, w.signInPolicy(""))
	proxy := []string{"--proxy", "https://" + door, "--proxy-cacert", w.internalCA()}

	r := runCurl(t, curl, append(proxy, w.plain.URL+"/a")...)
	if r.code != "407" || !strings.Contains(r.headers, "Proxy-Authenticate: Basic") {
		t.Fatalf("plain HTTP without credentials: %+v", r)
	}
	r = runCurl(t, curl, append(proxy, "--proxy-user", "alice:alice-pw", w.plain.URL+"/a")...)
	if r.code != "200" || r.body != "plain origin: /a" {
		t.Fatalf("plain HTTP signed in: %+v", r)
	}
	secure := "https://127.0.0.1:" + w.originPort + "/b"
	r = runCurl(t, curl, append(proxy, "--cacert", w.originPEM, secure)...)
	if r.connect != "407" || !strings.Contains(r.headers, "Proxy-Authenticate: Basic") || strings.Contains(r.body, "secure origin") {
		t.Fatalf("CONNECT without credentials: %+v", r)
	}
	r = runCurl(t, curl, append(proxy, "--proxy-user", "alice:alice-pw", "--cacert", w.originPEM, secure)...)
	if r.connect != "200" || r.code != "200" || !strings.Contains(r.body, "secure origin: /b") {
		t.Fatalf("CONNECT signed in: %+v", r)
	}
	for _, want := range []string{`"method":"GET","url":"` + w.plain.URL + `/a"`, `"method":"CONNECT","url":"127.0.0.1:` + w.originPort + `"`} {
		line := w.logLine(t, want+`,"action":"allow"`)
		for _, field := range []string{`"door":"forward"`, `"user":"alice"`, `"tls":true`, `"status":200`, `"proto":"HTTP/1.1"`} {
			if !strings.Contains(line, field) {
				t.Errorf("access log line lacks %s: %s", field, line)
			}
		}
	}
}

// proxyCert writes a certificate for 127.0.0.1 (and its key) for tls.certs,
// and returns the pool that trusts it.
func (w *httpsProxyWorld) proxyCert(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	return w.proxyCertNamed(t, "proxy")
}

// proxyCertNamed is proxyCert writing name.pem and name.key.
func (w *httpsProxyWorld) proxyCertNamed(t *testing.T, name string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "proxy.test"},
		DNSNames: []string{"proxy.test"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(w.dir, name+".pem"), filepath.Join(w.dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	leaf, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(leaf)
	return certFile, keyFile, roots
}

// h2Proxy is one HTTP/2 connection to the TLS door.
func h2Proxy(t *testing.T, door string, roots *x509.CertPool) *http2.ClientConn {
	t.Helper()
	c, err := tls.Dial("tcp", door, &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ConnectionState().NegotiatedProtocol; got != "h2" {
		t.Fatalf("ALPN chose %q, want h2", got)
	}
	cc, err := (&http2.Transport{}).NewClientConn(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// streamTunnel is a CONNECT stream seen from the client: the response body
// is what the origin sent, the request body what the client sends.
type streamTunnel struct {
	io.Reader
	io.WriteCloser
}

// h2Connect opens a CONNECT stream to addr; with user, signed in.
func h2Connect(t *testing.T, cc *http2.ClientConn, addr, user string) (*http.Response, *streamTunnel) {
	t.Helper()
	pr, pw := io.Pipe()
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Host: addr}, Host: addr, Header: http.Header{}, Body: pr}
	if user != "" {
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user)))
	}
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatalf("CONNECT %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = pw.Close(); _ = resp.Body.Close() })
	return resp, &streamTunnel{Reader: resp.Body, WriteCloser: pw}
}

// tunnelConn lets tls.Client run over a streamTunnel.
type tunnelConn struct{ *streamTunnel }

func (c tunnelConn) Read(p []byte) (int, error)       { return c.streamTunnel.Read(p) }
func (c tunnelConn) Write(p []byte) (int, error)      { return c.streamTunnel.Write(p) }
func (c tunnelConn) Close() error                     { return c.streamTunnel.Close() }
func (c tunnelConn) SetDeadline(time.Time) error      { return nil }
func (c tunnelConn) SetReadDeadline(time.Time) error  { return nil }
func (c tunnelConn) SetWriteDeadline(time.Time) error { return nil }
func (c tunnelConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c tunnelConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }

// getOverTunnel runs TLS to the HTTPS origin over a CONNECT stream and GETs path.
func (w *httpsProxyWorld) getOverTunnel(t *testing.T, tn *streamTunnel, path string) (int, []byte) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(w.secure.Certificate())
	return w.getOverTunnelTrusting(t, tn, path, roots)
}

// getOverTunnelTrusting is getOverTunnel with the roots that must have signed
// the certificate seen inside the tunnel.
func (w *httpsProxyWorld) getOverTunnelTrusting(t *testing.T, tn *streamTunnel, path string, roots *x509.CertPool) (int, []byte) {
	t.Helper()
	tc := tls.Client(tunnelConn{streamTunnel: tn}, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		t.Fatalf("TLS to the origin through the stream: %v", err)
	}
	req, _ := http.NewRequest(http.MethodGet, "https://127.0.0.1:"+w.originPort+path, nil)
	if err := req.Write(tc); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("body through the stream: %v (after %d bytes)", err, len(b))
	}
	return resp.StatusCode, b
}

// TestHTTPSProxyHTTP2: Go's HTTP/2 client, on one connection to the TLS door
// (certificate from tls.certs): a proxied http:// request as a stream, then
// CONNECT streams (RFC 9113 §8.5) with TLS to the HTTPS origin inside them —
// a page and 1 MiB (more than the stream's flow-control window) — and a
// CONNECT without credentials answered 407.
func TestHTTPSProxyHTTP2(t *testing.T) {
	w := newHTTPSProxyWorld(t)
	certFile, keyFile, roots := w.proxyCert(t)
	_, door := w.run(t, strings.Replace(w.signInPolicy(""), "tls: {mode: internal}",
		"tls: {certs: [{cert_file: "+certFile+", key_file: "+keyFile+"}]}", 1))
	cc := h2Proxy(t, door, roots)
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:alice-pw"))

	req, _ := http.NewRequest(http.MethodGet, w.plain.URL+"/h2", nil)
	req.Header.Set("Proxy-Authorization", auth)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "plain origin: /h2" {
		t.Fatalf("proxied GET over HTTP/2: %d %q", resp.StatusCode, b)
	}

	origin := "127.0.0.1:" + w.originPort
	resp, tn := h2Connect(t, cc, origin, "alice:alice-pw")
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT stream: %d", resp.StatusCode)
	}
	if code, body := w.getOverTunnel(t, tn, "/inside"); code != 200 || !strings.Contains(string(body), "secure origin: /inside") {
		t.Fatalf("through the CONNECT stream: %d %q", code, body)
	}
	_, tn2 := h2Connect(t, cc, origin, "alice:alice-pw")
	if code, body := w.getOverTunnel(t, tn2, "/big"); code != 200 || len(body) != bigBody {
		t.Fatalf("1 MiB through a CONNECT stream: %d, %d bytes", code, len(body))
	}
	// The client ends its side of both streams: the door passes the
	// half-close on, the origin closes, and the tunnels end (and are logged).
	_ = tn.Close()
	_ = tn2.Close()
	resp, _ = h2Connect(t, cc, origin, "")
	if resp.StatusCode != http.StatusProxyAuthRequired || resp.Header.Get("Proxy-Authenticate") == "" {
		t.Fatalf("CONNECT stream without credentials: %d %v", resp.StatusCode, resp.Header)
	}
	line := w.logLine(t, `"method":"CONNECT","url":"`+origin+`","action":"allow"`)
	for _, field := range []string{`"user":"alice"`, `"tls":true`, `"status":200`, `"proto":"HTTP/2.0"`} {
		if !strings.Contains(line, field) {
			t.Errorf("access log line lacks %s: %s", field, line)
		}
	}
}

// askRaw sends one raw HTTP/1.1 request to addr over TLS (trusting roots)
// and returns the response and its body.
func askRaw(t *testing.T, addr string, roots *x509.CertPool, raw string) (*http.Response, string) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	method, _, _ := strings.Cut(raw, " ")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%q to %s: %v", raw, addr, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// headerNames is the sorted list of h's field names, but Date.
func headerNames(h http.Header) string {
	var names []string
	for k := range h {
		if k != "Date" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}

const (
	sitePage   = "<!DOCTYPE html><title>Bakery</title><h1>Fresh bread daily</h1>"
	secretHost = "sesame-k7rq2m9x.example"
)

// TestHTTPSProxyProbeResistance: with tls_probe_resistance (site: reverse), a
// client that has not signed in gets from the TLS door what the reverse
// door's own TLS listener answers to the same request — the site's page for
// a GET, a proxy request (no, or a wrong, password) and, over HTTP/2, a
// request to the proxy's address; 405 for a CONNECT, as the site answers it —
// with the same status, header names and body, and never a 407 or a
// Proxy-Authenticate field. curl without credentials gets the page; with
// them the door proxies (plain HTTP and CONNECT). Only a request for the
// secret host gets the 407, and signed in, a page saying so.
func TestHTTPSProxyProbeResistance(t *testing.T) {
	curl := needCurl(t)
	w := newHTTPSProxyWorld(t)
	site := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(rw, sitePage)
	}))
	t.Cleanup(site.Close)
	_, running := spawn(t, "run", "--config", w.write(t, "policy.yaml", w.signInPolicy(
		"  tls_probe_resistance: {site: reverse, secret_host: "+secretHost+"}\n")+`reverse:
  tls_listen: ["127.0.0.1:0"]
  tls: {mode: internal, names: [127.0.0.1]}
  routes: [{name: site, pool: site, hide_origin: true}]
pools:
  site: {members: [{url: "`+site.URL+`"}]}
`))
	door, rev := tlsListenRE.FindStringSubmatch(running), reverseTLSListenRE.FindStringSubmatch(running)
	if door == nil || rev == nil {
		t.Fatalf("listeners: %s", running)
	}
	doorAddr, revAddr := strings.Trim(door[1], `"`), strings.Trim(rev[1], `"`)
	roots := w.roots(t, w.internalCA())
	origin := "127.0.0.1:" + w.originPort
	wrong := "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("alice:guess")) + "\r\n"
	for _, probe := range []struct{ name, raw, status, body string }{
		{"GET /", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "200", sitePage},
		{"proxy request", "GET " + w.plain.URL + "/a HTTP/1.1\r\nHost: " + w.plain.Listener.Addr().String() + "\r\n\r\n", "200", sitePage},
		{"proxy request, wrong password", "GET " + w.plain.URL + "/a HTTP/1.1\r\nHost: " + w.plain.Listener.Addr().String() + "\r\n" + wrong + "\r\n", "200", sitePage},
		{"CONNECT", "CONNECT " + origin + " HTTP/1.1\r\nHost: " + origin + "\r\n\r\n", "405", ""},
		{"CONNECT, wrong password", "CONNECT " + origin + " HTTP/1.1\r\nHost: " + origin + "\r\n" + wrong + "\r\n", "405", ""},
		{"PAC file", "GET /proxy.pac HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "200", sitePage},
	} {
		got, gotBody := askRaw(t, doorAddr, roots, probe.raw)
		want, wantBody := askRaw(t, revAddr, roots, probe.raw)
		if h := got.Header.Get("Proxy-Authenticate"); h != "" || got.StatusCode == http.StatusProxyAuthRequired {
			t.Errorf("%s: the door revealed the proxy: %d, Proxy-Authenticate %q", probe.name, got.StatusCode, h)
		}
		if fmt.Sprint(got.StatusCode) != probe.status || (probe.body != "" && gotBody != probe.body) {
			t.Errorf("%s: %d %q, want %s %q", probe.name, got.StatusCode, gotBody, probe.status, probe.body)
		}
		if got.StatusCode != want.StatusCode || gotBody != wantBody || headerNames(got.Header) != headerNames(want.Header) {
			t.Errorf("%s: the door answered %d [%s] %q, the site %d [%s] %q", probe.name,
				got.StatusCode, headerNames(got.Header), gotBody, want.StatusCode, headerNames(want.Header), wantBody)
		}
	}

	// Over HTTP/2: the proxy's own address, and a CONNECT stream without a password.
	cc := h2Proxy(t, doorAddr, roots)
	req, _ := http.NewRequest(http.MethodGet, "https://"+doorAddr+"/", nil)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != sitePage {
		t.Errorf("GET / over HTTP/2: %d %q", resp.StatusCode, b)
	}
	resp, _ = h2Connect(t, cc, origin, "")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Proxy-Authenticate") != "" {
		t.Errorf("CONNECT stream without a password: %d %v", resp.StatusCode, resp.Header)
	}

	// curl: without credentials, the site; with them, the proxy.
	proxy := []string{"--proxy", "https://" + doorAddr, "--proxy-cacert", w.internalCA()}
	r := runCurl(t, curl, append(proxy, w.plain.URL+"/a")...)
	if r.code != "200" || r.body != sitePage || strings.Contains(strings.ToLower(r.headers), "proxy-authenticate") {
		t.Errorf("curl without credentials: %+v", r)
	}
	r = runCurl(t, curl, append(proxy, "--proxy-user", "alice:alice-pw", w.plain.URL+"/a")...)
	if r.code != "200" || r.body != "plain origin: /a" {
		t.Errorf("curl signed in: %+v", r)
	}
	r = runCurl(t, curl, append(proxy, "--proxy-user", "alice:alice-pw", "--cacert", w.originPEM, "https://"+origin+"/b")...)
	if r.connect != "200" || !strings.Contains(r.body, "secure origin: /b") {
		t.Errorf("curl CONNECT signed in: %+v", r)
	}

	// The secret host: the 407 that makes a browser ask, then a page.
	r = runCurl(t, curl, append(proxy, "http://"+secretHost+"/")...)
	if r.code != "407" || !strings.Contains(r.headers, "Proxy-Authenticate: Basic") {
		t.Errorf("secret host without credentials: %+v", r)
	}
	r = runCurl(t, curl, append(proxy, "--proxy-user", "alice:alice-pw", "http://"+secretHost+"/")...)
	if r.code != "200" || !strings.Contains(r.body, "You are signed in to this proxy") {
		t.Errorf("secret host signed in: %+v", r)
	}
	line := w.logLine(t, `"url":"`+w.plain.URL+`/a","action":"","rule":"probe_resistance"`)
	if !strings.Contains(line, `"tls":true`) || !strings.Contains(line, `"door":"forward"`) {
		t.Errorf("a probe's access log line: %s", line)
	}
}

// spkiHash is Chromium's --ignore-certificate-errors-spki-list entry for c:
// the base64 SHA-256 of its public key (it works for proxy certificates too,
// where --ignore-certificate-errors does not).
func spkiHash(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// TestHTTPSProxyChromium: headless Chromium with --proxy-server=https://…
// (the internal CA and the HTTPS origin trusted by their keys) loads a page
// over HTTPS and one over plain HTTP through the TLS door; it speaks HTTP/2
// to the proxy, so the HTTPS page came through a CONNECT stream. The door
// asks no sign-in here: a headless browser cannot answer a 407.
func TestHTTPSProxyChromium(t *testing.T) {
	chromium := "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil || testing.Short() {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is required in CI")
		}
		t.Skip("chromium not installed, or -short")
	}
	w := newHTTPSProxyWorld(t)
	_, door := w.run(t, strings.Replace(w.signInPolicy(""), "  auth: {htpasswd_file: htpasswd}\n", "", 1))
	caPEM, err := os.ReadFile(w.internalCA())
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(caPEM)
	ca, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	dump := func(target string) string {
		args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(),
			"--proxy-server=https://" + door, "--proxy-bypass-list=<-loopback>",
			"--ignore-certificate-errors-spki-list=" + spkiHash(ca) + "," + spkiHash(w.secure.Certificate()),
			"--dump-dom", target}
		out, err := exec.CommandContext(ctx, chromium, args...).Output()
		if err != nil {
			t.Fatalf("chromium %s: %v", target, err)
		}
		return string(out)
	}
	secure := "https://127.0.0.1:" + w.originPort + "/chromium"
	if dom := dump(secure); !strings.Contains(dom, "secure origin: /chromium") {
		t.Fatalf("HTTPS page through the TLS door:\n%s", dom)
	}
	line := w.logLine(t, `"method":"CONNECT","url":"127.0.0.1:`+w.originPort+`"`)
	for _, field := range []string{`"tls":true`, `"status":200`, `"proto":"HTTP/2.0"`} {
		if !strings.Contains(line, field) {
			t.Errorf("Chromium's CONNECT log line lacks %s: %s", field, line)
		}
	}
	if dom := dump(w.plain.URL + "/chromium"); !strings.Contains(dom, "plain origin: /chromium") {
		t.Fatalf("HTTP page through the TLS door:\n%s", dom)
	}
	w.logLine(t, `"method":"GET","url":"`+w.plain.URL+`/chromium","action":"allow"`)
}

// TestHTTPSProxyValidate: `portcullis validate` names the file, line, column
// and field of each mistake in the TLS door's settings.
func TestHTTPSProxyValidate(t *testing.T) {
	w := newHTTPSProxyWorld(t)
	for _, c := range []struct{ policy, want string }{
		{"forward:\n  tls_listen: [\"127.0.0.1:0\"]\n",
			":2:3: forward.tls: a TLS listener needs mode internal or certs"},
		{"forward:\n  tls_listen: [\"127.0.0.1:0\"]\n  tls: {mode: internal}\n  tls_probe_resistance: {site: reverse}\n",
			":4:25: forward.tls_probe_resistance: needs forward.auth"},
		{"forward:\n  tls_listen: [\"127.0.0.1:0\"]\n  tls: {mode: acme}\n",
			":3:8: forward.tls.names: required with mode acme"},
		{"forward:\n  tls_listen: [\"127.0.0.1:0\"]\n  tls: {mode: acme, names: [p.example.org], challenges: [http-01]}\n",
			":3:57: forward.tls.challenges: http-01 needs a plain listener"},
		{"forward:\n  tls_listen: [\"127.0.0.1:0\"]\n  tls: {mode: internal}\n  auth: {htpasswd_file: htpasswd}\n  tls_probe_resistance: {site: mirror, secret_host: 10.0.0.1}\n",
			":5:32: forward.tls_probe_resistance.site: want reverse or page, got \"mirror\""},
		{"forward:\n  tls_listen: [\"127.0.0.1:0\"]\n  tls: {mode: internal}\n  auth: {htpasswd_file: htpasswd}\n  tls_probe_resistance: {site: page, page_file: a.html, secret_host: 10.0.0.1}\n",
			":5:70: forward.tls_probe_resistance.secret_host: want a host name with a dot"},
		{"forward:\n  tls_listen: [\"127.0.0.1:0\"]\n  tls: {mode: internal}\n  auth: {htpasswd_file: htpasswd}\n  tls_probe_resistance: {site: reverse}\n",
			":5:32: forward.tls_probe_resistance.site: site: reverse needs a reverse section"},
		{"forward:\n  tls_listen: [\"127.0.0.1:0\"]\n  tls: {mode: internal}\n  auth: {htpasswd_file: htpasswd}\n  tls_probe_resistance: {site: page, page_file: missing.html}\n",
			":5:49: forward.tls_probe_resistance.page_file: cannot read "},
		{"forward:\n  tls_listen: [\"127.0.0.1:0\"]\n  tls: {certs: [{cert_file: nope.pem, key_file: nope.key}]}\n",
			":3:29: forward.tls.certs[0].cert_file: stat "},
	} {
		p := w.write(t, "bad.yaml", c.policy)
		_, errOut, code := runCLI(t, "validate", "--config", p)
		if code != 1 || !strings.Contains(errOut, p+c.want) {
			t.Errorf("validate %q: exit %d\n%s\nwant %s%s", c.policy, code, errOut, p, c.want)
		}
	}
}

// TestHTTPSProxyProbeResistancePage: with site: page, a client that has not
// signed in gets the page for every GET whatever the URL, 405 (Allow: GET,
// HEAD) for other methods and for CONNECT, never a 407; signed in, the door
// proxies.
func TestHTTPSProxyProbeResistancePage(t *testing.T) {
	curl := needCurl(t)
	w := newHTTPSProxyWorld(t)
	w.write(t, "site.html", sitePage)
	_, door := w.run(t, w.signInPolicy("  tls_probe_resistance: {site: page, page_file: site.html}\n"))
	roots := w.roots(t, w.internalCA())
	origin := "127.0.0.1:" + w.originPort
	plainHost := w.plain.Listener.Addr().String()
	for _, probe := range []struct {
		raw    string
		status int
		body   string
	}{
		{"GET /some/where HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 200, sitePage},
		{"GET " + w.plain.URL + "/a HTTP/1.1\r\nHost: " + plainHost + "\r\n\r\n", 200, sitePage},
		{"POST " + w.plain.URL + "/a HTTP/1.1\r\nHost: " + plainHost + "\r\nContent-Length: 2\r\n\r\nhi", 405, ""},
		{"CONNECT " + origin + " HTTP/1.1\r\nHost: " + origin + "\r\n\r\n", 405, ""},
	} {
		resp, body := askRaw(t, door, roots, probe.raw)
		if resp.StatusCode != probe.status || (probe.body != "" && body != probe.body) || resp.Header.Get("Proxy-Authenticate") != "" {
			t.Errorf("%q: %d %v %q", probe.raw, resp.StatusCode, resp.Header, body)
		}
		if resp.StatusCode == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%q: Allow %q", probe.raw, resp.Header.Get("Allow"))
		}
	}
	r := runCurl(t, curl, "--proxy", "https://"+door, "--proxy-cacert", w.internalCA(), "--proxy-user", "alice:alice-pw", w.plain.URL+"/a")
	if r.code != "200" || r.body != "plain origin: /a" {
		t.Errorf("signed in: %+v", r)
	}
}

// TestHTTPSProxyHTTP2RefusalKeepsConnection: a CONNECT stream the door
// refuses (a port outside connect_ports: 403) does not end the HTTP/2
// connection: the refusal's "Connection: close", which closes an HTTP/1.1
// connection, would make net/http send GOAWAY, and a browser multiplexing its
// tabs over the connection would have to open another.
func TestHTTPSProxyHTTP2RefusalKeepsConnection(t *testing.T) {
	w := newHTTPSProxyWorld(t)
	_, door := w.run(t, w.signInPolicy(""))
	roots := w.roots(t, w.internalCA())
	cc := h2Proxy(t, door, roots)
	resp, _ := h2Connect(t, cc, "127.0.0.1:1", "alice:alice-pw")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("CONNECT to a port outside connect_ports: %d", resp.StatusCode)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cc.Ping(ctx); err != nil { // every frame the door sent before its answer is read
		t.Fatal(err)
	}
	if cc.State().Closing {
		t.Fatal("the door sent GOAWAY after refusing one CONNECT stream")
	}
	resp, tn := h2Connect(t, cc, "127.0.0.1:"+w.originPort, "alice:alice-pw")
	if resp.StatusCode != 200 {
		t.Fatalf("the next CONNECT stream: %d", resp.StatusCode)
	}
	if code, body := w.getOverTunnel(t, tn, "/after"); code != 200 || !strings.Contains(string(body), "secure origin: /after") {
		t.Fatalf("through the next stream: %d %q", code, body)
	}
}

// TestHTTPSProxyHTTP2Inspect: a CONNECT stream whose verdict is inspect is
// inspected as a hijacked HTTP/1.1 CONNECT is: the client's TLS inside the
// stream ends at a leaf of the inspection CA, and the request inside is
// decided and logged on its own.
func TestHTTPSProxyHTTP2Inspect(t *testing.T) {
	w := newHTTPSProxyWorld(t)
	caCert, caKey := filepath.Join(w.dir, "ca.pem"), filepath.Join(w.dir, "ca.key")
	if out, errOut, code := runCLI(t, "ca", "create", "--cert", caCert, "--key", caKey); code != 0 {
		t.Fatalf("ca create: %s%s", out, errOut)
	}
	_, door := w.run(t, w.signInPolicy("  ca_cert: ca.pem\n  ca_key: ca.key\n  upstream_ca_file: origin.pem\n")+
		"rules: [{name: look-inside, client: [\"127.0.0.0/8\"], action: inspect}]\n")
	proxyRoots, inspectRoots := w.roots(t, w.internalCA()), w.roots(t, caCert)
	cc := h2Proxy(t, door, proxyRoots)
	origin := "127.0.0.1:" + w.originPort
	resp, tn := h2Connect(t, cc, origin, "alice:alice-pw")
	if resp.StatusCode != 200 {
		t.Fatalf("CONNECT stream: %d", resp.StatusCode)
	}
	if code, body := w.getOverTunnelTrusting(t, tn, "/inspected", inspectRoots); code != 200 || !strings.Contains(string(body), "secure origin: /inspected") {
		t.Fatalf("inspected request through the stream: %d %q", code, body)
	}
	line := w.logLine(t, `"url":"https://`+origin+`/inspected","action":"inspect"`)
	if !strings.Contains(line, `"user":"alice"`) || !strings.Contains(line, `"status":200`) {
		t.Errorf("the inner request's log line: %s", line)
	}
}

// TestHTTPSProxyReloadCertificate: a reload that names another certificate
// file serves it on the TLS listener that was kept: new handshakes see it.
func TestHTTPSProxyReloadCertificate(t *testing.T) {
	w := newHTTPSProxyWorld(t)
	policyWith := func(name string) string {
		return strings.Replace(w.signInPolicy(""), "tls: {mode: internal}",
			"tls: {certs: [{cert_file: "+name+".pem, key_file: "+name+".key}]}", 1)
	}
	_, _, first := w.proxyCertNamed(t, "first")
	_, _, second := w.proxyCertNamed(t, "second")
	p, door := w.run(t, policyWith("first"))
	handshake := func(roots *x509.CertPool) error {
		c, err := tls.Dial("tcp", door, &tls.Config{RootCAs: roots})
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := handshake(first); err != nil {
		t.Fatalf("first certificate: %v", err)
	}
	w.write(t, "policy.yaml", policyWith("second"))
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, "policy reloaded")
	if err := handshake(second); err != nil {
		t.Fatalf("after the reload, the second certificate: %v", err)
	}
	if err := handshake(first); err == nil {
		t.Fatal("after the reload, the first certificate is still served")
	}
}
