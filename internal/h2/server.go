// Package h2 is Portcullis's HTTP/2 server mux: it serves one connection
// (after TLS with ALPN "h2", or h2c with prior knowledge) and hands each
// stream to an http.Handler as a *http.Request and an http.ResponseWriter,
// the same stream type the HTTP/1.1 engine produces, so a door never knows
// which mux a request came from.
//
// Frames are read and written with golang.org/x/net/http2's Framer and
// header blocks coded with golang.org/x/net/http2/hpack; what this package
// adds is the connection's state machine: stream states, flow control,
// SETTINGS, PING, GOAWAY with a graceful drain, RST_STREAM, and the checks
// RFC 9113 asks a server to make (several of which Go's own server does not
// make). Priorities are ignored, as RFC 9113 allows.
//
// One read loop per connection (the goroutine that called ServeConn) reads
// and dispatches frames; each stream's handler runs in a goroutine of its
// own (a pooled worker), except where an ImmediateHandler answers at once on
// the read loop itself; one writer goroutine per connection writes every
// frame that is ready in one write call.
package h2

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the Server's zero fields.
const (
	DefaultMaxConcurrentStreams = 250
	DefaultMaxHeaderListSize    = 64 << 10
	DefaultMaxGlitches          = 1000
	defaultStreamWindow         = 1 << 20
	defaultConnWindow           = 1 << 20
	defaultPrefaceTimeout       = 10 * time.Second
	maxFrameSize                = 16384 // what we advertise (the protocol's default) and send
	maxPendingWrite             = 256 << 10
	maxPendingControl           = 4 << 20
)

// ErrServerClosed is returned by ServeConn for a connection offered after
// Shutdown began.
var ErrServerClosed = errors.New("h2: server closed")

// ImmediateHandler is a Handler that can answer some requests at once,
// from what it holds, without waiting on anything: a cache hit, a block page,
// a limit's refusal. For a request without a body, the connection's read
// loop calls ServeImmediate itself, with no goroutine for the stream: it
// either answers and reports true, or does nothing at all (not even set a
// header) and reports false, and ServeHTTP then runs on a goroutine as for
// every other request. ServeImmediate must not block: the connection reads no
// frame while it runs. Its answer is held in memory until it returns (Flush
// sends nothing before), then leaves from the read loop when the
// flow-control windows take all of it, else from a goroutine.
type ImmediateHandler interface {
	http.Handler
	ServeImmediate(w http.ResponseWriter, r *http.Request) bool
}

// Server serves HTTP/2 connections. Its fields must not change once it
// serves; the zero value of each field means its default.
type Server struct {
	// Handler answers every stream. Required. When it is an
	// ImmediateHandler, streams it answers at once cost no goroutine.
	Handler http.Handler
	// MaxConcurrentStreams is the SETTINGS_MAX_CONCURRENT_STREAMS advertised
	// and enforced (REFUSED_STREAM beyond it). Default 250.
	MaxConcurrentStreams uint32
	// MaxHeaderListSize is the SETTINGS_MAX_HEADER_LIST_SIZE advertised: a
	// larger request header list gets 431, one far larger ends the
	// connection. Default 64 KiB.
	MaxHeaderListSize uint32
	// IdleTimeout closes (with GOAWAY) a connection without streams for
	// that long. Zero: never.
	IdleTimeout time.Duration
	// WriteTimeout bounds each write to the connection; a client that does
	// not read for that long is disconnected. Zero: no bound.
	WriteTimeout time.Duration
	// MaxGlitches is the budget of suspicious frames a connection may send
	// (streams reset by the client before their answer, empty DATA frames,
	// SETTINGS and PING frames, refused streams, empty CONTINUATION frames);
	// it refills by a tenth of itself per second. Beyond it the connection
	// ends with GOAWAY ENHANCE_YOUR_CALM. Default 1000.
	MaxGlitches int
	// Log receives one line per connection error. Nil: no log.
	Log *slog.Logger

	mu       sync.Mutex
	conns    map[*conn]struct{}
	draining bool
	idle     []*worker   // workers waiting for a stream, the longest idle first
	reaper   *time.Timer // ends workers idle longer than workerIdle; nil: none armed
	workers  atomic.Int32

	date atomic.Pointer[dateCache]
}

// workerIdle is how long a worker may wait for a stream before it is told
// to end (by the reaper, at the next dispatch, or when the last connection
// ends).
const workerIdle = 2 * time.Second

// worker is a goroutine that runs streams' handlers one after another (its
// stack has already grown to what handlers need).
type worker struct {
	work  chan *stream // one stream, or nil: end
	since time.Time    // idle since
}

// dispatch runs st's handler on the worker idle the shortest time, or on a
// new one. A worker idle longer than workerIdle is told to end.
func (s *Server) dispatch(st *stream) {
	s.mu.Lock()
	n := len(s.idle)
	if n == 0 {
		s.mu.Unlock()
		s.workers.Add(1)
		go s.worker(st)
		return
	}
	w := s.idle[n-1]
	s.idle[n-1] = nil
	s.idle = s.idle[:n-1]
	var old *worker
	if n > 1 && time.Since(s.idle[0].since) > workerIdle {
		old = s.idle[0]
		copy(s.idle, s.idle[1:])
		s.idle[len(s.idle)-1] = nil
		s.idle = s.idle[:len(s.idle)-1]
	}
	s.mu.Unlock()
	w.work <- st
	if old != nil {
		old.work <- nil
	}
}

// worker runs st, then the streams dispatch hands it, until it is told to
// end or finds the server without connections.
func (s *Server) worker(st *stream) {
	defer s.workers.Add(-1)
	w := &worker{work: make(chan *stream, 1)}
	for st != nil {
		st.run()
		w.since = time.Now()
		s.mu.Lock()
		if len(s.conns) == 0 {
			s.mu.Unlock()
			return
		}
		s.idle = append(s.idle, w)
		if s.reaper == nil {
			s.reaper = time.AfterFunc(workerIdle, s.reap)
		}
		s.mu.Unlock()
		st = w.wait()
	}
}

// idleDepth is the stack an idle worker keeps in use while it waits: the
// garbage collector shrinks (copies to half its size) the stack of a
// goroutine using under a quarter of it, which a worker then grows again,
// copy by copy, in its next handler.
const idleDepth = 8 << 10

// wait waits for the worker's next stream in a frame of idleDepth bytes
// (zeroed, never read: no pointers for the collector to scan), so that the
// stack the worker's handlers grew is not shrunk while it is idle.
//
//go:noinline
func (w *worker) wait() *stream {
	var depth [idleDepth]byte
	st := <-w.work
	keepDepth(&depth)
	return st
}

//go:noinline
func keepDepth(*[idleDepth]byte) {}

// reap tells the workers idle longer than workerIdle to end (a burst of
// streams on a connection that then stays quiet leaves no goroutines behind),
// and arms itself again while any worker is idle.
func (s *Server) reap() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reaper = nil
	now := time.Now()
	n := 0
	for n < len(s.idle) && now.Sub(s.idle[n].since) >= workerIdle {
		s.idle[n].work <- nil
		n++
	}
	rest := copy(s.idle, s.idle[n:])
	clear(s.idle[rest:])
	s.idle = s.idle[:rest]
	if rest > 0 {
		s.reaper = time.AfterFunc(workerIdle-now.Sub(s.idle[0].since), s.reap)
	}
}

// endIdleLocked tells every idle worker to end.
func (s *Server) endIdleLocked() {
	for i, w := range s.idle {
		w.work <- nil
		s.idle[i] = nil
	}
	s.idle = s.idle[:0]
	if s.reaper != nil {
		s.reaper.Stop()
		s.reaper = nil
	}
}

type dateCache struct {
	sec int64
	val string
}

// httpDate is the Date header for now, formatted at most once a second.
func (s *Server) httpDate() string {
	now := time.Now()
	if d := s.date.Load(); d != nil && d.sec == now.Unix() {
		return d.val
	}
	d := &dateCache{sec: now.Unix(), val: now.UTC().Format(http.TimeFormat)}
	s.date.Store(d)
	return d.val
}

func (s *Server) maxStreams() uint32 {
	if s.MaxConcurrentStreams == 0 {
		return DefaultMaxConcurrentStreams
	}
	return s.MaxConcurrentStreams
}

func (s *Server) maxHeaderList() uint32 {
	if s.MaxHeaderListSize == 0 {
		return DefaultMaxHeaderListSize
	}
	return s.MaxHeaderListSize
}

func (s *Server) maxGlitches() int {
	if s.MaxGlitches <= 0 {
		return DefaultMaxGlitches
	}
	return s.MaxGlitches
}

// ServeConn serves the HTTP/2 connection c until it ends, then closes c.
// c's first bytes must be the client's connection preface (for a
// connection whose preface was already read, hand a net.Conn that replays
// it). Requests' contexts carry ctx's values; when ctx ends, the
// connection is drained: GOAWAY, the streams in flight finish, no new one
// starts, then it closes (internal/h1's Server.H2 contract). Closing c ends
// it at once. When c has a ConnectionState method (a *tls.Conn), requests
// carry that state in TLS.
func (s *Server) ServeConn(ctx context.Context, c net.Conn) error {
	cn := newConn(s, c)
	if !s.track(cn, true) {
		c.Close()
		return ErrServerClosed
	}
	defer s.track(cn, false)
	return cn.serve(ctx)
}

// ServeTLS is ServeConn in the shape of internal/h1's Server.H2 hook.
func (s *Server) ServeTLS(ctx context.Context, c *tls.Conn) { _ = s.ServeConn(ctx, c) }

// track adds or removes c; it reports false when adding during a Shutdown.
func (s *Server) track(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.conns, c)
		if len(s.conns) == 0 {
			s.endIdleLocked()
		}
		return true
	}
	if s.draining {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

// Shutdown drains every connection: each gets a GOAWAY naming the last
// stream it will serve, the streams it already started finish, and the
// connection closes when they have. Connections offered to ServeConn
// afterwards are closed at once. Shutdown returns when every connection has
// ended, or with ctx's error when ctx ends first, after closing those left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.drain()
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for c := range s.conns {
				c.abort()
			}
			s.mu.Unlock()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Drain sends GOAWAY on every connection being served, as Shutdown does,
// but returns at once and keeps accepting new connections: for a reload
// that hands new connections to a new Server.
func (s *Server) Drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.drain()
	}
}
