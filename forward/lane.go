package forward

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/lane"
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
	current func() *Proxy
	logger  *slog.Logger
	conns   *lane.Conns

	headerTimeout, idleTimeout time.Duration

	answered atomic.Uint64
	bufs     sync.Pool // *[laneCopyBuf]byte, response body copy buffers
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
		current: current, logger: logger,
		conns: lane.NewConns(srv, logger, "forward"),
	}
	l.headerTimeout, l.idleTimeout = lane.Timeouts(srv)
	return l
}

// Stats returns how many requests the lane served and how many connections
// it handed to net/http.
func (l *Lane) Stats() (answered, handedOff uint64) {
	return l.answered.Load(), l.conns.HandedOff()
}

// Serve accepts connections on ln until ln is closed or Shutdown is called,
// and returns http.ErrServerClosed after Shutdown, else the Accept error.
func (l *Lane) Serve(ln net.Listener) error {
	return l.conns.Serve(ln, func(c net.Conn) lane.Conn { return &laneConn{lane: l, c: c} })
}

// Shutdown stops accepting, lets the lane finish the responses it is
// relaying and closes its idle connections, then shuts srv down (which waits
// for the requests it serves), all within ctx; past ctx the lane's
// connections are closed.
func (l *Lane) Shutdown(ctx context.Context) error {
	return l.conns.Shutdown(ctx)
}

// unwrapLane returns the socket under a connection the lane handed over once
// its replayed bytes have all been read (net/http's first read takes them
// all: the lane's buffer is no larger than the server's), so a CONNECT tunnel
// keeps its kernel-side copies; any other connection is returned as it is.
func unwrapLane(c net.Conn) net.Conn {
	if h, ok := c.(*lane.PrefixConn); ok {
		if bare := h.Bare(); bare != nil {
			return bare
		}
	}
	return c
}
