package engine

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/portcullis/portcullis/internal/accept"
	"github.com/portcullis/portcullis/reverse"
)

// reverseQUIC is the listen kind of the UDP socket that serves HTTP/3 beside a
// reverse TLS listener (reverse.http3), on the same port.
const reverseQUIC = "reverse-quic"

// HTTP/3 limits that the policy does not set.
const (
	// h3MaxStreams bounds the request streams a client may have open at once on
	// one QUIC connection; more are not granted (QUIC flow control), so a flood
	// of streams waits on its own connection.
	h3MaxStreams = 100
	// h3MaxUniStreams bounds the unidirectional streams (control, QPACK) per
	// connection; HTTP/3 needs three.
	h3MaxUniStreams = 8
	// altSvcMaxAge is how long (seconds) a client may remember the Alt-Svc.
	altSvcMaxAge = 86400
)

// errQUICRefused is the error a connection over the limits is refused with.
var errQUICRefused = errors.New("too many connections")

// altSvc is the Alt-Svc hook of one reverse TLS listener: with reverse.http3
// on in the policy serving a request, the response advertises HTTP/3 on the
// listener's port. It is installed around the door's handler by the engine,
// not in the door.
type altSvc struct {
	value atomic.Pointer[string] // h3=":PORT"; ma=…, set once the listener is bound
	last  atomic.Pointer[altSvcHandler]
}

// bound records the TCP listener's address: HTTP/3 is served on its port.
func (a *altSvc) bound(addr net.Addr) {
	_, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return
	}
	v := `h3=":` + port + `"; ma=` + strconv.Itoa(altSvcMaxAge)
	a.value.Store(&v)
}

// handler returns next with the Alt-Svc header added when s turns HTTP/3 on.
// The wrapper is made once per policy version, not per request.
func (a *altSvc) handler(s *state, next http.Handler) http.Handler {
	v := a.value.Load()
	if v == nil || s.file.Policy.Reverse == nil || !s.file.Policy.Reverse.HTTP3 {
		return next
	}
	if h := a.last.Load(); h != nil && h.st == s && h.value == *v {
		return h
	}
	h := &altSvcHandler{st: s, next: next, value: *v}
	a.last.Store(h)
	return h
}

type altSvcHandler struct {
	st    *state
	next  http.Handler
	value string
}

func (h *altSvcHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Alt-Svc", h.value)
	h.next.ServeHTTP(w, r)
}

// quicListen returns the spec of the HTTP/3 socket beside the reverse TLS
// listener on addr: UDP on the port that listener is bound on (tcpAddr, or the
// running listener's when it was kept), the TLS configuration the TLS listener
// uses (following reloads), and the same handler (pick). Connections over
// max_conns or max_conns_per_client are refused before their handshake.
func quicListen(addr string, cfg *reverse.Config, tcpAddr func() net.Addr, pick func(*state) http.Handler) listenSpec {
	key := listenKey{reverseQUIC, addr}
	return listenSpec{key: key, start: func(e *Engine) (*listener, error) {
		bind := addr
		if a := tcpAddr(); a != nil {
			bind = a.String()
		} else if l := e.listeners[listenKey{"reverse-tls", addr}]; l != nil {
			bind = l.addr.String()
		}
		pc, err := net.ListenPacket("udp", bind)
		if err != nil {
			return nil, &BindError{Kind: reverseQUIC, Addr: bind, Err: err}
		}
		lim := &quicLimit{max: cfg.Limits.MaxConns, perClient: cfg.Limits.MaxConnsPerClient, byClient: map[netip.Addr]int{},
			name: "udp " + pc.LocalAddr().String(), shared: e.shared.connCounts}
		tr := &quic.Transport{Conn: pc, ConnContext: lim.admit}
		handshake := cfg.Limits.HeaderTimeout
		if handshake <= 0 {
			handshake = reverse.DefaultHeaderTimeout
		}
		tlsConf := http3.ConfigureTLSConfig(&tls.Config{
			MinVersion: tls.VersionTLS13,
			// The certificate set follows reloads: each handshake asks the current state.
			GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
				if cur := e.cur.Load(); cur != nil && cur.reverseTLS != nil {
					return cur.reverseTLS, nil
				}
				return nil, errors.New("reverse TLS is not configured")
			},
		})
		ln, err := tr.Listen(tlsConf, &quic.Config{
			HandshakeIdleTimeout:  handshake,
			MaxIdleTimeout:        reverse.DefaultIdleTimeout,
			MaxIncomingStreams:    h3MaxStreams,
			MaxIncomingUniStreams: h3MaxUniStreams,
			Allow0RTT:             false, // replayable requests are not forwarded
		})
		if err != nil {
			tr.Close()
			pc.Close()
			return nil, &BindError{Kind: reverseQUIC, Addr: bind, Err: err}
		}
		maxHeader := cfg.Limits.MaxHeaderBytes
		if maxHeader <= 0 {
			maxHeader = reverse.DefaultMaxHeaderBytes
		}
		srv := &http3.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h := pick(e.cur.Load())
				if h == nil {
					http.Error(w, "not serving on this address", http.StatusServiceUnavailable)
					return
				}
				h.ServeHTTP(w, noBody(w, r, handshake))
			}),
			MaxHeaderBytes: maxHeader,
			IdleTimeout:    reverse.DefaultIdleTimeout,
			Logger:         e.log.With("listener", reverseQUIC),
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := srv.ServeListener(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				e.log.Error("listener stopped", "kind", reverseQUIC, "addr", bind, "error", err)
			}
		}()
		return &listener{key: key, addr: pc.LocalAddr(), shutdown: func(ctx context.Context) {
			// GOAWAY, let requests in flight finish (until ctx ends), then close.
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close()
			}
			ln.Close()
			<-done
			tr.Close()
			pc.Close()
		}}, nil
	}}
}

// quicLimit applies reverse.limits.max_conns and max_conns_per_client to QUIC
// connections: one over a limit is refused when its first packet arrives,
// before any handshake work. A slot is freed when the connection ends.
type quicLimit struct {
	max, perClient int
	name           string
	shared         func() accept.SharedCounts

	mu       sync.Mutex
	open     int
	byClient map[netip.Addr]int
}

func (l *quicLimit) admit(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
	if l.max <= 0 && l.perClient <= 0 {
		return ctx, nil
	}
	ap, err := netip.ParseAddrPort(info.RemoteAddr.String())
	if err != nil {
		return nil, fmt.Errorf("client address %s: %w", info.RemoteAddr, err)
	}
	addr := ap.Addr().Unmap()
	var sh accept.SharedCounts
	if l.shared != nil {
		sh = l.shared()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.byClient[addr]
	others := 0
	if sh != nil && l.perClient > 0 {
		others = sh.Others("reverse", l.name, addr)
	}
	if (l.max > 0 && l.open >= l.max) || (l.perClient > 0 && n+others >= l.perClient) {
		return nil, errQUICRefused
	}
	l.open++
	l.byClient[addr] = n + 1
	if sh != nil && l.perClient > 0 {
		sh.Set("reverse", l.name, addr, n+1)
	}
	context.AfterFunc(ctx, func() { l.release(addr, sh) })
	return ctx, nil
}

func (l *quicLimit) release(addr netip.Addr, sh accept.SharedCounts) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	n := l.byClient[addr] - 1
	if n > 0 {
		l.byClient[addr] = n
	} else {
		delete(l.byClient, addr)
	}
	if sh != nil && l.perClient > 0 {
		sh.Set("reverse", l.name, addr, max(n, 0))
	}
}

// noBody gives a request that came without a body (its stream ended with its
// headers) the body net/http's servers give such a request on HTTP/1.1 and
// HTTP/2: http.NoBody and ContentLength 0. quic-go leaves an open reader and
// ContentLength -1 when there is no Content-Length, which the cache treats as
// a GET with a body (never cached) and the pools as a body they cannot replay
// (never retried). It waits for the stream's end or first byte at most wait;
// a request whose body has started, or that is still open then, keeps it.
func noBody(w http.ResponseWriter, r *http.Request, wait time.Duration) *http.Request {
	if r.ContentLength >= 0 || r.Body == nil || r.Body == http.NoBody {
		return r
	}
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(wait))
	var first [1]byte
	n, err := io.ReadFull(r.Body, first[:])
	rc.SetReadDeadline(time.Time{})
	switch {
	case n == 0 && err == io.EOF:
		r.Body, r.ContentLength = http.NoBody, 0
	case n == 1:
		r.Body = &peekedBody{Reader: io.MultiReader(bytes.NewReader(first[:]), r.Body), Closer: r.Body}
	}
	return r
}

// peekedBody is a request body whose first byte noBody has read.
type peekedBody struct {
	io.Reader
	io.Closer
}
