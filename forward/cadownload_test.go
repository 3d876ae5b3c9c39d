package forward

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/forward/auth"
	"github.com/portcullis/portcullis/internal/certs"
)

// TestCAServedOnForwardDoor: with a CA, the forward door's own port serves
// /ca.pem (the CA it signs with, PEM), /ca.crt (DER) and /ca (install steps
// per system, with the fingerprint) to allowed clients without sign-in, even
// when proxy requests need it; a client outside allow_clients gets 403; the
// key is never served. On bc21481 these were admin-listener routes only (401
// once admin.token was set): the door answered 404.
func TestCAServedOnForwardDoor(t *testing.T) {
	dir := t.TempDir()
	ca, err := certs.CreateCA(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key"), certs.InspectionCAName)
	if err != nil {
		t.Fatal(err)
	}
	store, err := auth.Load(writeTestFile(t, dir, "htpasswd", htpasswdEntry(t, "alice", "s3cret")), "")
	if err != nil {
		t.Fatal(err)
	}
	tp := startProxy(t, Options{CA: ca, Auth: store})
	c := &http.Client{Timeout: 30 * time.Second}
	get := func(base, path string) (*http.Response, []byte) {
		t.Helper()
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	base := "http://" + tp.addr
	resp, body := get(base, "/ca.pem")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/ca.pem: %d %q", resp.StatusCode, body)
	}
	block, _ := pem.Decode(body)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("/ca.pem is not a PEM certificate: %q", body)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !cert.IsCA || !cert.Equal(ca.Certificate()) {
		t.Fatalf("/ca.pem is not the door's CA (err %v)", err)
	}
	resp, body = get(base, "/ca.crt")
	if der, err := x509.ParseCertificate(body); resp.StatusCode != http.StatusOK || err != nil || !der.Equal(ca.Certificate()) {
		t.Fatalf("/ca.crt: %d, %v", resp.StatusCode, err)
	}
	resp, body = get(base, "/ca")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/ca: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"Windows", "macOS", "ChromeOS", "iOS", "Android", "Firefox", "Linux", `href="/ca.pem"`, `href="/ca.crt"`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/ca page lacks %q", want)
		}
	}
	if bytes.Contains(body, []byte("PRIVATE KEY")) {
		t.Fatal("the page holds a private key")
	}
	for _, path := range []string{"/ca.key", "/ca.pem.key", "/ca/"} {
		if resp, _ := get(base, path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
	// A proxy request still needs sign-in.
	req, _ := http.NewRequest(http.MethodGet, "http://site.example/", nil)
	if resp, err := tp.client(t).Do(req); err != nil || resp.StatusCode != http.StatusProxyAuthRequired {
		t.Fatalf("proxy request without sign-in: %v %v", resp, err)
	}

	other := startProxy(t, Options{CA: ca, Config: &Config{AllowClients: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}})
	for _, path := range []string{"/ca.pem", "/ca.crt", "/ca"} {
		if resp, body := get("http://"+other.addr, path); resp.StatusCode != http.StatusForbidden || bytes.Contains(body, []byte("BEGIN CERTIFICATE")) {
			t.Errorf("client outside allow_clients, %s: %d", path, resp.StatusCode)
		}
	}
}
