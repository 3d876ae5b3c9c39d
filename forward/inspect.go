package forward

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/internal/h1"
	"github.com/portcullis/portcullis/internal/h2"
	"github.com/portcullis/portcullis/rules"
)

// session is an inspected tunnel, carried in the context of every request
// inside it.
type session struct {
	x     *exchange       // the CONNECT's exchange: only its groups are read
	entry accesslog.Entry // the CONNECT's entry as inspection began: the inner requests' entries start from it
	sni   string
	host  string // the CONNECT's canonical host (a block-page connection: the SNI, else that)
	port  uint16 // the CONNECT's port

	block    *filter.BlockInfo // a block-page connection: the page's facts, but for the URL
	answered atomic.Int32      // a block-page connection: the requests answered
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

func (p *Proxy) leafConfig(connectHost string, protos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: protos,
		GetCertificate: func(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
			return p.leaves.Get(p.ca, leafName(hi.ServerName, connectHost), p.now())
		},
	}
}

// innerServers are the muxes that serve inside terminated tunnels, one of
// each per door: internal/h1 and internal/h2, the engines of every other
// listener. h1 and h2 hand each request inside an inspected tunnel to
// serveInner; block hands each request on a block-page connection to
// serveBlockPage. Once retired (DrainInspected), they take no new
// connection: a tunnel terminated later is served by the door in force.
type innerServers struct {
	h1      *h1.Server
	h2      *h2.Server
	block   *h1.Server
	retired atomic.Bool
}

// blockTLSIdle bounds the wait for a request on a block-page connection.
const blockTLSIdle = 30 * time.Second

func (p *Proxy) newInnerServers() innerServers {
	handler := http.HandlerFunc(p.serveInner)
	return innerServers{
		h1: &h1.Server{
			Handler:           handler,
			ReadHeaderTimeout: p.cfg.ReadHeaderTimeout,
			IdleTimeout:       p.cfg.TunnelIdleTimeout,
			ConnContext:       innerConnContext,
			Log:               p.logger,
		},
		h2: &h2.Server{Handler: handler, IdleTimeout: p.cfg.TunnelIdleTimeout, Log: p.logger},
		block: &h1.Server{
			Handler:           http.HandlerFunc(p.serveBlockPage),
			ReadHeaderTimeout: p.cfg.ReadHeaderTimeout,
			IdleTimeout:       blockTLSIdle,
			ConnContext:       innerConnContext,
			Log:               p.logger,
		},
	}
}

// terminate runs the TLS handshake on the client side of a tunnel whose
// front answered already (a 200, a SOCKS5 reply, or nothing for an
// intercepted connection), replaying the peeked bytes first, with a leaf
// from the shared cache (named after the SNI, else leafHost) offering protos,
// within timeout. On failure it records why in x's entry and closes the
// connection.
func (p *Proxy) terminate(ctx context.Context, x *exchange, client net.Conn, peeked []byte, leafHost string, timeout time.Duration, what string, protos ...string) (*tls.Conn, *mitmConn, bool) {
	mc := newMitmConn(client, peeked)
	tc := tls.Server(mc, p.leafConfig(leafHost, protos...))
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	err := tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		x.entry.Error = what + " handshake: " + err.Error()
		_ = mc.Close()
		return nil, mc, false
	}
	return tc, mc, true
}

// inspect serves an inspected tunnel on the client connection: TLS within
// sni_peek_timeout (terminate), then the requests inside with internal/h2
// when the client negotiated h2, else internal/h1; each request goes through
// serveInner. It returns when the connection ends.
func (p *Proxy) inspect(ctx context.Context, x *exchange, client net.Conn, peeked []byte) {
	tc, mc, ok := p.terminate(ctx, x, client, peeked, x.connect.Host, p.cfg.SNIPeekTimeout, "inspection", "h2", "http/1.1")
	defer func() { x.entry.BytesIn, x.entry.BytesOut = mc.in.Load(), mc.out.Load() }()
	if !ok {
		return
	}
	// The inner requests copy the CONNECT's entry from here, not from x:
	// x.entry is written again when the connection ends, possibly while an
	// HTTP/2 stream's handler is still starting.
	sess := &session{x: x, entry: x.entry, sni: x.sni, host: x.connect.Host, port: x.connect.Port}
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		p.serveTerminated(tc, func(s *innerServers) bool {
			if s.retired.Load() {
				return false
			}
			// Retired between the check and ServeConn (a reload at this
			// very instant), the server closes tc: the client dials again.
			_ = s.h2.ServeConn(context.WithValue(context.Background(), sessionKey{}, sess), tc)
			return true
		})
		return
	}
	p.serveTerminated(tc, func(s *innerServers) bool { return s.serveH1(s.h1, tc, mc, sess) })
}

// serveTerminated serves a terminated tunnel's connection tc with serve on
// the inner servers of p, or, when they were retired (a reload drains the
// tunnels of the policy it replaced), on those of the door in force. tc is
// closed when no door serving inspection is left (a shutdown, or a policy
// that inspects nothing).
func (p *Proxy) serveTerminated(tc *tls.Conn, serve func(*innerServers) bool) {
	for q := p; ; {
		if serve(&q.inner) {
			return
		}
		next := q.inForce()
		if next == q || next.ca == nil {
			_ = tc.Close()
			return
		}
		q = next
	}
}

// serveH1 serves a terminated tunnel's connection tc with srv (s.h1 or
// s.block) and reports whether srv took it: false when s or srv had begun
// to shut down.
func (s *innerServers) serveH1(srv *h1.Server, tc *tls.Conn, mc *mitmConn, sess *session) bool {
	if s.retired.Load() {
		return false
	}
	ln := newOneConnListener(&innerConn{Conn: tc, sess: sess}, mc.done)
	_ = srv.Serve(ln)
	return ln.taken
}

// DrainInspected makes the connections inside the door's inspected tunnels
// (and its block-page connections) finish, as internal/h1 and internal/h2
// finish a TLS listener's connections at shutdown: each HTTP/2 connection
// gets a GOAWAY naming the last stream it took, whose streams finish before
// it closes; each HTTP/1.1 one closes when idle, else after the response in
// flight, which carries Connection: close; the tunnel then closes. The door
// takes no new tunnel connection from then on (one terminated later goes to
// the door in force, Options.Current). DrainInspected returns once every
// connection was told; wait waits for them to end and, when ctx ends first,
// closes those left and returns ctx's error. The engine calls it on the door
// a reload replaced and, at shutdown, on the door in force. wait is nil
// when the door inspects nothing (it has no CA).
func (p *Proxy) DrainInspected() (wait func(ctx context.Context) error) {
	s := &p.inner
	if s.h1 == nil {
		return nil
	}
	s.retired.Store(true)
	s.h1.StartShutdown()
	s.block.StartShutdown()
	s.h2.Drain() // last: a client that sees the GOAWAY knows the rest was told
	return func(ctx context.Context) error {
		errs := make(chan error, 3)
		go func() { errs <- s.h2.Shutdown(ctx) }()
		go func() { errs <- s.h1.Shutdown(ctx) }()
		go func() { errs <- s.block.Shutdown(ctx) }()
		return errors.Join(<-errs, <-errs, <-errs)
	}
}

// innerConn is the decrypted connection of an inspected tunnel as
// internal/h1 serves it: innerConnContext puts its session in the context of
// every request read from it.
type innerConn struct {
	*tls.Conn
	sess *session
}

func innerConnContext(ctx context.Context, c net.Conn) context.Context {
	if ic, ok := c.(*innerConn); ok {
		return context.WithValue(ctx, sessionKey{}, ic.sess)
	}
	return ctx
}

// oneConnListener hands one connection to internal/h1's Serve, then makes
// Serve return once that connection is closed (done), and not before: a
// shutdown closes the listener while the connection finishes its request,
// and the tunnel lasts until it has.
type oneConnListener struct {
	c     net.Conn
	done  <-chan struct{}
	taken bool // only Serve's goroutine calls Accept
}

func newOneConnListener(c net.Conn, done <-chan struct{}) *oneConnListener {
	return &oneConnListener{c: c, done: done}
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if !l.taken {
		l.taken = true
		return l.c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

// Close does nothing: the connection is h1's, and Accept returns when it
// is closed.
func (l *oneConnListener) Close() error { return nil }

func (l *oneConnListener) Addr() net.Addr { return l.c.LocalAddr() }

// inForce is the door of the policy in force: p itself unless a reload
// replaced it (Options.Current).
func (p *Proxy) inForce() *Proxy {
	if p.current != nil {
		if q := p.current(); q != nil {
			return q
		}
	}
	return p
}

// serveInner is the pipeline of a request inside an inspected tunnel,
// whichever mux it came from: its URL is made absolute (https, the Host or
// :authority the client named, else the tunnel's), its authority held to the
// tunnel's (tunnelAuthority), and then it is decided and relayed exactly like
// a plain request (serveHTTP), with an access-log entry of its own that
// starts from the CONNECT's.
func (p *Proxy) serveInner(w http.ResponseWriter, r *http.Request) {
	if q := p.inForce(); q != p { // a reload since the tunnel opened: the new policy decides
		q.serveInner(w, r)
		return
	}
	x := &exchange{inner: true}
	x.w = respWriter{ResponseWriter: w, bufs: &p.bufs}
	sess, ok := r.Context().Value(sessionKey{}).(*session)
	if !ok { // not from inspect: cannot happen
		p.page(&x.w, r, http.StatusBadGateway, upstreamMessage(http.StatusBadGateway))
		return
	}
	x.sni, x.groups = sess.sni, sess.x.groups
	x.entry = sess.entry
	x.entry.Time, x.entry.Method = p.now(), r.Method
	x.entry.Status, x.entry.BytesIn, x.entry.BytesOut, x.entry.Error, x.entry.Duration = 0, 0, 0, "", 0
	clientHeaders(&x.entry, r)
	defer p.finish(x)
	if r.URL.Host == "" {
		r.URL.Host = r.Host
		if r.URL.Host == "" {
			r.URL.Host = net.JoinHostPort(sess.host, strconv.Itoa(int(sess.port)))
		}
	}
	r.URL.Scheme = "https"
	x.entry.URL = requestURL(r)
	if resp := p.tunnelAuthority(x, sess, r); resp != nil {
		writeResponse(&x.w, r, resp)
		return
	}
	p.serveHTTP(x, r)
}

// mitmConn is the client side of a terminated tunnel (inspected, or showing
// the block page): it replays the peeked bytes, counts bytes, and signals
// done when closed.
type mitmConn struct {
	net.Conn
	r        io.Reader
	in, out  atomic.Int64
	done     chan struct{}
	closeOne sync.Once
}

func newMitmConn(c net.Conn, peeked []byte) *mitmConn {
	return &mitmConn{Conn: c, r: io.MultiReader(bytes.NewReader(peeked), c), done: make(chan struct{})}
}

func (m *mitmConn) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	m.in.Add(int64(n))
	return n, err
}

func (m *mitmConn) Write(p []byte) (int, error) {
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

// serveBlockTLS terminates TLS on the client connection (HTTP/1.1 only) with a
// leaf for the SNI (or the CONNECT host) and answers every request on it with
// the block page (serveBlockPage), so the browser shows why the site is
// blocked.
func (p *Proxy) serveBlockTLS(ctx context.Context, x *exchange, client net.Conn, peeked []byte) {
	tc, mc, ok := p.terminate(ctx, x, client, peeked, x.entry.URL, 10*time.Second, "block page", "http/1.1")
	defer func() { x.entry.BytesIn, x.entry.BytesOut = mc.in.Load(), mc.out.Load() }()
	if !ok {
		return
	}
	host, _ := rules.SplitHostPort(x.entry.URL)
	if x.sni != "" {
		host = x.sni
	}
	sess := &session{x: x, entry: x.entry, sni: x.sni, host: host, block: p.connectBlockInfo(x, host)}
	p.serveTerminated(tc, func(s *innerServers) bool { return s.serveH1(s.block, tc, mc, sess) })
}

// serveBlockPage answers a request on a block-page connection with the block
// page for its URL; the connection closes after blockTLSMaxRequests of them.
func (p *Proxy) serveBlockPage(w http.ResponseWriter, r *http.Request) {
	sess, ok := r.Context().Value(sessionKey{}).(*session)
	if !ok || sess.block == nil { // not from serveBlockTLS: cannot happen
		p.page(w, r, http.StatusBadGateway, upstreamMessage(http.StatusBadGateway))
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10))
	info := *sess.block
	host := r.Host
	if host == "" {
		host = sess.host
	}
	info.URL = "https://" + host + r.URL.RequestURI()
	if sess.answered.Add(1) >= blockTLSMaxRequests {
		w.Header().Set("Connection", "close")
	}
	writeResponse(w, r, p.blockResponse(r, &info))
}
