package engine

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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
	bundle := filepath.Join(dir, "origin.pem")
	if err := os.WriteFile(bundle, pemCert(origin.Certificate()), 0o644); err != nil {
		t.Fatal(err)
	}
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

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
