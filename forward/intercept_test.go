package forward

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// serveIntercepted hands a loopback connection to ServeInterceptedTLS as an
// HTTPS intercept listener would, with dst as its original destination, and
// returns the client's end.
func serveIntercepted(t *testing.T, p *Proxy, dst netip.AddrPort) net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	local := netip.MustParseAddrPort(c.LocalAddr().String())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.ServeInterceptedTLS(context.Background(), &interceptConn{Conn: c, info: intercepted{dst: dst, local: local}})
	}()
	t.Cleanup(func() { _ = client.Close(); <-done })
	return client
}

// TestInterceptedTLSThroughTheTunnelCore: a redirected TLS connection is
// decided on its server name and, allowed, relayed to the original destination
// with nothing written to the client before the origin's own bytes (the TLS
// handshake succeeds against the origin's certificate); blocked by name, or
// naming a host that does not resolve to the destination, it is closed
// without a byte. Each gets one access-log entry.
func TestInterceptedTLSThroughTheTunnelCore(t *testing.T) {
	env := newInspectEnv(t, originHandler())
	dst := netip.MustParseAddrPort(env.origin.Listener.Addr().String())
	opts := env.proxyOpts(t, hostPolicy("no-blocked", "blocked.test"), nil)
	opts.Lookup = func(_ context.Context, host string) ([]netip.Addr, error) {
		if host == "elsewhere.test" {
			return []netip.Addr{netip.MustParseAddr("192.0.2.1")}, nil
		}
		return []netip.Addr{dst.Addr()}, nil
	}
	opts.CA = nil
	rec := newLogRecorder()
	opts.Log = rec
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	roots := env.origin.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	get := func(name string) (string, error) {
		c := serveIntercepted(t, p, dst)
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		tc := tls.Client(c, &tls.Config{ServerName: name, RootCAs: roots, InsecureSkipVerify: name != "example.com"})
		if _, err := io.WriteString(tc, "GET /page HTTP/1.1\r\nHost: "+name+"\r\nConnection: close\r\n\r\n"); err != nil {
			return "", err
		}
		resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if body, err := get("example.com"); err != nil || body != "origin says hi to /page" {
		t.Fatalf("allowed: %q %v", body, err)
	}
	if e := rec.next(t); e.Action != "allow" || e.Status != 200 || e.BytesOut == 0 || e.URL != "example.com:"+env.port {
		t.Errorf("allowed: entry %+v", e)
	}
	for _, tc := range []struct{ name, rule string }{{"blocked.test", "no-blocked"}, {"elsewhere.test", "host_verify"}} {
		if body, err := get(tc.name); err == nil {
			t.Errorf("%s: got %q, want the connection closed", tc.name, body)
		}
		if e := rec.next(t); e.Action != "block" || e.Rule != tc.rule || e.BytesOut != 0 {
			t.Errorf("%s: entry %+v", tc.name, e)
		}
	}
}
