package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// TestACMEOCSPStapling runs the binary with reverse.tls mode acme against
// pebble, its issued certificates naming a loopback OCSP responder of the
// test's (answering Good, signed with pebble's intermediate key), and checks
// that a TLS client of the reverse door gets the answer stapled: status Good,
// about the served leaf, signed by its issuer; and that the status page says
// the certificate is stapled.
func TestACMEOCSPStapling(t *testing.T) {
	dir := t.TempDir()
	// The responder's address goes into pebble's configuration; it serves
	// once pebble's intermediate key is known (before any certificate).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pb := startPebbleOCSP(t, dir, "http://"+ln.Addr().String()+"/ocsp")
	o := &ocspResponder{issuer: pb.intermediate, key: pb.intermediateKey, validity: time.Hour, status: ocsp.Good}
	o.srv = httptest.NewUnstartedServer(o)
	o.srv.Listener.Close()
	o.srv.Listener = ln
	o.srv.Start()
	t.Cleanup(o.srv.Close)

	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	}))
	t.Cleanup(origin.Close)
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, fmt.Appendf(nil, `reverse:
  listen: ["%s"]
  tls_listen: ["%s"]
  state_dir: state
  tls:
    mode: acme
    email: admin@acme.test
    ca: %s
    ca_root: pebble-https-ca.pem
    names: [app.acme.test]
    challenges: [http-01]
    profile: default
  routes:
    - name: all
      pool: origin
pools:
  origin:
    members:
      - url: %s
admin:
  listen: "127.0.0.1:0"
`, pb.httpAddr, pb.tlsAddr, pb.directory, origin.URL), 0o644); err != nil {
		t.Fatal(err)
	}
	_, running := spawn(t, "run", "--config", policy)
	admin := "http://" + adminRE.FindStringSubmatch(running)[1]

	// certmagic staples when it obtains or loads the certificate; poll new
	// handshakes until one carries a staple (the first one orders the
	// certificate).
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 30 * time.Second}, Config: &tls.Config{ServerName: "app.acme.test", RootCAs: pb.root}}
	var state tls.ConnectionState
	deadline := time.Now().Add(120 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		conn, err := dialer.DialContext(ctx, "tcp", pb.tlsAddr)
		cancel()
		if err == nil {
			state = conn.(*tls.Conn).ConnectionState()
			conn.Close()
			if len(state.OCSPResponse) > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			o.mu.Lock()
			asked := o.asked
			o.mu.Unlock()
			t.Fatalf("no OCSP staple from the reverse door in 120 s (last handshake error: %v; responder asked %d times)", err, asked)
		}
		time.Sleep(200 * time.Millisecond)
	}
	leaf := state.PeerCertificates[0]
	if leaf.Issuer.CommonName != pb.intermediate.Subject.CommonName || len(leaf.OCSPServer) == 0 || leaf.OCSPServer[0] != o.srv.URL+"/ocsp" {
		t.Fatalf("leaf issued by %q naming OCSP %v, want pebble's intermediate naming %s", leaf.Issuer.CommonName, leaf.OCSPServer, o.srv.URL+"/ocsp")
	}
	resp, err := ocsp.ParseResponseForCert(state.OCSPResponse, leaf, pb.intermediate)
	if err != nil {
		t.Fatalf("the staple: %v", err)
	}
	if resp.Status != ocsp.Good || resp.SerialNumber.Cmp(leaf.SerialNumber) != 0 || !time.Now().Before(resp.NextUpdate) {
		t.Fatalf("staple status %d serial %v next update %v, want Good (%d) for the served leaf %v, not expired", resp.Status, resp.SerialNumber, resp.NextUpdate, ocsp.Good, leaf.SerialNumber)
	}

	// The status page says so, with the staple's next update: in
	// status.json and in the HTML page's OCSP column.
	var status struct {
		Certificates []struct {
			Name           string    `json:"name"`
			OCSPStapled    bool      `json:"ocsp_stapled"`
			OCSPNextUpdate time.Time `json:"ocsp_next_update"`
		} `json:"certificates"`
	}
	if err := json.Unmarshal([]byte(getBody(t, admin+"/status.json")), &status); err != nil {
		t.Fatal(err)
	}
	if len(status.Certificates) != 1 || status.Certificates[0].Name != "app.acme.test" || !status.Certificates[0].OCSPStapled ||
		!status.Certificates[0].OCSPNextUpdate.Equal(resp.NextUpdate) {
		t.Fatalf("status certificates %+v, want app.acme.test with ocsp_stapled true and ocsp_next_update %v", status.Certificates, resp.NextUpdate)
	}
	page := getBody(t, admin+"/")
	if cell := `<td class="mono">yes, next update ` + resp.NextUpdate.UTC().Format("2006-01-02 15:04") + `</td>`; !strings.Contains(page, "<th>OCSP staple</th>") || !strings.Contains(page, cell) {
		_, certs, _ := strings.Cut(page, `id="certs"`)
		t.Fatalf("the status page lacks the OCSP column or %s:\n%.600s", cell, certs)
	}
}
