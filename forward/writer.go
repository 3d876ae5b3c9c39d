package forward

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/tunnel"
)

// respWriter wraps the server's ResponseWriter to record the status and the body
// bytes for the access log. It flushes after every write when the response has no
// Content-Length (streams, long polls, server-sent events), keeps the server's
// pooled ReadFrom path otherwise, and remembers a hijack so the door can close a
// connection a finished WebSocket relay leaves open.
type respWriter struct {
	http.ResponseWriter
	bufs      *sync.Pool // *[]byte copy buffers, shared by the Proxy
	status    int
	n         int64
	flushEach bool
	hijacked  net.Conn
	buffered  []byte         // bytes the server had read past the request head when hijacked
	tunnels   *tunnel.Set    // set for plain requests: a hijack (WebSocket relay) is tracked there
	relay     *tunnel.Tunnel // the tracked relay, removed by Proxy.finish
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// WriteHeader records the final status.
func (w *respWriter) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
		cl := w.Header()["Content-Length"] // Header().Get, without canonicalising the key
		w.flushEach = len(cl) == 0 || cl[0] == ""
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) wroteHeader() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
}

// Write counts p and flushes streams.
func (w *respWriter) Write(p []byte) (int, error) {
	w.wroteHeader()
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	if w.flushEach && err == nil {
		w.Flush()
	}
	return n, err
}

// ReadFrom copies src to the client with a pooled buffer, flushing each chunk for
// streams. (The server's own ReadFrom would hand a non-file source to
// TCPConn.ReadFrom, which allocates 32 KiB per call.)
func (w *respWriter) ReadFrom(src io.Reader) (int64, error) {
	w.wroteHeader()
	bp := w.bufs.Get().(*[]byte)
	defer w.bufs.Put(bp)
	var total int64
	for {
		nr, rerr := src.Read(*bp)
		if nr > 0 {
			nw, werr := w.Write((*bp)[:nr])
			total += int64(nw)
			if werr != nil {
				return total, werr
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			w.abort()
			return total, rerr
		}
	}
}

// ReadFromConn passes internal/relay's socket-to-socket copy of a large body
// of known length on to the engine's writer (internal/h1 splices it on plain
// TCP: the bytes never cross this process's memory), counting them as Write
// does. ok false (nothing done) when the writer cannot, or for a response
// flushed after every write (no Content-Length). A failure may be of either
// socket: relay tells them apart.
func (w *respWriter) ReadFromConn(prefix []byte, src net.Conn, n int64) (written int64, ok bool, err error) {
	cw, ok := w.ResponseWriter.(interface {
		ReadFromConn([]byte, net.Conn, int64) (int64, bool, error)
	})
	if !ok {
		return 0, false, nil
	}
	w.wroteHeader()
	if w.flushEach {
		return 0, false, nil
	}
	written, ok, err = cw.ReadFromConn(prefix, src, n)
	w.n += written
	return written, ok, err
}

// AdoptHeader passes internal/relay's header handover on to the engine's
// writer (internal/h1's takes the relayed response's header map as its own
// instead of making one and copying the fields into it); false (nothing
// done) when the writer cannot. WriteHeader then reads Content-Length from
// the adopted map, which is Header()'s from then on.
func (w *respWriter) AdoptHeader(h http.Header) bool {
	a, ok := w.ResponseWriter.(interface{ AdoptHeader(http.Header) bool })
	return ok && a.AdoptHeader(h)
}

// abort cuts the client's connection after the response body failed midway (the
// origin went away, a size limit or a late phrase block), so the client sees a
// truncated response rather than a complete one (the server would otherwise
// end the chunked body normally).
func (w *respWriter) abort() {
	if hj, ok := w.ResponseWriter.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			_ = c.Close()
		}
	}
}

// Flush sends buffered data to the client.
func (w *respWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack takes over the connection and keeps a copy of the bytes already buffered
// past the request (a ClientHello sent together with CONNECT, a first WebSocket
// frame), so a tunnel can replay them.
func (w *respWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.hijacked = c
	if w.tunnels != nil {
		tn, err := w.tunnels.Open()
		if err != nil {
			_ = c.Close()
			return nil, nil, err
		}
		tn.SetClient(c)
		w.relay = tn
	}
	if n := rw.Reader.Buffered(); n > 0 {
		b, _ := rw.Reader.Peek(n)
		w.buffered = append([]byte(nil), b...)
	}
	return c, rw, nil
}

// countingBody counts the request body bytes read by the transport (from its own
// goroutine, hence the atomics). With ctl set it also bounds the wait for each
// piece of the body: before every read the client connection's read deadline is
// set timeout ahead (cleared once the body ends), and the first read error (a
// timeout, a malformed chunk) is kept for the door to answer 408 or 400 instead
// of blaming the origin.
type countingBody struct {
	rc      io.ReadCloser
	n       atomic.Int64
	ctl     *http.ResponseController // nil: no deadline (request_body_timeout off)
	timeout time.Duration
	err     atomic.Pointer[error] // the first read error other than io.EOF
}

func (b *countingBody) Read(p []byte) (int, error) {
	if b.ctl != nil {
		_ = b.ctl.SetReadDeadline(time.Now().Add(b.timeout))
	}
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		if b.ctl != nil {
			_ = b.ctl.SetReadDeadline(time.Time{})
		}
	default:
		b.err.CompareAndSwap(nil, &err)
	}
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

// failure returns the error reading the client's body failed with, or nil.
func (b *countingBody) failure() error {
	if e := b.err.Load(); e != nil {
		return *e
	}
	return nil
}
