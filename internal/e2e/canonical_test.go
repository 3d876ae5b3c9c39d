package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/resolver/resolvertest"
)

// sink is a TCP server on one loopback address that counts the connections it
// accepts and answers each request head with a 200 naming itself.
type sink struct {
	name  string
	ln    net.Listener
	conns atomic.Int64
	bytes atomic.Int64 // received
}

// countingReader adds what it reads to n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func startSink(t *testing.T, name, addr string) *sink {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	s := &sink{name: name, ln: ln}
	var mu sync.Mutex
	var open []net.Conn
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(countingReader{c, &s.bytes})); err != nil {
					return
				}
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(s.name), s.name)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

func (s *sink) port() string { _, p, _ := net.SplitHostPort(s.ln.Addr().String()); return p }

// spellings are the ways of writing name that an attacker tried: the resolver
// reaches name through each of them.
func spellings(name string) map[string]string {
	full := strings.Map(func(r rune) rune {
		if r >= '!' && r <= '~' && r != '.' {
			return r - '!' + '！' // the full-width form
		}
		return r
	}, name)
	var esc strings.Builder
	for i := 0; i < len(full); i++ {
		if full[i] >= 0x80 {
			fmt.Fprintf(&esc, "%%%02X", full[i])
		} else {
			esc.WriteByte(full[i])
		}
	}
	return map[string]string{
		"two trailing dots":          name + "..",
		"percent-encoded full-width": esc.String(), // net/url decodes it in the request line
		"full-width":                 full,
		"ideographic dots":           strings.ReplaceAll(name, ".", "。"),
		"upper case, dot":            strings.ToUpper(name) + ".",
	}
}

// TestOneCanonicalHost: every spelling of a blocked name or address that the
// resolver and dialer would take to the blocked site is blocked by host:,
// domain:, glob: and list rules and by SafeSearch, through the forward door's
// plain HTTP and CONNECT, and the blocked site never gets a connection. A
// spelling that does not normalise is refused (400, or 403 for CONNECT).
func TestOneCanonicalHost(t *testing.T) {
	site := startSink(t, "blocked-site", "127.0.0.1:0") // every name below resolves here
	port := site.port()
	byHostIP := startSink(t, "host-rule-address", "127.0.0.2:0")
	byGlobIP := startSink(t, "glob-rule-address", "127.0.0.3:0")
	byListIP := startSink(t, "list-address", "127.0.0.4:0")
	safe := startSink(t, "safesearch", "127.0.0.5:"+port)
	startSink(t, "allowed", "127.0.0.6:"+port)
	up := resolvertest.New(60, 60)
	for _, n := range []string{"blocked-host.test", "www.blocked-domain.test", "blocked-glob.test", "blocked-list.test", "www.google.com"} {
		up.Add(t, n+". 60 IN A 127.0.0.1")
	}
	up.Add(t, "forcesafesearch.google.com. 60 IN A 127.0.0.5", "allowed.test. 60 IN A 127.0.0.6")
	up.Start(t)
	p := startProxy(t, fmt.Sprintf(`
forward:
  listen: ["127.0.0.1:0"]
  connect_ports: [%s, %s, %s, %s]
  dial_timeout: 2s
  response_header_timeout: 5s
  safesearch: {google: true}
resolver:
  upstreams: ["udp://%s"]
  egress: {allow: ["127.0.0.0/8"]}
lists: {bl: {format: domains, path: block.txt}}
rules:
  - {name: by-host, host: [blocked-host.test, 127.0.0.2], action: block}
  - {name: by-domain, domain: [blocked-domain.test], action: block}
  - {name: by-glob, glob: ["blocked-glob.*", "127.0.0.3"], action: block}
  - {name: by-list, list: [bl], action: block}
default: allow
`, port, byHostIP.port(), byGlobIP.port(), byListIP.port(), up.Addr),
		map[string]string{"block.txt": "blocked-list.test\n127.0.0.4\n"})

	type target struct{ authority, rule string }
	var targets []target
	for name, rule := range map[string]string{
		"blocked-host.test": "by-host", "www.blocked-domain.test": "by-domain",
		"blocked-glob.test": "by-glob", "blocked-list.test": "by-list",
		"www.google.com": "safesearch",
	} {
		for how, s := range spellings(name) {
			targets = append(targets, target{s + ":" + port, rule + ", " + how})
		}
	}
	for _, s := range []*sink{byHostIP, byGlobIP, byListIP} {
		a := s.ln.Addr().(*net.TCPAddr)
		targets = append(targets, target{fmt.Sprintf("[::ffff:%s]:%d", a.IP, a.Port), s.name + ", IPv4-mapped IPv6"})
	}

	// The set-up works: an allowed name is reached, and the canonical
	// spelling of a blocked one is blocked.
	if rs := rawExchange(t, p.fwd(), "GET http://allowed.test:"+port+"/ HTTP/1.1\r\nHost: allowed.test:"+port+"\r\nConnection: close\r\n\r\n"); len(rs) != 1 || rs[0].StatusCode != 200 || bodyOf(rs[0]) != "allowed" {
		t.Fatalf("an allowed name was not reached: %v", rs)
	}
	for _, tg := range targets {
		t.Run(tg.rule, func(t *testing.T) {
			host := tg.authority // the Host field: the target itself unless it holds escapes, which a Host field may not
			if strings.Contains(host, "%") {
				host = "allowed.test:" + port
			}
			plain := rawExchange(t, p.fwd(), "GET http://"+tg.authority+"/ HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
			if len(plain) == 0 {
				t.Fatalf("GET http://%s/: no response", tg.authority)
			}
			r := plain[0]
			body := bodyOf(r)
			switch {
			case strings.HasSuffix(tg.rule, "IPv4-mapped IPv6") || !strings.HasPrefix(tg.rule, "safesearch"):
				if r.StatusCode != http.StatusForbidden && r.StatusCode != http.StatusBadRequest {
					t.Errorf("GET http://%s/: %d %q, want the block page (403) or 400", tg.authority, r.StatusCode, body)
				}
			default: // SafeSearch: sent to the enforcement address, or refused
				if !(r.StatusCode == 200 && body == "safesearch") && r.StatusCode != http.StatusBadRequest {
					t.Errorf("GET http://%s/: %d %q, want SafeSearch's address or 400", tg.authority, r.StatusCode, body)
				}
			}
			c, _ := connect(t, p.fwd(), tg.authority)
			if strings.HasPrefix(tg.rule, "safesearch") {
				if c != 200 && c != http.StatusForbidden && c != http.StatusBadRequest {
					t.Errorf("CONNECT %s: %d, want a tunnel to SafeSearch's address, 403 or 400", tg.authority, c)
				}
			} else if c != http.StatusForbidden && c != http.StatusBadRequest {
				t.Errorf("CONNECT %s: %d, want 403 or 400", tg.authority, c)
			}
		})
	}
	for _, s := range []*sink{site, byHostIP, byGlobIP, byListIP} {
		if n := s.conns.Load(); n != 0 {
			t.Errorf("%s: reached %d times through a spelling the policy did not recognise", s.name, n)
		}
	}
	if safe.conns.Load() == 0 {
		t.Errorf("SafeSearch's address was never reached: the test proves nothing about SafeSearch")
	}
}

// TestSafeSearchOnTheServerName: a CONNECT to an IP literal whose ClientHello
// names www.google.com is decided on the server name, as the rules are: the
// tunnel goes to SafeSearch's address, and the unrestricted address the
// CONNECT named never sees the ClientHello.
func TestSafeSearchOnTheServerName(t *testing.T) {
	site := startSink(t, "unrestricted", "127.0.0.1:0")
	port := site.port()
	safe := startSink(t, "safesearch", "127.0.0.5:"+port)
	up := resolvertest.New(60, 60)
	up.Add(t, "forcesafesearch.google.com. 60 IN A 127.0.0.5")
	up.Start(t)
	p := startProxy(t, fmt.Sprintf(`
forward:
  listen: ["127.0.0.1:0"]
  connect_ports: [%s]
  dial_timeout: 2s
  safesearch: {google: true}
resolver:
  upstreams: ["udp://%s"]
  egress: {allow: ["127.0.0.0/8"]}
default: allow
`, port, up.Addr), nil)
	code, c := connect(t, p.fwd(), "127.0.0.1:"+port)
	if code != 200 {
		t.Fatalf("CONNECT: %d", code)
	}
	// The handshake fails (the sinks do not speak TLS); the ClientHello is what counts.
	go tls.Client(c, &tls.Config{ServerName: "www.google.com", InsecureSkipVerify: true}).Handshake()
	waitFor(t, 10*time.Second, "the ClientHello at an address", func() bool {
		return safe.bytes.Load() > 0 || site.bytes.Load() > 0
	})
	if n := site.bytes.Load(); n != 0 {
		t.Errorf("the unrestricted address got %d bytes of the tunnel to www.google.com", n)
	}
	if safe.bytes.Load() == 0 {
		t.Errorf("SafeSearch's address got nothing")
	}
}

// TestObsFoldRefused: a request with an obsolete line folding (RFC 9112 §5.2)
// in any field is answered 400 and the connection closed, as nginx does, on
// the forward and the reverse door, as the first request of a connection and
// as the second on a kept connection; the origin sees only the request
// before it.
func TestObsFoldRefused(t *testing.T) {
	o := startOrigin(t, nil)
	fwd := startProxy(t, loopbackPolicy, nil)
	rev := startProxy(t, reversePolicy(o.url()), nil, "reverse")
	for _, door := range []struct{ name, addr, prefix, host string }{
		{"forward", fwd.fwd(), "http://" + o.addr(), o.addr()},
		{"reverse", rev.addrs["reverse"], "", "site.test"},
	} {
		for _, fold := range []string{"X-Folded: one\r\n two\r\n", "X-Folded: one\r\n\ttwo\r\n", "User-Agent: a\r\n b\r\n"} {
			first := "GET " + door.prefix + "/first HTTP/1.1\r\nHost: " + door.host + "\r\n\r\n"
			folded := "GET " + door.prefix + "/folded HTTP/1.1\r\nHost: " + door.host + "\r\n" + fold + "\r\n"
			if rs := rawExchange(t, door.addr, folded); len(rs) != 1 || rs[0].StatusCode != http.StatusBadRequest {
				t.Errorf("%s, %q first on its connection: statuses %v, want one 400", door.name, fold, statuses(rs))
			}
			rs := rawExchange(t, door.addr, first+folded)
			if len(rs) != 2 || rs[0].StatusCode != 200 || rs[1].StatusCode != http.StatusBadRequest {
				t.Errorf("%s, %q on a kept connection: statuses %v, want 200 then 400", door.name, fold, statuses(rs))
			}
		}
	}
	for _, r := range o.requests() {
		if r.Target != "/first" {
			t.Errorf("the origin received %s %s", r.Method, r.Target)
		}
	}
}
