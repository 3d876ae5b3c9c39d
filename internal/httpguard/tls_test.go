package httpguard

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestTLSProtocols: through ServeTLS, HTTP/2 clients are served over HTTP/2
// and HTTP/1.1 clients over HTTP/1.1, both with Request.TLS set.
func TestTLSProtocols(t *testing.T) {
	s := startServer(t, true)
	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{TLSClientConfig: s.tls.Clone(), ForceAttemptHTTP2: h2}
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		resp, err := c.Get("https://" + s.addr + "/p")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		want := "HTTP/1.1"
		if h2 {
			want = "HTTP/2.0"
		}
		if resp.Proto != want || !strings.Contains(string(body), "tls=true proto="+want) {
			t.Fatalf("h2=%v: %s %q", h2, resp.Proto, body)
		}
	}
}

// TestTLSPlainClient: plain HTTP on the TLS port gets net/http's 400.
func TestTLSPlainClient(t *testing.T) {
	s := startServer(t, true)
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, get)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// TestTLSListenerClose: closing the listener ends a handshake in progress
// (a client that never sends its hello) at once.
func TestTLSListenerClose(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := selfSigned(t)
	ln := NewTLSListener(inner, &tls.Config{Certificates: []tls.Certificate{cert}}, time.Hour, nil)
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	accepted := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		accepted <- err
	}()
	closed := make(chan struct{})
	go func() { ln.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the handshake")
	}
	if err := <-accepted; err == nil {
		t.Fatal("Accept returned a connection after Close")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the pending connection was not closed")
	}
}
