package forward

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/portcullis/portcullis/internal/tunnel"
)

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1, 2, 3})
	_, _ = r.Read(b)
	return b
}

func TestConnectToTLSOriginByteForByte(t *testing.T) {
	payload := randomBytes(3 << 20)
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			sum := sha256.Sum256(b)
			_, _ = w.Write(sum[:])
			return
		}
		_, _ = w.Write(payload)
	}))
	defer origin.Close()
	tp := startProxy(t, Options{Config: connectPorts(t, origin.URL)})
	tr := origin.Client().Transport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyURL(tp.url)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	resp, err := c.Get(origin.URL + "/big")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("download through tunnel differs: %d bytes, err %v", len(got), err)
	}
	resp, err = c.Post(origin.URL+"/up", "application/octet-stream", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	sum, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := sha256.Sum256(payload)
	if !bytes.Equal(sum, want[:]) {
		t.Fatal("upload through tunnel differs")
	}
	tr.CloseIdleConnections()
	e := tp.log.next(t)
	if e.Method != "CONNECT" || e.URL != origin.Listener.Addr().String() || e.Status != 200 ||
		e.BytesOut < int64(len(payload)) || e.BytesIn < int64(len(payload)) || e.Action != "allow" {
		t.Fatalf("tunnel log %+v", e)
	}
}

func TestConnectEarlyBytesReplayed(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		c, err := echo.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	tp := startProxy(t, Options{Config: connectPorts(t, "tcp://"+echo.Addr().String())})
	// The first tunnel bytes travel in the same write as the CONNECT request.
	resp, c, br := tp.rawRequest(t, "CONNECT "+echo.Addr().String()+" HTTP/1.1\r\nHost: x\r\n\r\nearly-bytes\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	line, err := br.ReadString('\n')
	if err != nil || line != "early-bytes\n" {
		t.Fatalf("echo %q %v", line, err)
	}
	_ = c
}

func TestConnectPortNotAllowed(t *testing.T) {
	tp := startProxy(t, Options{})
	resp, c, _ := tp.rawRequest(t, "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get(ReasonHeader), "port 22") ||
		resp.Header.Get(RuleHeader) != "connect_ports" || !bytes.Contains(body, []byte("port 22")) {
		t.Fatalf("status %d headers %v body %q", resp.StatusCode, resp.Header, body)
	}
	// The proxy closes the connection after refusing.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("connection still open after refusal: %d %v", n, err)
	}
}

func TestConnectBlockedByPolicy(t *testing.T) {
	tp := startProxy(t, Options{Policy: hostPolicy("no-social", "social.example")})
	resp, _, _ := tp.rawRequest(t, "CONNECT www.social.example:443 HTTP/1.1\r\nHost: www.social.example:443\r\n\r\n")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 403 || resp.Header.Get(ReasonHeader) != "Blocked for the test <social.example>" ||
		resp.Header.Get(RuleHeader) != "no-social" || !bytes.Contains(body, []byte("Rule: no-social")) {
		t.Fatalf("status %d headers %v body %q", resp.StatusCode, resp.Header, body)
	}
	if e := tp.log.next(t); e.Method != "CONNECT" || e.Action != "block" || e.Status != 403 || e.URL != "www.social.example:443" {
		t.Fatalf("log %+v", e)
	}
}

func TestConnectDialFailureIs502WithoutDetails(t *testing.T) {
	dead := freePort(t)
	tp := startProxy(t, Options{Config: connectPorts(t, "tcp://"+dead)})
	resp, _, _ := tp.rawRequest(t, "CONNECT "+dead+" HTTP/1.1\r\nHost: "+dead+"\r\n\r\n")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 502 || bytes.Contains(body, []byte("refused")) || bytes.Contains(body, []byte("127.0.0.1")) {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
}

// startEcho serves a TCP echo on loopback until the test ends. It copies through a
// small buffer: io.Copy(c, c) would splice and hold pipes, which would spoil
// TestIdleTunnelsHoldOnlyTheirSockets's fd count.
func startEcho(t *testing.T) net.Listener { return startEchoOn(t, "127.0.0.1:0") }

// startEchoOn starts an echo server on addr.
func startEchoOn(t *testing.T, addr string) net.Listener {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, 512))
			}()
		}
	}()
	return ln
}

func TestTunnelIdleTimeoutClosesBothSides(t *testing.T) {
	echo := startEcho(t)
	cfg := connectPorts(t, "tcp://"+echo.Addr().String())
	cfg.TunnelIdleTimeout = 300 * time.Millisecond
	tp := startProxy(t, Options{Config: cfg})
	resp, c, br := tp.rawRequest(t, "CONNECT "+echo.Addr().String()+" HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// Active traffic for longer than the idle timeout keeps the tunnel open.
	start := time.Now()
	for time.Since(start) < 700*time.Millisecond {
		if _, err := io.WriteString(c, "ping\n"); err != nil {
			t.Fatal(err)
		}
		if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
			t.Fatalf("echo %q %v after %v", line, err, time.Since(start))
		}
	}
	// Then silence: the proxy closes the tunnel within 1.5× the timeout (+ slack).
	idleStart := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := br.ReadByte()
	if err == nil || errors.Is(err, context.DeadlineExceeded) || time.Since(idleStart) > 3*time.Second {
		t.Fatalf("idle tunnel not closed: err %v after %v", err, time.Since(idleStart))
	}
	if e := tp.log.next(t); e.BytesIn == 0 || e.BytesIn != e.BytesOut {
		t.Fatalf("log %+v", e)
	}
}

func TestTunnelsShutdownClosesOpenTunnels(t *testing.T) {
	echo := startEcho(t)
	tunnels := tunnel.NewSet()
	tp := startProxy(t, Options{Config: connectPorts(t, "tcp://"+echo.Addr().String()), Tunnels: tunnels})
	resp, c, br := tp.rawRequest(t, "CONNECT "+echo.Addr().String()+" HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	_, _ = io.WriteString(c, "x\n")
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if n := tunnels.Len(); n != 1 {
		t.Fatalf("Len %d, want 1", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := tunnels.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("tunnel still open after Shutdown")
	}
	deadline := time.Now().Add(5 * time.Second)
	for tunnels.Len() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling an external effect, with a deadline
	}
	if tunnels.Len() != 0 {
		t.Fatalf("Len %d after shutdown", tunnels.Len())
	}
	// New tunnels are refused after Shutdown.
	resp, _, _ = tp.rawRequest(t, "CONNECT "+echo.Addr().String()+" HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 503 {
		t.Fatalf("after shutdown: status %d", resp.StatusCode)
	}
}

func TestConnectTLSHandshakeThroughTunnel(t *testing.T) {
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer origin.Close()
	tp := startProxy(t, Options{Config: connectPorts(t, origin.URL)})
	resp, c, br := tp.rawRequest(t, "CONNECT "+origin.Listener.Addr().String()+" HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 200 || br.Buffered() != 0 {
		t.Fatalf("status %d, %d stray bytes", resp.StatusCode, br.Buffered())
	}
	pool := origin.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	tc := tls.Client(c, &tls.Config{RootCAs: pool, ServerName: "example.com"})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake through tunnel: %v", err)
	}
	_ = tc.Close()
}

// TestConnectOverHTTP2Stream: a CONNECT sent on an HTTP/2 stream (RFC 9113
// §8.5) to the door served over TLS with HTTP/2 is answered 200 and the stream
// carries the tunnel both ways, through the same core (logged, counted).
func TestConnectOverHTTP2Stream(t *testing.T) {
	echo := startEcho(t)
	rec := newLogRecorder()
	p, err := New(Options{Config: connectPorts(t, "tcp://"+echo.Addr().String()), Log: rec})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(p)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tr := &http2.Transport{TLSClientConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig}
	t.Cleanup(tr.CloseIdleConnections)
	pr, pw := io.Pipe()
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Scheme: "https", Host: srv.Listener.Addr().String()},
		Host: echo.Addr().String(), Header: make(http.Header), Body: pr}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := tr.RoundTrip(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Fatalf("%s %d", resp.Proto, resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	for _, msg := range []string{"a\n", "bb\n"} {
		if _, err := io.WriteString(pw, msg); err != nil {
			t.Fatal(err)
		}
		if line, err := br.ReadString('\n'); err != nil || line != msg {
			t.Fatalf("echo %q %v", line, err)
		}
	}
	_ = pw.Close()
	_ = resp.Body.Close()
	if e := rec.next(t); e.Method != http.MethodConnect || e.Status != http.StatusOK || e.BytesIn != 5 || e.BytesOut != 5 {
		t.Errorf("entry %+v", e)
	}
}
