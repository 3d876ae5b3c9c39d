package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	be "encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// Inspected tunnels drain at a reload and at shutdown (issue 20): the
// HTTP/2 connection inside gets a GOAWAY naming the last stream it took and
// closes once that stream is answered; the HTTP/1.1 one answers its request
// in flight with Connection: close and closes; a plain CONNECT tunnel is
// kept across a reload and waited for at shutdown, as before.

// heldBody is the size of the body the origin sends for /hold once released.
const heldBody = 256 << 10

// drainWorld is a TLS origin whose /hold waits for a token on release
// (arrived gets one value per /hold that reached it), the inspection CA and
// a running binary that inspects tunnels to 127.0.0.1 and tunnels those
// whose server name is example.com.
type drainWorld struct {
	proc     *proc
	proxy    *url.URL
	origin   *httptest.Server
	port     string
	arrived  chan struct{}
	release  chan struct{}
	caRoots  *x509.CertPool // the inspection CA
	orgRoots *x509.CertPool // the origin's certificate
}

func newDrainWorld(t *testing.T, args ...string) *drainWorld {
	t.Helper()
	w := &drainWorld{arrived: make(chan struct{}, 8), release: make(chan struct{}, 8)}
	w.origin = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/hold" {
			fmt.Fprintf(rw, "origin %s", r.URL.Path)
			return
		}
		w.arrived <- struct{}{}
		select {
		case <-w.release:
		case <-r.Context().Done():
			return
		}
		rw.Header().Set("Content-Length", strconv.Itoa(heldBody))
		_, _ = rw.Write(bytes.Repeat([]byte("h"), heldBody))
	}))
	w.origin.EnableHTTP2 = true
	w.origin.StartTLS()
	t.Cleanup(w.origin.Close)
	_, w.port, _ = net.SplitHostPort(w.origin.Listener.Addr().String())
	w.orgRoots = x509.NewCertPool()
	w.orgRoots.AddCert(w.origin.Certificate())
	dir := t.TempDir()
	writePEM(t, filepath.Join(dir, "origin.pem"), "CERTIFICATE", w.origin.Certificate().Raw)
	caCert := filepath.Join(dir, "ca.pem")
	if out, errOut, code := runCLI(t, "ca", "create", "--cert", caCert, "--key", filepath.Join(dir, "ca.key")); code != 0 {
		t.Fatalf("ca create: %s%s", out, errOut)
	}
	w.caRoots = (&httpsProxyWorld{}).roots(t, caCert)
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(`forward:
  listen: ["127.0.0.1:0"]
  connect_ports: [`+w.port+`]
  ca_cert: ca.pem
  ca_key: ca.key
  upstream_ca_file: origin.pem
resolver: {egress: {allow: ["127.0.0.0/8"]}}
admin: {listen: "off"}
rules:
  - {name: pass, host: [example.com], action: tunnel}
  - {name: look-inside, host: [127.0.0.1], action: inspect}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	w.proc, w.proxy = launch(t, append([]string{"run", "--config", policy}, args...)...)
	return w
}

// connect opens a CONNECT tunnel to the origin and runs TLS in it with
// server name sni, offering proto, trusting roots (the origin itself, an
// HTTP/2 server, chooses no protocol for a client offering only HTTP/1.1).
func (w *drainWorld) connect(t *testing.T, sni, proto string, roots *x509.CertPool) *tls.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", w.proxy.Host, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	authority := "127.0.0.1:" + w.port
	io.WriteString(c, "CONNECT "+authority+" HTTP/1.1\r\nHost: "+authority+"\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != 200 || br.Buffered() != 0 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	tc := tls.Client(c, &tls.Config{RootCAs: roots, ServerName: sni, NextProtos: []string{proto}})
	err = tc.Handshake()
	if got := tc.ConnectionState().NegotiatedProtocol; err != nil || got != proto && (got != "" || proto != "http/1.1") {
		t.Fatalf("TLS in the tunnel: %v, ALPN %q", err, got)
	}
	return tc
}

// plainTunnel is a tunnel the door does not inspect (server name
// example.com): HTTP/1.1 with the origin itself, through it.
type plainTunnel struct {
	tc *tls.Conn
	br *bufio.Reader
}

func (w *drainWorld) plainTunnel(t *testing.T) *plainTunnel {
	t.Helper()
	tc := w.connect(t, "example.com", "http/1.1", w.orgRoots)
	if iss := tc.ConnectionState().PeerCertificates[0].Issuer.CommonName; iss == "Portcullis inspection CA" {
		t.Fatal("the example.com tunnel is inspected")
	}
	return &plainTunnel{tc: tc, br: bufio.NewReader(tc)}
}

// get sends GET path on the plain tunnel and checks the origin's answer.
func (p *plainTunnel) get(t *testing.T, path string) {
	t.Helper()
	_ = p.tc.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(p.tc, "GET "+path+" HTTP/1.1\r\nHost: example.com\r\n\r\n")
	resp, err := http.ReadResponse(p.br, nil)
	if err != nil {
		t.Fatalf("plain tunnel, GET %s: %v", path, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || string(b) != "origin "+path {
		t.Fatalf("plain tunnel, GET %s: %d %q %v", path, resp.StatusCode, b, err)
	}
}

// goAway is a GOAWAY frame as the client read it.
type goAway struct {
	lastStream uint32
	code       http2.ErrCode
}

// frameWatch is the client's side of an HTTP/2 connection: it passes every
// byte read on, follows the frames in them, and tells of the first GOAWAY
// (goAway) and of the end of the stream (eof).
type frameWatch struct {
	net.Conn
	hdr     [9]byte
	nhdr    int
	left    int    // payload bytes of the current frame still to come
	isGA    bool   // the current frame is a GOAWAY
	payload []byte // its first 8 bytes
	goAway  chan goAway
	eof     chan struct{}
	once    sync.Once
}

func newFrameWatch(c net.Conn) *frameWatch {
	return &frameWatch{Conn: c, goAway: make(chan goAway, 1), eof: make(chan struct{})}
}

func (f *frameWatch) Read(p []byte) (int, error) {
	n, err := f.Conn.Read(p)
	f.follow(p[:n])
	if err != nil {
		f.once.Do(func() { close(f.eof) })
	}
	return n, err
}

func (f *frameWatch) follow(b []byte) {
	for len(b) > 0 {
		if f.nhdr < len(f.hdr) {
			k := copy(f.hdr[f.nhdr:], b)
			f.nhdr += k
			b = b[k:]
			if f.nhdr < len(f.hdr) {
				return
			}
			f.left = int(f.hdr[0])<<16 | int(f.hdr[1])<<8 | int(f.hdr[2])
			f.isGA = http2.FrameType(f.hdr[3]) == http2.FrameGoAway
			f.payload = f.payload[:0]
		}
		k := min(f.left, len(b))
		if f.isGA && len(f.payload) < 8 {
			f.payload = append(f.payload, b[:min(k, 8-len(f.payload))]...)
		}
		f.left -= k
		b = b[k:]
		if f.left == 0 {
			if f.isGA && len(f.payload) == 8 {
				select {
				case f.goAway <- goAway{be.BigEndian.Uint32(f.payload) & (1<<31 - 1), http2.ErrCode(be.BigEndian.Uint32(f.payload[4:]))}:
				default:
				}
			}
			f.nhdr = 0
		}
	}
}

// innerH2 is an HTTP/2 connection inside an inspected tunnel.
type innerH2 struct {
	cc    *http2.ClientConn
	watch *frameWatch
}

func (w *drainWorld) innerH2(t *testing.T) *innerH2 {
	t.Helper()
	fw := newFrameWatch(w.connect(t, "127.0.0.1", "h2", w.caRoots))
	cc, err := (&http2.Transport{}).NewClientConn(fw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return &innerH2{cc: cc, watch: fw}
}

func (w *drainWorld) request(path string) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, "https://127.0.0.1:"+w.port+path, nil)
	return req
}

// held is the outcome of a /hold request: its response and whole body.
type held struct {
	resp *http.Response
	body []byte
	err  error
}

// holdH2 sends GET /hold on c and returns once the origin has it.
func (w *drainWorld) holdH2(t *testing.T, c *innerH2) <-chan held {
	t.Helper()
	out := make(chan held, 1)
	go func() {
		resp, err := c.cc.RoundTrip(w.request("/hold"))
		var h held
		h.resp, h.err = resp, err
		if err == nil {
			h.body, h.err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		out <- h
	}()
	w.waitArrived(t)
	return out
}

// holdH1 opens an inspected tunnel speaking HTTP/1.1 inside, sends GET /hold
// on it and returns once the origin has it; the connection and its reader
// come back for the test to see the tunnel close.
func (w *drainWorld) holdH1(t *testing.T) (<-chan held, *tls.Conn, *bufio.Reader) {
	t.Helper()
	tc := w.connect(t, "127.0.0.1", "http/1.1", w.caRoots)
	_ = tc.SetDeadline(time.Now().Add(60 * time.Second))
	io.WriteString(tc, "GET /hold HTTP/1.1\r\nHost: 127.0.0.1:"+w.port+"\r\n\r\n")
	br := bufio.NewReader(tc)
	out := make(chan held, 1)
	go func() {
		resp, err := http.ReadResponse(br, nil)
		h := held{resp: resp, err: err}
		if err == nil {
			h.body, h.err = io.ReadAll(resp.Body)
		}
		out <- h
	}()
	w.waitArrived(t)
	return out, tc, br
}

func (w *drainWorld) waitArrived(t *testing.T) {
	t.Helper()
	select {
	case <-w.arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("the held request never reached the origin")
	}
}

// whole checks a /hold answer: 200 with the whole body.
func whole(t *testing.T, what string, ch <-chan held) *http.Response {
	t.Helper()
	select {
	case h := <-ch:
		if h.err != nil || h.resp.StatusCode != 200 || len(h.body) != heldBody {
			t.Fatalf("%s, in flight through the drain: %v, %d bytes, err %v", what, h.resp, len(h.body), h.err)
		}
		return h.resp
	case <-time.After(20 * time.Second):
		t.Fatalf("%s, in flight through the drain: no answer", what)
	}
	return nil
}

// drained checks what the drain did to the inner connections while a
// request was in flight on each (the held stream is the HTTP/2 connection's
// first): the HTTP/2 one had a GOAWAY naming that stream, refuses a new
// request, answers the held one whole and closes; the HTTP/1.1 one answers
// whole with Connection: close and the tunnel closes.
func (w *drainWorld) drained(t *testing.T, c *innerH2, h2held, h1held <-chan held, h1tc *tls.Conn, h1br *bufio.Reader) {
	t.Helper()
	select {
	case ga := <-c.watch.goAway:
		if ga.lastStream != 1 || ga.code != http2.ErrCodeNo {
			t.Errorf("GOAWAY last stream %d, %v; want 1, NO_ERROR", ga.lastStream, ga.code)
		}
	case <-time.After(20 * time.Second):
		t.Error("no GOAWAY on the inspected HTTP/2 connection")
	}
	// A request after the GOAWAY: refused on this connection (a client
	// with a pool retries it on a new one), never answered on it.
	if resp, err := c.cc.RoundTrip(w.request("/after")); err == nil {
		resp.Body.Close()
		t.Errorf("a request after the GOAWAY was answered on the draining connection: %d", resp.StatusCode)
	}
	if !c.cc.State().Closing {
		t.Error("the client does not see its connection closing")
	}
	w.release <- struct{}{}
	w.release <- struct{}{}
	whole(t, "HTTP/2", h2held)
	if resp := whole(t, "HTTP/1.1", h1held); !resp.Close {
		t.Errorf("the HTTP/1.1 answer in flight has no Connection: close (%v)", resp.Header)
	}
	_ = h1tc.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := h1br.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the HTTP/1.1 tunnel is still open after its answer: %v", err)
	}
	select {
	case <-c.watch.eof:
	case <-time.After(20 * time.Second):
		t.Error("the HTTP/2 tunnel is still open after its last stream")
	}
}

// TestInspectedTunnelsDrainOnReload: SIGHUP with requests in flight inside
// inspected tunnels (HTTP/2 and HTTP/1.1): they complete whole, the
// connections drain and close (drained); a new inspected connection is
// served; a plain tunnel opened before the reload still relays.
func TestInspectedTunnelsDrainOnReload(t *testing.T) {
	w := newDrainWorld(t)
	plain := w.plainTunnel(t)
	plain.get(t, "/before")
	c := w.innerH2(t)
	h2held := w.holdH2(t, c)
	h1held, h1tc, h1br := w.holdH1(t)
	w.proc.cmd.Process.Signal(syscall.SIGHUP)
	w.proc.waitFor(t, "policy reloaded")
	w.drained(t, c, h2held, h1held, h1tc, h1br)
	plain.get(t, "/after-reload")
	resp, err := w.innerH2(t).cc.RoundTrip(w.request("/new"))
	if err != nil {
		t.Fatalf("a new inspected connection after the reload: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "origin /new" {
		t.Fatalf("a new inspected connection after the reload: %d %q", resp.StatusCode, b)
	}
}

// TestInspectedTunnelsDrainOnShutdown: SIGTERM with requests in flight inside
// inspected tunnels: they complete whole and the connections drain and close
// (drained) while a plain tunnel keeps relaying; once the plain tunnel's
// client closes it, the process exits 0, long before its drain timeout.
func TestInspectedTunnelsDrainOnShutdown(t *testing.T) {
	w := newDrainWorld(t, "--drain-timeout", "2m")
	plain := w.plainTunnel(t)
	plain.get(t, "/before")
	c := w.innerH2(t)
	h2held := w.holdH2(t, c)
	h1held, h1tc, h1br := w.holdH1(t)
	w.proc.cmd.Process.Signal(syscall.SIGTERM)
	w.proc.waitFor(t, "draining")
	w.drained(t, c, h2held, h1held, h1tc, h1br)
	plain.get(t, "/while-draining")
	_ = plain.tc.Close()
	if code, took := waitExit(t, w.proc, time.Minute); code != 0 {
		t.Fatalf("exit %d after %v", code, took)
	}
}
