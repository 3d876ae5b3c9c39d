package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/portcullis/portcullis/internal/certs"
)

// ocspResponder is a loopback OCSP responder for one issuer: it answers
// every request with the status it is set to, valid for validity, or 500.
type ocspResponder struct {
	srv      *httptest.Server
	issuer   *x509.Certificate
	key      crypto.Signer
	validity time.Duration

	mu     sync.Mutex
	status int // ocsp.Good, ocsp.Revoked; -1: answer 500
	asked  int
}

func (o *ocspResponder) set(status int) {
	o.mu.Lock()
	o.status = status
	o.mu.Unlock()
}

func (o *ocspResponder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req, err := ocsp.ParseRequest(body)
	if r.Method != http.MethodPost || err != nil {
		http.Error(w, "want a POSTed OCSP request", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	status := o.status
	o.asked++
	o.mu.Unlock()
	if status < 0 {
		http.Error(w, "responder down", http.StatusInternalServerError)
		return
	}
	now := time.Now().Truncate(time.Second)
	tmpl := ocsp.Response{Status: status, SerialNumber: req.SerialNumber, ThisUpdate: now, NextUpdate: now.Add(o.validity)}
	if status == ocsp.Revoked {
		tmpl.RevokedAt, tmpl.RevocationReason = now.Add(-time.Hour), ocsp.KeyCompromise
	}
	der, err := ocsp.CreateResponse(o.issuer, o.issuer, tmpl, o.key)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	_, _ = w.Write(der)
}

// ocspChain makes a CA and a leaf for name naming responderURL as its OCSP
// server, writes the chain (leaf, CA) and the leaf's key to dir, and returns
// the CA, its key and the leaf.
func ocspChain(t *testing.T, dir, name, responderURL string) (*x509.Certificate, crypto.Signer, *x509.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "OCSP test CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(4242), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 3, 0), OCSPServer: []string{responderURL},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, leafKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	if err := certs.WritePair(&tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: leafKey}, filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "leaf.key")); err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", caDER)
	return ca, caKey, leaf
}

// TestOCSPStaplingFiles runs the binary with the forward TLS door's
// certificate from files, its leaf naming a loopback OCSP responder, and
// checks with Go's TLS client (ConnectionState().OCSPResponse) and openssl
// s_client -status what a client gets stapled:
//
//  1. a Good answer is stapled (signed by the issuer, about this leaf);
//  2. it is refreshed before its NextUpdate (a later ThisUpdate is served);
//  3. a Revoked answer is never stapled: the staple goes at the next refresh,
//     and the log says so;
//  4. when the responder fails, the last staple is served until its
//     NextUpdate and then none: an expired staple is never served.
func TestOCSPStaplingFiles(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	o := &ocspResponder{validity: 6 * time.Second, status: ocsp.Good}
	o.srv = httptest.NewServer(o)
	t.Cleanup(o.srv.Close)
	ca, caKey, leaf := ocspChain(t, dir, "ocsp.test", o.srv.URL+"/ocsp")
	o.issuer, o.key = ca, caKey
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(`forward:
  listen: ["127.0.0.1:0"]
  tls_listen: ["127.0.0.1:0"]
  tls: {certs: [{cert_file: leaf.pem, key_file: leaf.key}]}
admin: {listen: "off"}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	p, running := spawn(t, "run", "--config", policy)
	m := tlsListenRE.FindStringSubmatch(running)
	if m == nil {
		t.Fatalf("no forward-tls listener in %q", running)
	}
	door := strings.Trim(m[1], `"`)
	roots := certPool(ca)

	// staple does a handshake and returns the stapled answer (nil: none).
	staple := func() *ocsp.Response {
		t.Helper()
		conn, err := tls.Dial("tcp", door, &tls.Config{ServerName: "ocsp.test", RootCAs: roots})
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer conn.Close()
		raw := conn.ConnectionState().OCSPResponse
		if len(raw) == 0 {
			return nil
		}
		resp, err := ocsp.ParseResponseForCert(raw, leaf, ca)
		if err != nil {
			t.Fatalf("the staple is not the issuer's answer about this leaf: %v", err)
		}
		if resp.Status != ocsp.Good {
			t.Fatalf("a staple with status %d was served, want only Good ones", resp.Status)
		}
		return resp
	}
	waitFor := func(what string, ok func(*ocsp.Response) bool) *ocsp.Response {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			r := staple()
			if ok(r) {
				return r
			}
			if time.Now().After(deadline) {
				o.mu.Lock()
				asked := o.asked
				o.mu.Unlock()
				t.Fatalf("no %s in 60 s (responder asked %d times)", what, asked)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// 1. Good: stapled.
	first := waitFor("staple", func(r *ocsp.Response) bool { return r != nil })
	if first.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Fatalf("staple for serial %v, want the leaf's %v", first.SerialNumber, leaf.SerialNumber)
	}
	if openssl, err := exec.LookPath("openssl"); err == nil {
		out := sClient(t, openssl, door)
		if !strings.Contains(out, "OCSP Response Status: successful") || !strings.Contains(out, "Cert Status: good") {
			t.Fatalf("openssl s_client -status shows no good staple:\n%s", out)
		}
	} else if os.Getenv("CI") == "true" {
		t.Fatal("openssl is required in CI")
	}
	// 2. Refreshed before its NextUpdate.
	waitFor("refreshed staple", func(r *ocsp.Response) bool { return r != nil && r.ThisUpdate.After(first.ThisUpdate) })
	// 3. Revoked: never stapled, and the staple goes.
	o.set(ocsp.Revoked)
	waitFor("certificate without a staple after the revocation", func(r *ocsp.Response) bool { return r == nil })
	p.waitFor(t, `msg="ocsp: the responder says the certificate is REVOKED`)
	if openssl, err := exec.LookPath("openssl"); err == nil {
		if out := sClient(t, openssl, door); !strings.Contains(out, "OCSP response: no response sent") {
			t.Fatalf("openssl s_client -status after the revocation:\n%s", out)
		}
	}
	// 4. Good again, then the responder fails: the staple lasts until its
	// NextUpdate, then none.
	o.set(ocsp.Good)
	waitFor("staple after Good again", func(r *ocsp.Response) bool { return r != nil })
	o.set(-1)
	waitFor("certificate without a staple after the staple expired", func(r *ocsp.Response) bool { return r == nil })
	p.waitFor(t, `msg="ocsp: the staple expired before the responder answered again`)
}

// sClient runs openssl s_client -status against addr for ocsp.test.
func sClient(t *testing.T, openssl, addr string) string {
	t.Helper()
	cmd := exec.Command(openssl, "s_client", "-connect", addr, "-servername", "ocsp.test", "-status")
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl s_client: %v\n%s", err, out)
	}
	return string(out)
}
