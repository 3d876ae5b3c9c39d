package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/certs"
)

// TestInspectionThroughEngine runs HTTPS inspection as a policy asks for it: a CA made
// with `ca create`, an inspect rule for the origin, a path rule inside it. A client
// that trusts the CA gets the block page over HTTPS for the blocked path and the
// origin's page for the others; the CA is downloadable from the admin listener.
func TestInspectionThroughEngine(t *testing.T) {
	origin, ca, certPath, keyPath, bundle := inspectionSetup(t)
	port := origin.Listener.Addr().(*net.TCPAddr).Port
	e := runEngine(t, fmt.Sprintf(`
forward:
  listen: ["127.0.0.1:0"]
  connect_ports: [%d]
  ca_cert: %s
  ca_key: %s
  upstream_ca_file: %s
resolver: {egress: {allow: ["127.0.0.0/8"]}}
admin: {listen: "127.0.0.1:0"}
rules:
  - {name: no-shorts, host: [127.0.0.1], path: ["/shorts/*"], action: block, reason: not in class}
  - {name: look-inside, host: [127.0.0.1], action: inspect}
`, port, certPath, keyPath, bundle))
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	proxyURL := &url.URL{Scheme: "http", Host: e.Addrs()["forward"][0].String()}
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: roots}}}
	get := func(path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", origin.URL+path, nil)
		req.Header.Set("Accept", "text/html")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/watch"); code != 200 || body != "origin page /watch" {
		t.Fatalf("allowed path: %d %q", code, body)
	}
	if code, body := get("/shorts/abc"); code != http.StatusForbidden || !strings.Contains(body, "no-shorts") || !strings.Contains(body, "not in class") {
		t.Fatalf("blocked path inside HTTPS: %d %q", code, body)
	}
	resp, err := http.Get("http://" + e.Addrs()["admin"][0].String() + "/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	pemBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(pemBody) != string(ca.CertPEM()) {
		t.Fatalf("admin /ca.pem served %q", pemBody)
	}
}

// inspectionSetup starts a TLS origin that answers "origin page PATH" and
// makes an inspection CA: the origin, the CA, the CA's certificate and key
// files and a file with the origin's certificate (for upstream_ca_file).
func inspectionSetup(t *testing.T) (origin *httptest.Server, ca *certs.CA, certPath, keyPath, bundle string) {
	t.Helper()
	origin = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "origin page "+r.URL.Path)
	}))
	t.Cleanup(origin.Close)
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	ca, err := certs.CreateCA(certPath, keyPath, certs.InspectionCAName)
	if err != nil {
		t.Fatal(err)
	}
	bundle = filepath.Join(dir, "origin.pem")
	if err := os.WriteFile(bundle, pemCert(origin.Certificate()), 0o644); err != nil {
		t.Fatal(err)
	}
	return origin, ca, certPath, keyPath, bundle
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// TestReloadReachesInspectedTunnels: a school that blocks a path and reloads
// must not leave it open to the browsers that already hold an inspected
// tunnel (HTTP/1.1 and HTTP/2 inside). The reload drains the tunnels opened
// before it (the idle ones close; forward.Proxy.DrainInspected), so the
// client's next request goes on a new tunnel (checked: the test fails where
// the old one was kept, as it was before issue 20) and is decided by the new
// policy.
func TestReloadReachesInspectedTunnels(t *testing.T) {
	origin, ca, certPath, keyPath, bundle := inspectionSetup(t)
	policy := func(extraRule string) string {
		return fmt.Sprintf(`
forward:
  listen: ["127.0.0.1:0"]
  connect_ports: [%d]
  ca_cert: %s
  ca_key: %s
  upstream_ca_file: %s
resolver: {egress: {allow: ["127.0.0.0/8"]}}
rules:
%s  - {name: look-inside, host: [127.0.0.1], action: inspect}
`, origin.Listener.Addr().(*net.TCPAddr).Port, certPath, keyPath, bundle, extraRule)
	}
	e := runEngine(t, policy(""))
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	proxyURL := &url.URL{Scheme: "http", Host: e.Addrs()["forward"][0].String()}
	clients := map[string]*http.Client{
		"HTTP/1.1": {Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: roots}}},
		"HTTP/2.0": {Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}},
	}
	for _, c := range clients {
		defer c.CloseIdleConnections()
	}
	get := func(name string) (code int, body, proto string, reused bool) {
		t.Helper()
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", origin.URL+"/watch", nil)
		req.Header.Set("Accept", "text/html")
		resp, err := clients[name].Do(req)
		if err != nil {
			t.Fatalf("%s GET /watch: %v", name, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Proto, reused
	}
	for name := range clients {
		if code, body, proto, _ := get(name); code != 200 || body != "origin page /watch" || proto != name {
			t.Fatalf("%s before the reload: %d %s %q", name, code, proto, body)
		}
	}
	if err := os.WriteFile(e.opts.PolicyPath, []byte(policy("  - {name: no-watching, host: [127.0.0.1], path: [\"/watch\"], action: block, reason: not in class}\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	for name := range clients {
		code, body, proto, reused := get(name)
		if reused || proto != name {
			t.Errorf("%s after the reload: the tunnel opened before it was reused (%v, %s): it should have been drained", name, reused, proto)
		}
		if code != http.StatusForbidden || !strings.Contains(body, "no-watching") {
			t.Errorf("%s after the reload, in the tunnel opened before it: %d %q, want the block page of no-watching", name, code, body)
		}
	}
}
