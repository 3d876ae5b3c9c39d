package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// dialFrom opens a connection to addr from the loopback address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestForwardConnectionCaps: the forward door holds at most
// max_conns_per_client connections from one address (the next is closed at
// once, other addresses are still served) and at most max_conns in all (the
// next waits until one closes, then is served).
func TestForwardConnectionCaps(t *testing.T) {
	o := startOrigin(t, nil)
	p := startProxy(t, `
forward: {listen: ["127.0.0.1:0"], max_conns: 4, max_conns_per_client: 2}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
`, nil)
	get := "GET " + o.url() + "/x HTTP/1.1\r\nHost: " + o.addr() + "\r\n\r\n"
	served := func(c net.Conn, br *bufio.Reader) error {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, get); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return nil
	}
	a1, a2 := dialFrom(t, "127.0.0.1", p.fwd()), dialFrom(t, "127.0.0.1", p.fwd())
	if err := served(a1, bufio.NewReader(a1)); err != nil {
		t.Fatalf("first connection from 127.0.0.1: %v", err)
	}
	if err := served(a2, bufio.NewReader(a2)); err != nil {
		t.Fatalf("second connection from 127.0.0.1: %v", err)
	}
	a3 := dialFrom(t, "127.0.0.1", p.fwd())
	if err := served(a3, bufio.NewReader(a3)); err == nil {
		t.Fatal("a third connection from 127.0.0.1 was served, max_conns_per_client is 2")
	}
	b1 := dialFrom(t, "127.0.0.2", p.fwd())
	if err := served(b1, bufio.NewReader(b1)); err != nil {
		t.Fatalf("another address under its own cap: %v", err)
	}
	b2 := dialFrom(t, "127.0.0.2", p.fwd())
	if err := served(b2, bufio.NewReader(b2)); err != nil {
		t.Fatalf("second connection from 127.0.0.2: %v", err)
	}
	// Four open: the fifth waits in the backlog, unanswered…
	c1 := dialFrom(t, "127.0.0.3", p.fwd())
	c1r := bufio.NewReader(c1)
	io.WriteString(c1, get)
	c1.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := c1r.Peek(1); err == nil {
		t.Fatal("a fifth connection was answered, max_conns is 4")
	}
	// …until one closes.
	a1.Close()
	c1.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(c1r, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the waiting connection once one closed: %v %v", resp, err)
	}
}

// TestForwardConnectionCapFreedByTunnels: a CONNECT tunnel takes the socket
// over; its slot under max_conns is freed when the tunnel ends.
func TestForwardConnectionCapFreedByTunnels(t *testing.T) {
	o := startOrigin(t, nil)
	_, port, _ := net.SplitHostPort(o.addr())
	p := startProxy(t, `
forward: {listen: ["127.0.0.1:0"], max_conns: 1, connect_ports: [`+port+`]}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
`, nil)
	for i := range 3 {
		c := dialFrom(t, "127.0.0.1", p.fwd())
		c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		io.WriteString(c, "CONNECT "+o.addr()+" HTTP/1.1\r\nHost: "+o.addr()+"\r\n\r\n")
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("tunnel %d: %v %v", i, resp, err)
		}
		io.WriteString(c, "GET /x HTTP/1.1\r\nHost: "+o.addr()+"\r\nConnection: close\r\n\r\n")
		resp, err = http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("through tunnel %d: %v %v", i, resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		c.Close() // the next tunnel is served only once this one's slot is free
	}
}
