package reverse

import (
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/portcullis/portcullis/internal/lane"
	"golang.org/x/net/http/httpguts"
)

// laneWriter is the http.ResponseWriter of a request on the lane. It frames
// the response as net/http's server does for a complete handler (status
// line, the header fields sorted, Content-Length, Date, Content-Type sniffed
// when absent, Connection: close when the connection ends), into the
// connection's output buffer. A body of unknown length is gathered and sent
// with a Content-Length (the lane's answers are small or already in memory);
// a body of declared length is written as it comes, large ones directly.
type laneWriter struct {
	lc         *laneConn
	hdr        http.Header
	keys       []string // scratch for sorting field names
	status     int
	head       bool  // a HEAD request: no body is sent
	clen       int64 // the declared Content-Length, -1 = none
	written    int64
	headDone   bool   // the status line and fields are in lc.out
	pending    []byte // body gathered while its length is unknown
	closeAfter bool
}

// reset prepares w for the next request.
func (w *laneWriter) reset(head, closeAfter bool) {
	if w.hdr == nil {
		w.hdr = make(http.Header, 8)
	}
	clear(w.hdr)
	w.status, w.head, w.clen, w.written, w.headDone = 0, head, -1, 0, false
	w.pending = w.pending[:0]
	w.closeAfter = closeAfter
}

// Header implements http.ResponseWriter.
func (w *laneWriter) Header() http.Header { return w.hdr }

// WriteHeader implements http.ResponseWriter. Informational codes are
// ignored; the first final code counts.
func (w *laneWriter) WriteHeader(code int) {
	if w.status != 0 || code < 200 {
		return
	}
	w.status = code
	if cl := w.hdr["Content-Length"]; len(cl) > 0 {
		if v, err := strconv.ParseInt(cl[0], 10, 64); err == nil && v >= 0 {
			w.clen = v
		} else {
			delete(w.hdr, "Content-Length")
		}
	}
	if httpguts.HeaderValuesContainsToken(w.hdr["Connection"], "close") {
		w.closeAfter = true
	}
}

// Write implements http.ResponseWriter.
func (w *laneWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.head {
		return len(b), nil
	}
	if w.clen < 0 {
		w.pending = append(w.pending, b...)
		w.written += int64(len(b))
		return len(b), nil
	}
	n, err := len(b), error(nil)
	if rest := w.clen - w.written; int64(n) > rest {
		n, err = int(rest), http.ErrContentLength
	}
	if !w.headDone {
		w.writeHead(b[:n], -1)
	}
	w.written += int64(n)
	if n >= laneDirectWrite {
		if !w.lc.flush() || !w.lc.write(b[:n]) {
			w.closeAfter = true
			return 0, net.ErrClosed
		}
		return n, err
	}
	w.lc.out = append(w.lc.out, b[:n]...)
	return n, err
}

// finish completes the response in lc.out.
func (w *laneWriter) finish() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headDone {
		clen := int64(-1)
		if w.clen < 0 && bodyAllowed(w.status) && !w.head {
			clen = int64(len(w.pending))
		}
		w.writeHead(w.pending, clen)
		w.lc.out = append(w.lc.out, w.pending...)
	}
	if w.clen >= 0 && w.written < w.clen && bodyAllowed(w.status) && !w.head {
		w.closeAfter = true // the body is short of its length: end it by closing
	}
	if len(w.pending) > laneFlushAt {
		w.pending = nil // do not keep a big buffer for the next request
	}
}

// writeHead appends the status line and header fields to lc.out. sample is
// the start of the body (for sniffing a missing Content-Type); clen >= 0 is
// a Content-Length to add.
func (w *laneWriter) writeHead(sample []byte, clen int64) {
	w.headDone = true
	out := w.lc.out
	out = append(out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(w.status), 10)
	out = append(out, ' ')
	if text := http.StatusText(w.status); text != "" {
		out = append(out, text...)
	} else {
		out = append(out, "status code "...)
		out = strconv.AppendInt(out, int64(w.status), 10)
	}
	out = append(out, "\r\n"...)

	keys := w.keys[:0]
	for k := range w.hdr {
		if w.suppressed(k) {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !httpguts.ValidHeaderFieldName(k) {
			continue // as net/http: a handler cannot be told
		}
		for _, v := range w.hdr[k] {
			out = lane.AppendField(out, k, v)
		}
	}
	w.keys = keys[:0]

	if clen >= 0 {
		out = append(out, "Content-Length: "...)
		out = strconv.AppendInt(out, clen, 10)
		out = append(out, "\r\n"...)
	}
	if bodyAllowed(w.status) && len(sample) > 0 && !w.head {
		if _, ok := w.hdr["Content-Type"]; !ok && len(w.hdr["Content-Encoding"]) == 0 {
			out = lane.AppendField(out, "Content-Type", http.DetectContentType(sample))
		}
	}
	if _, ok := w.hdr["Date"]; !ok {
		out = lane.AppendField(out, "Date", w.lc.lane.dates.get(w.lc.now))
	}
	if w.closeAfter {
		out = append(out, "Connection: close\r\n"...)
	}
	w.lc.out = append(out, "\r\n"...)
}

// suppressed reports whether field k is left out of the response: the lane
// frames the body itself, trailers are not sent, Connection is written by
// writeHead, and a response without a body drops what describes one.
func (w *laneWriter) suppressed(k string) bool {
	switch k {
	case "Transfer-Encoding", "Trailer", "Connection":
		return true
	case "Content-Length":
		return !bodyAllowed(w.status)
	case "Content-Type":
		return w.status == http.StatusNotModified
	}
	return strings.HasPrefix(k, http.TrailerPrefix)
}

// bodyAllowed reports whether a response with status may have a body.
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}
