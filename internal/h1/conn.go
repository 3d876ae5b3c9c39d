package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/portcullis/portcullis/internal/accept"
	"github.com/portcullis/portcullis/internal/ctxafter"
	"github.com/portcullis/portcullis/internal/park"
	"github.com/portcullis/portcullis/internal/sockio"
)

// Connection states, for Shutdown.
const (
	stateActive int32 = iota // reading a head or serving a request
	stateHot                 // waiting for the next request, buffers held, on the goroutine that served the last one
	stateIdle                // waiting for a request's first byte, no buffer held
	stateParked              // idle in the Server's parker: no goroutine, no buffer
	stateClosed              // closed by Shutdown while idle
	stateH2                  // served by Server.H2
)

// hotWait is how long a kept connection waits for its next request on the
// goroutine that served the last one, reading straight into its buffer;
// past that it gives its buffers back and parks (or, where it cannot, a
// fresh goroutine with a small stack waits for it). A busy client's next
// request comes well within it (ab -k -c 32: a few ms); each connection
// holding its read buffer through it is what a burst of new connections
// costs on top of their idle state, so it is short.
const hotWait = 20 * time.Millisecond

// aLongTimeAgo is a deadline in the past: it ends a read at once.
var aLongTimeAgo = time.Unix(1, 0)

// conn is one client connection.
type conn struct {
	s      *Server
	rwc    net.Conn
	raw    syscall.RawConn // the socket, for waits without a buffer; nil if rwc is not a bare TCP socket
	sock   sockio.Conn     // raw reads and writes of raw (unused when raw is nil)
	tls    *tls.ConnectionState
	remote string
	peer   netip.Addr // remote's address, unmapped (invalid if remote is no IP address and port)
	peerS  string     // peer as text (Addr.String), a substring of remote when that spells it so
	ctx    context.Context
	cancel context.CancelFunc // an H2 connection's shutdown (nil for HTTP/1.1)
	state  atomic.Int32

	cr connReader
	br *bufio.Reader // nil while idle
	wb *wbuf         // nil while idle

	headLen   int // the length of the head in c.br, found by headBuffered (0: not looked for)
	peekBuf   [1]byte
	peekErr   error
	peekFn    func(fd uintptr) bool
	hotFn     func() error // c.goHot, made once
	wentHot   bool         // goHot ran (waitHot's read may fail before it)
	spot      park.Spot    // its place in the Server's parker
	idleUntil time.Time    // while parked: when it closes (zero: never)
	hijacked  bool
	forgotten bool // hijacked: Shutdown no longer waits for it

	rdMu    sync.Mutex // rd and rdStale: a handler's goroutines and the background read set deadlines too
	rd      time.Time  // the read deadline set last
	rdStale bool       // rd is a wait's, kept through a handler that reads nothing
}

// setReadDeadline sets the read deadline, unless it is set to t already.
func (c *conn) setReadDeadline(t time.Time) {
	c.rdMu.Lock()
	defer c.rdMu.Unlock()
	c.rdStale = false
	if t.Equal(c.rd) {
		return
	}
	c.rd = t
	c.rwc.SetReadDeadline(t)
}

// forceReadDeadline sets the read deadline even if it seems set already
// (another goroutine may have moved it, or a handler asks).
func (c *conn) forceReadDeadline(t time.Time) error {
	c.rdMu.Lock()
	defer c.rdMu.Unlock()
	c.rdStale = false
	c.rd = t
	return c.rwc.SetReadDeadline(t)
}

// keepReadDeadline leaves the read deadline of the wait for a request's
// head in place while its handler runs, which nothing reads the connection
// for: a background read clears it first (clearStaleDeadline), a handler's
// own deadline replaces it.
func (c *conn) keepReadDeadline() {
	c.rdMu.Lock()
	c.rdStale = !c.rd.IsZero()
	c.rdMu.Unlock()
}

// clearStaleDeadline clears a deadline kept by keepReadDeadline.
func (c *conn) clearStaleDeadline() {
	c.rdMu.Lock()
	defer c.rdMu.Unlock()
	if c.rdStale {
		c.rdStale = false
		c.rd = time.Time{}
		c.rwc.SetReadDeadline(time.Time{})
	}
}

// keepDeadlineWithin reports whether the read deadline is set within
// [from, to], and keeps it then.
func (c *conn) keepDeadlineWithin(from, to time.Time) bool {
	c.rdMu.Lock()
	defer c.rdMu.Unlock()
	if c.rd.IsZero() || c.rd.Before(from) || c.rd.After(to) {
		return false
	}
	c.rdStale = false
	return true
}

// headBuffered reports whether a whole request head, not preceded by empty
// lines, is in the read buffer: reading it reads nothing from the
// connection. It notes the head's length for readRequest (c.headLen).
func (c *conn) headBuffered() bool {
	c.headLen = 0
	buf, _ := c.br.Peek(c.br.Buffered())
	if len(buf) == 0 || buf[0] == '\r' || buf[0] == '\n' {
		return false
	}
	end, _ := headEnd(buf, 0)
	if end <= 0 {
		return false
	}
	c.headLen = end
	return true
}

func (s *Server) newConn(rwc net.Conn) *conn {
	c := &conn{s: s, rwc: rwc}
	c.cr.c = c
	return c
}

// shutdown closes c if it is idle (its goroutine sees it and ends); an
// active connection closes after its response. It reports whether c was
// parked: the caller then ends it (c.end), outside s.mu. Called with s.mu
// held.
func (c *conn) shutdown() bool {
	switch {
	case c.state.CompareAndSwap(stateIdle, stateClosed), c.state.CompareAndSwap(stateHot, stateClosed):
		c.rwc.Close()
	case c.state.CompareAndSwap(stateParked, stateClosed):
		// not taken: the parker woke it or expired it meanwhile, and
		// that side ends it
		return c.s.parker.Take(&c.spot)
	case c.state.Load() == stateH2 && c.cancel != nil:
		c.cancel()
	}
	return false
}

// serve runs the connection until it closes or is hijacked.
func (c *conn) serve() {
	s := c.s
	c.remote = c.rwc.RemoteAddr().String()
	c.peer, c.peerS = ParsePeer(c.remote)
	ctx := context.WithValue(context.Background(), http.LocalAddrContextKey, c.rwc.LocalAddr())
	if s.ConnContext != nil {
		ctx = s.ConnContext(ctx, c.rwc)
	}
	c.ctx = ctx
	deadline := time.Time{}
	if d := s.ReadHeaderTimeout; d > 0 {
		deadline = time.Now().Add(d)
	}
	if s.TLSConfig != nil {
		if !c.handshake(deadline) {
			c.end(nil)
			return
		}
	} else if c.raw = sockio.Raw(accept.Bare(c.rwc)); c.raw != nil {
		c.sock.Init(c.raw, c.rwc)
	}
	c.run(deadline, false)
}

// end closes the connection (unless hijacked) and stops tracking it; v is
// what a panic left (nil: none).
func (c *conn) end(v any) {
	s := c.s
	if v != nil && v != http.ErrAbortHandler {
		s.logger().Error("h1: panic serving a connection", "remote", c.remote, "panic", v, "stack", string(debug.Stack()))
	}
	if !c.hijacked {
		c.rwc.Close()
	}
	if c.cancel != nil {
		c.cancel()
	}
	c.release()
	if c.forgotten {
		s.handlerDone(c)
	} else {
		s.forget(c, false)
	}
}

// run serves requests from the next one, whose head is to arrive before
// deadline (zero: no bound), until the connection ends or idles. It first
// waits for the request's first byte without a buffer, unless woken (the
// parker saw bytes). Between requests a kept connection reads the next one
// straight into its buffer for hotWait; past that, it gives its buffers
// back and parks (c.idle), and run returns: an idle connection holds no
// goroutine, no buffer and no timer.
func (c *conn) run(deadline time.Time, woken bool) {
	s := c.s
	moved := false
	defer func() {
		if !moved {
			c.end(recover())
		}
	}()
	if !woken && !c.waitIdle(deadline) {
		return
	}
	if c.br == nil {
		c.br = s.getReader(&c.cr)
	}
	for {
		// A head already in the buffer (a kept connection's next request
		// arrives in one read) is read without a header deadline.
		var start time.Time
		if !c.headBuffered() {
			start = time.Now()
			if d := s.ReadHeaderTimeout; d > 0 {
				c.setReadDeadline(start.Add(d))
			} else if d := s.ReadTimeout; d > 0 {
				c.setReadDeadline(start.Add(d))
			} else {
				c.setReadDeadline(time.Time{})
			}
		}
		st, err := c.readRequest()
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				c.refuse(e)
			}
			return
		}
		switch d := s.ReadTimeout; {
		case d > 0:
			if start.IsZero() {
				start = time.Now()
			}
			c.setReadDeadline(start.Add(d))
		case st.body.eof:
			// Nothing reads the connection while the handler runs but a
			// background read, which clears the deadline first.
			c.keepReadDeadline()
		default:
			c.setReadDeadline(time.Time{})
		}
		if d := s.WriteTimeout; d > 0 {
			c.rwc.SetWriteDeadline(time.Now().Add(d))
		}
		if !c.serveRequest(st) {
			return
		}
		if c.br.Buffered() > 0 {
			c.cr.ahead = true
			continue // pipelined
		}
		now := time.Now()
		deadline = time.Time{}
		if d := s.idleTimeout(); d > 0 {
			deadline = now.Add(d)
		}
		hot, loose := now.Add(hotWait), true
		if !deadline.IsZero() && deadline.Before(hot) {
			hot, loose = deadline, false
		}
		ok, timedOut := c.waitHot(hot, loose)
		if ok {
			continue
		}
		if !timedOut || hot == deadline {
			return
		}
		c.release()
		moved = true
		c.idle(deadline)
		return
	}
}

// waitHot writes the responses still buffered, then waits for the next
// request's first bytes until the deadline until, reading them into c.br
// (one read when they come). It reports whether bytes came, or else whether
// the wait ended on the deadline (c may then wait longer without its
// buffers). When loose, a read deadline already set between hotWait/2
// before until and until is kept: a busy connection moves its deadline
// every hotWait/2 rather than at every request.
//
// When the last read drained the socket and the response is still to be
// written, no read is tried before the wait, which would find nothing (a
// client that waits for its response has not sent its next request yet):
// the response is written inside the read's wait (sockio.Conn.ReadAfter),
// after the runtime forgot the socket's earlier readiness, so that the
// next request's readiness is seen, and the one read made is the one that
// takes the request. A client that sent its next request before it had the
// whole response (pipelining in separate segments) may have had its
// readiness forgotten: the wait then ends on the deadline, a peek finds the
// bytes, and the connection reads before its next aheadWaits waits. A
// client seen pipelining (a request read with the previous one) is read
// before every wait from then on.
func (c *conn) waitHot(until time.Time, loose bool) (ok, timedOut bool) {
	if c.cr.err != nil {
		c.flush()
		return false, false
	}
	if !loose || !c.keepDeadlineWithin(until.Add(-hotWait/2), until) {
		c.setReadDeadline(until)
	}
	var err error
	skip := c.raw != nil && c.cr.drained && !c.cr.ahead && c.cr.aheadLeft == 0 && !c.cr.hasByte && c.wb != nil && c.wb.bw.Buffered() > 0
	if c.cr.aheadLeft > 0 {
		c.cr.aheadLeft--
	}
	if skip {
		if c.hotFn == nil {
			c.hotFn = c.goHot
		}
		c.wentHot = false
		c.cr.first = c.hotFn
		_, err = c.br.Peek(1)
		c.cr.first = nil
		if !c.wentHot && c.goHot() != nil {
			// The read failed before its wait (its deadline had passed
			// already): the response goes now, the wait ends as it failed.
			return false, false
		}
	} else {
		if c.goHot() != nil {
			return false, false
		}
		_, err = c.br.Peek(1)
	}
	if !c.state.CompareAndSwap(stateHot, stateActive) {
		return false, false // the response failed, or closed by Shutdown
	}
	if err == nil {
		return true, false
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false, false
	}
	if skip {
		switch ready, eof := c.readyNow(); {
		case eof:
			return false, false
		case ready:
			// Its readiness may have been forgotten (or the deadline
			// came first on a busy machine): read first for a while.
			c.cr.aheadLeft = aheadWaits
			return true, false
		}
	}
	return false, true
}

// aheadWaits is for how many waits a connection whose hot wait ended on
// its deadline with bytes to read reads before it waits.
const aheadWaits = 16

// errFlush ends a wait whose response could not be written.
var errFlush = errors.New("h1: writing the response failed")

// goHot writes the buffered responses, gives the write buffer back (the
// next response takes one again) and marks c hot: waiting for its next
// request. It fails when the write does, or when the server shuts down
// (c is then closed).
func (c *conn) goHot() error {
	c.wentHot = true
	if !c.flush() {
		return errFlush
	}
	if c.wb != nil {
		c.s.putWriter(c.wb)
		c.wb = nil
	}
	c.state.Store(stateHot)
	if c.s.closing.Load() {
		c.state.Store(stateClosed)
		return http.ErrServerClosed
	}
	return nil
}

// readyNow peeks at the socket without waiting: ready when a byte can be
// read, eof when the stream ended or failed.
func (c *conn) readyNow() (ready, eof bool) {
	c.peekErr = nil
	if err := c.raw.Control(func(fd uintptr) { ready = c.peek(fd) }); err != nil {
		return false, true
	}
	return ready && c.peekErr == nil, ready && c.peekErr != nil
}

// idle hands c, which holds no buffer, over until its next request comes:
// to the Server's parker when c is a bare TCP socket (no goroutine waits
// for it), else to a fresh goroutine with a small stack. The caller's
// goroutine no longer owns c.
func (c *conn) idle(deadline time.Time) {
	if c.raw != nil {
		c.idleUntil = deadline
		var tick time.Duration
		if d := c.s.idleTimeout(); d > 0 {
			tick = min(max(d/10, 5*time.Millisecond), time.Second)
		}
		c.state.Store(stateParked)
		if c.s.parker.Park(&c.spot, c.raw, c, tick) {
			return
		}
		if !c.state.CompareAndSwap(stateParked, stateActive) {
			c.end(nil) // closed by Shutdown
			return
		}
	}
	go c.run(deadline, false)
}

// Wake is the parker's call when a parked connection is readable: a fresh
// goroutine reads its next request.
func (c *conn) Wake() { go c.resume() }

// resume serves a connection the parker woke, unless Shutdown closed it.
func (c *conn) resume() {
	if !c.state.CompareAndSwap(stateParked, stateActive) {
		c.end(nil)
		return
	}
	c.run(c.idleUntil, true)
}

// Expired is the parker's check of a parked connection: it reports whether
// c is to close (its idle timeout passed, or Shutdown closed it).
func (c *conn) Expired(now time.Time) bool {
	return c.state.Load() == stateClosed || (!c.idleUntil.IsZero() && !now.Before(c.idleUntil))
}

// Expire closes a parked connection that expired (the parker took it out).
func (c *conn) Expire() { c.end(nil) }

// handshake runs the TLS handshake within deadline and hands an "h2"
// connection to Server.H2. It reports whether c goes on as HTTP/1.1.
func (c *conn) handshake(deadline time.Time) bool {
	s := c.s
	under := c.rwc
	if raw := sockio.Raw(accept.Bare(c.rwc)); raw != nil {
		under = sockio.Wrap(c.rwc, raw) // TLS records read and written raw
	}
	tc := tls.Server(under, s.TLSConfig)
	ctx := context.Background()
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return false
	}
	st := tc.ConnectionState()
	c.rwc, c.tls = tc, &st
	if st.NegotiatedProtocol == "h2" {
		if s.H2 == nil {
			return false
		}
		c.state.Store(stateH2)
		if s.closing.Load() {
			return false
		}
		tc.SetDeadline(time.Time{})
		hctx, cancel := context.WithCancel(c.ctx)
		c.s.mu.Lock()
		c.cancel = cancel
		c.s.mu.Unlock()
		if s.closing.Load() {
			return false
		}
		s.H2(hctx, tc)
		return false
	}
	return true
}

// waitIdle waits, holding no buffer, until c is readable or deadline
// passes. It reports false when c is to close: a deadline, an error, the
// end of the stream, or a shutdown.
func (c *conn) waitIdle(deadline time.Time) bool {
	if c.cr.err != nil {
		return false
	}
	if c.cr.hasByte {
		return true
	}
	c.setReadDeadline(deadline)
	c.state.Store(stateIdle)
	if c.s.closing.Load() {
		c.state.Store(stateClosed)
		return false
	}
	ok := c.waitReadable()
	if !c.state.CompareAndSwap(stateIdle, stateActive) {
		return false // closed by Shutdown
	}
	return ok
}

// waitReadable waits until a byte can be read from c: on the socket's
// readiness when c is a bare TCP socket, else by reading one byte.
func (c *conn) waitReadable() bool {
	if c.raw != nil {
		if c.peekFn == nil {
			c.peekFn = c.peek
		}
		c.peekErr = nil
		if err := c.raw.Read(c.peekFn); err != nil {
			return false
		}
		return c.peekErr == nil
	}
	n, err := c.rwc.Read(c.cr.byte[:])
	if n == 1 {
		c.cr.hasByte = true
		return true
	}
	c.cr.err = err
	return false
}

// readRequest reads and parses the next request head.
func (c *conn) readRequest() (*stream, error) {
	s := c.s
	known := c.headLen
	c.headLen = 0
	hs, err := readHead(c.br, s.maxHeaderBytes()+4096, known)
	if err != nil {
		return nil, err
	}
	st := &stream{c: c}
	r := &st.reqv
	h, perr := parseHead(hs, r, &st.url, st.vals[:], &st.te)
	if perr != nil {
		return nil, perr
	}
	st.h = h
	r.RemoteAddr = c.remote
	r.TLS = c.tls
	if h.contentLength != 0 {
		st.body = body{s: st, br: c.br, left: h.contentLength, chunked: h.chunked, limit: s.maxHeaderBytes()}
		if h.chunked {
			st.body.left = 0
		}
		r.Body = &st.body
	} else {
		r.Body = http.NoBody
		st.body.eof = true
	}
	var ctx context.Context
	if c.ctx.Done() == nil {
		st.ctx = reqCtx{Context: ctxafter.Context{Context: c.ctx}, st: st}
		ctx = &st.ctx
	} else { // the connection's context may end: derive as net/http does
		ctx, st.stdCancel = context.WithCancel(c.ctx)
	}
	// WithContext copies the request; inlined, its copy stays on the stack
	// and goes back into the stream: no request is allocated.
	st.reqv = *r.WithContext(ctx)
	st.req = r
	return st, nil
}

// readHead reads a request head from br, through its empty line, and
// returns it as one string. Empty lines before it are skipped (RFC 9112
// §2.2). A head longer than limit is an *Error (431, or 414 when its
// request line alone is). known, when not 0, is the length of the head at
// the start of br's buffer, found already (conn.headBuffered).
func readHead(br *bufio.Reader, limit, known int) (string, error) {
	if known > 0 && known <= limit && known <= br.Buffered() {
		buf, _ := br.Peek(known)
		s := string(buf)
		br.Discard(known)
		return s, nil
	}
	for {
		b, err := br.Peek(1)
		if err != nil {
			return "", err
		}
		if b[0] == '\n' {
			br.Discard(1)
			continue
		}
		if b[0] == '\r' {
			b, err = br.Peek(2)
			if err == nil && b[1] == '\n' {
				br.Discard(2)
				continue
			}
		}
		break
	}
	from := 0
	for {
		buf, _ := br.Peek(br.Buffered())
		end, next := headEnd(buf, from)
		if end > 0 {
			if end > limit {
				return "", tooLarge(buf)
			}
			s := string(buf[:end])
			br.Discard(end)
			return s, nil
		}
		if len(buf) > limit {
			return "", tooLarge(buf)
		}
		if len(buf) == br.Size() {
			return readLongHead(br, limit)
		}
		from = next
		if _, err := br.Peek(len(buf) + 1); err != nil && len(buf) == br.Buffered() {
			return "", err
		}
	}
}

// readLongHead reads a head that does not fit in br's buffer, line by line.
func readLongHead(br *bufio.Reader, limit int) (string, error) {
	var hb []byte
	lineStart := 0
	for {
		line, err := br.ReadSlice('\n')
		if len(hb)+len(line) > limit {
			return "", tooLarge(hb)
		}
		hb = append(hb, line...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", err
		}
		l := hb[lineStart:]
		if lineStart > 0 && (len(l) == 1 || len(l) == 2 && l[0] == '\r') {
			return string(hb), nil
		}
		lineStart = len(hb)
	}
}

func tooLarge(b []byte) *Error {
	for _, c := range b {
		if c == '\n' {
			return errTooLarge
		}
	}
	return errURITooBig
}

// refuse answers a refused head and closes, letting the client read the
// answer before the close (a reset would lose it).
func (c *conn) refuse(e *Error) {
	c.s.logger().Info("h1: refused a request", "remote", c.remote, "status", e.Status, "reason", e.Reason)
	body := e.Error()
	msg := "HTTP/1.1 " + statusLine(e.Status) + "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: " +
		itoa(len(body)) + "\r\n\r\n" + body
	c.rwc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if c.flush() {
		io.WriteString(c.rwc, msg)
	}
	c.lingerClose()
}

// lingerClose ends the writing side and reads what the client still sends
// for a moment, so that the last response is not lost to a reset.
func (c *conn) lingerClose() {
	if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		c.setReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.CopyN(io.Discard, c.rwc, maxDrain)
	}
}

// flush writes the buffered responses; false when the connection failed.
func (c *conn) flush() bool {
	if c.wb == nil || c.wb.bw.Buffered() == 0 {
		return true
	}
	return c.wb.bw.Flush() == nil
}

// release gives the buffers back while c is idle or done.
func (c *conn) release() {
	if c.hijacked {
		return
	}
	if c.br != nil && c.br.Buffered() == 0 {
		c.s.putReader(c.br)
		c.br = nil
	}
	if c.wb != nil {
		c.s.putWriter(c.wb)
		c.wb = nil
	}
	c.cr.dropTimer()
}

func (c *conn) writer() *bufio.Writer {
	if c.wb == nil {
		if c.raw != nil {
			c.wb = c.s.getWriter(&c.sock)
		} else {
			c.wb = c.s.getWriter(c.rwc)
		}
	}
	return c.wb.bw
}

// serveRequest runs the handler for st and ends the request. It reports
// whether the connection reads another request.
func (c *conn) serveRequest(st *stream) bool {
	w := &st.w
	w.init(st)
	if st.body.eof {
		c.cr.arm(st)
	}
	if !c.runHandler(w, st.req) {
		return false
	}
	if c.hijacked {
		st.cancel() // the handler is done with the request
		return false
	}
	drained := st.body.finish(!st.h.expect || st.continueSent(), func() {
		c.setReadDeadline(time.Now().Add(c.drainTimeout()))
	})
	if !drained {
		w.closeAfter = true
	}
	w.finish()
	if !c.cr.stopPending() {
		// A background read runs: the response goes now, before the read
		// is ended (whatever the handler left may delay that). Else it
		// goes in waitHot, inside the wait for the next request.
		c.flush()
		c.cr.disarm()
	}
	st.cancel()
	if !drained || w.closeAfter || c.cr.err != nil {
		c.flush()
		if !drained {
			c.lingerClose()
		}
		return false
	}
	if c.s.closing.Load() {
		c.flush()
		return false
	}
	if c.br.Buffered() > 0 && c.wb != nil && c.wb.bw.Buffered() > bufSize/2 {
		return c.flush()
	}
	return true // pipelined responses go together; the last one goes in waitHot
}

// drainTimeout bounds the reading of a body the handler left.
func (c *conn) drainTimeout() time.Duration {
	if d := c.s.ReadHeaderTimeout; d > 0 {
		return d
	}
	return 10 * time.Second
}

// runHandler calls the handler; false when it panicked (the connection
// closes: its response may be cut).
func (c *conn) runHandler(w *response, r *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			c.cr.disarm()
			r.Body.Close()
			if v != http.ErrAbortHandler {
				c.s.logger().Error("h1: handler panic", "remote", c.remote, "url", r.URL.String(), "panic", v, "stack", string(debug.Stack()))
			}
			w.st.cancel()
			ok = false
		}
	}()
	c.s.Handler.ServeHTTP(w, r)
	return true
}

// hijack hands the connection over.
func (c *conn) hijack() (net.Conn, *bufio.ReadWriter, error) {
	c.cr.disarm()
	if !c.flush() {
		return nil, nil, errors.New("h1: connection failed")
	}
	if c.wb != nil {
		c.s.putWriter(c.wb)
		c.wb = nil
	}
	c.hijacked = true
	c.rwc.SetDeadline(time.Time{})
	c.forgotten = true
	c.s.forget(c, true)
	br := c.br
	if br.Buffered() == 0 && !c.cr.hasByte {
		// Nothing was read past the head: the pooled buffer goes back,
		// and the new owner (a tunnel, which reads the socket itself)
		// gets a small one.
		c.s.putReader(br)
		br = bufio.NewReaderSize(c.rwc, hijackBufSize)
		c.br = br
	}
	return c.rwc, bufio.NewReadWriter(br, bufio.NewWriterSize(c.rwc, hijackBufSize)), nil
}

// hijackBufSize is the size of the buffers a hijacker gets (a 101 head
// fits in one write).
const hijackBufSize = 512

// connReader is what a connection's bufio.Reader reads: the byte a wait or
// a background read took, then the connection. A background read runs
// while a handler runs with its body read and someone waits for the
// request's context to end, to see the client go away.
type connReader struct {
	c       *conn
	byte    [1]byte
	hasByte bool
	err     error // the connection failed or ended (seen by a background read)

	// drained: the last read from the socket took less than it could, so
	// the socket had nothing more then; first, when set, runs inside the
	// next read's wait (sockio.Conn.ReadAfter). ahead: the client sends
	// requests before it has the previous responses (it pipelines), and
	// aheadLeft: for how many more waits it may (a hot wait ended on its
	// deadline with bytes to read). Either makes waitHot read before it
	// waits.
	drained   bool
	first     func() error
	ahead     bool
	aheadLeft int

	bgMu     sync.Mutex
	armed    *stream       // its handler runs with the body read; nil: none
	bgActive bool          // a background read is due or runs
	bgStream *stream       // the request the background read watches
	bgDone   chan struct{} // gets a value when a background read returns; made once
	bgTimer  *time.Timer   // starts the background read; made once, reset per request
	aborting atomic.Bool
}

// backgroundDelay is how long a handler runs before the engine starts
// reading in the background to notice a client that went away. A request
// answered sooner (cache hits, pages, most proxied requests) costs no
// goroutine, read or deadline for it; a client that leaves a longer one is
// noticed at most this much later.
const backgroundDelay = 20 * time.Millisecond

// Read implements io.Reader.
func (r *connReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if r.hasByte {
		p[0] = r.byte[0]
		r.hasByte = false
		return 1, nil
	}
	if r.err != nil {
		return 0, r.err
	}
	if r.c.raw == nil {
		return r.c.rwc.Read(p)
	}
	var n int
	var err error
	if f := r.first; f != nil {
		r.first = nil
		n, err = r.c.sock.ReadAfter(p, f)
	} else {
		n, err = r.c.sock.Read(p)
	}
	r.drained = err == nil && n < len(p)
	return n, err
}

// arm notes that st's handler runs with its body read: from now on until
// disarm, the client is watched by a background read when someone waits
// for st's context to end.
func (r *connReader) arm(st *stream) {
	r.bgMu.Lock()
	defer r.bgMu.Unlock()
	r.armed = st
	if st.watched() {
		r.startBackground()
	}
}

// watch is st's context's call when someone first waits for it to end.
func (r *connReader) watch(st *stream) {
	r.bgMu.Lock()
	defer r.bgMu.Unlock()
	if r.armed == st {
		r.startBackground()
	}
}

// startBackground reads one byte in the background while the handler runs
// (from backgroundDelay on): an error or the end of the stream cancels the
// armed request (the client went away). No-op when bytes of a next request
// are already read or the stream failed. Called with bgMu held.
func (r *connReader) startBackground() {
	c := r.c
	if r.bgActive || r.hasByte || r.err != nil || c.hijacked || (c.br != nil && c.br.Buffered() > 0) {
		return
	}
	r.bgActive = true
	r.bgStream = r.armed
	if r.bgTimer == nil {
		r.bgDone = make(chan struct{}, 1)
		r.bgTimer = time.AfterFunc(backgroundDelay, r.background)
		return
	}
	r.bgTimer.Reset(backgroundDelay)
}

// background is the background read, on the timer's goroutine.
func (r *connReader) background() {
	defer func() { r.bgDone <- struct{}{} }()
	if r.aborting.Load() { // disarm began first
		return
	}
	st := r.bgStream // set before the timer was, and not again until this returns
	r.c.clearStaleDeadline()
	n, err := r.c.rwc.Read(r.byte[:])
	if n == 1 {
		r.hasByte = true
		r.drained = false
		return
	}
	if err != nil && r.aborting.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
		return
	}
	if err == nil {
		err = io.EOF
	}
	r.err = err
	st.cancel()
}

// stopPending ends the watch of the armed request when no background read
// runs (none was due, or its timer is stopped before it fired) and reports
// whether it did; else disarm ends it.
func (r *connReader) stopPending() bool {
	r.bgMu.Lock()
	defer r.bgMu.Unlock()
	if !r.bgActive {
		r.armed = nil
		return true
	}
	if !r.bgTimer.Stop() {
		return false // the read started
	}
	r.armed, r.bgActive, r.bgStream = nil, false, nil
	return true
}

// disarm ends the watch of the armed request: it ends a background read
// and waits for it. The deadline in the past is set again until the read
// returns: a goroutine the handler left (a transport still reading the
// body) may move the deadline.
func (r *connReader) disarm() {
	r.bgMu.Lock()
	defer r.bgMu.Unlock()
	r.armed = nil
	if !r.bgActive {
		return
	}
	r.bgActive = false
	if r.bgTimer.Stop() { // the read never started
		r.bgStream = nil // an idle connection holds no request
		return
	}
	defer func() { r.bgStream = nil }()
	r.aborting.Store(true)
	for {
		r.c.forceReadDeadline(aLongTimeAgo)
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-r.bgDone:
			t.Stop()
		case <-t.C:
			continue
		}
		break
	}
	r.aborting.Store(false)
	r.c.setReadDeadline(time.Time{})
}

// dropTimer lets the background read's timer and channel go while the
// connection is idle (made again by its next watched request), so that an
// idle connection holds none.
func (r *connReader) dropTimer() {
	r.bgMu.Lock()
	defer r.bgMu.Unlock()
	if !r.bgActive {
		r.bgTimer, r.bgDone = nil, nil
	}
}

// stream is one request and its response: allocated together.
type stream struct {
	c         *conn
	req       *http.Request // &reqv
	reqv      http.Request
	ctx       reqCtx             // the request's context, unless stdCancel
	stdCancel context.CancelFunc // ends the request's context when it is a context.WithCancel
	url       url.URL
	h         head
	body      body
	w         response
	vals      [12]string
	te        [1]string
}

// cancel ends the request's context.
func (st *stream) cancel() {
	if st.stdCancel != nil {
		st.stdCancel()
		return
	}
	st.ctx.End()
}

// watched reports whether someone waits for the request's context to end.
func (st *stream) watched() bool { return st.stdCancel != nil || st.ctx.watched.Load() }

// bodyDone is called (body mu held) when the body was read to its end.
func (st *stream) bodyDone() { st.c.cr.arm(st) }

// sendContinue writes "100 Continue" before the first body read, when the
// client waits for it and no response was written yet.
func (st *stream) sendContinue() {
	if !st.h.expect {
		return
	}
	st.w.mu.Lock()
	defer st.w.mu.Unlock()
	if st.w.continueSent || st.w.wroteHeader {
		return
	}
	st.w.continueSent = true
	bw := st.c.writer()
	bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	bw.Flush()
}

func (st *stream) continueSent() bool {
	st.w.mu.Lock()
	defer st.w.mu.Unlock()
	return st.w.continueSent
}

// ParsePeer parses a remote address ("ip:port", as http.Request.RemoteAddr
// has it): the address, an IPv4-mapped one unmapped, and its text
// (PeerText). A remote that is no IP address and port gives the zero Addr
// and "". The engine does it once per connection (see Peer).
func ParsePeer(remote string) (netip.Addr, string) {
	a := PeerAddr(remote)
	if !a.IsValid() {
		return a, ""
	}
	return a, PeerText(remote, a)
}

// PeerAddr parses a remote address ("ip:port"): the address, an
// IPv4-mapped one unmapped; the zero Addr when remote is no IP address and
// port.
func PeerAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// PeerText is a, parsed from remote ("ip:port"), as text (Addr.String):
// the address part of remote when that is already its canonical form (no
// allocation), else a.String().
func PeerText(remote string, a netip.Addr) string {
	s := remote
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		s = s[:i]
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	var buf [64]byte
	if b := a.AppendTo(buf[:0]); string(b) == s {
		return s
	}
	return a.String()
}
