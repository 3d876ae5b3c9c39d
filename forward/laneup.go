package forward

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// laneMaxResponseHead bounds an upstream response head, as NewTransport's
// MaxResponseHeaderBytes does.
const laneMaxResponseHead = 256 << 10

// laneMax1xx is how many informational responses are skipped before the
// final one, as http.Transport allows.
const laneMax1xx = 5

// laneUpBuf is the read buffer of an upstream connection.
const laneUpBuf = 16 << 10

// Errors of the lane's upstream exchange; they become the 502 page.
var (
	errLaneHeadTooLarge = errors.New("forward: upstream response head too large")
	errLaneUpgrade      = errors.New("forward: upstream switched protocols unasked")
	errLaneMany1xx      = errors.New("forward: too many informational responses")
)

// laneUpstream is an upstream connection a client connection keeps for one
// host:port while it is on the lane.
type laneUpstream struct {
	addr string // host:port as dialed
	c    net.Conn
	lim  laneLimitReader
	br   *bufio.Reader
	used time.Time // when the last exchange on it ended
}

// laneWatchEvery is how long a read from the origin waits before the lane
// checks whether the client is still there: net/http's server notices a
// client that went away and cancels the exchange; the lane, reading the
// origin on the client connection's goroutine, looks this often.
const laneWatchEvery = time.Second

// errLaneClientGone ends an exchange whose client went away.
var errLaneClientGone = errors.New("forward: the client went away")

// laneLimitReader reads from the origin connection c: at most n bytes (the
// bound on a response head), the head by headBy (the transport's
// ResponseHeaderTimeout), and while it waits it checks every laneWatchEvery
// that the client lc is still connected.
type laneLimitReader struct {
	lc     *laneConn
	c      net.Conn
	n      int64
	headBy time.Time // zero once the head is read
}

func (l *laneLimitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errLaneHeadTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	for {
		n, err := l.c.Read(p)
		l.n -= int64(n)
		if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		now := time.Now()
		if !l.headBy.IsZero() && !now.Before(l.headBy) {
			return 0, err // the response head is late
		}
		if l.lc.clientGone() {
			return 0, errLaneClientGone
		}
		l.watch(now)
	}
}

// watch sets the read deadline for the next look at the client (or the end
// of the wait for the head, when that is sooner).
func (l *laneLimitReader) watch(now time.Time) {
	next := now.Add(laneWatchEvery)
	if !l.headBy.IsZero() && l.headBy.Before(next) {
		next = l.headBy
	}
	l.c.SetReadDeadline(next)
}

// laneAddr is the host:port a request for u is sent to (port 80 by default).
func laneAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// roundTrip sends r (already prepared for upstream) on the kept upstream
// connection for its host:port, dialing one when there is none (or it is
// older than the idle timeout, or the origin sent something on it while it
// was idle), and returns the response with its head read.
// A request on a reused connection that the origin closed before answering
// anything is sent once more on a fresh connection, as http.Transport does.
func (lc *laneConn) roundTrip(p *Proxy, r *http.Request) (*http.Response, error) {
	addr := laneAddr(r.URL)
	lc.wbuf.Reset()
	if err := r.Write(&lc.wbuf); err != nil {
		return nil, err
	}
	for {
		up := lc.up
		// A kept connection the origin wrote to (or closed) while idle is
		// not reused: those bytes would be read as the answer to r.
		reused := up != nil && up.addr == addr && time.Since(up.used) < p.laneTC.IdleConnTimeout && !idleReadable(up.c)
		if !reused {
			lc.dropUpstream()
			c, err := p.dial(context.Background(), "tcp", addr)
			if err != nil {
				return nil, err
			}
			up = &laneUpstream{addr: addr, c: c}
			up.lim.c, up.lim.lc = c, lc
			up.br = bufio.NewReaderSize(&up.lim, laneUpBuf)
			lc.up = up
		}
		resp, retry, err := up.exchange(p, r, lc.wbuf.Bytes())
		if err == nil {
			return resp, nil
		}
		lc.dropUpstream()
		if !reused || !retry {
			return nil, err
		}
	}
}

// exchange writes the request bytes and reads the response head (skipping
// informational responses). retry reports a failure before any response
// byte arrived, after which an idempotent request may be sent again.
func (up *laneUpstream) exchange(p *Proxy, r *http.Request, req []byte) (resp *http.Response, retry bool, err error) {
	if _, err := up.c.Write(req); err != nil {
		return nil, true, err
	}
	up.lim.n = laneMaxResponseHead
	now := time.Now()
	up.lim.headBy = now.Add(p.laneTC.ResponseHeaderTimeout)
	up.lim.watch(now)
	if _, err := up.br.Peek(1); err != nil {
		var ne net.Error
		late := errors.As(err, &ne) && ne.Timeout()
		return nil, !late && err != errLaneClientGone, err
	}
	for n1xx := 0; ; n1xx++ {
		resp, err = http.ReadResponse(up.br, r)
		if err != nil {
			return nil, false, err
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return nil, false, errLaneUpgrade
		}
		if resp.StatusCode >= 200 {
			break
		}
		if n1xx >= laneMax1xx {
			return nil, false, errLaneMany1xx
		}
		up.lim.n = laneMaxResponseHead
	}
	up.lim.n = math.MaxInt64
	up.lim.headBy = time.Time{} // the body is read with the watch deadline alone
	return resp, false, nil
}

// reusable reports whether the kept upstream connection may carry the next
// request after resp, whose body was read to its end: neither side asked to
// close, and the origin sent nothing past the response.
func (up *laneUpstream) reusable(r *http.Request, resp *http.Response) bool {
	return !r.Close && !resp.Close && up.br.Buffered() == 0
}

// laneBody reads resp's body into b (not for HEAD requests or bodyless
// statuses): it returns what it read and whether the body ended.
func laneBody(body io.Reader, b []byte) (int, bool, error) {
	n, err := body.Read(b)
	if err == io.EOF {
		return n, true, nil
	}
	return n, false, err
}
