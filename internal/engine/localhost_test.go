package engine

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/portcullis/portcullis/internal/resolver/resolvertest"
)

// TestLocalhostResolvesWithUpstreams: with resolver.upstreams set to a resolver
// that knows nothing of localhost (public resolvers answer it NXDOMAIN), the
// forward door still resolves localhost to the loopback addresses, as /etc/hosts
// does (RFC 6761), and reaches a local origin when the egress guard allows
// loopback; without that allowance the guard still refuses it with 403. The DNS
// door answers localhost the same way, without asking the upstream.
func TestLocalhostResolvesWithUpstreams(t *testing.T) {
	up := resolvertest.New(60, 60).Start(t) // an empty zone: every name is NXDOMAIN
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "local origin")
	}))
	defer origin.Close()
	_, port, _ := net.SplitHostPort(origin.Listener.Addr().String())
	target := "http://localhost:" + port + "/"

	get := func(proxy string) (int, string) {
		t.Helper()
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(mustURL("http://" + proxy))}}
		resp, err := c.Get(target)
		if err != nil {
			t.Fatalf("GET %s: %v", target, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	e := runEngine(t, fmt.Sprintf(`
forward: {listen: ["127.0.0.1:0"]}
resolver:
  upstreams: ["udp://%s"]
  egress: {allow: ["127.0.0.0/8", "::1/128"]}
dns: {listen: ["127.0.0.1:0"]}
`, up.Addr))
	if code, body := get(e.Addrs()["forward"][0].String()); code != 200 || body != "local origin" {
		t.Fatalf("GET %s through the proxy: %d %q, want 200 from the local origin", target, code, body)
	}
	for _, c := range []struct {
		qtype uint16
		want  string
	}{{dns.TypeA, "127.0.0.1"}, {dns.TypeAAAA, "::1"}} {
		m := new(dns.Msg)
		m.SetQuestion("localhost.", c.qtype)
		r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, e.Addrs()["dns"][0].String())
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Answer) != 1 || !strings.HasSuffix(r.Answer[0].String(), "\t"+c.want) {
			t.Errorf("DNS door, localhost %s: %v", dns.TypeToString[c.qtype], r)
		}
	}
	if n := up.Count("localhost", dns.TypeA, "") + up.Count("localhost", dns.TypeAAAA, ""); n != 0 {
		t.Errorf("the upstream was asked for localhost %d times", n)
	}

	guarded := runEngine(t, fmt.Sprintf(`
forward: {listen: ["127.0.0.1:0"]}
resolver: {upstreams: ["udp://%s"]}
`, up.Addr))
	if code, _ := get(guarded.Addrs()["forward"][0].String()); code != 403 {
		t.Fatalf("without egress.allow: %d, want 403 (the egress guard refuses loopback)", code)
	}
}
