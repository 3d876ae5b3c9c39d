package h1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/portcullis/portcullis/internal/accept"
	"github.com/portcullis/portcullis/internal/fieldtext"
)

// response is the http.ResponseWriter of one request. It frames the
// response once, when the head is written: with the Content-Length the
// handler set, or the length of the whole body when the handler returns
// before the first bufSize bytes are out, else chunked (HTTP/1.1) or
// delimited by the close (HTTP/1.0). It also implements http.Flusher,
// http.Hijacker and the methods http.NewResponseController looks for.
type response struct {
	st     *stream
	c      *conn
	header http.Header

	mu           sync.Mutex // wroteHeader against a 100 Continue (Expect only)
	wroteHeader  bool
	continueSent bool

	status     int
	committed  bool  // the head is in the write buffer
	written    int64 // body bytes the handler wrote
	cl         int64 // the Content-Length the response carries, -1 none
	chunking   bool
	closeAfter bool
	isHead     bool
	noBody     bool // status without a body (1xx, 204, 304)
	done       bool // the handler returned
	trailers   []string
	raw        []byte // header fields handed over rendered (SetRawHeader)
	rawDate    bool   // raw holds Date
}

func (w *response) init(st *stream) {
	w.st, w.c = st, st.c
	w.cl = -1
	w.isHead = st.req.Method == http.MethodHead
	w.closeAfter = st.h.close
}

// Header implements http.ResponseWriter. The map is made at the first call:
// a response whose header goes rendered (SetRawHeader) costs none.
func (w *response) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header, 4)
	}
	return w.header
}

// Peer returns the connection's remote address as the request's
// RemoteAddr spells it, that address parsed (an IPv4-mapped address
// unmapped; the zero Addr when remote is no IP address and port) and the
// parsed address as text (Addr.String): worked out once per connection,
// so that a handler needing them does not parse RemoteAddr per request.
func (w *response) Peer() (remote string, addr netip.Addr, text string) {
	return w.c.remote, w.c.peer, w.c.peerS
}

// AdoptHeader makes h the response's header map, in place of the one
// Header would make, and reports whether it did: only while Header was
// never called (nor WriteHeader, SetRawHeader). It is for a proxy relaying
// a response whose header map it owns (internal/relay): no map is made and
// filled with a copy. The engine may change h as it changes Header()'s.
func (w *response) AdoptHeader(h http.Header) bool {
	if h == nil || w.header != nil || w.wroteHeader || w.c.hijacked || w.raw != nil {
		return false
	}
	w.header = h
	return true
}

// WriteHeader implements http.ResponseWriter. A 1xx code other than 101 is
// written at once, with the header as it is, as net/http does.
func (w *response) WriteHeader(code int) {
	if w.c.hijacked || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		if w.st.req.ProtoAtLeast(1, 1) {
			w.lock()
			bw := w.c.writer()
			bw.WriteString("HTTP/1.1 ")
			bw.WriteString(statusLine(code))
			bw.WriteString("\r\n")
			w.writeFields(bw, w.header, nil)
			bw.WriteString("\r\n")
			bw.Flush()
			if code == http.StatusContinue {
				w.continueSent = true
			}
			w.unlock()
		}
		return
	}
	w.lock()
	w.wroteHeader = true
	w.unlock()
	w.status = code
	w.noBody = code < 200 || code == http.StatusNoContent || code == http.StatusNotModified
	if v := w.header.Get("Content-Length"); v != "" && !w.noBody {
		if n, ok := parseDecimal(fieldtext.TrimOWS(v)); ok {
			w.cl = n
		} else {
			w.header.Del("Content-Length")
		}
	}
	if w.noBody && code != http.StatusNotModified {
		w.header.Del("Content-Length")
	}
	if v, ok := w.header["Trailer"]; ok {
		for _, k := range v {
			for t := range strings.SplitSeq(k, ",") {
				if t = fieldtext.TrimOWS(t); t != "" {
					w.trailers = append(w.trailers, http.CanonicalHeaderKey(t))
				}
			}
		}
	}
}

func (w *response) lock() {
	if w.st.h.expect {
		w.mu.Lock()
	}
}

func (w *response) unlock() {
	if w.st.h.expect {
		w.mu.Unlock()
	}
}

// SetRawHeader hands the engine header fields already rendered, as
// "Name: value\r\n" lines, to write after Header()'s, with the length of
// the body (as a Content-Length in Header() would give it). It is for a
// handler that keeps a response header ready to send, such as the shared
// cache's stored responses: no map is filled and sorted per response. The
// lines must be valid fields, sorted as the engine sorts Header()'s, and
// hold no Content-Length, Transfer-Encoding, Connection or Trailer field;
// withDate says they hold Date (else the engine adds one). The engine keeps
// fields until the response is written: the caller must not change them.
// It reports false, doing nothing, after WriteHeader or for a negative
// length.
func (w *response) SetRawHeader(fields []byte, contentLength int64, withDate bool) bool {
	if w.wroteHeader || w.c.hijacked || contentLength < 0 {
		return false
	}
	w.raw, w.rawDate, w.cl = fields, withDate, contentLength
	return true
}

// Write implements http.ResponseWriter.
func (w *response) Write(p []byte) (int, error) {
	if w.c.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if w.noBody {
		return 0, http.ErrBodyNotAllowed
	}
	if w.cl >= 0 && w.written+int64(len(p)) > w.cl {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.isHead {
		if !w.committed && w.cl < 0 {
			w.c.writer()
			w.c.wb.pend = append(w.c.wb.pend[:0], p[:min(len(p), 512)]...) // for sniffing
		}
		return len(p), nil
	}
	if !w.committed {
		if w.cl < 0 {
			bw := w.c.writer()
			_ = bw
			if pend := w.c.wb.pend; len(pend)+len(p) <= cap(pend) {
				w.c.wb.pend = append(pend, p...)
				return len(p), nil
			}
		}
		if err := w.commit(); err != nil {
			return 0, err
		}
	}
	return len(p), w.writeBody(p)
}

// WriteString lets io.WriteString skip a copy.
func (w *response) WriteString(s string) (int, error) {
	return w.Write([]byte(s))
}

// ReadFromConn writes n body bytes read from src after prefix (bytes of the
// body the caller already read from src), moving them from socket to socket
// in the kernel (TCPConn.ReadFrom, splice(2)) when both the client
// connection and src are plain TCP. It is for a proxy relaying a body of
// known length (internal/relay): the head is written first, once. It
// reports ok false, having done nothing, when it cannot: no Content-Length
// (or a bodiless or HEAD response), more bytes than the length leaves, TLS,
// a hijacked connection, or a src that is not a TCP socket. written counts
// prefix and spliced bytes; err is the first failure of either side.
func (w *response) ReadFromConn(prefix []byte, src net.Conn, n int64) (written int64, ok bool, err error) {
	if w.c.hijacked {
		return 0, false, nil
	}
	dst, dok := accept.Bare(w.c.rwc).(*net.TCPConn)
	from, sok := src.(*net.TCPConn)
	if !dok || !sok || n < 0 {
		return 0, false, nil
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.cl < 0 || w.isHead || w.noBody || w.written+int64(len(prefix))+n > w.cl {
		return 0, false, nil
	}
	if err := w.commit(); err != nil {
		return 0, true, err
	}
	bw := w.c.wb.bw
	if len(prefix) > 0 {
		bw.Write(prefix)
		w.written += int64(len(prefix))
		written = int64(len(prefix))
	}
	if err := bw.Flush(); err != nil {
		return 0, true, err
	}
	var was int
	limited := false
	if n > spliceNotSent {
		was, limited = swapNotSent(dst, spliceNotSent)
	}
	m, err := dst.ReadFrom(&io.LimitedReader{R: from, N: n})
	if limited {
		swapNotSent(dst, was)
	}
	w.written += m
	return written + m, true, err
}

// spliceNotSent is how many bytes not yet sent the client's socket may
// hold while ReadFromConn splices a body to it (TCP_NOTSENT_LOWAT). Without
// it the splice moves the whole body into the socket at once and the kernel
// sends each window's worth the moment the client's window opens: a client
// on loopback then measures microseconds for its round trip, keeps its
// receive window small (~200 KiB, not MiBs), the sends stay window-limited,
// and BBR (the system's congestion control here) paces every segment with
// a timer whose interrupt, send and receive work land mostly on the client.
// With at most 64 KiB unsent, the body goes out as the splice loop feeds
// it: the client's window grows and most timers go away (CPU per 1 MiB
// response of proxy, origin and client together about 17 % lower; see the
// commit that set it).
const spliceNotSent = 64 << 10

// writeBody writes body bytes after the head, framed as decided.
func (w *response) writeBody(p []byte) error {
	bw := w.c.wb.bw
	if w.chunking {
		bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		bw.WriteString("\r\n")
		bw.Write(p)
		_, err := bw.WriteString("\r\n")
		return err
	}
	_, err := bw.Write(p)
	return err
}

// commit writes the head, framing the response. Before the handler
// returned (not done), a response without a Content-Length is chunked.
func (w *response) commit() error {
	if w.committed {
		return nil
	}
	w.committed = true
	c := w.c
	bw := c.writer()
	pend := c.wb.pend
	h := w.header
	r := w.st.req
	http11 := r.ProtoAtLeast(1, 1)
	if !w.noBody && w.cl < 0 {
		switch {
		case w.done && len(w.trailers) == 0 && !hasTrailerPrefix(h) && (!w.isHead || w.written > 0):
			w.cl = w.written
		case w.isHead:
		case http11:
			w.chunking = true
		default:
			w.closeAfter = true // HTTP/1.0: the close ends the body
		}
	}
	if !http11 && (len(w.trailers) > 0) {
		w.trailers = nil
	}
	if hasToken(h["Connection"], "close") || c.s.closing.Load() {
		w.closeAfter = true
	}
	if w.status == http.StatusSwitchingProtocols {
		w.closeAfter = true // without a hijack, nothing can follow
	}

	if http11 {
		bw.WriteString("HTTP/1.1 ")
	} else {
		bw.WriteString("HTTP/1.0 ")
	}
	bw.WriteString(statusLine(w.status))
	bw.WriteString("\r\n")
	w.writeFields(bw, h, skipFraming)
	bw.Write(w.raw)
	if _, ok := h["Date"]; !ok && !w.rawDate {
		bw.WriteString("Date: ")
		bw.Write(c.s.dates.get(time.Now()))
		bw.WriteString("\r\n")
	}
	if _, ok := h["Content-Type"]; !ok && !w.noBody && len(pend) > 0 {
		bw.WriteString("Content-Type: ")
		bw.WriteString(http.DetectContentType(pend))
		bw.WriteString("\r\n")
	}
	if w.cl >= 0 && !w.noBody {
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), w.cl, 10)) // no string made
		bw.WriteString("\r\n")
	}
	if w.chunking {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	switch {
	case w.closeAfter && w.status != http.StatusSwitchingProtocols && !hasToken(h["Connection"], "close"):
		bw.WriteString("Connection: close\r\n")
	case !w.closeAfter && !http11 && w.st.h.keepAlive10 && len(h["Connection"]) == 0:
		bw.WriteString("Connection: keep-alive\r\n")
	}
	bw.WriteString("\r\n")
	if w.isHead {
		c.wb.pend = pend[:0]
		return nil
	}
	if len(pend) > 0 {
		c.wb.pend = pend[:0]
		return w.writeBody(pend)
	}
	return nil
}

// skipFraming leaves out the fields the engine writes itself.
func skipFraming(k string) bool {
	switch k {
	case "Content-Length", "Transfer-Encoding":
		return true
	}
	return strings.HasPrefix(k, http.TrailerPrefix)
}

// writeFields writes h, keys sorted as net/http does, values with CR and LF
// turned into spaces; invalid names are left out.
func (w *response) writeFields(bw *bufio.Writer, h http.Header, skip func(string) bool) {
	if len(h) == 0 {
		return // a cache hit's fields come as one prepared block
	}
	keys := w.c.wb.keys[:0]
	for k, vs := range h {
		if len(vs) == 0 || (skip != nil && skip(k)) || !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			bw.WriteString(k)
			bw.WriteString(": ")
			writeValue(bw, v)
			bw.WriteString("\r\n")
		}
	}
	clear(keys)
	w.c.wb.keys = keys[:0]
}

func writeValue(bw *bufio.Writer, v string) {
	v = fieldtext.TrimOWS(v)
	if strings.ContainsAny(v, "\r\n") {
		v = strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' {
				return ' '
			}
			return r
		}, v)
	}
	bw.WriteString(v)
}

func hasTrailerPrefix(h http.Header) bool {
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// finish ends the response when the handler returned.
func (w *response) finish() {
	w.done = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit()
	}
	if w.chunking {
		bw := w.c.wb.bw
		bw.WriteString("0\r\n")
		tr := http.Header{}
		for _, k := range w.trailers {
			if v, ok := w.header[k]; ok {
				tr[k] = v
			}
		}
		for k, v := range w.header {
			if t, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
				tr[http.CanonicalHeaderKey(t)] = v
			}
		}
		w.writeFields(bw, tr, nil)
		bw.WriteString("\r\n")
	}
	if w.cl >= 0 && w.written < w.cl && !w.isHead && !w.noBody {
		w.closeAfter = true // the body is cut: the client sees the close
	}
}

// Flush implements http.Flusher.
func (w *response) Flush() { w.FlushError() }

// FlushError flushes the response written so far (framing it first), for
// http.ResponseController.
func (w *response) FlushError() error {
	if w.c.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if err := w.commit(); err != nil {
		return err
	}
	return w.c.wb.bw.Flush()
}

// Hijack implements http.Hijacker: it writes what the handler wrote, and
// returns the connection with a reader holding the bytes already read.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.done {
		return nil, nil, errors.New("h1: Hijack after the handler returned")
	}
	if w.wroteHeader && !w.committed {
		w.commit()
	}
	w.st.body.Close()
	return w.c.hijack()
}

// SetReadDeadline sets the connection's read deadline (for
// http.ResponseController).
func (w *response) SetReadDeadline(t time.Time) error { return w.c.forceReadDeadline(t) }

// SetWriteDeadline sets the connection's write deadline (for
// http.ResponseController).
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.rwc.SetWriteDeadline(t) }

// EnableFullDuplex reports success: the engine lets a handler read the
// request body while it writes the response.
func (w *response) EnableFullDuplex() error { return nil }

// statusLine is "code text" of a status.
func statusLine(code int) string {
	switch code {
	case 200:
		return "200 OK"
	case 204:
		return "204 No Content"
	case 304:
		return "304 Not Modified"
	case 404:
		return "404 Not Found"
	}
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	return strconv.Itoa(code) + " " + text
}

func itoa(n int) string { return strconv.Itoa(n) }
