// Package lane owns what the doors' fast lanes in front of net/http share:
// accepting connections for a lane (through package accept, which backs off
// on EMFILE and the like and accepts again), tracking them for shutdown
// (waking idle ones, closing the rest past the deadline), handing a connection with the bytes the lane already
// read to the http.Server that serves it from then on, and the two wire
// helpers both lanes use (finding the end of a request head, writing a
// header field). Each door keeps its own parsing and serving.
package lane

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/accept"
	"github.com/portcullis/portcullis/internal/httpguard"
)

// Conn is one connection while a lane serves it, as Conns tracks it.
type Conn interface {
	// Serve runs the connection until it ends or is handed off; it is run
	// on its own goroutine and must call Conns.Forget last.
	Serve()
	// Wake makes a read waiting for the next request return at once
	// (Shutdown). It is called with the Conns' lock held.
	Wake()
	// Kill closes the connection (Shutdown past its deadline). It is called
	// with the Conns' lock held.
	Kill()
}

// Conns tracks a lane's listeners and connections, and serves with srv the
// connections the lane hands off. Create it with NewConns.
type Conns struct {
	srv    *http.Server
	logger *slog.Logger
	door   string
	ln     *Listener

	mu      sync.Mutex
	lns     map[net.Listener]struct{}
	conns   map[Conn]struct{}
	closing atomic.Bool
	wg      sync.WaitGroup // lane connections and accept loops

	srvOnce sync.Once
	srvDone chan struct{}

	handedOff atomic.Uint64
}

// Timeouts returns what a lane in front of srv applies to the requests it
// reads: srv's ReadHeaderTimeout, and its IdleTimeout (ReadTimeout when
// that is zero), as net/http does.
func Timeouts(srv *http.Server) (header, idle time.Duration) {
	idle = srv.IdleTimeout
	if idle <= 0 {
		idle = srv.ReadTimeout
	}
	return srv.ReadHeaderTimeout, idle
}

// NewConns returns a Conns that hands connections to srv, which must not be
// served elsewhere (Shutdown shuts it down). door names the door in log
// messages ("reverse", "forward").
func NewConns(srv *http.Server, logger *slog.Logger, door string) *Conns {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Conns{
		srv: srv, logger: logger, door: door,
		ln:      NewListener(),
		lns:     map[net.Listener]struct{}{},
		conns:   map[Conn]struct{}{},
		srvDone: make(chan struct{}),
	}
}

// Closing reports whether Shutdown has begun.
func (t *Conns) Closing() bool { return t.closing.Load() }

// Serve accepts connections on ln until ln is closed or Shutdown is called,
// and returns http.ErrServerClosed after Shutdown, else the Accept error.
// Each accepted connection is made a Conn by newConn, added, and served on
// a goroutine of its own.
func (t *Conns) Serve(ln net.Listener, newConn func(net.Conn) Conn) error {
	t.srvOnce.Do(func() {
		go func() {
			defer close(t.srvDone)
			if err := t.srv.Serve(httpguard.NewListener(t.ln, t.logger)); err != nil && !errors.Is(err, http.ErrServerClosed) {
				t.logger.Error(t.door+": serving handed-off connections", "err", err)
			}
		}()
	})
	ln = accept.New(ln, t.door, t.logger, nil) // EMFILE and the like: back off, accept again
	t.mu.Lock()
	if t.closing.Load() {
		t.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	t.lns[ln] = struct{}{}
	t.wg.Add(1)
	t.mu.Unlock()
	defer t.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if t.closing.Load() {
				return http.ErrServerClosed
			}
			return err // the listener is closed or broken: accept retries the rest
		}
		lc := newConn(c)
		if !t.Add(lc) {
			c.Close()
			return http.ErrServerClosed
		}
		go lc.Serve()
	}
}

// Add tracks c until Forget; false (c not tracked) once Shutdown has begun.
func (t *Conns) Add(c Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing.Load() {
		return false
	}
	t.conns[c] = struct{}{}
	t.wg.Add(1)
	return true
}

// Handoff gives nc, the connection under c, to srv. c leaves the set (under
// the lock) first, so Shutdown never wakes or closes a connection net/http
// is serving — its background read would fail and cancel the request in
// flight. nc's deadlines are cleared in between: net/http sets the read
// deadlines it wants, and sets no write deadline without a WriteTimeout, so
// a write deadline the lane left would cut a long response. Handoff waits
// until srv takes nc, or closes nc when srv has shut down. The Conn's
// goroutine must still call Forget.
func (t *Conns) Handoff(c Conn, nc net.Conn) {
	t.handedOff.Add(1)
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	nc.SetDeadline(time.Time{})
	t.ln.Give(nc)
}

// HandedOff returns how many connections Handoff gave to srv.
func (t *Conns) HandedOff() uint64 { return t.handedOff.Load() }

// Forget stops tracking c: its goroutine is done with it.
func (t *Conns) Forget(c Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	t.wg.Done()
}

// Shutdown stops accepting, wakes the lane's connections (each finishes the
// response it is writing and ends when idle) and waits for them, kills those
// left when ctx ends, then shuts srv down (which waits for the requests it
// serves) within ctx.
func (t *Conns) Shutdown(ctx context.Context) error {
	t.mu.Lock()
	t.closing.Store(true)
	for ln := range t.lns {
		ln.Close()
	}
	for c := range t.conns {
		c.Wake()
	}
	t.mu.Unlock()
	idle := make(chan struct{})
	go func() { t.wg.Wait(); close(idle) }()
	var err error
	select {
	case <-idle:
	case <-ctx.Done():
		err = ctx.Err()
		t.mu.Lock()
		for c := range t.conns {
			c.Kill()
		}
		t.mu.Unlock()
		<-idle
	}
	if serr := t.srv.Shutdown(ctx); serr != nil {
		t.srv.Close()
		err = errors.Join(err, serr)
	}
	t.srvOnce.Do(func() { close(t.srvDone) }) // never served: nothing to wait for
	<-t.srvDone
	return err
}

// Listener is the net.Listener an http.Server serves to take the
// connections a lane hands over. Create it with NewListener.
type Listener struct {
	ch        chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

// NewListener returns an open Listener.
func NewListener() *Listener {
	return &Listener{ch: make(chan net.Conn), done: make(chan struct{})}
}

// Accept implements net.Listener.
func (h *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-h.ch:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (h *Listener) Close() error {
	h.closeOnce.Do(func() { close(h.done) })
	return nil
}

// Addr implements net.Listener.
func (h *Listener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4zero} }

// Give hands c to the Accept waiting, or closes it when the Listener is closed.
func (h *Listener) Give(c net.Conn) {
	select {
	case h.ch <- c:
	case <-h.done:
		c.Close()
	}
}

// PrefixConn is a connection whose first bytes were already read by a lane:
// its Read returns them before reading the connection.
type PrefixConn struct {
	net.Conn
	pre []byte
}

// NewPrefixConn returns c with a copy of read to be read first.
func NewPrefixConn(c net.Conn, read []byte) *PrefixConn {
	return &PrefixConn{Conn: c, pre: append([]byte(nil), read...)}
}

// Read implements net.Conn.
func (c *PrefixConn) Read(p []byte) (int, error) {
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

// Bare returns the connection under c once every byte to replay has been
// read, else nil.
func (c *PrefixConn) Bare() net.Conn {
	if len(c.pre) == 0 {
		return c.Conn
	}
	return nil
}

// Head returns the length of the request head at the start of buf (through
// the empty line) when it is complete, 0 when more bytes are wanted, or -1
// when the lanes leave it to net/http: a line of it ends in a bare LF, or
// buf is full (full) with no complete head in it, a head too big for the
// lane.
func Head(buf []byte, full bool) int {
	for i := 0; ; {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			if full {
				return -1
			}
			return 0
		}
		i += j
		if i == 0 || buf[i-1] != '\r' {
			return -1
		}
		if i >= 3 && buf[i-2] == '\n' && buf[i-3] == '\r' {
			return i + 1
		}
		i++
	}
}

// AppendField appends "k: v\r\n", with CR and LF in v turned into spaces
// and v trimmed, as net/http writes fields.
func AppendField(out []byte, k, v string) []byte {
	if hasCRLF(v) {
		v = strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' {
				return ' '
			}
			return r
		}, v)
	}
	v = strings.Trim(v, " \t")
	out = append(out, k...)
	out = append(out, ": "...)
	out = append(out, v...)
	return append(out, "\r\n"...)
}

// hasCRLF reports whether v holds a CR or LF.
func hasCRLF(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] == '\r' || v[i] == '\n' {
			return true
		}
	}
	return false
}

// DeadlineSlack is how stale a connection deadline may get before a lane
// moves it: setting one costs a timer update, so it is refreshed at most
// about once a second per connection rather than once per request.
const DeadlineSlack = time.Second

// Deadlines remembers the deadlines a lane set on its connection, to move
// them only when they are more than DeadlineSlack stale. The zero value is
// a connection with none set.
type Deadlines struct{ rd, wr time.Time }

// SetRead sets c's read deadline to want unless the one set is no more than
// DeadlineSlack earlier.
func (d *Deadlines) SetRead(c net.Conn, want time.Time) {
	if want.Before(d.rd) || want.Sub(d.rd) > DeadlineSlack {
		d.rd = want
		c.SetReadDeadline(want)
	}
}

// SetWrite sets c's write deadline to want when the one set is more than
// DeadlineSlack earlier.
func (d *Deadlines) SetWrite(c net.Conn, want time.Time) {
	if want.Sub(d.wr) > DeadlineSlack {
		d.wr = want
		c.SetWriteDeadline(want)
	}
}
