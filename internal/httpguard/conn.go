package httpguard

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"time"
)

// refusal is what net/http reads in place of the rest of a refused head: a
// header line with no colon (net/textproto: "missing colon"), which net/http
// answers with "400 Bad Request" and "Connection: close", and an empty line
// that lets it finish the line without waiting for more. The lines end in a
// bare LF, which net/textproto accepts, so that no CRLFCRLF appears that the
// client did not send (net/http looks ahead for one before reading trailers).
const refusal = "Request refused for ambiguous framing\n\n"

// lingerTimeout bounds how long Close drains a refused client's unread bytes
// after sending it the end of the stream, so that the 400 is not lost to a
// reset (as net/http's own closeWriteAndWait does for unread bodies).
const lingerTimeout = 500 * time.Millisecond

// lingerBytes bounds how much Close drains.
const lingerBytes = 256 << 10

// Conn is a server-side connection whose reads are checked: see the package
// comment. Writes, deadlines and the rest go straight to the connection.
type Conn struct {
	net.Conn
	log  *slog.Logger
	f    follower
	sent int // bytes of refusal delivered
}

// NewConn guards c, the server side of an HTTP/1 connection whose next byte
// starts a request. log (nil: nothing logged) records each refusal at Info.
func NewConn(c net.Conn, log *slog.Logger) *Conn {
	return &Conn{Conn: c, log: log}
}

// Read implements net.Conn.
func (c *Conn) Read(p []byte) (int, error) {
	switch c.f.st {
	case sStopped:
		return c.Conn.Read(p)
	case sRefused:
		if c.sent == len(refusal) {
			return 0, io.EOF
		}
		n := copy(p, refusal[c.sent:])
		c.sent += n
		return n, nil
	}
	n, err := c.Conn.Read(p)
	if n <= 0 {
		return n, err
	}
	keep := c.f.scan(p[:n])
	if c.f.st != sRefused {
		return n, err
	}
	if c.log != nil {
		c.log.Info("refused a request with ambiguous framing", "remote", c.Conn.RemoteAddr().String(), "reason", c.f.reason.String())
	}
	if keep == 0 {
		return c.Read(p)
	}
	return keep, nil
}

// Refused reports whether a request was refused on c, and why.
func (c *Conn) Refused() (Reason, bool) {
	return c.f.reason, c.f.st == sRefused
}

// Close implements net.Conn. After a refusal it first ends the stream and
// drains what the client still sends (for a moment), so that the client reads
// the 400 instead of a connection reset.
func (c *Conn) Close() error {
	if c.f.st == sRefused {
		if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			_ = c.Conn.SetReadDeadline(time.Now().Add(lingerTimeout))
			_, _ = io.CopyN(io.Discard, c.Conn, lingerBytes)
		}
	}
	return c.Conn.Close()
}

// CloseWrite shuts down the writing side when the connection underneath can
// (net/http uses it before closing a connection with an unread body).
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// ReadFrom lets writes from a reader use the connection's own ReadFrom
// (sendfile, splice); writes are not checked.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(c.Conn, r)
}

// tlsConn is a guarded *tls.Conn: net/http sets Request.TLS from its
// ConnectionState.
type tlsConn struct {
	*Conn
	tc *tls.Conn
}

// ConnectionState returns the TLS state of the connection.
func (c *tlsConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// Unwrap returns the connection a guard wraps (a *tls.Conn for a TLS one), or
// c itself. Code taking a hijacked connection over for good (a CONNECT tunnel)
// uses it to reach the socket; bytes already read stay where they were
// buffered.
func Unwrap(c net.Conn) net.Conn {
	switch g := c.(type) {
	case *Conn:
		return g.Conn
	case *tlsConn:
		return g.tc
	}
	return c
}

// listener guards every connection it accepts.
type listener struct {
	net.Listener
	log *slog.Logger
}

// NewListener returns ln with every accepted connection guarded by NewConn.
func NewListener(ln net.Listener, log *slog.Logger) net.Listener {
	return &listener{Listener: ln, log: log}
}

// Accept implements net.Listener.
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return NewConn(c, l.log), nil
}
