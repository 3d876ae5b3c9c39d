package engine

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestForwardUpstreamConnectionsPooled: requests the forward door relays from
// many client connections (each closed after one request) reach the origin on
// one kept upstream connection (internal/upstream's pool, keyed by host:port,
// dialed through the resolver's guard), and a response the strict parser
// refuses (Content-Length with Transfer-Encoding) is a 502, never relayed.
func TestForwardUpstreamConnectionsPooled(t *testing.T) {
	var accepts atomic.Int64
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %s", b)
	}))
	origin.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			accepts.Add(1)
		}
	}
	origin.Start()
	t.Cleanup(origin.Close)
	e := runEngine(t, `
forward: {listen: ["127.0.0.1:0"]}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
`)
	proxy := e.Addrs()["forward"][0].String()
	const n = 12
	for i := range n {
		// A POST with a body (the forward lane hands those on), on a
		// client connection of its own.
		c, err := net.Dial("tcp", proxy)
		if err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("n=%d", i)
		fmt.Fprintf(c, "POST %s/form HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
			origin.URL, origin.Listener.Addr(), len(body), body)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		c.Close()
		if resp.StatusCode != 200 || string(b) != "got "+body {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
	}
	if got := accepts.Load(); got != 1 {
		t.Fatalf("the origin accepted %d connections for %d requests from %d client connections, want 1", got, n, n)
	}

	// The strict response parser is the door's.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nsmugg\r\n0\r\n\r\n")
				}
			}()
		}
	}()
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST http://%s/x HTTP/1.1\r\nHost: %s\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx", ln.Addr(), ln.Addr())
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadGateway || strings.Contains(string(b), "smugg") {
		t.Fatalf("CL+TE response relayed: %d %q", resp.StatusCode, b)
	}
}
