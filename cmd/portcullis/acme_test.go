package main

import (
	"bufio"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/portcullis/portcullis/internal/certs"
)

// TestACMEWithPebble runs the binary with reverse.tls mode acme against Let's
// Encrypt's pebble (the module's tool dependency, built here) doing real
// validations: pebble resolves the test names with a DNS server of the test's
// own (127.0.0.1) and connects to the reverse door's listeners for http-01 and
// tls-alpn-01.
//
//  1. challenges [http-01], profile default (90 days): the first HTTPS request gets a certificate issued by
//     pebble (verified against pebble's root, issued by its intermediate); a name
//     the policy does not list gets no certificate and no order; the status page
//     and /metrics show the certificate.
//  2. Restarted with challenges [tls-alpn-01] and the shortlived profile: the
//     stored certificate is served again without a new order; a name under a
//     listed "*.domain" gets a certificate by tls-alpn-01.
//  3. That short-lived certificate is renewed (a new serial, a new order, the
//     log says so).
func TestACMEWithPebble(t *testing.T) {
	dir := t.TempDir()
	pb := startPebble(t, dir)

	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from the origin for %s", r.Host)
	}))
	t.Cleanup(origin.Close)
	policy := filepath.Join(dir, "policy.yaml")
	writePolicy := func(challenge, profile string) {
		t.Helper()
		text := fmt.Sprintf(`reverse:
  listen: ["%s"]
  tls_listen: ["%s"]
  state_dir: state
  tls:
    mode: acme
    email: admin@acme.test
    ca: %s
    ca_root: pebble-https-ca.pem
    names: [app.acme.test, "*.wild.acme.test"]
    challenges: [%s]
%s  routes:
    - name: all
      pool: origin
pools:
  origin:
    members:
      - url: %s
admin:
  listen: "127.0.0.1:0"
`, pb.httpAddr, pb.tlsAddr, pb.directory, challenge, profile, origin.URL)
		if err := os.WriteFile(policy, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	client := func(roots *x509.CertPool) *http.Client {
		var d net.Dialer
		tr := &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, pb.tlsAddr) // every test name is this door
			},
		}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 60 * time.Second}
	}
	get := func(c *http.Client, host string) *x509.Certificate {
		t.Helper()
		resp, err := c.Get("https://" + host + "/")
		if err != nil {
			t.Fatalf("GET https://%s/: %v", host, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "hello from the origin for "+host {
			t.Fatalf("GET https://%s/: %d %q", host, resp.StatusCode, body)
		}
		return resp.TLS.PeerCertificates[0]
	}

	// 1. http-01.
	writePolicy(certs.ChallengeHTTP01, "    profile: default\n") // pebble picks a random profile for an order naming none
	p, running := spawn(t, "run", "--config", policy)
	admin := "http://" + adminRE.FindStringSubmatch(running)[1]
	c := client(pb.root)
	leaf := get(c, "app.acme.test")
	if leaf.Issuer.CommonName != pb.intermediate.Subject.CommonName || leaf.CheckSignatureFrom(pb.intermediate) != nil {
		t.Fatalf("certificate issued by %q, want pebble's intermediate %q", leaf.Issuer.CommonName, pb.intermediate.Subject.CommonName)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "app.acme.test", Roots: pb.root, Intermediates: certPool(pb.intermediate)}); err != nil {
		t.Fatalf("chain: %v", err)
	}
	if n := pb.orders(); n != 1 {
		t.Fatalf("pebble has %d orders, want 1", n)
	}
	first := leaf.SerialNumber
	// A name the policy does not list: no certificate, no order.
	if conn, err := tls.Dial("tcp", pb.tlsAddr, &tls.Config{ServerName: "other.acme.test", RootCAs: pb.root}); err == nil {
		conn.Close()
		t.Fatal("a handshake for an unlisted name succeeded")
	}
	// The status page and the metrics show the certificate.
	var status struct {
		Certificates []struct {
			Name     string    `json:"name"`
			Issuer   string    `json:"issuer"`
			NotAfter time.Time `json:"not_after"`
			DaysLeft float64   `json:"days_left"`
		} `json:"certificates"`
	}
	if err := json.Unmarshal([]byte(getBody(t, admin+"/status.json")), &status); err != nil {
		t.Fatal(err)
	}
	if len(status.Certificates) != 1 || status.Certificates[0].Name != "app.acme.test" || status.Certificates[0].Issuer != pb.intermediate.Subject.CommonName ||
		!status.Certificates[0].NotAfter.Equal(leaf.NotAfter) || status.Certificates[0].DaysLeft < 80 {
		t.Fatalf("status certificates %+v, want app.acme.test issued by %s until %v", status.Certificates, pb.intermediate.Subject.CommonName, leaf.NotAfter)
	}
	if m := getBody(t, admin+"/metrics"); !regexp.MustCompile(`(?m)^portcullis_tls_certificate_expiry_days\{name="app.acme.test"\} (8\d|9\d)\.`).MatchString(m) {
		t.Fatalf("no expiry metric for app.acme.test in:\n%s", linesWith(m, "portcullis_tls"))
	}
	if n := pb.orders(); n != 1 {
		t.Fatalf("pebble has %d orders after the unlisted name, want 1", n)
	}
	termProc(t, p)

	// 2. Restart: the stored certificate, no new order; tls-alpn-01 for a new name.
	writePolicy(certs.ChallengeTLSALPN01, "    profile: shortlived\n")
	p, _ = spawn(t, "run", "--config", policy)
	c = client(pb.root)
	if again := get(c, "app.acme.test"); again.SerialNumber.Cmp(first) != 0 {
		t.Fatalf("after the restart serial %v, want the stored %v", again.SerialNumber, first)
	}
	if n := pb.orders(); n != 1 {
		t.Fatalf("pebble has %d orders after the restart, want 1", n)
	}
	short := get(c, "www.wild.acme.test")
	if short.NotAfter.Sub(short.NotBefore) > time.Hour || short.Issuer.CommonName != pb.intermediate.Subject.CommonName {
		t.Fatalf("www.wild.acme.test: valid %v..%v from %s, want the shortlived profile from pebble", short.NotBefore, short.NotAfter, short.Issuer.CommonName)
	}
	if n := pb.orders(); n != 2 {
		t.Fatalf("pebble has %d orders, want 2", n)
	}

	// 3. Renewal: the short-lived certificate is replaced.
	deadline := time.Now().Add(90 * time.Second)
	for {
		c.CloseIdleConnections() // a new handshake each time
		if cur := get(c, "www.wild.acme.test"); cur.SerialNumber.Cmp(short.SerialNumber) != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the short-lived certificate was not renewed in 90 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.waitFor(t, `msg="acme: certificate obtained" door=reverse name=www.wild.acme.test renewal=true`)
	if n := pb.orders(); n < 3 {
		t.Fatalf("pebble has %d orders after the renewal, want at least 3", n)
	}
}

// pebble is a running pebble with its addresses and CA.
type pebble struct {
	directory         string // the ACME directory URL
	httpAddr, tlsAddr string // where its VA validates: the door's plain and TLS listeners
	root              *x509.CertPool
	rootPEM           []byte // root, for curl --cacert
	intermediate      *x509.Certificate
	intermediateKey   crypto.Signer // only from startPebbleOCSP: to sign OCSP answers

	mu     sync.Mutex
	norder int
}

// orders returns how many orders pebble has (from its log).
func (p *pebble) orders() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.norder
}

var pebbleOrdersRE = regexp.MustCompile(`There are now (\d+) orders in the db`)

// startPebble builds pebble (the module's tool dependency) and runs it on
// loopback with a DNS server answering 127.0.0.1 for every *.acme.test name,
// validating on two free ports it returns for the door. Its HTTPS certificate
// comes from a CA written to dir/pebble-https-ca.pem.
func startPebble(t *testing.T, dir string) *pebble {
	t.Helper()
	return startPebbleOCSP(t, dir, "")
}

// startPebbleOCSP is startPebble with ocspURL ("": none) written as the OCSP
// responder of the certificates pebble issues. With one, pebble's CA keys are
// RSA (its management interface serves only RSA keys) and p.intermediateKey is
// its intermediate's key, for the test's own responder.
func startPebbleOCSP(t *testing.T, dir, ocspURL string) *pebble {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pebble")
	build := exec.Command("go", "build", "-o", bin, "github.com/letsencrypt/pebble/v2/cmd/pebble")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building pebble: %v\n%s", err, out)
	}
	ca, err := certs.CreateCA(filepath.Join(dir, "pebble-https-ca.pem"), filepath.Join(dir, "pebble-https-ca.key"), "pebble HTTPS test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Sign("127.0.0.1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := certs.WritePair(leaf, filepath.Join(dir, "pebble.pem"), filepath.Join(dir, "pebble.key")); err != nil {
		t.Fatal(err)
	}
	httpsRoots := certPool(ca.Certificate())
	dnsAddr := startACMEDNS(t)

	p := &pebble{httpAddr: freeLoopback(t), tlsAddr: freeLoopback(t)}
	listen, mgmt := freeLoopback(t), freeLoopback(t)
	_, httpPort, _ := net.SplitHostPort(p.httpAddr)
	_, tlsPort, _ := net.SplitHostPort(p.tlsAddr)
	keyAlg := "ecdsa"
	if ocspURL != "" {
		keyAlg = "rsa"
	}
	cfg := fmt.Sprintf(`{"pebble": {"listenAddress": %q, "managementListenAddress": %q,
  "certificate": %q, "privateKey": %q, "httpPort": %s, "tlsPort": %s, "ocspResponderURL": %q,
  "externalAccountBindingRequired": false, "keyAlgorithm": %q,
  "profiles": {"default": {"description": "90 days", "validityPeriod": 7776000},
               "shortlived": {"description": "30 minutes", "validityPeriod": 1800}}}}`,
		listen, mgmt, filepath.Join(dir, "pebble.pem"), filepath.Join(dir, "pebble.key"), httpPort, tlsPort, ocspURL, keyAlg)
	cfgPath := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", cfgPath, "-dnsserver", dnsAddr)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	var logMu sync.Mutex
	var pebbleLog strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			logMu.Lock()
			pebbleLog.WriteString(line + "\n")
			logMu.Unlock()
			if m := pebbleOrdersRE.FindStringSubmatch(line); m != nil {
				n, _ := strconv.Atoi(m[1])
				p.mu.Lock()
				p.norder = n
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			logMu.Lock()
			t.Logf("pebble's log:\n%s", pebbleLog.String())
			logMu.Unlock()
		}
	})
	mc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: httpsRoots}}, Timeout: 10 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	var rootPEM, interPEM []byte
	for {
		rootPEM, err = fetchBody(mc, "https://"+mgmt+"/roots/0")
		if err == nil {
			interPEM, err = fetchBody(mc, "https://"+mgmt+"/intermediates/0")
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble's management interface did not answer: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.root, p.rootPEM = x509.NewCertPool(), rootPEM
	if !p.root.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble's root: %q", rootPEM)
	}
	blk, _ := pem.Decode(interPEM)
	if blk == nil {
		t.Fatalf("pebble's intermediate: %q", interPEM)
	}
	if p.intermediate, err = x509.ParseCertificate(blk.Bytes); err != nil {
		t.Fatal(err)
	}
	if ocspURL != "" {
		keyPEM, err := fetchBody(mc, "https://"+mgmt+"/intermediate-keys/0")
		if err != nil {
			t.Fatalf("pebble's intermediate key: %v", err)
		}
		if blk, _ = pem.Decode(keyPEM); blk == nil {
			t.Fatalf("pebble's intermediate key: %q", keyPEM)
		}
		if p.intermediateKey, err = x509.ParsePKCS1PrivateKey(blk.Bytes); err != nil {
			t.Fatalf("pebble's intermediate key: %v", err)
		}
	}
	p.directory = "https://" + listen + "/dir"
	for {
		if _, err = fetchBody(mc, p.directory); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble's directory did not answer: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p
}

// startACMEDNS serves DNS over TCP on loopback (pebble's VA asks over TCP):
// A 127.0.0.1 for every name under acme.test, no other records.
func startACMEDNS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA && (q.Name == "acme.test." || strings.HasSuffix(q.Name, ".acme.test.")) {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)})
			}
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// freeLoopback returns a 127.0.0.1 address with a port free now: pebble's
// configuration and the policy must name fixed ports (ACME validates on them).
func freeLoopback(t *testing.T) string {
	t.Helper()
	// A port below the kernel's ephemeral range (32768-60999 by default): the
	// kernel never hands one of those to another socket by itself, so the
	// port stays free between this check and the moment pebble or the binary
	// binds it, even while other tests open thousands of connections (a
	// port from :0 was seen taken in that window).
	for range 200 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(20000+rand.IntN(12000)))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		return addr
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func certPool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func fetchBody(c *http.Client, url string) ([]byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("%s: %s", url, resp.Status)
	}
	return b, err
}

// getBody returns the body of a 200 answer to GET url.
func getBody(t *testing.T, url string) string {
	t.Helper()
	b, err := fetchBody(http.DefaultClient, url)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func linesWith(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// termProc ends p with SIGTERM and waits for it.
func termProc(t *testing.T, p *proc) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGQUIT) // a goroutine dump on stderr
		<-done
		var lines []string
		for l := range p.lines {
			lines = append(lines, l)
		}
		t.Fatalf("portcullis did not stop on SIGTERM; its last lines:\n%s", strings.Join(lines, "\n"))
	}
}
