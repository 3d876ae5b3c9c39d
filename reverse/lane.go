package reverse

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

// Lane serves the door's plain-HTTP listeners with a fast lane in front of
// net/http. Each connection starts on the lane, which reads requests itself
// and answers those the current Handler can answer without an upstream (fresh
// cache hits, the door's own pages) with no per-request goroutine, context or
// header sorting, batching the responses of pipelined requests into one
// write. At the first request the lane does not take — anything but a simple
// GET or HEAD (see parseLaneHead), a request with a body, a miss — it hands
// the connection, with the bytes it has read, to srv, which serves it from
// then on exactly as it serves every connection. Declining is always safe:
// the lane changes nothing (no token taken, nothing logged) before it is sure
// to answer.
//
// The lane applies srv's ReadHeaderTimeout and IdleTimeout to the requests it
// reads.
type Lane struct {
	current func() *Handler
	logger  *slog.Logger
	conns   *lane.Conns
	dates   dateCache

	headerTimeout, idleTimeout time.Duration

	answered atomic.Uint64

	// Read buffers and connection states are reused: a connection handed to
	// net/http after its first request, or idle between requests, holds
	// neither (nginx's lazy buffers), so the lane adds nothing to the memory
	// of an idle connection.
	bufs     sync.Pool // *[laneBufSize]byte
	connPool sync.Pool // *laneConn
}

// getBuf returns a read buffer of laneBufSize bytes.
func (l *Lane) getBuf() []byte {
	if b, ok := l.bufs.Get().(*[laneBufSize]byte); ok {
		return b[:]
	}
	return make([]byte, laneBufSize)
}

// putBuf returns a buffer from getBuf.
func (l *Lane) putBuf(b []byte) {
	if cap(b) >= laneBufSize {
		l.bufs.Put((*[laneBufSize]byte)(b[:laneBufSize]))
	}
}

// Stats returns how many requests the lane answered and how many connections
// it handed to net/http.
func (l *Lane) Stats() (answered, handedOff uint64) {
	return l.answered.Load(), l.conns.HandedOff()
}

// laneBufSize is the lane's read buffer: a request head that does not fit is
// handed to net/http (which allows MaxHeaderBytes).
const laneBufSize = 4 << 10

// NewLane returns a Lane that answers with the Handler current returns (nil:
// every connection goes to srv) and hands the rest to srv. srv must not be
// served elsewhere; Lane.Shutdown shuts it down.
func NewLane(srv *http.Server, current func() *Handler, logger *slog.Logger) *Lane {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Lane{
		current: current, logger: logger,
		conns: lane.NewConns(srv, logger, "reverse"),
	}
	l.headerTimeout, l.idleTimeout = lane.Timeouts(srv)
	return l
}

// Serve accepts connections on ln until ln is closed or Shutdown is called,
// and returns http.ErrServerClosed after Shutdown, else the Accept error.
func (l *Lane) Serve(ln net.Listener) error {
	return l.conns.Serve(ln, l.newConn)
}

// newConn returns the lane's state for a connection it accepted.
func (l *Lane) newConn(c net.Conn) lane.Conn {
	lc, _ := l.connPool.Get().(*laneConn)
	if lc == nil {
		lc = new(laneConn)
	}
	lc.lane, lc.c, lc.peer = l, c, remoteAddr(c)
	return lc
}

// Shutdown stops accepting, lets the lane finish the responses it is writing
// and closes its idle connections, then shuts srv down (which waits for the
// requests it serves), all within ctx.
func (l *Lane) Shutdown(ctx context.Context) error {
	return l.conns.Shutdown(ctx)
}

// dateCache is the Date field value of the current second, shared by the
// lane's responses.
type dateCache struct{ p atomic.Pointer[dateValue] }

type dateValue struct {
	sec int64
	val string
}

func (d *dateCache) get(now time.Time) string {
	sec := now.Unix()
	if v := d.p.Load(); v != nil && v.sec == sec {
		return v.val
	}
	v := &dateValue{sec: sec, val: now.UTC().Format(http.TimeFormat)}
	d.p.Store(v)
	return v.val
}
