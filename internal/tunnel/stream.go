package tunnel

import (
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// StreamConn is the client side of a tunnel carried by one HTTP stream (a
// CONNECT over HTTP/2, RFC 9113 §8.5, or HTTP/3): reads come from the
// request body, writes go to the response (flushed at once). The handler
// must have sent the 2xx answer and must not return before the tunnel ends.
// Deadlines go through http.ResponseController (HTTP/2 supports read and write
// deadlines). Close ends the request body; the stream itself ends when the
// handler returns.
type StreamConn struct {
	body   io.ReadCloser
	w      http.ResponseWriter
	ctl    *http.ResponseController
	local  net.Addr
	remote net.Addr
	wmu    sync.Mutex
}

// NewStreamConn returns the stream of r (answered through w) as a net.Conn.
// local is the listener's address (nil: unknown).
func NewStreamConn(w http.ResponseWriter, r *http.Request, local net.Addr) *StreamConn {
	return &StreamConn{body: r.Body, w: w, ctl: http.NewResponseController(w), local: local, remote: streamAddr(r.RemoteAddr)}
}

// Read reads what the client sent on the stream.
func (c *StreamConn) Read(p []byte) (int, error) { return c.body.Read(p) }

// Write sends p to the client and flushes it.
func (c *StreamConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n, err := c.w.Write(p)
	if err == nil {
		err = c.ctl.Flush()
	}
	return n, err
}

// Close ends the reading side; the handler's return ends the stream.
func (c *StreamConn) Close() error { return c.body.Close() }

// LocalAddr returns the listener's address.
func (c *StreamConn) LocalAddr() net.Addr {
	if c.local == nil {
		return streamAddr("")
	}
	return c.local
}

// RemoteAddr returns the client's address.
func (c *StreamConn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines.
func (c *StreamConn) SetDeadline(t time.Time) error {
	if err := c.ctl.SetReadDeadline(t); err != nil {
		return err
	}
	return c.ctl.SetWriteDeadline(t)
}

// SetReadDeadline bounds reads from the stream.
func (c *StreamConn) SetReadDeadline(t time.Time) error { return c.ctl.SetReadDeadline(t) }

// SetWriteDeadline bounds writes to the stream.
func (c *StreamConn) SetWriteDeadline(t time.Time) error { return c.ctl.SetWriteDeadline(t) }

// streamAddr is a client address as the server gave it ("ip:port").
type streamAddr string

func (a streamAddr) Network() string { return "tcp" }
func (a streamAddr) String() string  { return string(a) }
