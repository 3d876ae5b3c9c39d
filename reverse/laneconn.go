package reverse

import (
	"bytes"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"runtime/debug"
	"time"
)

// laneFlushAt is how many response bytes the lane gathers (from pipelined
// requests) before it writes them; bodies larger than laneDirectWrite are
// written from where they are instead of being copied.
const (
	laneFlushAt     = 64 << 10
	laneDirectWrite = 32 << 10
)

// deadlineSlack is how stale a connection deadline may get before the lane
// moves it: setting one costs a timer update, so it is refreshed at most
// about once a second per connection rather than once per request.
const deadlineSlack = time.Second

// laneConn is one connection while it is on the lane.
type laneConn struct {
	lane   *Lane
	c      net.Conn
	peer   netip.Addr
	remote string // c.RemoteAddr().String(), as http.Request.RemoteAddr

	out        []byte    // responses not written yet
	now        time.Time // read after each read from the connection
	rdDeadline time.Time
	wrDeadline time.Time
	readErr    error

	// Reused from request to request: nothing the Handler keeps outlives
	// the request on the lane.
	req  http.Request
	hdr  http.Header
	vals []string
	w    laneWriter
	ex   exchange
}

// wake makes a Read waiting for the next request return at once (Shutdown).
func (lc *laneConn) wake() { lc.c.SetReadDeadline(time.Unix(1, 0)) }

// serve runs the connection until it closes or is handed to net/http.
func (lc *laneConn) serve() {
	l := lc.lane
	handedOff := false
	defer func() {
		if v := recover(); v != nil {
			l.logger.Error("reverse: lane panic", "panic", v, "stack", string(debug.Stack()))
		}
		if !handedOff {
			lc.c.Close()
		}
		l.forget(lc)
	}()
	lc.remote = lc.c.RemoteAddr().String()
	lc.now = time.Now()
	lc.hdr = make(http.Header, 8)
	lc.w.lc = lc
	buf := make([]byte, laneBufSize)
	n := 0
	var first time.Time // when the first byte of the head being read arrived
	served := false     // a response was written: the client reads it before it sends more
	handoff := func() {
		if lc.flush() {
			handedOff = true
			l.handedOff.Add(1)
			l.handoff.give(&prefixConn{Conn: lc.c, pre: buf[:n]})
		}
	}
	for {
		if !laneTakesPrefix(buf[:n]) {
			handoff()
			return
		}
		end := headEnd(buf[:n])
		if end == -2 {
			handoff()
			return
		}
		if end < 0 {
			if n == len(buf) {
				handoff() // a head too big for the lane
				return
			}
			if lc.readErr != nil || !lc.flush() {
				return
			}
			want := lc.now.Add(l.idleTimeout)
			if n > 0 && l.headerTimeout > 0 {
				want = first.Add(l.headerTimeout)
			}
			if l.idleTimeout > 0 || n > 0 {
				lc.setReadDeadline(want)
			}
			if l.closing.Load() && n == 0 {
				return
			}
			if n == 0 && served {
				// The client is most likely still reading the response: let the
				// other connections run first, so the read below more often finds
				// the next request instead of costing a read that finds nothing
				// and a trip through the poller.
				runtime.Gosched()
			}
			m, err := lc.c.Read(buf[n:])
			lc.now = time.Now()
			if m > 0 && n == 0 {
				first = lc.now
			}
			n += m
			lc.readErr = err
			continue
		}
		h := l.current()
		if h == nil || !lc.parse(buf[:end]) {
			handoff()
			return
		}
		start := lc.now // when the head was read: one clock reading per read
		lc.w.reset(lc.req.Method == http.MethodHead, lc.req.Close || l.closing.Load())
		if !h.serveLane(&lc.ex, &lc.w, &lc.req, lc.peer, start) {
			handoff()
			return
		}
		lc.w.finish()
		l.answered.Add(1)
		served = true
		lc.ex = exchange{} // drop references to this request
		copy(buf, buf[end:n])
		n -= end
		first = start
		if lc.w.closeAfter {
			lc.flush()
			return
		}
		if len(lc.out) >= laneFlushAt && !lc.flush() {
			return
		}
	}
}

// parse reads the head into lc.req and reports whether the lane takes it.
func (lc *laneConn) parse(head []byte) bool {
	clear(lc.hdr)
	h, vals, ok := parseLaneHead(string(head), lc.hdr, lc.vals[:0])
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

// headEnd returns the length of the request head at the start of b (through
// the empty line), -1 when b holds no complete head yet, or -2 when a line
// of it ends in a bare LF (which the lane leaves to net/http).
func headEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j
		if i == 0 || b[i-1] != '\r' {
			return -2
		}
		if i >= 3 && b[i-2] == '\n' && b[i-3] == '\r' {
			return i + 1
		}
		i++
	}
}

// setReadDeadline sets the read deadline to want unless the one set is no
// more than deadlineSlack earlier.
func (lc *laneConn) setReadDeadline(want time.Time) {
	if want.Before(lc.rdDeadline) || want.Sub(lc.rdDeadline) > deadlineSlack {
		lc.rdDeadline = want
		lc.c.SetReadDeadline(want)
	}
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
	if d := lc.lane.idleTimeout; d > 0 {
		want := lc.now.Add(d)
		if want.Sub(lc.wrDeadline) > deadlineSlack {
			lc.wrDeadline = want
			lc.c.SetWriteDeadline(want)
		}
	}
	_, err := lc.c.Write(b)
	return err == nil
}
