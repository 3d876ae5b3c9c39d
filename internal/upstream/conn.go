package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/portcullis/portcullis/internal/ctxafter"
	"github.com/portcullis/portcullis/internal/sockio"
)

// pconn is one connection to a destination. While idle it holds no buffer.
type pconn struct {
	c      *Client
	nc     net.Conn
	key    destKey
	tls    *tls.ConnectionState
	br     *bufio.Reader // nil while idle
	rd     connReader    // what br reads from
	reused bool          // taken from the idle pool
	recent bool          // dialled, or idle for less than recentIdle: see connReader
	epoch  int           // the pool's closeAll count when it was dialled
	idleAt time.Time
	all    links // in the pool's global idle list
	dest   links // in its destination's idle list

	h2 *http.ClientConn // set instead of everything else for an HTTP/2 destination

	cancel func() // cuts the exchange in progress (pc.cut, bound once)
	// rdl is the response header deadline left set on the connection
	// (armHeaderDeadline), zero when none.
	rdl time.Time
}

// armHeaderDeadline bounds the wait for a response head by d: it keeps the
// read deadline an earlier exchange left on the connection while that is at
// least d away, else sets one d plus a little (min(d/2, 1s)) away. The
// timeout thus fires between d and d+min(d/2, 1s) after the request, and a
// busy connection sets its deadline about once a second instead of twice per
// request (each a runtime timer operation).
func (pc *pconn) armHeaderDeadline(d time.Duration) {
	now := time.Now()
	if !pc.rdl.IsZero() && pc.rdl.Sub(now) >= d {
		return
	}
	pc.rdl = now.Add(d + min(d/2, time.Second))
	_ = pc.nc.SetReadDeadline(pc.rdl)
}

// clearDeadline removes the read deadline.
func (pc *pconn) clearDeadline() {
	pc.rdl = time.Time{}
	_ = pc.nc.SetReadDeadline(time.Time{})
}

// settleDeadline runs once the final head h is read: the response header
// deadline stays on the connection only when nothing more is read from it
// for this response (no body, or all of it already buffered); a body still
// to come may take any time.
func (x *exchange) settleDeadline(h *head) {
	pc := x.pc
	if pc.rdl.IsZero() {
		return
	}
	if h.status != http.StatusSwitchingProtocols && (x.req.Method == http.MethodHead || h.status == http.StatusNoContent ||
		h.status == http.StatusNotModified || h.hasLength && !h.chunked && h.length <= int64(pc.br.Buffered())) {
		return
	}
	pc.clearDeadline()
}

// cut ends the exchange in progress when its context ends: every read and
// write on the connection fails from now on.
func (pc *pconn) cut() { _ = pc.nc.SetDeadline(longAgo) }

var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}

// attach gives pc a read buffer for an exchange.
func (pc *pconn) attach() {
	pc.br = readers.Get().(*bufio.Reader)
	pc.br.Reset(&pc.rd)
}

// release keeps pc for the next request when it can be (nothing left unread),
// else closes it.
func (pc *pconn) release(reuse bool) {
	br := pc.br
	pc.br = nil
	if br != nil {
		if br.Buffered() > 0 {
			reuse = false // the server sent more than the response
		}
		br.Reset(nil)
		readers.Put(br)
	}
	if !reuse {
		pc.nc.Close()
		return
	}
	pc.reused = false
	pc.rd.werr = nil
	pc.c.idle.put(pc)
}

// exchange is one request on a connection, from writing to the end of the
// response body. It holds the head being read and the response (one
// allocation per exchange).
type exchange struct {
	pc   *pconn
	req  *http.Request
	host string      // the Host sent
	stop func() bool // stops the context's deadline; nil without a cancellable context
	// noReuse is set when the connection must not carry another request.
	noReuse bool
	h       head     // the head last read
	body    respBody // the response and its body
	// vals holds the field values of the exchange's first head (the final
	// one, but after a 1xx), whose header map keeps it: no slice of its own.
	vals      [8]string
	valsTaken bool
}

// roundTrip writes req on pc and reads the response head. The body, when there
// is one, reads from pc and releases it at its end.
func (pc *pconn) roundTrip(req *http.Request, host string) (*http.Response, error) {
	ctx := req.Context()
	x := &exchange{pc: pc, req: req, host: host}
	if pc.cancel == nil {
		pc.cancel = pc.cut
	}
	// With the request context's own AfterFunc (internal/h1's, passed on by
	// the doors' contexts) the cut is registered with it: one allocation,
	// no channel, no goroutine; nil when the context never ends.
	x.stop = ctxafter.Func(ctx, pc.cancel)
	x.noReuse = req.Close || headerHasToken(req.Header["Connection"], "close")
	resp, err := x.run(ctx)
	if err != nil {
		x.finish(false)
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	return resp, nil
}

// finish ends the exchange: the context's deadline stopped, the connection
// kept (reuse, and the context did not fire) or closed.
func (x *exchange) finish(reuse bool) {
	if x.stop != nil && !x.stop() {
		reuse = false // the context's deadline is on the connection
	}
	x.pc.release(reuse && !x.noReuse)
}

func (x *exchange) run(ctx context.Context) (*http.Response, error) {
	pc, req := x.pc, x.req
	bw := writers.Get().(*bufio.Writer)
	if pc.rd.raw != nil {
		bw.Reset(&pc.rd.sock)
	} else {
		bw.Reset(pc.nc)
	}
	defer func() { pc.rd.pending = nil; bw.Reset(nil); writers.Put(bw) }()
	body, err := writeHead(bw, req, x.host, pc.key.proxy != "" && pc.key.scheme == "http", pc.c.proxyAuth)
	if err != nil {
		return nil, err
	}
	trace := httptrace.ContextClientTrace(ctx)
	if !body.present && pc.recent && pc.rd.raw != nil && (trace == nil || trace.WroteHeaders == nil && trace.WroteRequest == nil) {
		// A request without a body on a plain TCP connection: the head is
		// written when the response is first read (connReader), and the
		// read then waits for the answer instead of finding nothing.
		pc.rd.pending = bw
		h, err := x.readFinalHead(ctx, trace)
		if err != nil {
			return nil, err
		}
		x.settleDeadline(h)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return x.response(h)
	}
	expect := body.present && headerHasToken(req.Header["Expect"], "100-continue")
	if !body.present || expect || body.flushHead {
		if err := bw.Flush(); err != nil {
			return nil, x.writeFailed(err)
		}
	}
	if trace != nil && trace.WroteHeaders != nil {
		trace.WroteHeaders()
	}
	var h *head
	if expect {
		// Wait for the 100 (or a final answer, which means: no body) for a
		// short while, then send the body anyway.
		switch h, err = x.awaitContinue(ctx, trace); {
		case err != nil:
			return nil, err
		case h != nil:
			// Answered without asking for the body: it was not sent, so the
			// connection's framing is unknown to the server's reader.
			x.noReuse = true
			body.close()
		}
	}
	if h == nil && body.present {
		if err := body.write(bw); err != nil {
			var be *bodyError
			if errors.As(err, &be) {
				return nil, err
			}
			if resp, ok := x.earlyAnswer(ctx, trace); ok {
				return resp, nil
			}
			return nil, x.writeFailed(err)
		}
		if err := bw.Flush(); err != nil {
			if resp, ok := x.earlyAnswer(ctx, trace); ok {
				return resp, nil
			}
			return nil, x.writeFailed(err)
		}
	}
	if trace != nil && trace.WroteRequest != nil {
		trace.WroteRequest(httptrace.WroteRequestInfo{})
	}
	if h == nil {
		if h, err = x.readFinalHead(ctx, trace); err != nil {
			return nil, err
		}
	}
	x.settleDeadline(h)
	// Clearing a read deadline may have undone the one the context's end
	// set: look at the context after it.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return x.response(h)
}

// writeFailed classifies a failure to write the request: on a kept
// connection, the server closed it while it was idle.
func (x *exchange) writeFailed(err error) error {
	if x.pc.reused && isConnGone(err) {
		return &staleError{err}
	}
	return fmt.Errorf("upstream %s: writing the request: %w", x.pc.key.addrOrProxy(), err)
}

// earlyAnswer reads a response the server sent before taking the whole body
// (a 413, a 401), after writing the body failed.
func (x *exchange) earlyAnswer(ctx context.Context, trace *httptrace.ClientTrace) (*http.Response, bool) {
	if ctx.Err() != nil {
		return nil, false
	}
	x.noReuse = true
	x.pc.rdl = time.Time{}
	_ = x.pc.nc.SetReadDeadline(time.Now().Add(time.Second))
	h, err := x.readFinalHead(ctx, trace)
	x.pc.clearDeadline()
	if err != nil || ctx.Err() != nil {
		return nil, false
	}
	resp, err := x.response(h)
	return resp, err == nil
}

// awaitContinue waits, after the head of a request with Expect: 100-continue,
// for the 100 (nil, nil: send the body), a final answer (returned), or the
// expect timeout (nil, nil).
func (x *exchange) awaitContinue(ctx context.Context, trace *httptrace.ClientTrace) (*head, error) {
	pc := x.pc
	pc.rdl = time.Time{}
	_ = pc.nc.SetReadDeadline(time.Now().Add(pc.c.cfg.ExpectContinueTimeout))
	_, err := pc.br.Peek(1)
	_ = pc.nc.SetReadDeadline(time.Time{})
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, nil // no word from the server: send the body
		}
		return nil, x.readFailed(err, true)
	}
	h, err := x.readHead(ctx)
	if err != nil {
		return nil, err
	}
	if h.status == http.StatusContinue {
		if trace != nil && trace.Got100Continue != nil {
			trace.Got100Continue()
		}
		if err := x.got1xx(h, trace); err != nil {
			return nil, err
		}
		return nil, nil
	}
	if h.status >= 200 || h.status == http.StatusSwitchingProtocols {
		return h, nil
	}
	if err := x.got1xx(h, trace); err != nil {
		return nil, err
	}
	return x.awaitContinue(ctx, trace)
}

// maxInformational bounds the 1xx answers before a final one.
const maxInformational = 16

// readFinalHead reads heads until a final one (or a 101), passing 1xx answers
// to the trace, within the response header timeout.
func (x *exchange) readFinalHead(ctx context.Context, trace *httptrace.ClientTrace) (*head, error) {
	pc := x.pc
	if d := pc.c.cfg.ResponseHeaderTimeout; d > 0 {
		pc.armHeaderDeadline(d) // settleDeadline clears it when the body needs reads
	}
	for range maxInformational {
		h, err := x.readHead(ctx)
		if err != nil {
			return nil, err
		}
		if h.status >= 200 || h.status == http.StatusSwitchingProtocols {
			return h, nil
		}
		if err := x.got1xx(h, trace); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("upstream %s: more than %d informational (1xx) responses", pc.key.addrOrProxy(), maxInformational)
}

// got1xx passes an informational answer to the trace, as net/http does.
func (x *exchange) got1xx(h *head, trace *httptrace.ClientTrace) error {
	if trace != nil && trace.Got1xxResponse != nil {
		return trace.Got1xxResponse(h.status, h.mime())
	}
	return nil
}

// readHead reads one response head, classifying failures.
func (x *exchange) readHead(ctx context.Context) (*head, error) {
	pc := x.pc
	h := &x.h
	var vals []string
	if !x.valsTaken {
		vals, x.valsTaken = x.vals[:], true
	}
	n, err := readHead(pc.br, pc.c.cfg.MaxHeaderBytes, h, vals)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if werr := pc.rd.werr; werr != nil {
			pc.rd.werr = nil
			return nil, x.writeFailed(werr)
		}
		var pe *ProtocolError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("upstream %s: %w", pc.key.addrOrProxy(), err)
		}
		return nil, x.readFailed(err, n == 0)
	}
	return h, nil
}

// readFailed classifies a failure to read the response: nothing read on a kept
// connection is a stale connection; a timeout is the response header timeout.
func (x *exchange) readFailed(err error, nothingRead bool) error {
	pc := x.pc
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &timeoutError{fmt.Sprintf("upstream %s: timeout awaiting response headers (%s)", pc.key.addrOrProxy(), pc.c.cfg.ResponseHeaderTimeout)}
	}
	if nothingRead && pc.reused && isConnGone(err) {
		return &staleError{err}
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("upstream %s: reading the response: %w", pc.key.addrOrProxy(), err)
}

// isConnGone reports whether err means the peer closed or reset the connection.
func isConnGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// response builds the *http.Response for h, with a body that reads from the
// connection.
func (x *exchange) response(h *head) (*http.Response, error) {
	pc, req := x.pc, x.req
	r := &x.body
	r.x = x
	resp := &r.resp
	resp.Status = h.statusText
	resp.StatusCode = h.status
	resp.Proto = h.proto
	resp.ProtoMajor, resp.ProtoMinor = 1, h.minor
	resp.Header = h.header
	resp.Request = req
	resp.TLS = pc.tls
	resp.ContentLength = -1
	if h.status == http.StatusSwitchingProtocols {
		resp.ContentLength = 0
		if x.stop != nil {
			x.stop()
			x.stop = nil
		}
		pc.rdl = time.Time{}
		_ = pc.nc.SetDeadline(time.Time{})
		resp.Body = &switchedBody{pc: pc}
		return resp, nil
	}
	closeAfter := h.close || x.noReuse
	resp.Close = h.close
	if req.Method == http.MethodHead || h.status == http.StatusNoContent || h.status == http.StatusNotModified {
		switch {
		case req.Method != http.MethodHead:
			resp.ContentLength = 0
		case h.hasLength:
			resp.ContentLength = h.length
		}
		if h.chunked {
			resp.TransferEncoding = []string{"chunked"}
		}
		resp.Body = http.NoBody
		x.noReuse = closeAfter
		x.finish(true)
		return resp, nil
	}
	switch {
	case h.chunked:
		resp.TransferEncoding = []string{"chunked"}
		resp.Trailer = h.trailer
		r.mode = modeChunked
	case h.hasLength:
		resp.ContentLength = h.length
		if h.length == 0 {
			resp.Body = http.NoBody
			x.noReuse = closeAfter
			x.finish(true)
			return resp, nil
		}
		r.mode, r.remaining = modeLength, h.length
	default:
		r.mode = modeClose
		resp.Close = true
		closeAfter = true
	}
	x.noReuse = closeAfter
	resp.Body = r
	return resp, nil
}

// recentIdle is how long a kept connection may have been idle and still have
// its request head written by connReader (see there).
const recentIdle = time.Second

// connReader is what a connection's read buffer reads from: the connection,
// or, when a request head is pending (a request without a body on a plain
// TCP connection), the head written first and then one read once the socket
// is readable, so that the read does not find nothing (EAGAIN) and park
// first: one system call less per request. The head is written inside
// RawConn.Read's callback, after the runtime forgot the socket's earlier
// readiness, so an answer that comes at once is not missed. A kept
// connection idle for a while does not take this path: an end of stream
// that came while it was idle (a server that half-closed it) would be
// forgotten and the read would wait for the response header timeout
// instead of failing at once (and being retried).
type connReader struct {
	nc      net.Conn
	raw     syscall.RawConn // nil: not a TCP connection
	sock    sockio.Conn     // raw reads and writes of raw (unused when raw is nil)
	pending *bufio.Writer   // the head to write before the next read
	werr    error           // writing the pending head failed
	flush   func() error    // c.flushPending, bound once
}

func (c *connReader) init(nc net.Conn) {
	c.nc = nc
	if raw := sockio.Raw(nc); raw != nil && canDeferWrite {
		c.raw = raw
		c.flush = c.flushPending
		c.sock.Init(raw, nc)
	}
}

// Read implements io.Reader.
func (c *connReader) Read(p []byte) (int, error) {
	if c.raw == nil {
		return c.nc.Read(p)
	}
	if c.pending == nil || len(p) == 0 {
		return c.sock.Read(p)
	}
	n, err := c.sock.ReadAfter(p, c.flush)
	c.pending = nil
	return n, err
}

// flushPending writes the pending head (ReadAfter's first step); a failure
// is noted in werr, so that the exchange tells it from a read's.
func (c *connReader) flushPending() error {
	c.werr = c.pending.Flush()
	return c.werr
}
