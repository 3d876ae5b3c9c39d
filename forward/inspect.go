package forward

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/rules"
)

// session is an inspected tunnel, carried in goproxy's ProxyCtx.UserData to every
// request inside it.
type session struct {
	x     *exchange       // the CONNECT's exchange: only its groups are read
	entry accesslog.Entry // the CONNECT's entry as inspection began: the inner requests' entries start from it
	sni   string
	host  string // the CONNECT's canonical host
	port  uint16 // the CONNECT's port
}

type sessionKey struct{}

// leafName is the name a leaf is issued for: the SNI, else the CONNECT host.
func leafName(sni, connectHost string) string {
	if sni != "" {
		return sni
	}
	h, _ := rules.SplitHostPort(connectHost)
	return h
}

// mitmTLSConfig is goproxy's TLSConfig hook: leaves from the shared cache, named
// after the SNI the client sends (so IP-literal CONNECTs get a usable certificate).
func (p *Proxy) mitmTLSConfig(host string, _ *goproxy.ProxyCtx) (*tls.Config, error) {
	return p.leafConfig(host, "h2", "http/1.1"), nil
}

func (p *Proxy) leafConfig(connectHost string, protos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: protos,
		GetCertificate: func(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return p.leaves.Get(p.ca, leafName(hi.ServerName, connectHost), p.now())
		},
	}
}

// inspect hands the client connection of an inspected tunnel to goproxy's
// MITM loop, the one time goproxy sees this tunnel: it is entered with a
// CONNECT to the tunnel's destination (goproxy's only entry to that loop),
// the peeked bytes are replayed first, and the CONNECT answer goproxy writes
// on entry is dropped (the front answered already: a 200, a SOCKS5 reply, or
// nothing for an intercepted connection). It returns when the connection ends.
func (p *Proxy) inspect(ctx context.Context, x *exchange, client net.Conn, peeked []byte) {
	mc := newMitmConn(client, peeked, p.cfg.TunnelIdleTimeout, p.cfg.SNIPeekTimeout)
	hw := &hijackWriter{conn: mc}
	// The inner requests copy the CONNECT's entry from here, not from x:
	// x.entry is written again when the connection ends, possibly while an
	// HTTP/2 stream's handler is still starting.
	sess := &session{x: x, entry: x.entry, sni: x.sni, host: x.connect.Host, port: x.connect.Port}
	target := net.JoinHostPort(x.connect.Host, strconv.Itoa(int(x.connect.Port)))
	r := &http.Request{
		Method: http.MethodConnect, URL: &url.URL{Host: target}, Host: target,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: make(http.Header),
		RemoteAddr: client.RemoteAddr().String(), Body: http.NoBody,
	}
	p.gp.ServeHTTP(hw, r.WithContext(context.WithValue(ctx, sessionKey{}, sess)))
	if !hw.hijacked {
		_ = mc.Close()
	}
	<-mc.done
	x.entry.BytesIn, x.entry.BytesOut = mc.in.Load(), mc.out.Load()
}

// hijackWriter is the ResponseWriter inspect enters goproxy with: it only hands
// over the connection the door already holds.
type hijackWriter struct {
	conn     net.Conn
	header   http.Header
	hijacked bool
}

func (w *hijackWriter) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}
func (w *hijackWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *hijackWriter) WriteHeader(int)             {}

// Hijack hands over the connection, with nothing buffered.
func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.hijacked = true
	return w.conn, bufio.NewReadWriter(bufio.NewReaderSize(eofReader{}, 16), bufio.NewWriterSize(w.conn, 16)), nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// mitmConn is the client side of an inspected tunnel: it replays the peeked bytes,
// drops the first write if it is a CONNECT status line, bounds each read by the
// idle timeout (by firstWait until the proxy first answers, so that a client
// stalling its ClientHello does not hold a goroutine for the whole idle timeout),
// counts bytes, and signals done when closed.
type mitmConn struct {
	net.Conn
	r         io.Reader
	idle      time.Duration
	firstWait time.Duration
	swallow   atomic.Bool
	spoke     atomic.Bool // the proxy has written to the client (beyond the swallowed status line)
	in, out   atomic.Int64
	done      chan struct{}
	closeOne  sync.Once
}

func newMitmConn(c net.Conn, peeked []byte, idle, firstWait time.Duration) *mitmConn {
	m := &mitmConn{Conn: c, r: io.MultiReader(bytes.NewReader(peeked), c), idle: idle, firstWait: firstWait, done: make(chan struct{})}
	m.swallow.Store(true)
	return m
}

func (m *mitmConn) Read(p []byte) (int, error) {
	d := m.idle
	if !m.spoke.Load() && m.firstWait > 0 && (d <= 0 || d > m.firstWait) {
		d = m.firstWait
	}
	if d > 0 {
		_ = m.Conn.SetReadDeadline(time.Now().Add(d))
	}
	n, err := m.r.Read(p)
	m.in.Add(int64(n))
	return n, err
}

func (m *mitmConn) Write(p []byte) (int, error) {
	if m.swallow.Swap(false) && bytes.HasPrefix(p, []byte("HTTP/1.")) && bytes.HasSuffix(p, []byte("\r\n\r\n")) {
		return len(p), nil
	}
	m.spoke.Store(true)
	n, err := m.Conn.Write(p)
	m.out.Add(int64(n))
	return n, err
}

func (m *mitmConn) Close() error {
	err := m.Conn.Close()
	m.closeOne.Do(func() { close(m.done) })
	return err
}

// blockTLSMaxRequests bounds the requests answered on one block-page connection.
const blockTLSMaxRequests = 32

// serveBlockTLS terminates TLS on the client connection with a leaf for the SNI
// (or the CONNECT host) and answers every request on it with the block page, so
// the browser shows why the site is blocked.
func (p *Proxy) serveBlockTLS(x *exchange, client net.Conn, peeked []byte) {
	mc := newMitmConn(client, peeked, 30*time.Second, 0)
	mc.swallow.Store(false)
	defer mc.Close()
	tc := tls.Server(mc, p.leafConfig(x.entry.URL, "http/1.1"))
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		x.entry.Error = "block page handshake: " + err.Error()
		return
	}
	_ = client.SetDeadline(time.Time{})
	host, _ := rules.SplitHostPort(x.entry.URL)
	if x.sni != "" {
		host = x.sni
	}
	br := bufio.NewReader(tc)
	bw := bufio.NewWriter(tc)
	for range blockTLSMaxRequests {
		req, err := http.ReadRequest(br)
		if err != nil {
			break
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(req.Body, 64<<10))
		info := p.connectBlockInfo(x, host)
		info.URL = "https://" + req.Host + req.URL.RequestURI()
		if req.Host == "" {
			info.URL = "https://" + host + req.URL.RequestURI()
		}
		resp := p.blockResponse(req, info)
		resp.Close = req.Close || strings.EqualFold(req.Header.Get("Connection"), "close")
		if err := resp.Write(bw); err != nil || bw.Flush() != nil || resp.Close {
			break
		}
	}
	x.entry.BytesIn, x.entry.BytesOut = mc.in.Load(), mc.out.Load()
}
