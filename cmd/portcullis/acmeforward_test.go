package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/certs"
)

// TestHTTPSProxyACMEWithPebble runs the forward door over TLS (an HTTPS
// proxy) with forward.tls mode acme against pebble, which resolves the test
// names to 127.0.0.1 and validates on the door's own listeners:
//
//  1. challenges [tls-alpn-01]: the first handshake for the listed name gets a
//     certificate issued by pebble, validated on the TLS door itself; curl
//     --proxy https://proxy.acme.test:PORT, trusting only pebble's root, signs
//     in and tunnels a CONNECT to an HTTPS origin through it; a client that
//     has not signed in gets the probe-resistance page, never a 407 (a CONNECT
//     gets the site's 405); a name the policy does not list gets no
//     certificate and no order; the status page lists the certificate.
//  2. Restarted with challenges [http-01]: the stored certificate is served
//     again without a new order; a second listed name gets its certificate by
//     http-01, answered on the door's plain listener (pebble sends an
//     origin-form GET with Host the name); a proxy request in absolute form
//     for the same path is the door's (here: sign in), not a challenge answer
//     (no challenge is pending then, so this only shows the door answers it).
//  3. Restarted with the reverse door too, with the same settings: a
//     handshake at the reverse door orders a certificate that pebble validates
//     on the forward TLS door (tls-alpn-01 port), and the forward names are
//     still served from storage.
func TestHTTPSProxyACMEWithPebble(t *testing.T) {
	curl := needCurl(t)
	w := newHTTPSProxyWorld(t)
	pb := startPebble(t, w.dir)
	w.write(t, "site.html", sitePage)
	pebbleRoot := w.write(t, "pebble-root.pem", string(pb.rootPEM))
	_, tlsPort, _ := net.SplitHostPort(pb.tlsAddr)
	reverseTLS := freeLoopback(t)
	policy := func(challenge string, withReverse bool) string {
		tlsKeys := fmt.Sprintf(`
    mode: acme
    email: admin@acme.test
    ca: %s
    ca_root: pebble-https-ca.pem
    names: [proxy.acme.test, proxy2.acme.test, app.acme.test]
    challenges: [%s]
    profile: default`, pb.directory, challenge)
		rev := ""
		if withReverse {
			rev = fmt.Sprintf(`reverse:
  tls_listen: ["%s"]
  tls:%s
  routes: [{name: site, pool: site}]
pools:
  site: {members: [{url: "%s"}]}
`, reverseTLS, tlsKeys, w.plain.URL)
		}
		return rev + fmt.Sprintf(`forward:
  listen: ["%s"]
  tls_listen: ["%s"]
  tls:%s
  connect_ports: [%s]
  auth: {htpasswd_file: htpasswd}
  tls_probe_resistance: {site: page, page_file: site.html}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
admin: {listen: "127.0.0.1:0", log: {path: access.log}}
`, pb.httpAddr, pb.tlsAddr, tlsKeys, w.originPort)
	}
	origin := "https://127.0.0.1:" + w.originPort + "/through"
	viaProxy := func(name string, extra ...string) curlResult {
		args := append([]string{"--max-time", "90", "--proxy", "https://" + name + ":" + tlsPort, "--proxy-cacert", pebbleRoot,
			"--resolve", name + ":" + tlsPort + ":127.0.0.1", "--cacert", w.originPEM}, extra...)
		return runCurl(t, curl, append(args, origin)...)
	}
	leafOf := func(name string) *x509.Certificate {
		t.Helper()
		conn, err := tls.Dial("tcp", pb.tlsAddr, &tls.Config{ServerName: name, RootCAs: pb.root})
		if err != nil {
			t.Fatalf("handshake for %s: %v", name, err)
		}
		defer conn.Close()
		leaf := conn.ConnectionState().PeerCertificates[0]
		if leaf.Issuer.CommonName != pb.intermediate.Subject.CommonName || leaf.CheckSignatureFrom(pb.intermediate) != nil {
			t.Fatalf("%s: certificate issued by %q, want pebble's intermediate %q", name, leaf.Issuer.CommonName, pb.intermediate.Subject.CommonName)
		}
		return leaf
	}

	// 1. tls-alpn-01 on the TLS door.
	p, running := startLogged(t, w.write(t, "policy.yaml", policy(certs.ChallengeTLSALPN01, false)))
	if r := viaProxy("proxy.acme.test", "--proxy-user", "alice:alice-pw"); r.connect != "200" || r.code != "200" || !strings.Contains(r.body, "secure origin: /through") {
		t.Fatalf("curl CONNECT through https://proxy.acme.test: connect %s, status %s, body %q\n%s", r.connect, r.code, r.body, r.headers)
	}
	first := leafOf("proxy.acme.test")
	if n := pb.orders(); n != 1 {
		t.Fatalf("pebble has %d orders, want 1", n)
	}
	w.logLine(t, `"method":"CONNECT","url":"127.0.0.1:`+w.originPort+`"`)
	// The status page lists the forward door's certificate.
	if st := getBody(t, "http://"+adminRE.FindStringSubmatch(running)[1]+"/status.json"); !strings.Contains(st, `"name":"proxy.acme.test","issuer":"`+pb.intermediate.Subject.CommonName+`"`) {
		t.Fatalf("status.json lacks proxy.acme.test from pebble:\n%s", st)
	}
	// Probe resistance with the ACME certificate: no credentials, no proxy.
	r := viaProxy("proxy.acme.test")
	if r.connect != "405" || strings.Contains(strings.ToLower(r.headers), "proxy-authenticate") || strings.Contains(r.headers, " 407") {
		t.Fatalf("CONNECT without credentials: connect %s, status %s, want the site's 405 and no proxy challenge\n%s", r.connect, r.code, r.headers)
	}
	site := runCurl(t, curl, "--max-time", "60", "--cacert", pebbleRoot, "--resolve", "proxy.acme.test:"+tlsPort+":127.0.0.1", "https://proxy.acme.test:"+tlsPort+"/")
	if site.code != "200" || site.body != sitePage {
		t.Fatalf("https://proxy.acme.test/ without credentials: %s %q, want the site", site.code, site.body)
	}
	if conn, err := tls.Dial("tcp", pb.tlsAddr, &tls.Config{ServerName: "other.acme.test", RootCAs: pb.root}); err == nil {
		conn.Close()
		t.Fatal("a handshake for an unlisted name succeeded")
	}
	if n := pb.orders(); n != 1 {
		t.Fatalf("pebble has %d orders after the probes and the unlisted name, want 1", n)
	}
	termProc(t, p)

	// 2. Restart: the stored certificate; http-01 on the plain listener.
	p, _ = startLogged(t, w.write(t, "policy.yaml", policy(certs.ChallengeHTTP01, false)))
	if again := leafOf("proxy.acme.test"); again.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("after the restart serial %v, want the stored %v", again.SerialNumber, first.SerialNumber)
	}
	if n := pb.orders(); n != 1 {
		t.Fatalf("pebble has %d orders after the restart, want 1", n)
	}
	if r := viaProxy("proxy2.acme.test", "--proxy-user", "alice:alice-pw"); r.connect != "200" || r.code != "200" || !strings.Contains(r.body, "secure origin: /through") {
		t.Fatalf("curl CONNECT through https://proxy2.acme.test: connect %s, status %s, body %q\n%s", r.connect, r.code, r.body, r.headers)
	}
	leafOf("proxy2.acme.test")
	if n := pb.orders(); n != 2 {
		t.Fatalf("pebble has %d orders, want 2", n)
	}
	p.waitFor(t, `msg="acme: certificate obtained" door=forward name=proxy2.acme.test`)
	// A proxy request in absolute form for a challenge path is the door's.
	abs := runCurl(t, curl, "--proxy", "http://"+pb.httpAddr, "http://proxy2.acme.test/.well-known/acme-challenge/abcdefghijklmnop")
	if abs.code != "407" {
		t.Fatalf("absolute-form challenge path through the plain door: %s %q, want the door's 407", abs.code, abs.body)
	}
	termProc(t, p)

	// 3. The reverse door with the same settings on another port: one source
	// for both. A handshake at the reverse door for app.acme.test orders its
	// certificate, and pebble validates it on the forward TLS door (the one
	// on its tls-alpn-01 port); the forward names are still served from
	// storage with no order.
	p, _ = startLogged(t, w.write(t, "policy.yaml", policy(certs.ChallengeTLSALPN01, true)))
	conn, err := tls.Dial("tcp", reverseTLS, &tls.Config{ServerName: "app.acme.test", RootCAs: pb.root})
	if err != nil {
		t.Fatalf("handshake at the reverse door for app.acme.test: %v", err)
	}
	if leaf := conn.ConnectionState().PeerCertificates[0]; leaf.CheckSignatureFrom(pb.intermediate) != nil {
		t.Fatalf("app.acme.test: certificate from %q, want pebble's", leaf.Issuer.CommonName)
	}
	conn.Close()
	if n := pb.orders(); n != 3 {
		t.Fatalf("pebble has %d orders, want 3", n)
	}
	if again := leafOf("proxy.acme.test"); again.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("with the reverse door, serial %v, want the stored %v", again.SerialNumber, first.SerialNumber)
	}
	p.waitFor(t, `msg="acme: certificate obtained" door=reverse name=app.acme.test`)
}

// startLogged runs the binary on policy until it logs that it runs; if it
// exits first, the test fails with everything it logged (ACME's listen
// addresses are fixed ports, which a busy machine may have taken meanwhile).
func startLogged(t *testing.T, policy string) (*proc, string) {
	t.Helper()
	p := startProc(t, "run", "--config", policy)
	var lines []string
	timeout := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("portcullis exited before it ran; its log:\n%s", strings.Join(lines, "\n"))
			}
			if strings.Contains(line, "portcullis running") {
				return p, line
			}
			lines = append(lines, line)
		case <-timeout:
			t.Fatalf("portcullis did not run in 60 s; its log:\n%s", strings.Join(lines, "\n"))
		}
	}
}
