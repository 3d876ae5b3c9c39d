package engine

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/resolver/resolvertest"
	"golang.org/x/crypto/bcrypt"
)

// TestSignInExemptions runs the forward door with sign-in and
// forward.auth.exempt: a client in exempt.clients (127.0.0.2) and any client
// going to an exempt domain or its subdomains reach the origin without signing
// in, over plain HTTP and CONNECT (with a real TLS handshake through the
// tunnel); an exempt client's credentials are ignored (a rule for the group of
// the user it names does not match); everyone else is asked to sign in.
func TestSignInExemptions(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "origin "+r.Host+r.URL.Path)
	}))
	defer origin.Close()
	tlsOrigin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "tls origin")
	}))
	defer tlsOrigin.Close()
	_, httpPort, _ := net.SplitHostPort(origin.Listener.Addr().String())
	_, tlsPort, _ := net.SplitHostPort(tlsOrigin.Listener.Addr().String())
	up := resolvertest.New(3600, 60).Add(t,
		"updates.school.test. 300 IN A 127.0.0.1",
		"dl.updates.school.test. 300 IN A 127.0.0.1",
		"www.school.test. 300 IN A 127.0.0.1",
	).Start(t)
	dir := t.TempDir()
	h, err := bcrypt.GenerateFromPassword([]byte("alice-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "htpasswd"), "alice:"+string(h)+"\n")
	writeFile(t, filepath.Join(dir, "groups"), "teachers: alice\n")
	e := startOps(t, dir, fmt.Sprintf(`
forward:
  listen: ["127.0.0.1:0"]
  connect_ports: [%s]
  auth:
    htpasswd_file: htpasswd
    group_file: groups
    exempt:
      clients: ["127.0.0.2/32"]
      domains: [updates.school.test]
resolver: {upstreams: ["udp://%s"], egress: {allow: ["127.0.0.0/8"]}}
rules:
  - {name: teachers-only, group: [teachers], path: ["/t/*"], action: block}
`, tlsPort, up.Addr), nil)
	proxy := e.Addrs()["forward"][0].String()
	dialFrom := func(src string) *net.Dialer {
		return &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	}
	get := func(src, user, target string) (int, string) {
		t.Helper()
		pu := &url.URL{Scheme: "http", Host: proxy}
		if user != "" {
			pu.User = url.UserPassword(user, user+"-pw")
		}
		c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), DisableKeepAlives: true, DialContext: dialFrom(src).DialContext}}
		resp, err := c.Get(target)
		if err != nil {
			t.Fatalf("GET %s from %s: %v", target, src, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	site := func(host, path string) string { return "http://" + host + ":" + httpPort + path }
	for _, c := range []struct {
		src, user, target string
		code              int
		body              string
	}{
		{"127.0.0.1", "", site("www.school.test", "/"), http.StatusProxyAuthRequired, "sign in"},
		{"127.0.0.1", "alice", site("www.school.test", "/"), http.StatusOK, "origin www.school.test"},
		{"127.0.0.1", "alice", site("www.school.test", "/t/x"), http.StatusForbidden, "teachers-only"},
		{"127.0.0.1", "", site("updates.school.test", "/x"), http.StatusOK, "origin updates.school.test"},
		{"127.0.0.1", "", site("dl.updates.school.test", "/x"), http.StatusOK, "origin dl.updates.school.test"},
		{"127.0.0.1", "", site("notupdates.school.test", "/x"), http.StatusProxyAuthRequired, "sign in"},
		{"127.0.0.2", "", site("www.school.test", "/"), http.StatusOK, "origin www.school.test"},
		{"127.0.0.2", "alice", site("www.school.test", "/t/x"), http.StatusOK, "/t/x"}, // no user: not a teacher
	} {
		if code, body := get(c.src, c.user, c.target); code != c.code || !strings.Contains(body, c.body) {
			t.Errorf("GET %s from %s as %q: %d %.100q, want %d with %q", c.target, c.src, c.user, code, body, c.code, c.body)
		}
	}

	roots := x509.NewCertPool()
	roots.AddCert(tlsOrigin.Certificate())
	connect := func(src, host string) (int, string) {
		t.Helper()
		conn, err := dialFrom(src).Dial("tcp", proxy)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(conn, "CONNECT %s:%s HTTP/1.1\r\nHost: %s:%s\r\n\r\n", host, tlsPort, host, tlsPort)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil {
			t.Fatalf("CONNECT %s from %s: %v", host, src, err)
		}
		if resp.StatusCode != http.StatusOK {
			return resp.StatusCode, ""
		}
		// TLS to the origin through the tunnel (its certificate names example.com).
		tc := tls.Client(conn, &tls.Config{ServerName: "example.com", RootCAs: roots})
		fmt.Fprintf(tc, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host)
		r2, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil {
			t.Fatalf("GET through the tunnel to %s: %v", host, err)
		}
		defer r2.Body.Close()
		b, _ := io.ReadAll(r2.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		src, host string
		code      int
	}{
		{"127.0.0.1", "www.school.test", http.StatusProxyAuthRequired},
		{"127.0.0.1", "dl.updates.school.test", http.StatusOK},
		{"127.0.0.2", "www.school.test", http.StatusOK},
	} {
		code, body := connect(c.src, c.host)
		if code != c.code || (code == http.StatusOK && body != "tls origin") {
			t.Errorf("CONNECT %s from %s: %d %q, want %d", c.host, c.src, code, body, c.code)
		}
	}
}
