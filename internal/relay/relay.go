// Package relay forwards one HTTP request to an upstream http.RoundTripper
// and writes the response to the client's http.ResponseWriter. Both doors use
// it for every proxied HTTP exchange (the reverse door's routes, the forward
// door's absolute-form requests and the requests inside inspected tunnels),
// in place of net/http/httputil's reverse proxy.
//
// A door prepares the outbound request (Prepare: hop-by-hop fields removed,
// an upgrade kept when the door allows it), applies its own rewrites
// (forwarding headers, origin hiding, anonymize profiles), then calls
// Relay.Serve, which relays 1xx responses (103 Early Hints, 100 Continue),
// the final response's header, status, body and trailers, and a protocol
// upgrade (101, WebSocket) by hijacking the client connection. Serve writes
// nothing when the round trip fails: the door answers with its own page.
//
// The hop-by-hop field list of the whole tree is here (RemoveHopByHop).
package relay

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/portcullis/portcullis/internal/ctxafter"
)

// Options are a door's settings for Serve; a door keeps one per upstream
// (route, pool) and passes it to every call.
type Options struct {
	// Transport sends the request upstream (a pool, the cache, the forward
	// door's transport). Required.
	Transport http.RoundTripper
	// ModifyResponse, when set, is called with the upstream response after its
	// hop-by-hop fields are removed and before anything is written to the
	// client. It may edit resp in place: its header, status, and its Body (a
	// wrapper, or a whole other response, such as a block page). When it
	// replaces Body, the response is framed from resp.ContentLength (-1:
	// unknown) instead of the origin's Content-Length. A returned error is
	// returned by Serve, which has then written nothing and closed the body.
	ModifyResponse func(resp *http.Response) error
	// Upgrade allows protocol upgrades (WebSocket): a 101 answering a request
	// that Prepare kept the Upgrade of is relayed by hijacking the client
	// connection. Without it a 101 is an error.
	Upgrade bool
}

// Result describes one relayed exchange, for the access log.
type Result struct {
	// Status is the status sent to the client (101 for an upgrade; 0 when
	// nothing was sent).
	Status int
	// BytesIn counts the request body bytes sent upstream (and, after an
	// upgrade, the bytes relayed from the client).
	BytesIn int64
	// BytesOut counts the response body bytes written to the client (and,
	// after an upgrade, the bytes relayed to the client).
	BytesOut int64
	// Upstream is the remote address of the upstream connection (nil when
	// the transport reported none, as for a cache hit).
	Upstream net.Addr
	// Aborted is set when the response body failed midway and the client
	// connection was cut (the client sees a truncated response, never a
	// complete one).
	Aborted bool
}

// Errors Serve wraps or returns; the round trip's own error is returned as is.
var (
	// ErrBodyCut: the upstream response body failed after the header was sent.
	ErrBodyCut = errors.New("relay: upstream response body failed")
	// ErrClientGone: writing to the client failed.
	ErrClientGone = errors.New("relay: writing to the client failed")
	// ErrUpgrade: a 101 that the request did not ask for, or the door does
	// not allow, or that cannot be relayed.
	ErrUpgrade = errors.New("relay: protocol upgrade refused")
)

// Relay relays requests. Its zero value is not usable; build it with New.
// It is safe for concurrent use and holds only a pool of copy buffers.
type Relay struct {
	bufs sync.Pool // *[bufSize]byte
}

const bufSize = 32 << 10

// New returns a Relay.
func New() *Relay {
	return &Relay{bufs: sync.Pool{New: func() any { return new([bufSize]byte) }}}
}

// Prepare makes r, a request a door received, the request to send upstream,
// in place: hop-by-hop fields removed (and those its Connection names),
// "TE: trailers" kept, and the Upgrade kept when upgrade is set and r asks
// for one. A door calls it before its own rewrites, so that no field the
// door sets can be removed by a client's Connection.
func Prepare(r *http.Request, upgrade bool) {
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	if upgrade {
		RemoveHopByHopKeepUpgrade(r.Header)
	} else {
		RemoveHopByHop(r.Header)
	}
}

// call is one Serve's state: the trace hooks, the counters the transport's
// goroutines may update, and the request sent upstream. It is also that
// request's context (one allocation for all of it): the caller's context
// with the trace hooks (httptrace.ContextClientTrace finds them, as it
// would in httptrace.WithClientTrace's context) and the caller's AfterFunc
// passed on (see AfterFunc).
type call struct {
	context.Context // the caller's (with the hooks composed, when it had a trace of its own)

	w        http.ResponseWriter
	trace    httptrace.ClientTrace
	ownTrace bool // Value answers the trace key itself
	upstream atomic.Pointer[net.Addr]
	body     countingBody
	mu       sync.Mutex // guards w against a 1xx arriving late
	done     bool       // the final response started: no more 1xx
	out      http.Request
	ua       [1]string // an empty User-Agent's value
}

// traceKey is the key httptrace keeps a ClientTrace under in a context
// (an unexported type of net/http/httptrace), learnt once by asking a
// context that records the key it is asked for; nil if that failed, and
// call then takes httptrace.WithClientTrace's context instead.
var traceKey = func() any {
	p := &keyProbe{Context: context.Background()}
	httptrace.ContextClientTrace(p)
	return p.key
}()

type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Value(key any) any { p.key = key; return nil }

// Value implements context.Context.
func (c *call) Value(key any) any {
	if c.ownTrace && key == traceKey {
		return &c.trace
	}
	return c.Context.Value(key)
}

// AfterFunc is context.AfterFunc of the caller's context, through that
// context's own AfterFunc when it has one (ctxafter.Pass): a transport that
// stops its exchange when the context ends (internal/upstream) then
// registers its function there, and neither a derived context nor a
// goroutine is made.
func (c *call) AfterFunc(f func()) (stop func() bool) { return ctxafter.Pass(c.Context, f) }

// Serve sends r (a shallow copy of it with a context of its own) through
// o.Transport and relays the response to w. r is the request as the door
// rewrote it after Prepare (a request without User-Agent gets an empty one,
// so that the transport adds no default); its context bounds the exchange. When the round
// trip fails, Serve writes nothing and returns the error (Result.Status 0):
// the door writes its page. Once the header is sent, a failure of the body
// cuts the client connection (Result.Aborted; http.ErrAbortHandler is
// raised when w cannot be hijacked, as on HTTP/2, which resets the stream).
func (rl *Relay) Serve(w http.ResponseWriter, r *http.Request, o *Options) (res Result, err error) {
	return rl.ServeContext(r.Context(), w, r, o)
}

// ServeContext is Serve with ctx, in place of r's context, as the context of
// the request sent upstream (the transport and ModifyResponse, through
// resp.Request, see it): a door whose own context type carries its state
// passes it here instead of copying r with WithContext (one allocation less).
func (rl *Relay) ServeContext(ctx context.Context, w http.ResponseWriter, r *http.Request, o *Options) (res Result, err error) {
	c := &call{w: w}
	defer func() {
		res.BytesIn += c.body.n.Load()
		if a := c.upstream.Load(); a != nil {
			res.Upstream = *a
		}
	}()
	c.trace.Got1xxResponse = c.got1xx
	c.trace.GotConn = c.gotConn
	c.Context = ctx
	if traceKey == nil || httptrace.ContextClientTrace(ctx) != nil {
		c.Context = httptrace.WithClientTrace(ctx, &c.trace) // composed with the caller's hooks
	} else {
		c.ownTrace = true
	}
	// WithContext copies the request; inlined, its copy stays on the stack
	// and goes into c: no request is allocated.
	c.out = *r.WithContext(c)
	out := &c.out
	out.RequestURI = ""
	out.Close = false
	if out.Header == nil {
		out.Header = make(http.Header, 1)
	}
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = c.ua[:] // present but empty: the transport adds no default
	}
	if r.ContentLength == 0 {
		out.Body = nil // not "unknown length": no chunked empty body upstream
	}
	if out.Body != nil {
		c.body.rc = out.Body
		out.Body = &c.body
	}
	reqUp := ""
	if o.Upgrade {
		reqUp = upgradeType(out.Header)
	}

	resp, err := o.Transport.RoundTrip(out)
	c.mu.Lock()
	c.done = true
	c.mu.Unlock()
	if err != nil {
		return res, err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		RemoveHopByHopKeepUpgrade(resp.Header)
	} else {
		RemoveHopByHop(resp.Header)
	}
	body := resp.Body
	if o.ModifyResponse != nil {
		if err := o.ModifyResponse(resp); err != nil {
			closeBody(resp.Body)
			if resp.Body != body {
				closeBody(body)
			}
			return res, err
		}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return rl.upgrade(ctx, w, resp, reqUp, res)
	}
	defer closeBody(body)
	if resp.Body != body {
		defer closeBody(resp.Body)
	}

	var h http.Header
	if a, ok := w.(headerAdopter); ok && a.AdoptHeader(resp.Header) {
		h = resp.Header // the writer's header map now: no copy
	} else {
		h = w.Header()
		for k, vv := range resp.Header {
			h[k] = vv
		}
	}
	if resp.Body != body {
		delete(h, "Content-Length")
		if resp.ContentLength >= 0 && !bodyless(r.Method, resp.StatusCode) {
			h["Content-Length"] = []string{strconv.FormatInt(resp.ContentLength, 10)}
		}
	}
	announced := len(resp.Trailer)
	if announced > 0 {
		names := make([]string, 0, announced)
		for k := range resp.Trailer {
			names = append(names, k)
		}
		h["Trailer"] = []string{strings.Join(names, ", ")}
	}
	stream := resp.ContentLength < 0 && h["Content-Length"] == nil || isEventStream(h)
	w.WriteHeader(resp.StatusCode)
	res.Status = resp.StatusCode

	f := flusherOf(w)
	if stream && f != nil && resp.Body != nil && resp.Body != http.NoBody {
		// a stream's head goes out now: the origin may hold the body back
		// (long polling, server-sent events, a slow start), and the client
		// should see the status meanwhile, as nginx and HAProxy send it
		f.Flush()
	}
	if resp.Body != nil && resp.Body != http.NoBody {
		n, rerr, werr := rl.copyBody(w, resp.Body, f, stream, resp.ContentLength)
		res.BytesOut = n
		switch {
		case werr != nil:
			return res, errors.Join(ErrClientGone, werr)
		case rerr != nil:
			res.Aborted = true
			abort(w)
			return res, errors.Join(ErrBodyCut, rerr)
		}
	}
	if len(resp.Trailer) > 0 {
		if f != nil {
			f.Flush() // commits to chunked framing, which trailers need
		}
		if len(resp.Trailer) == announced {
			for k, vv := range resp.Trailer {
				h[k] = vv
			}
		} else {
			for k, vv := range resp.Trailer {
				h[http.TrailerPrefix+k] = vv
			}
		}
	}
	return res, nil
}

// copyBody copies src to w. A body of known length over bufSize that both
// sides can move socket to socket (socketBody, socketWriter) goes by
// splice(2), never through this process's memory. Otherwise each piece is
// flushed at once when stream is set (no length, or server-sent events);
// otherwise when the upstream read
// came back short, meaning the origin paused, so that bytes never wait in
// the client's buffer while the origin is silent, and bulk transfers are not
// flushed piece by piece. A piece that completes a body of known length
// (length >= 0) is not flushed: the handler's return sends it, with what
// else is ready on the connection, in one write.
func (rl *Relay) copyBody(w http.ResponseWriter, src io.Reader, f http.Flusher, stream bool, length int64) (n int64, rerr, werr error) {
	if !stream && length > bufSize {
		if sb, ok := src.(socketBody); ok {
			if sw, ok := w.(socketWriter); ok {
				if n, ok, rerr, werr := sb.SpliceTo(sw.ReadFromConn); ok {
					return n, rerr, werr
				}
			}
		}
	}
	bp := rl.bufs.Get().(*[bufSize]byte)
	defer rl.bufs.Put(bp)
	buf := bp[:]
	for {
		nr, err := src.Read(buf)
		if nr > 0 {
			nw, err := w.Write(buf[:nr])
			n += int64(nw)
			if err != nil {
				return n, nil, err
			}
			complete := length >= 0 && n >= length
			if f != nil && err == nil && !complete && (stream || nr < len(buf)) {
				f.Flush()
			}
		}
		if err == io.EOF {
			return n, nil, nil
		}
		if err != nil {
			return n, err, nil
		}
	}
}

// headerAdopter is a ResponseWriter that can take a header map as its own
// while it has none yet (internal/h1's, through the doors' writers): the
// response's header map, which the relay owns, goes to it instead of being
// copied into the writer's. It reports false, doing nothing, when it cannot.
type headerAdopter interface {
	AdoptHeader(h http.Header) bool
}

// socketBody is a response body that can hand the rest of itself, read
// straight from its socket, to a socketWriter (internal/upstream's, through
// internal/pool's tracker): ok false when it cannot, having done nothing;
// rerr is a failure of the upstream side, werr of the client's.
type socketBody interface {
	SpliceTo(w func(prefix []byte, src net.Conn, n int64) (int64, bool, error)) (n int64, ok bool, rerr, werr error)
}

// socketWriter is a ResponseWriter that can write prefix then n bytes read
// from the socket src, socket to socket in the kernel (internal/h1's on
// plain TCP, through the reverse door's exchange): ok false when it cannot,
// having done nothing.
type socketWriter interface {
	ReadFromConn(prefix []byte, src net.Conn, n int64) (written int64, ok bool, err error)
}

// got1xx relays an informational response (103 Early Hints, 100 Continue)
// with its fields, hop-by-hop ones removed.
func (c *call) got1xx(code int, header textproto.MIMEHeader) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return nil
	}
	hdr := http.Header(header)
	RemoveHopByHop(hdr)
	h := c.w.Header()
	var saved http.Header
	for k, vv := range hdr {
		if old, ok := h[k]; ok {
			if saved == nil {
				saved = make(http.Header)
			}
			saved[k] = old
		}
		h[k] = vv
	}
	c.w.WriteHeader(code)
	for k := range hdr {
		delete(h, k)
	}
	for k, vv := range saved {
		h[k] = vv
	}
	return nil
}

func (c *call) gotConn(info httptrace.GotConnInfo) {
	if info.Conn != nil {
		a := info.Conn.RemoteAddr()
		c.upstream.Store(&a)
	}
}

// countingBody counts the request body bytes the transport reads (from its
// own goroutine, hence the atomic). Its Close does nothing: the server closes
// the client's body when the handler returns, and a transport that closes it
// early (a failed dial) would make the server wait for a body a client sending
// "Expect: 100-continue" never sends.
type countingBody struct {
	rc io.ReadCloser
	n  atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *countingBody) Close() error { return nil }

// abort cuts the client connection after a response body failed midway, so
// the client sees a truncated response, not a complete one.
func abort(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
		return
	}
	panic(http.ErrAbortHandler)
}

// flusherOf returns the first http.Flusher in w's chain of Unwrap, or nil.
func flusherOf(w http.ResponseWriter) http.Flusher {
	for {
		if f, ok := w.(http.Flusher); ok {
			return f
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
}

func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) > 0 && strings.HasPrefix(ct[0], "text/event-stream")
}

// bodyless reports whether a response to method with status has no body.
func bodyless(method string, status int) bool {
	return method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified || status < 200
}

func closeBody(b io.ReadCloser) {
	if b != nil {
		_ = b.Close()
	}
}
