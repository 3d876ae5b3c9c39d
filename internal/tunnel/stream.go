package tunnel

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// StreamConn is the client side of a tunnel carried by one HTTP stream (a
// CONNECT over HTTP/2, RFC 9113 §8.5, or HTTP/3) as a net.Conn. Reads take the
// request body through a goroutine of its own (pump), so that a read deadline
// ends a Read without breaking the stream (net/http's stream read deadline
// would end the body for good, and the tunnel sets one every round); writes
// go to the ResponseWriter and are flushed at once. Close ends both: the
// body is closed (which ends the pump) and a write blocked on flow control
// is cut by a write deadline in the past.
type StreamConn struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	body   io.ReadCloser
	local  net.Addr
	remote net.Addr

	readMu  sync.Mutex
	pending []byte // read from the body, not yet returned
	held    []byte // the buffer pending points into, given back when drained
	rerr    error  // the body's error, returned once pending is drained

	start   sync.Once
	got     chan chunk  // pump → Read
	free    chan []byte // Read → pump: buffers to read into
	done    chan struct{}
	closing sync.Once
	writing atomic.Int32
	closed  atomic.Bool
	rd      deadline
}

// chunk is one read of the request body.
type chunk struct {
	b   []byte
	err error
}

// streamBuf is the size of each of the pump's two buffers.
const streamBuf = 16 << 10

// NewStreamConn returns the stream of r (answered through w) as a net.Conn.
// The handler must have sent the 2xx answer and must not return before the
// tunnel ends. local is the listener's address (nil: the request context's
// http.LocalAddrContextKey, else unknown).
func NewStreamConn(w http.ResponseWriter, r *http.Request, local net.Addr) *StreamConn {
	c := &StreamConn{
		w: w, rc: http.NewResponseController(w), body: r.Body,
		remote: streamAddr(r.RemoteAddr),
		got:    make(chan chunk), free: make(chan []byte, 2), done: make(chan struct{}),
	}
	c.local = local
	if c.local == nil {
		c.local = streamAddr("")
		if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			c.local = la
		}
	}
	c.rd.init()
	return c
}

// pump reads the body into the free buffers until it fails or c closes.
func (c *StreamConn) pump() {
	for {
		var b []byte
		select {
		case b = <-c.free:
		case <-c.done:
			return
		}
		n, err := c.body.Read(b[:cap(b)])
		select {
		case c.got <- chunk{b[:n], err}:
		case <-c.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// Read implements net.Conn.
func (c *StreamConn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	c.start.Do(func() {
		c.free <- make([]byte, streamBuf)
		c.free <- make([]byte, streamBuf)
		go c.pump()
	})
	for len(c.pending) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if c.held != nil {
			c.free <- c.held[:0]
			c.held = nil
		}
		select {
		case ch := <-c.got:
			c.pending, c.held, c.rerr = ch.b, ch.b, ch.err
		case <-c.rd.wait():
			return 0, os.ErrDeadlineExceeded
		case <-c.done:
			return 0, net.ErrClosed
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// Write implements net.Conn: p is sent in DATA frames at once.
func (c *StreamConn) Write(p []byte) (int, error) {
	c.writing.Add(1)
	defer c.writing.Add(-1)
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	n, err := c.w.Write(p)
	if err == nil {
		err = c.rc.Flush()
	}
	return n, err
}

// Close implements net.Conn (idempotent).
func (c *StreamConn) Close() error {
	c.closing.Do(func() {
		c.closed.Store(true)
		close(c.done)
		_ = c.body.Close()
		if c.writing.Load() > 0 { // blocked on the client's flow control
			_ = c.rc.SetWriteDeadline(time.Now())
		}
	})
	return nil
}

// LocalAddr implements net.Conn: the listener's side of the connection.
func (c *StreamConn) LocalAddr() net.Addr { return c.local }

// RemoteAddr implements net.Conn: the client.
func (c *StreamConn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline implements net.Conn.
func (c *StreamConn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline implements net.Conn.
func (c *StreamConn) SetReadDeadline(t time.Time) error {
	c.rd.set(t)
	return nil
}

// SetWriteDeadline implements net.Conn with the stream's write deadline:
// past it, the stream is reset.
func (c *StreamConn) SetWriteDeadline(t time.Time) error {
	if err := c.rc.SetWriteDeadline(t); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// streamAddr is an address known only as text (the client's RemoteAddr).
type streamAddr string

func (a streamAddr) Network() string { return "tcp" }
func (a streamAddr) String() string  { return string(a) }

// deadline is a settable point in time whose wait channel is closed once it
// passes (as net.Pipe's deadlines are).
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	c     chan struct{} // closed when the deadline passed
}

func (d *deadline) init() { d.c = make(chan struct{}) }

// set moves the deadline to t (zero: none).
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.c // the timer fired: wait until it closed c
	}
	d.timer = nil
	select {
	case <-d.c:
		d.c = make(chan struct{}) // passed: a new, open one
	default:
	}
	if t.IsZero() {
		return
	}
	if dur := time.Until(t); dur > 0 {
		c := d.c
		d.timer = time.AfterFunc(dur, func() { close(c) })
		return
	}
	close(d.c)
}

// wait returns a channel closed when the deadline passes.
func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.c
}
