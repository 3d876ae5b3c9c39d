package httpguard

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/portcullis/portcullis/internal/accept"
)

// ServeTLS is srv.ServeTLS(ln, "", "") with guarded HTTP/1 connections:
// srv.Serve on the listener TLSListener returns.
//
// It reads srv.TLSConfig, which net/http writes to when a Serve starts (it
// configures HTTP/2 there): call it, or TLSListener, before anything else
// serves srv — a server with several listeners makes all its TLS listeners
// first, then serves.
func ServeTLS(srv *http.Server, ln net.Listener, log *slog.Logger) error {
	tl, err := TLSListener(srv, ln, log)
	if err != nil {
		return err
	}
	return srv.Serve(tl)
}

// TLSListener returns the listener ServeTLS serves srv on: the TLS handshake
// is made by the listener (NewTLSListener), connections that negotiated
// HTTP/2 reach srv as *tls.Conn (net/http serves them as before), and the
// others as a guarded connection that still gives srv its TLS state
// (Request.TLS is set). srv.TLSConfig is required (ln is closed without
// it). ALPN offers "http/1.1", and "h2" when srv.Protocols allow HTTP/2 and
// srv.TLSConfig.NextProtos names it (srv.Serve sets HTTP/2 up only then;
// net/http's ServeTLS would add it). The handshake timeout is net/http's: the
// least of ReadHeaderTimeout, ReadTimeout and WriteTimeout. Like ServeTLS, it
// must be called before srv serves anything.
func TLSListener(srv *http.Server, ln net.Listener, log *slog.Logger) (net.Listener, error) {
	if srv.TLSConfig == nil {
		ln.Close()
		return nil, errors.New("httpguard: ServeTLS without a TLSConfig")
	}
	protos := protocols(srv)
	if !slices.Contains(srv.TLSConfig.NextProtos, "h2") {
		protos.SetHTTP2(false)
	}
	cfg := srv.TLSConfig.Clone()
	cfg.NextProtos = nextProtos(cfg.NextProtos, protos)
	return NewTLSListener(ln, cfg, handshakeTimeout(srv), log), nil
}

// protocols is the set of protocols srv serves, as net/http reckons it.
func protocols(srv *http.Server) http.Protocols {
	if srv.Protocols != nil {
		return *srv.Protocols
	}
	var p http.Protocols
	p.SetHTTP1(true)
	if srv.TLSNextProto == nil || srv.TLSNextProto["h2"] != nil {
		p.SetHTTP2(true)
	}
	return p
}

// nextProtos is net/http's adjustNextProtos: the ALPN list with "h2" and
// "http/1.1" present exactly when protos allow them.
func nextProtos(list []string, protos http.Protocols) []string {
	list = slices.Clone(list)
	var h1, h2 bool
	list = slices.DeleteFunc(list, func(s string) bool {
		switch s {
		case "http/1.1":
			h1 = true
			return !protos.HTTP1()
		case "h2":
			h2 = true
			return !protos.HTTP2()
		}
		return false
	})
	if protos.HTTP2() && !h2 {
		list = append(list, "h2")
	}
	if protos.HTTP1() && !h1 {
		list = append(list, "http/1.1")
	}
	return list
}

func handshakeTimeout(srv *http.Server) time.Duration {
	var d time.Duration
	for _, v := range []time.Duration{srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout} {
		if v > 0 && (d == 0 || v < d) {
			d = v
		}
	}
	return d
}

// tlsListener makes the TLS handshakes of the connections it accepts, each in
// a goroutine of its own, and returns the connections whose handshake
// succeeded: a *tls.Conn when the client chose HTTP/2, a guarded connection
// otherwise.
type tlsListener struct {
	inner   net.Listener
	cfg     *tls.Config
	timeout time.Duration
	log     *slog.Logger

	ready   chan net.Conn
	ctx     context.Context // ends when the listener is closed
	cancel  context.CancelFunc
	stopped chan struct{} // closed when the accept loop has ended
	err     error         // why the accept loop ended, read after stopped
	wg      sync.WaitGroup
}

// NewTLSListener returns a listener, accepting on ln from a goroutine of its
// own until closed, whose connections are the TLS server side
// of those ln accepts, with the handshake already made (within timeout when
// positive): a *tls.Conn when ALPN chose "h2", else a guarded connection (see
// NewConn) that implements ConnectionState. A client speaking plain HTTP gets
// net/http's "400 Client sent an HTTP request to an HTTPS server". Close
// closes ln and ends the handshakes in progress.
func NewTLSListener(ln net.Listener, cfg *tls.Config, timeout time.Duration, log *slog.Logger) net.Listener {
	ctx, cancel := context.WithCancel(context.Background())
	ln = accept.New(ln, "tls "+ln.Addr().String(), log, nil) // EMFILE and the like: back off, accept again
	l := &tlsListener{inner: ln, cfg: cfg, timeout: timeout, log: log,
		ready: make(chan net.Conn), ctx: ctx, cancel: cancel, stopped: make(chan struct{})}
	l.wg.Go(l.acceptLoop)
	return l
}

// Accept implements net.Listener.
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.stopped:
		return nil, l.err
	}
}

// acceptLoop accepts until the inner listener fails for good or is closed.
func (l *tlsListener) acceptLoop() {
	defer close(l.stopped)
	for {
		raw, err := l.inner.Accept() // accept.Listener: only a closed or broken listener fails
		if err != nil {
			l.err = err
			if l.ctx.Err() != nil {
				l.err = net.ErrClosed
			}
			return
		}
		l.wg.Go(func() { l.handshake(raw) })
	}
}

// handshake makes raw's TLS handshake and hands the connection to Accept.
func (l *tlsListener) handshake(raw net.Conn) {
	tc := tls.Server(raw, l.cfg)
	ctx := l.ctx
	if l.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.timeout)
		defer cancel()
		dl := time.Now().Add(l.timeout)
		_ = raw.SetDeadline(dl)
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		if l.log != nil {
			l.log.Debug("TLS handshake failed", "remote", raw.RemoteAddr().String(), "err", err)
		}
		raw.Close()
		return
	}
	_ = raw.SetDeadline(time.Time{})
	var c net.Conn = tc
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		c = &tlsConn{Conn: NewConn(tc, l.log), tc: tc}
	}
	select {
	case l.ready <- c:
	case <-l.ctx.Done():
		c.Close()
	}
}

// looksLikeHTTP is net/http's test of a TLS record header for plain HTTP.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// Close implements net.Listener: it closes the inner listener, ends the
// handshakes in progress and waits for their goroutines.
func (l *tlsListener) Close() error {
	l.cancel()
	err := l.inner.Close()
	l.wg.Wait()
	return err
}

// Addr implements net.Listener.
func (l *tlsListener) Addr() net.Addr { return l.inner.Addr() }
