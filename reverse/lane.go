package reverse

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
	srv     *http.Server
	current func() *Handler
	logger  *slog.Logger
	handoff *handoffListener
	dates   dateCache

	headerTimeout, idleTimeout time.Duration

	mu      sync.Mutex
	lns     map[net.Listener]struct{}
	conns   map[*laneConn]struct{}
	closing atomic.Bool
	wg      sync.WaitGroup // lane connections and accept loops

	srvOnce sync.Once
	srvDone chan struct{}

	answered, handedOff atomic.Uint64

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
	return l.answered.Load(), l.handedOff.Load()
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
		srv: srv, current: current, logger: logger,
		handoff:       newHandoffListener(),
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

// Serve accepts connections on ln until ln is closed or Shutdown is called,
// and returns http.ErrServerClosed after Shutdown, else the Accept error.
func (l *Lane) Serve(ln net.Listener) error {
	l.srvOnce.Do(func() {
		go func() {
			defer close(l.srvDone)
			if err := l.srv.Serve(httpguard.NewListener(l.handoff, l.logger)); err != nil && !errors.Is(err, http.ErrServerClosed) {
				l.logger.Error("reverse: serving handed-off connections", "err", err)
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
		lc, _ := l.connPool.Get().(*laneConn)
		if lc == nil {
			lc = new(laneConn)
		}
		lc.lane, lc.c, lc.peer = l, c, remoteAddr(c)
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

// Shutdown stops accepting, lets the lane finish the responses it is writing
// and closes its idle connections, then shuts srv down (which waits for the
// requests it serves), all within ctx.
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
			lc.c.Close()
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

func newHandoffListener() *handoffListener {
	return &handoffListener{ch: make(chan net.Conn), done: make(chan struct{})}
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

// prefixConn is a connection whose first bytes were already read by the lane.
type prefixConn struct {
	net.Conn
	pre []byte
}

// Read implements net.Conn.
func (c *prefixConn) Read(p []byte) (int, error) {
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
