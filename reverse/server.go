package reverse

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/portcullis/portcullis/internal/accept"
	"github.com/portcullis/portcullis/internal/httpguard"
)

// ShutdownGrace is how long Serve lets requests in flight finish after its
// context ends.
const ShutdownGrace = 10 * time.Second

// NewServer returns the http.Server for the door's listeners, with the
// slow-client defences set: ReadHeaderTimeout (limits.header_timeout, default
// 10s), IdleTimeout 120s, MaxHeaderBytes (limits.max_header_bytes, default 64
// KiB), HTTP/2 per cfg.HTTP2 (on TLS listeners only). ReadTimeout and
// WriteTimeout stay 0 so that WebSockets, SSE and big bodies are not cut off;
// the Handler enforces body_timeout and min_body_rate itself. "OPTIONS *"
// is left to the Handler (DisableGeneralOptionsHandler).
func NewServer(h http.Handler, cfg *Config, logger *slog.Logger) *http.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	lim := cfg.Limits
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: orDuration(lim.HeaderTimeout, DefaultHeaderTimeout),
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    orInt(lim.MaxHeaderBytes, DefaultMaxHeaderBytes),
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		Protocols:         new(http.Protocols),
		// "OPTIONS *" reaches the Handler, which answers it with Allow.
		DisableGeneralOptionsHandler: true,
	}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetHTTP2(boolOr(cfg.HTTP2, true))
	return srv
}

func orDuration(v, d time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return d
}

func orInt(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}

// Server runs the door's listeners: cfg.Listen (plain HTTP) and cfg.TLSListen
// (HTTPS), each wrapped by LimitListener with limits.max_conns and
// limits.max_conns_per_client.
//
// Connections taken over by a protocol switch (WebSockets) are not tracked by
// http.Server.Shutdown; Server tracks every connection and closes those still
// open when Serve returns, so no proxied stream outlives it.
type Server struct {
	srv    *http.Server
	lane   *Lane // serves plain listeners when the handler is a *Handler
	plain  []net.Listener
	secure []net.Listener
	conns  *connSet
	logger *slog.Logger
}

// Listen binds every configured address. h is usually an engine-owned handler
// that forwards to the current policy's *Handler. tlsCfg is required when
// cfg.TLSListen is not empty (see ServerTLSConfig).
func Listen(cfg *Config, h http.Handler, tlsCfg *tls.Config, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.TLSListen) > 0 && tlsCfg == nil {
		return nil, errors.New("reverse: tls_listen without a TLS configuration")
	}
	s := &Server{srv: NewServer(h, cfg, logger), logger: logger, conns: &connSet{m: map[*trackedConn]struct{}{}}}
	s.srv.TLSConfig = tlsCfg
	if rh, ok := h.(*Handler); ok {
		s.lane = NewLane(s.srv, func() *Handler { return rh }, logger)
	}
	bind := func(addrs []string) ([]net.Listener, error) {
		var out []net.Listener
		for _, a := range addrs {
			ln, err := net.Listen("tcp", a)
			if err != nil {
				return out, err
			}
			ln = accept.New(ln, "reverse "+ln.Addr().String(), logger, nil) // EMFILE and the like: back off, accept again
			ln = LimitListener(ln, cfg.Limits.MaxConns, cfg.Limits.MaxConnsPerClient)
			out = append(out, &trackListener{Listener: ln, set: s.conns})
		}
		return out, nil
	}
	var err error
	if s.plain, err = bind(cfg.Listen); err == nil {
		s.secure, err = bind(cfg.TLSListen)
	}
	if err != nil {
		s.closeListeners()
		return nil, err
	}
	return s, nil
}

// LaneStats returns how many requests the plain listeners' lane answered and
// how many connections it handed to net/http (zeros without a lane).
func (s *Server) LaneStats() (answered, handedOff uint64) {
	if s.lane == nil {
		return 0, 0
	}
	return s.lane.Stats()
}

// Addrs returns the bound plain and TLS addresses.
func (s *Server) Addrs() (plain, secure []net.Addr) {
	for _, l := range s.plain {
		plain = append(plain, l.Addr())
	}
	for _, l := range s.secure {
		secure = append(secure, l.Addr())
	}
	return plain, secure
}

func (s *Server) closeListeners() {
	for _, l := range append(s.plain, s.secure...) {
		l.Close()
	}
}

// Serve serves every listener until ctx ends, then shuts down gracefully
// (ShutdownGrace at most). It returns the first serving error, or nil.
func (s *Server) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	errc := make(chan error, len(s.plain)+len(s.secure))
	// The TLS listeners read s.srv.TLSConfig, which the first Serve writes
	// to (net/http sets HTTP/2 up there): all of them are made before
	// anything serves.
	secure := make([]net.Listener, 0, len(s.secure))
	for _, l := range s.secure {
		tl, err := httpguard.TLSListener(s.srv, l, s.logger)
		if err != nil {
			errc <- err
			continue
		}
		secure = append(secure, tl)
	}
	for _, l := range s.plain {
		if s.lane != nil {
			wg.Go(func() { errc <- s.lane.Serve(l) })
		} else {
			wg.Go(func() { errc <- s.srv.Serve(httpguard.NewListener(l, s.logger)) })
		}
	}
	for _, l := range secure {
		wg.Go(func() { errc <- s.srv.Serve(l) })
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownGrace)
	defer cancel()
	if s.lane != nil {
		if err := s.lane.Shutdown(sctx); err != nil {
			s.logger.Warn("reverse: shutdown", "err", err)
		}
	} else if err := s.srv.Shutdown(sctx); err != nil {
		s.logger.Warn("reverse: shutdown", "err", err)
		s.srv.Close()
	}
	s.conns.closeAll() // hijacked connections (WebSockets) still open
	wg.Wait()
	if errors.Is(first, http.ErrServerClosed) {
		first = nil
	}
	return first
}

// connSet is the set of open connections of a Server.
type connSet struct {
	mu sync.Mutex
	m  map[*trackedConn]struct{}
}

func (cs *connSet) closeAll() {
	cs.mu.Lock()
	conns := make([]*trackedConn, 0, len(cs.m))
	for c := range cs.m {
		conns = append(conns, c)
	}
	cs.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// open returns the number of tracked connections.
func (cs *connSet) open() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.m)
}

type trackListener struct {
	net.Listener
	set *connSet
}

func (l *trackListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, set: l.set}
	l.set.mu.Lock()
	l.set.m[tc] = struct{}{}
	l.set.mu.Unlock()
	return tc, nil
}

type trackedConn struct {
	net.Conn
	set  *connSet
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.set.mu.Lock()
		delete(c.set.m, c)
		c.set.mu.Unlock()
	})
	return c.Conn.Close()
}
