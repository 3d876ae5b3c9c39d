package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/resolver/resolvertest"
)

// connect sends CONNECT target through the proxy at addr and returns the status.
func connect(t testing.TB, addr, target string, extra ...string) (int, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(15 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", target, target, strings.Join(extra, ""))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return 0, nil
	}
	if resp.StatusCode != 200 {
		io.Copy(io.Discard, resp.Body)
		c.Close()
		return resp.StatusCode, nil
	}
	c.SetDeadline(time.Time{})
	t.Cleanup(func() { c.Close() })
	return resp.StatusCode, c
}

// TestNeverAnOpenProxy: a client outside allow_clients is refused on every path —
// absolute-form HTTP, CONNECT, and the proxy's own local pages (PAC) — and nothing
// reaches the origin.
func TestNeverAnOpenProxy(t *testing.T) {
	o := startOrigin(t, nil)
	_, port, _ := net.SplitHostPort(o.addr())
	p := startProxy(t, fmt.Sprintf(`
forward:
  listen: ["127.0.0.1:0"]
  allow_clients: ["192.0.2.0/24"]   # not the test's 127.0.0.1
  connect_ports: [%s]
resolver: {egress: {allow: ["127.0.0.0/8"]}}
`, port), nil)
	for _, raw := range []string{
		"GET " + o.url() + "/x HTTP/1.1\r\nHost: " + o.addr() + "\r\nConnection: close\r\n\r\n",
		"POST " + o.url() + "/x HTTP/1.1\r\nHost: " + o.addr() + "\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
		"GET /proxy.pac HTTP/1.1\r\nHost: " + p.fwd() + "\r\nConnection: close\r\n\r\n",
		"GET /wpad.dat HTTP/1.1\r\nHost: " + p.fwd() + "\r\nConnection: close\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: " + p.fwd() + "\r\nConnection: close\r\n\r\n",
	} {
		resps := rawExchange(t, p.fwd(), raw)
		if len(resps) != 1 || resps[0].StatusCode != http.StatusForbidden {
			t.Errorf("%q: statuses %v, want 403", strings.SplitN(raw, "\r\n", 2)[0], statuses(resps))
		}
	}
	if code, _ := connect(t, p.fwd(), o.addr()); code != http.StatusForbidden {
		t.Errorf("CONNECT: %d, want 403", code)
	}
	if n := o.connCount(); n != 0 {
		t.Errorf("origin accepted %d connections from a refused client", n)
	}
}

// TestEgressGuardRefusesInternalTargets: with no egress allowance, every spelling of
// a loopback, private, link-local or metadata address — and names that resolve to
// one — is refused for HTTP and CONNECT, and the loopback origin sees nothing.
func TestEgressGuardRefusesInternalTargets(t *testing.T) {
	o := startOrigin(t, nil)
	_, port, _ := net.SplitHostPort(o.addr())
	dns := resolvertest.New(60, 60).Add(t,
		"rebind.test. 60 IN A 127.0.0.1",
		"meta.test. 60 IN A 169.254.169.254",
		"private.test. 60 IN A 10.1.2.3",
		"six.test. 60 IN AAAA ::1",
		"mapped.test. 60 IN AAAA ::ffff:127.0.0.1",
	).Start(t)
	p := startProxy(t, fmt.Sprintf(`
forward:
  listen: ["127.0.0.1:0"]
  connect_ports: [%s, 80]
  dial_timeout: 2s
resolver:
  upstreams: ["udp://%s"]
`, port, dns.Addr), nil)
	client := p.client(t)
	hosts := []string{
		"127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "0x7f.0.0.1", "017700000001",
		"[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[0:0:0:0:0:ffff:127.0.0.1]", "[::127.0.0.1]",
		"localhost", "localhost.", "LOCALHOST", "rebind.test", "rebind.test.", "six.test", "mapped.test",
		"meta.test", "private.test", "0.0.0.0", "0", "[::]",
	}
	metaHosts := []string{"169.254.169.254", "10.0.0.1", "192.168.1.1", "100.64.0.1", "[fd00::1]", "[fe80::1]"}
	refused := 0
	// check wants 403 from the egress guard; names our resolver does not know
	// (localhost) cannot be resolved at all, so 502 is right for them too.
	check := func(what string, code int) {
		t.Helper()
		if code == http.StatusForbidden || code == http.StatusBadGateway && strings.Contains(strings.ToLower(what), "localhost") {
			refused++
			return
		}
		t.Errorf("%s: %d, want 403 from the egress guard", what, code)
	}
	for _, h := range hosts {
		u := "http://" + h + ":" + port + "/ssrf"
		resp, err := client.Get(u)
		if err != nil {
			t.Errorf("GET %s: %v", u, err)
			continue
		}
		bodyOf(resp)
		resp.Body.Close()
		check("GET "+u, resp.StatusCode)
		code, _ := connect(t, p.fwd(), h+":"+port)
		check("CONNECT "+h, code)
	}
	for _, h := range metaHosts { // nothing listens there: the guard must refuse before dialing
		start := time.Now()
		resp, err := client.Get("http://" + h + "/latest/meta-data/")
		if err != nil {
			t.Errorf("GET %s: %v", h, err)
			continue
		}
		bodyOf(resp)
		resp.Body.Close()
		check("GET "+h, resp.StatusCode)
		if d := time.Since(start); d > time.Second {
			t.Errorf("GET %s took %v: the guard should refuse without dialing", h, d)
		}
		code, _ := connect(t, p.fwd(), h+":80")
		check("CONNECT "+h, code)
	}
	if n := o.connCount(); n != 0 {
		t.Errorf("origin accepted %d connections through the egress guard", n)
	}
	t.Logf("%d internal targets refused", refused)
}

// TestRedirectsNotFollowed: the proxy hands a redirect to the client; it never
// fetches the Location itself.
func TestRedirectsNotFollowed(t *testing.T) {
	target := startOrigin(t, nil)
	o := startOrigin(t, func(c net.Conn, r *http.Request) bool {
		fmt.Fprintf(c, "HTTP/1.1 302 Found\r\nLocation: %s/internal\r\nContent-Length: 0\r\n\r\n", target.url())
		return true
	})
	p := startProxy(t, loopbackPolicy, nil)
	resp, err := p.client(t).Get(o.url() + "/go")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != target.url()+"/internal" {
		t.Fatalf("got %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := target.connCount(); n != 0 {
		t.Fatalf("the proxy followed the redirect (%d connections)", n)
	}
}

// TestSecretsNeverLogged: credentials and cookies sent by a client reach neither the
// access log nor any error or block page, for allowed, blocked and failed requests.
func TestSecretsNeverLogged(t *testing.T) {
	o := startOrigin(t, nil)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close() // connections to it are refused: an error page
	p := startProxy(t, `
forward:
  listen: ["127.0.0.1:0"]
resolver: {egress: {allow: ["127.0.0.0/8"]}}
admin:
  listen: "127.0.0.1:0"
  log: {path: $DIR/access.log}
rules:
  - {name: no-secret-path, path: ["/blocked*"], action: block, reason: blocked for the test}
`, nil, "forward", "admin")
	const (
		cookie = "SESSIONSECRET4242"
		auth   = "Basic dXNlcjpQQVNTV09SRDQyNDI=" // user:PASSWORD4242
		bearer = "BEARERTOKEN4242"
	)
	secrets := []string{cookie, "dXNlcjpQQVNTV09SRDQyNDI", "PASSWORD4242", bearer, "URLPASS4242"}
	targets := []string{o.url() + "/ok?x=1", o.url() + "/blocked", "http://" + deadAddr + "/down"}
	for _, u := range targets {
		raw := "GET " + strings.Replace(u, "http://", "http://user:URLPASS4242@", 1) + " HTTP/1.1\r\nHost: " + strings.TrimPrefix(strings.SplitN(u, "/", 4)[2], "") +
			"\r\nProxy-Authorization: " + auth + "\r\nAuthorization: Bearer " + bearer + "\r\nCookie: sid=" + cookie + "\r\nConnection: close\r\n\r\n"
		resps := rawExchange(t, p.fwd(), raw)
		if len(resps) != 1 {
			t.Fatalf("%s: %d responses", u, len(resps))
		}
		page := bodyOf(resps[0]) + fmt.Sprint(resps[0].Header)
		for _, s := range secrets {
			if strings.Contains(page, s) {
				t.Errorf("%s (%d): response shows secret %q", u, resps[0].StatusCode, s)
			}
		}
	}
	// The origin never sees the proxy credentials (hop-by-hop).
	for _, r := range o.requests() {
		if r.Header.Get("Proxy-Authorization") != "" {
			t.Errorf("origin received Proxy-Authorization")
		}
	}
	logPath := filepath.Join(p.dir, "access.log")
	var log string
	waitFor(t, 5*time.Second, "three access-log lines", func() bool {
		b, _ := os.ReadFile(logPath)
		log = string(b)
		return strings.Count(log, "\n") >= len(targets)
	})
	for _, s := range secrets {
		if strings.Contains(log, s) {
			t.Errorf("access log contains secret %q:\n%s", s, log)
		}
	}
}
