package forward

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/portcullis/portcullis/internal/accept"
	"github.com/portcullis/portcullis/internal/lane"
	"golang.org/x/net/http/httpguts"
)

// laneBufSize is the lane's read buffer: a request head that does not fit is
// handed to net/http (which allows MaxHeaderBytes). It must not exceed the
// server's read buffer (4 KiB), so that net/http's first read takes every
// byte the lane replays (see unwrapLane).
const laneBufSize = 4 << 10

// laneMaxFields bounds the header fields of a request the lane takes.
const laneMaxFields = 64

// laneResult is what serving one request on the lane leaves the connection to do.
type laneResult uint8

const (
	laneKeep    laneResult = iota // the response was sent: read the next request
	laneClose                     // the response was sent (or cut): close the connection
	laneHandoff                   // nothing was done: hand the connection to net/http
)

// laneConn is one client connection while it is on the lane.
type laneConn struct {
	lane   *Lane
	c      net.Conn
	remote string

	buf       []byte // bytes read and not served yet: buf[:n]
	n         int
	first     time.Time // when the first byte of the head being read arrived
	handedOff bool
	readErr   error

	dl lane.Deadlines

	head bytes.Reader // the head being parsed, for http.ReadRequest
	br   *bufio.Reader
	up   *laneUpstream // the upstream connection kept for one host:port
	out  []byte        // response bytes not written yet
	wbuf bytes.Buffer  // the request being sent upstream
}

// Wake makes a Read waiting for the next request return at once (Shutdown).
func (lc *laneConn) Wake() { lc.c.SetReadDeadline(time.Unix(1, 0)) }

// Kill closes the client and the upstream connection (Shutdown past its deadline).
func (lc *laneConn) Kill() {
	lc.c.Close()
	if up := lc.up; up != nil {
		up.c.Close()
	}
}

// Serve runs the connection until it closes or is handed to net/http.
func (lc *laneConn) Serve() {
	l := lc.lane
	defer func() {
		if v := recover(); v != nil {
			l.logger.Error("forward: lane panic", "panic", v, "stack", string(debug.Stack()))
		}
		lc.dropUpstream()
		if !lc.handedOff {
			lc.c.Close()
		}
		l.conns.Forget(lc)
	}()
	lc.remote = lc.c.RemoteAddr().String()
	lc.buf = make([]byte, laneBufSize)
	for lc.process() && lc.prepareRead() {
		m, err := lc.c.Read(lc.buf[lc.n:])
		now := time.Now()
		if m > 0 && lc.n == 0 {
			lc.first = now
		}
		lc.n += m
		if err != nil {
			lc.readErr = err
		}
	}
}

// prepareRead sets the read deadline for what comes next (the header timeout
// within a head, the idle timeout between requests). False means stop: the
// connection failed or ended, or the door is shutting down with nothing
// pending. The deadline is set before closing is looked at, so a wake from
// Shutdown is never overwritten unseen.
func (lc *laneConn) prepareRead() bool {
	l := lc.lane
	if lc.readErr != nil {
		return false
	}
	if lc.n > 0 && l.headerTimeout > 0 {
		lc.dl.SetRead(lc.c, lc.first.Add(l.headerTimeout))
	} else if l.idleTimeout > 0 {
		lc.dl.SetRead(lc.c, time.Now().Add(l.idleTimeout))
	}
	return !(l.conns.Closing() && lc.n == 0)
}

// clientGone reports whether the client closed or reset its connection,
// with one non-blocking read (bytes of a pipelined request it finds are kept
// in the buffer). It reports false when it cannot tell.
func (lc *laneConn) clientGone() bool {
	tc, ok := accept.Bare(lc.c).(*net.TCPConn)
	if !ok || lc.n == len(lc.buf) {
		return false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	_ = raw.Read(func(fd uintptr) bool {
		m, err := syscall.Read(int(fd), lc.buf[lc.n:])
		switch {
		case err == syscall.EAGAIN || err == syscall.EINTR:
		case err != nil || m == 0:
			gone = true
		default:
			if lc.n == 0 {
				lc.first = time.Now()
			}
			lc.n += m
		}
		return true // one look, never a wait
	})
	return gone
}

// process serves the complete requests in the buffer. It returns true when
// it needs more bytes, and false when the connection is finished with:
// closed, or handed to net/http.
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
		p := l.current()
		if p == nil || !p.laneOK {
			return lc.handoff()
		}
		r := lc.parse(buf[:end])
		if r == nil {
			return lc.handoff()
		}
		switch p.serveLane(lc, r) {
		case laneHandoff:
			return lc.handoff()
		case laneClose:
			return false
		}
		lc.n = copy(lc.buf, lc.buf[end:lc.n]) // n may have grown (clientGone)
		lc.first = time.Now()
		if l.conns.Closing() && lc.n == 0 {
			return false
		}
	}
}

// handoff gives the connection, with the bytes read and not served, to
// net/http. It returns false (finished with).
func (lc *laneConn) handoff() bool {
	lc.dropUpstream()
	l := lc.lane
	lc.handedOff = true
	var c net.Conn = lc.c
	if lc.n > 0 {
		c = lane.NewPrefixConn(lc.c, lc.buf[:lc.n])
	}
	// Out of the lane's set before net/http has it (Conns.Handoff), its
	// deadlines cleared in between: net/http sets its own.
	l.conns.Handoff(lc, c)
	return false
}

// laneTakesPrefix reports whether a request starting with b may be one the
// lane takes: it begins with "GET http://" or "HEAD http://" (or a prefix of
// them). Anything else goes to net/http at once, without waiting for the
// whole head.
func laneTakesPrefix(b []byte) bool {
	for _, m := range [...]string{"GET http://", "HEAD http://"} {
		n := min(len(b), len(m))
		if string(b[:n]) == m[:n] {
			return true
		}
	}
	return false
}

// parse reads head (a complete request head ending in CRLFCRLF) with
// net/http's own parser and returns the request as net/http's server would
// hand it to the door, or nil when the lane does not take it (see
// laneRequest).
func (lc *laneConn) parse(head []byte) *http.Request {
	if !laneHeadPlain(head) {
		return nil
	}
	lc.head.Reset(head)
	if lc.br == nil {
		lc.br = bufio.NewReaderSize(&lc.head, laneBufSize)
	} else {
		lc.br.Reset(&lc.head)
	}
	r, err := http.ReadRequest(lc.br)
	if err != nil || !laneRequest(r) {
		return nil
	}
	r.RemoteAddr = lc.remote
	return r
}

// laneHeadPlain reports whether every line of head is one the lane reads
// without doubt: a request line of printable ASCII, no control characters
// but HTAB in field values, field names of token characters directly followed by the
// colon (no obs-fold, no "Name :"), at most laneMaxFields fields, and
// exactly one valid Host field (net/http's server refuses a request without
// one; http.ReadRequest does not look).
func laneHeadPlain(head []byte) bool {
	s := string(head[:len(head)-4]) // without the final CRLFCRLF
	line, s, more := strings.Cut(s, "\r\n")
	for i := 0; i < len(line); i++ {
		if c := line[i]; c < ' ' || c >= 0x7f { // a non-ASCII host is dialed by its IDNA form: net/http's business
			return false
		}
	}
	hosts := 0
	for fields := 0; more; fields++ {
		if fields >= laneMaxFields {
			return false
		}
		line, s, more = strings.Cut(s, "\r\n")
		name, value, ok := strings.Cut(line, ":")
		if !ok || !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(value) {
			return false
		}
		if strings.EqualFold(name, "Host") {
			hosts++
			if !httpguts.ValidHostHeader(strings.Trim(value, " \t")) {
				return false
			}
		}
	}
	return hosts == 1
}

// laneRequest reports whether r, as http.ReadRequest read it, is a request
// the lane takes: an HTTP/1.1 GET or HEAD for an absolute http:// URL without
// credentials, no body and nothing announcing
// one (Content-Length, Transfer-Encoding, Expect), no protocol switch
// (Upgrade, HTTP2-Settings), and a Connection field naming only close and
// keep-alive.
func laneRequest(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.ProtoMajor != 1 || r.ProtoMinor != 1 || r.URL.Scheme != "http" || r.URL.Host == "" || r.URL.User != nil {
		return false
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) != 0 {
		return false
	}
	for _, k := range [...]string{"Content-Length", "Transfer-Encoding", "Expect", "Upgrade", "Http2-Settings"} {
		if _, ok := r.Header[k]; ok {
			return false
		}
	}
	for _, v := range r.Header["Connection"] {
		for t := range strings.SplitSeq(v, ",") {
			t = strings.Trim(t, " \t")
			if t != "" && !strings.EqualFold(t, "close") && !strings.EqualFold(t, "keep-alive") {
				return false
			}
		}
	}
	return true
}

// write writes b to the client with a write deadline of the idle timeout (a
// client that reads nothing does not hold the lane forever).
func (lc *laneConn) write(b []byte) error {
	if d := lc.lane.idleTimeout; d > 0 {
		lc.dl.SetWrite(lc.c, time.Now().Add(d))
	}
	_, err := lc.c.Write(b)
	return err
}

// dropUpstream closes the kept upstream connection, if any.
func (lc *laneConn) dropUpstream() {
	if lc.up != nil {
		lc.up.c.Close()
		lc.up = nil
	}
}
