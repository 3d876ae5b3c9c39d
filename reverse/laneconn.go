package reverse

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"syscall"
	"time"
	"unsafe"

	"github.com/portcullis/portcullis/internal/accept"
	"github.com/portcullis/portcullis/internal/lane"
)

// laneFlushAt is how many response bytes the lane gathers (from pipelined
// requests) before it writes them; bodies larger than laneDirectWrite are
// written from where they are instead of being copied.
const (
	laneFlushAt     = 64 << 10
	laneDirectWrite = 32 << 10
)

// laneConn is one connection while it is on the lane.
type laneConn struct {
	lane   *Lane
	c      net.Conn
	peer   netip.Addr
	remote string // c.RemoteAddr().String(), as http.Request.RemoteAddr

	buf       []byte // bytes read and not answered yet: buf[:n]
	n         int
	first     time.Time // when the first byte of the head being read arrived
	drained   bool      // the last read left the socket empty
	handedOff bool
	out       []byte    // responses not written yet
	now       time.Time // read after each read from the connection
	dl        lane.Deadlines
	readErr   error
	fd        int // the socket, while serveRaw holds it; -1 otherwise

	// Reused from request to request: nothing the Handler keeps outlives
	// the request on the lane.
	req  http.Request
	url  url.URL
	hdr  http.Header
	vals []string
	w    laneWriter
	ex   exchange
}

// Wake makes a Read waiting for the next request return at once (Shutdown).
func (lc *laneConn) Wake() { lc.c.SetReadDeadline(time.Unix(1, 0)) }

// Kill closes the connection (Shutdown past its deadline).
func (lc *laneConn) Kill() { lc.c.Close() }

// Serve runs the connection until it closes or is handed to net/http.
//
// Reading: with the connection's raw descriptor (a TCP connection), the lane
// stays in one syscall.RawConn.Read for the connection's life and, after a
// read that emptied the socket, waits for it to become readable instead of
// trying a read that would find nothing (as nginx and HAProxy do). That is
// safe only because readiness is never reset in between: a request that
// arrives after the read signals the poller, and the wait sees it. Without a
// raw descriptor it reads with Read, which tries first and then waits.
func (lc *laneConn) Serve() {
	l := lc.lane
	defer func() {
		if v := recover(); v != nil {
			l.logger.Error("reverse: lane panic", "panic", v, "stack", string(debug.Stack()))
		}
		if !lc.handedOff {
			lc.c.Close()
		}
		l.conns.Forget(lc)
		lc.recycle()
	}()
	lc.remote = lc.c.RemoteAddr().String()
	lc.now = time.Now()
	if lc.hdr == nil {
		lc.hdr = make(http.Header, 8)
	}
	lc.w.lc = lc
	lc.buf = l.getBuf()
	lc.fd = -1
	if raw := rawConn(lc.c); raw != nil {
		lc.serveRaw(raw)
		return
	}
	for lc.process() && lc.prepareRead() {
		m, err := lc.c.Read(lc.buf[lc.n:])
		lc.afterRead(m, err)
	}
}

// serveRaw is Serve's loop on the raw descriptor.
func (lc *laneConn) serveRaw(raw syscall.RawConn) {
	done := false
	step := func(fd uintptr) bool {
		lc.fd = int(fd)
		defer func() { lc.fd = -1 }()
		if lc.buf == nil {
			lc.buf = lc.lane.getBuf()
		}
		for {
			if !lc.process() || !lc.prepareRead() {
				done = true
				return true
			}
			if lc.drained {
				lc.drained = false
				lc.idle()
				return false // wait until readable
			}
			m, err := rawIO(syscall.SYS_READ, int(fd), lc.buf[lc.n:])
			if err == syscall.EAGAIN {
				lc.idle()
				return false
			}
			lc.afterRead(m, err)
			lc.drained = m > 0 && lc.n < len(lc.buf)
		}
	}
	for !done {
		if err := raw.Read(step); err != nil && !done {
			return // a deadline passed (idle, header timeout, shutdown) or the connection failed
		}
	}
}

// idle gives the read buffer back while nothing is pending: a connection
// waiting for its next request holds no buffer.
func (lc *laneConn) idle() {
	if lc.n == 0 && lc.buf != nil {
		lc.lane.putBuf(lc.buf)
		lc.buf = nil
	}
}

// recycle returns the finished connection's state to the lane for reuse.
func (lc *laneConn) recycle() {
	l := lc.lane
	if lc.buf != nil {
		l.putBuf(lc.buf)
	}
	out := lc.out[:0]
	if cap(out) > laneFlushAt {
		out = nil
	}
	clear(lc.hdr)
	*lc = laneConn{hdr: lc.hdr, vals: lc.vals[:0], out: out, w: laneWriter{hdr: lc.w.hdr, keys: lc.w.keys[:0], pending: lc.w.pending[:0]}}
	l.connPool.Put(lc)
}

// rawConn returns c's raw descriptor, through the door's own wrappers, or nil.
func rawConn(c net.Conn) syscall.RawConn {
	for {
		if b := accept.Bare(c); b != c {
			c = b
			continue
		}
		switch w := c.(type) {
		case *trackedConn:
			c = w.Conn
		case *net.TCPConn:
			raw, err := w.SyscallConn()
			if err != nil {
				return nil
			}
			return raw
		default:
			return nil
		}
	}
}

// rawIO reads or writes (trap SYS_READ or SYS_WRITE) a non-blocking socket
// without telling the scheduler it is in a system call: it never blocks, and
// the scheduler's bookkeeping (and the system monitor waking to take the
// processor back from a thread in a call) costs more than the call here.
// It retries on EINTR.
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		r, _, errno := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch errno {
		case 0:
			return int(r), nil
		case syscall.EINTR:
			continue
		}
		return 0, errno
	}
}

// afterRead records a read of m bytes into the buffer.
func (lc *laneConn) afterRead(m int, err error) {
	lc.now = time.Now()
	if m > 0 && lc.n == 0 {
		lc.first = lc.now
	}
	lc.n += m
	switch {
	case err != nil:
		lc.readErr = err
	case m == 0:
		lc.readErr = io.EOF
	}
}

// prepareRead gets ready to wait for more of the connection: it writes the
// gathered responses and sets the read deadline (the header timeout within a
// head, the idle timeout between requests). False means stop: the
// connection failed or ended, or the door is shutting down and nothing is
// pending.
func (lc *laneConn) prepareRead() bool {
	l := lc.lane
	if lc.readErr != nil || !lc.flush() {
		return false
	}
	want := lc.now.Add(l.idleTimeout)
	if lc.n > 0 && l.headerTimeout > 0 {
		want = lc.first.Add(l.headerTimeout)
	}
	if l.idleTimeout > 0 || lc.n > 0 {
		lc.dl.SetRead(lc.c, want)
	}
	return !(l.conns.Closing() && lc.n == 0)
}

// process answers the complete requests in the buffer. It returns true when
// it needs more bytes, and false when the connection is finished with:
// closed after a response, or handed to net/http (lc.handedOff).
func (lc *laneConn) process() bool {
	l := lc.lane
	for {
		buf := lc.buf[:lc.n]
		if !laneTakesPrefix(buf) {
			return lc.handoff()
		}
		end := lane.Head(buf, lc.n == len(lc.buf))
		if end == 0 {
			return true // more bytes wanted
		}
		if end < 0 {
			return lc.handoff()
		}
		h := l.current()
		if h == nil || !lc.parse(buf[:end]) {
			return lc.handoff()
		}
		start := lc.now // when the head was read: one clock reading per read
		lc.w.reset(lc.req.Method == http.MethodHead, lc.req.Close || l.conns.Closing())
		if !h.serveLane(&lc.ex, &lc.w, &lc.req, lc.peer, start) {
			return lc.handoff()
		}
		lc.w.finish()
		l.answered.Add(1)
		lc.n = copy(lc.buf, buf[end:])
		lc.first = start
		if lc.w.closeAfter {
			lc.flush()
			return false
		}
		if len(lc.out) >= laneFlushAt && !lc.flush() {
			return false
		}
	}
}

// handoff writes what the lane owes and gives the connection, with the bytes
// read and not answered, to net/http. It returns false (finished with).
func (lc *laneConn) handoff() bool {
	if lc.flush() {
		l := lc.lane
		lc.handedOff = true
		// Out of the lane's set before net/http has it (Conns.Handoff), with
		// a copy of the bytes read: the buffer goes back to the lane.
		l.conns.Handoff(lc, lane.NewPrefixConn(lc.c, lc.buf[:lc.n]))
	}
	return false
}

// parse reads the head into lc.req and reports whether the lane takes it.
func (lc *laneConn) parse(head []byte) bool {
	clear(lc.hdr)
	h, vals, ok := parseLaneHead(string(head), lc.hdr, lc.vals[:0], &lc.url)
	lc.vals = vals
	if !ok {
		return false
	}
	lc.req = http.Request{
		Method: h.method, URL: h.url, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: lc.hdr, Body: http.NoBody, Host: h.host, RemoteAddr: lc.remote,
		RequestURI: h.target, Close: h.close,
	}
	return true
}

// flush writes the gathered responses; false means the connection failed.
func (lc *laneConn) flush() bool {
	if len(lc.out) == 0 {
		return true
	}
	ok := lc.write(lc.out)
	lc.out = lc.out[:0]
	return ok
}

// write writes b, with a write deadline of the idle timeout (a client that
// reads nothing does not hold the lane forever).
func (lc *laneConn) write(b []byte) bool {
	if lc.fd >= 0 && len(b) <= laneFlushAt {
		// Inside serveRaw: try the non-blocking socket directly first.
		n, err := rawIO(syscall.SYS_WRITE, lc.fd, b)
		if err == nil && n == len(b) {
			return true
		}
		if err != nil && err != syscall.EAGAIN {
			return false
		}
		b = b[n:] // the socket is full: wait for room below
	}
	if d := lc.lane.idleTimeout; d > 0 {
		lc.dl.SetWrite(lc.c, lc.now.Add(d))
	}
	_, err := lc.c.Write(b)
	return err == nil
}
