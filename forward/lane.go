package forward

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/httpguard"
)

// Lane serves the forward door's plain listeners with a lane in front of
// net/http and goproxy. Each connection starts on the lane, which reads
// requests itself and serves the simple ones synchronously on the
// connection's own goroutine: absolute-form HTTP/1.1 GET and HEAD for http://
// URLs without a body (see laneRequest), decided by the same code as the
// goproxy path (allow_clients, loop detection, the policy, the block page,
// the anonymize profile, hop-by-hop removal, the access log), sent on an
// upstream connection the client connection keeps for one host:port, dialed
// with the door's own dialer (the resolver's egress guard, dial timeout), and
// the response head read with the transport's limits and relayed with the
// body streamed. At the first request it does not take — anything else
// (CONNECT, bodies, Upgrade, HTTP/1.0, odd heads, relative URLs), or a policy
// or verdict needing what only the goproxy path does (proxy sign-in, school
// filters, the forward cache, upstream pools) — it hands the connection,
// with the bytes it has read, to srv, which serves it from then on exactly as
// it serves every connection. Declining is always safe: nothing is logged,
// dialed or written before the lane is sure to serve the request.
//
// The lane applies srv's ReadHeaderTimeout and IdleTimeout to the requests
// it reads; connections handed over are guarded by internal/httpguard.
type Lane struct {
	srv     *http.Server
	current func() *Proxy
	logger  *slog.Logger
	handoff *handoffListener

	headerTimeout, idleTimeout time.Duration

	mu      sync.Mutex
	lns     map[net.Listener]struct{}
	conns   map[*laneConn]struct{}
	closing atomic.Bool
	wg      sync.WaitGroup // lane connections and accept loops

	srvOnce sync.Once
	srvDone chan struct{}

	answered, handedOff atomic.Uint64
	bufs                sync.Pool // *[laneCopyBuf]byte, response body copy buffers
}

// laneCopyBuf is the size of the buffers response bodies are copied with.
const laneCopyBuf = 32 << 10

// getBuf returns a body copy buffer.
func (l *Lane) getBuf() []byte {
	if b, ok := l.bufs.Get().(*[laneCopyBuf]byte); ok {
		return b[:]
	}
	return make([]byte, laneCopyBuf)
}

// putBuf returns a buffer from getBuf.
func (l *Lane) putBuf(b []byte) { l.bufs.Put((*[laneCopyBuf]byte)(b)) }

// NewLane returns a Lane that serves with the Proxy current returns (nil:
// every connection goes to srv) and hands the rest to srv, whose Handler
// must serve the same door. srv must not be served elsewhere; Shutdown shuts
// it down.
func NewLane(srv *http.Server, current func() *Proxy, logger *slog.Logger) *Lane {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Lane{
		srv: srv, current: current, logger: logger,
		handoff:       &handoffListener{ch: make(chan net.Conn), done: make(chan struct{})},
		headerTimeout: srv.ReadHeaderTimeout,
		idleTimeout:   srv.IdleTimeout,
		lns:           map[net.Listener]struct{}{},
		conns:         map[*laneConn]struct{}{},
		srvDone:       make(chan struct{}),
	}
	if l.idleTimeout <= 0 {
		l.idleTimeout = srv.ReadTimeout
	}
	return l
}

// Stats returns how many requests the lane served and how many connections
// it handed to net/http.
func (l *Lane) Stats() (answered, handedOff uint64) {
	return l.answered.Load(), l.handedOff.Load()
}

// Serve accepts connections on ln until ln is closed or Shutdown is called,
// and returns http.ErrServerClosed after Shutdown, else the Accept error.
func (l *Lane) Serve(ln net.Listener) error {
	l.srvOnce.Do(func() {
		go func() {
			defer close(l.srvDone)
			if err := l.srv.Serve(httpguard.NewListener(l.handoff, l.logger)); err != nil && !errors.Is(err, http.ErrServerClosed) {
				l.logger.Error("forward: serving handed-off connections", "err", err)
			}
		}()
	})
	l.mu.Lock()
	if l.closing.Load() {
		l.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	l.lns[ln] = struct{}{}
	l.wg.Add(1)
	l.mu.Unlock()
	defer l.wg.Done()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if l.closing.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() { // EMFILE and the like: back off as net/http does
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				t := time.NewTimer(delay)
				<-t.C
				continue
			}
			return err
		}
		delay = 0
		lc := &laneConn{lane: l, c: c}
		l.mu.Lock()
		if l.closing.Load() {
			l.mu.Unlock()
			c.Close()
			return http.ErrServerClosed
		}
		l.conns[lc] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go lc.serve()
	}
}

// Shutdown stops accepting, lets the lane finish the responses it is
// relaying and closes its idle connections, then shuts srv down (which waits
// for the requests it serves), all within ctx; past ctx the lane's
// connections are closed.
func (l *Lane) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	l.closing.Store(true)
	for ln := range l.lns {
		ln.Close()
	}
	for lc := range l.conns {
		lc.wake()
	}
	l.mu.Unlock()
	idle := make(chan struct{})
	go func() { l.wg.Wait(); close(idle) }()
	var err error
	select {
	case <-idle:
	case <-ctx.Done():
		err = ctx.Err()
		l.mu.Lock()
		for lc := range l.conns {
			lc.kill()
		}
		l.mu.Unlock()
		<-idle
	}
	if serr := l.srv.Shutdown(ctx); serr != nil {
		l.srv.Close()
		err = errors.Join(err, serr)
	}
	l.srvOnce.Do(func() { close(l.srvDone) }) // never served: nothing to wait for
	<-l.srvDone
	return err
}

func (l *Lane) forget(lc *laneConn) {
	l.mu.Lock()
	delete(l.conns, lc)
	l.mu.Unlock()
	l.wg.Done()
}

// handoffListener is the net.Listener srv serves: the connections the lane
// hands over.
type handoffListener struct {
	ch        chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

// Accept implements net.Listener.
func (h *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.ch:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (h *handoffListener) Close() error {
	h.closeOnce.Do(func() { close(h.done) })
	return nil
}

// Addr implements net.Listener.
func (h *handoffListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4zero} }

// give hands c to srv, or closes it when srv has shut down.
func (h *handoffListener) give(c net.Conn) {
	select {
	case h.ch <- c:
	case <-h.done:
		c.Close()
	}
}

// laneHandedConn is a connection handed to net/http whose first bytes were
// already read by the lane.
type laneHandedConn struct {
	net.Conn
	pre []byte
}

// Read implements net.Conn.
func (c *laneHandedConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		if len(c.pre) == 0 {
			c.pre = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// unwrapLane returns the socket under a connection the lane handed over once
// its replayed bytes have all been read (net/http's first read takes them
// all: the lane's buffer is no larger than the server's), so a CONNECT tunnel
// keeps its kernel-side copies; any other connection is returned as it is.
func unwrapLane(c net.Conn) net.Conn {
	if h, ok := c.(*laneHandedConn); ok && len(h.pre) == 0 {
		return h.Conn
	}
	return c
}
