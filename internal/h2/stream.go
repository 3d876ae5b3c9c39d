package h2

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portcullis/portcullis/internal/ctxafter"
	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// stream is one request and its answer. Fields below mu are guarded by
// the connection's mutex; the response writer's own state belongs to the
// handler's goroutine.
type stream struct {
	c   *conn
	id  uint32
	req *http.Request
	ctx ctxafter.Context // req's context: ends with the stream

	// guarded by c.mu (the flags and generations are packed together so
	// that a stream stays in the 896-byte size class)
	sendWin    int64
	recvWin    int64
	recvAck    int64
	declared   int64
	got        int64
	body       []byte
	off        int
	bodyErr    error // io.EOF once the body is complete
	bodyCond   sync.Cond
	ended      error  // the stream was ended by a reset or the connection
	readGen    uint32 // deadlines set (a timer of an older one does nothing)
	writeGen   uint32
	bodyClosed bool
	remoteDone bool // END_STREAM received
	answered   bool // END_STREAM sent (or the handler gave up)
	// answeredAtOnce: ServeImmediate answered; a worker only sends it.
	answeredAtOnce bool
	readLate       bool // the read deadline passed
	timers         [2]*time.Timer

	rw    responseWriter
	reqv  http.Request // what req points to
	url   url.URL      // what req.URL points to
	rbody requestBody  // what req.Body points to, for a request with a body
	vals  [4]string    // the request header's values, when they are this few
}

// newStream makes the stream for a complete header block: the stream, its
// request, URL, body reader and response writer are one allocation. A
// malformed request is reported and no stream made.
func (c *conn) newStream(hb *headerBlock) (*stream, error) {
	s := &stream{c: c, id: hb.id, sendWin: c.peerInit, recvWin: defaultStreamWindow, remoteDone: hb.endStream}
	declared, err := c.newRequest(hb, &s.reqv, &s.url, s.vals[:])
	if err != nil {
		return nil, err
	}
	s.declared = declared
	s.ctx.Context = c.ctx
	s.bodyCond.L = &c.mu
	if hb.endStream {
		s.bodyErr = io.EOF
	} else {
		s.rbody.s = s
		s.reqv.Body = &s.rbody
	}
	s.reqv = *s.reqv.WithContext(&s.ctx) // inlined: the copy stays on the stack
	s.req = &s.reqv
	s.rw = responseWriter{s: s, status: 0, declared: -1}
	return s, nil
}

// endLocked ends the stream because of err (a reset or the connection).
func (s *stream) endLocked(err error) {
	if s.ended == nil {
		s.ended = err
	}
	if s.bodyErr == nil || s.bodyErr == io.EOF && !s.remoteDone {
		s.bodyErr = err
	}
	s.bodyCond.Broadcast()
	s.ctx.End()
}

// run runs the handler (unless ServeImmediate already answered) and
// finishes the answer.
func (s *stream) run() {
	c := s.c
	defer c.handlers.Done()
	defer func() {
		if v := recover(); v != nil {
			s.panicked(v)
		}
	}()
	if !s.answeredAtOnce {
		c.srv.Handler.ServeHTTP(&s.rw, s.req)
	}
	s.rw.finish()
	s.ctx.End()
}

// panicked ends a stream whose handler panicked with v.
func (s *stream) panicked(v any) {
	c := s.c
	if v != http.ErrAbortHandler && c.srv.Log != nil {
		buf := make([]byte, 16<<10)
		buf = buf[:runtime.Stack(buf, false)]
		c.srv.Log.Error("h2: handler panic", "remote", c.remoteAddr, "panic", fmt.Sprint(v), "stack", string(buf))
	}
	c.mu.Lock()
	c.resetLocked(s.id, http2.ErrCodeInternal)
	s.answered = true
	s.stopTimersLocked()
	c.running--
	c.mu.Unlock()
	s.ctx.End()
	s.rw.release()
}

// runImmediate offers s to ih on the read loop's goroutine. An answer that
// can leave without waiting for window is finished here; a larger one, and a
// stream ih declined, go to a worker.
func (s *stream) runImmediate(ih ImmediateHandler) {
	w := &s.rw
	w.immediate = true
	handled, ok := s.serveImmediate(ih)
	w.immediate = false
	if !ok {
		return // panicked
	}
	if !handled && w.status == 0 && w.written == 0 {
		s.c.srv.dispatch(s)
		return
	}
	if w.finishNow() {
		s.c.handlers.Done()
		s.ctx.End()
		return
	}
	s.answeredAtOnce = true
	s.c.srv.dispatch(s)
}

// serveImmediate calls ih.ServeImmediate; ok is false when it panicked
// (the stream is then reset and done with).
func (s *stream) serveImmediate(ih ImmediateHandler) (handled, ok bool) {
	defer func() {
		if !ok {
			v := recover()
			s.panicked(v)
			s.c.handlers.Done()
		}
	}()
	handled = ih.ServeImmediate(&s.rw, s.req)
	return handled, true
}

// requestBody is a request's Body: the DATA frames received, handed out as
// read (each read returns receive window to the client).
type requestBody struct{ s *stream }

func (b *requestBody) Read(p []byte) (int, error) {
	s := b.s
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for s.off == len(s.body) && s.bodyErr == nil && !s.readLate {
		s.bodyCond.Wait()
	}
	if s.bodyClosed {
		return 0, errBodyClosed
	}
	if s.readLate {
		return 0, os.ErrDeadlineExceeded
	}
	if s.off < len(s.body) {
		n := copy(p, s.body[s.off:])
		s.off += n
		c.creditLocked(s, int64(n))
		return n, nil
	}
	if s.bodyErr == errStreamReset || s.bodyErr == errConnClosed {
		return 0, io.ErrUnexpectedEOF
	}
	return 0, s.bodyErr
}

func (b *requestBody) Close() error {
	s := b.s
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if !s.bodyClosed {
		s.bodyClosed = true
		c.creditLocked(s, int64(len(s.body)-s.off))
		s.body, s.off = nil, 0
		if s.bodyErr == nil {
			s.bodyErr = errBodyClosed
		}
		s.bodyCond.Broadcast()
	}
	return nil
}

const rwBufSize = 8 << 10

var rwBufPool = sync.Pool{New: func() any { b := make([]byte, 0, rwBufSize); return &b }}

// responseWriter is the stream's http.ResponseWriter (also http.Flusher).
// The HEADERS frame is made when the first bytes leave: at a Flush, when
// the buffer is full, or when the handler returns, from the header map as
// it is then (keys declared in Trailer and those with http.TrailerPrefix
// are trailers).
type responseWriter struct {
	s          *stream
	header     http.Header
	status     int
	sentHeader bool
	buf        *[]byte
	written    int64
	declared   int64 // Content-Length the handler set, -1: none
	err        error
	// immediate: ServeImmediate is running on the read loop; the answer is
	// held in buf (which grows) and nothing is sent before it returns.
	immediate bool
	// noWait: the answer is sent from the read loop, within windows that
	// were checked to suffice; room in the write buffer is not waited for.
	noWait bool
}

func (w *responseWriter) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

// AdoptHeader makes h the response's header map, in place of the one
// Header would make, and reports whether it did: only while Header and
// WriteHeader were never called. It is for a proxy relaying a response
// whose header map it owns (internal/relay): no map is made and filled
// with a copy. The mux reads h when it encodes the answer's HEADERS.
func (w *responseWriter) AdoptHeader(h http.Header) bool {
	if h == nil || w.header != nil || w.status != 0 {
		return false
	}
	w.header = h
	return true
}

func (w *responseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.status != 0 {
		return
	}
	if code < 200 {
		if code != http.StatusSwitchingProtocols {
			w.informational(code)
		}
		return
	}
	w.status = code
	if cl := w.header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			w.declared = n
		}
	}
}

func (w *responseWriter) bodyAllowed() bool {
	return w.status != http.StatusNoContent && w.status != http.StatusNotModified
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyAllowed() {
		return 0, http.ErrBodyNotAllowed
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.s.req.Method == http.MethodHead {
		return len(p), nil
	}
	if w.buf == nil {
		w.buf = rwBufPool.Get().(*[]byte)
	}
	b := *w.buf
	if len(b)+len(p) <= cap(b) || w.immediate {
		*w.buf = append(b, p...)
		return len(p), nil
	}
	if err := w.send(p, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w *responseWriter) WriteString(s string) (int, error) {
	if w.buf != nil && len(*w.buf)+len(s) <= cap(*w.buf) && w.status != 0 && w.bodyAllowed() && w.err == nil &&
		(w.declared < 0 || w.written+int64(len(s)) <= w.declared) && w.s.req.Method != http.MethodHead {
		*w.buf = append(*w.buf, s...)
		w.written += int64(len(s))
		return len(s), nil
	}
	return w.Write([]byte(s))
}

// Flush sends the header and what is buffered.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError is Flush reporting a stream that cannot be written any more
// (http.ResponseController uses it).
func (w *responseWriter) FlushError() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil || w.immediate {
		return w.err
	}
	return w.send(nil, false)
}

// EnableFullDuplex is accepted: HTTP/2 streams are always full duplex.
func (w *responseWriter) EnableFullDuplex() error { return nil }

// SetReadDeadline (for http.ResponseController): body reads fail with
// os.ErrDeadlineExceeded once t has passed. The zero time clears it.
func (w *responseWriter) SetReadDeadline(t time.Time) error {
	s := w.s
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.readGen++
	s.readLate = false
	s.deadline(0, t, s.readGen, func() {
		s.readLate = true
		s.bodyCond.Broadcast()
	})
	return nil
}

// SetWriteDeadline (for http.ResponseController): once t has passed
// before the answer is complete, the stream is reset (INTERNAL_ERROR, as
// Go's server does) and writes fail. The zero time clears it.
func (w *responseWriter) SetWriteDeadline(t time.Time) error {
	s := w.s
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.writeGen++
	s.deadline(1, t, s.writeGen, func() {
		if !s.answered {
			s.c.resetLocked(s.id, http2.ErrCodeInternal)
		}
	})
	return nil
}

// deadline arms timer i to run fire (under c.mu) at t, unless another
// deadline was set since (gen).
func (s *stream) deadline(i int, t time.Time, gen uint32, fire func()) {
	if s.timers[i] != nil {
		s.timers[i].Stop()
		s.timers[i] = nil
	}
	if t.IsZero() {
		return
	}
	cur := func() bool {
		if i == 0 {
			return s.readGen == gen
		}
		return s.writeGen == gen
	}
	s.timers[i] = time.AfterFunc(max(time.Until(t), 0), func() {
		s.c.mu.Lock()
		defer s.c.mu.Unlock()
		if cur() {
			fire()
		}
	})
}

// stopTimersLocked stops the deadlines' timers.
func (s *stream) stopTimersLocked() {
	for i, t := range s.timers {
		if t != nil {
			t.Stop()
			s.timers[i] = nil
		}
	}
}

// informational sends a 1xx answer (103 Early Hints) at once.
func (w *responseWriter) informational(code int) {
	c := w.s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closingLocked() || w.s.ended != nil {
		return
	}
	c.hbuf.Reset()
	c.status(code)
	for k, vv := range w.header {
		for _, v := range vv {
			c.field(lowerKey(k), v)
		}
	}
	c.headersLocked(w.s.id, false)
}

// send writes the header if not yet sent, the buffer, then p; end sends
// END_STREAM (with trailers when there are some).
func (w *responseWriter) send(p []byte, end bool) error {
	c := w.s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	return w.sendLocked(p, end)
}

// sendLocked is send with c.mu held.
func (w *responseWriter) sendLocked(p []byte, end bool) error {
	s := w.s
	c := s.c
	var buffered []byte
	if w.buf != nil {
		buffered = *w.buf
	}
	if err := s.writableLocked(); err != nil {
		w.err = err
		return err
	}
	trailers := end && w.hasTrailers()
	if !w.sentHeader {
		w.sentHeader = true
		noBody := end && len(buffered) == 0 && len(p) == 0 && !trailers
		c.hbuf.Reset()
		w.encodeHeader(end, trailers, buffered)
		c.headersLocked(s.id, noBody)
		if noBody {
			return nil
		}
	}
	endData := end && !trailers
	if err := w.dataLocked(buffered, endData && len(p) == 0); err != nil {
		return err
	}
	if w.buf != nil {
		*w.buf = (*w.buf)[:0]
	}
	if len(p) > 0 {
		if err := w.dataLocked(p, endData); err != nil {
			return err
		}
	}
	if trailers {
		c.hbuf.Reset()
		w.encodeTrailers()
		c.headersLocked(s.id, true)
	}
	return nil
}

func (s *stream) writableLocked() error {
	if s.ended != nil {
		return errStreamClosed
	}
	if s.c.dead != nil || s.c.closing {
		return errConnClosed
	}
	return nil
}

// dataLocked writes p as DATA frames within the send windows, waiting for
// window and for room in the write buffer.
func (w *responseWriter) dataLocked(p []byte, end bool) error {
	s := w.s
	c := s.c
	if len(p) == 0 && !end {
		return nil
	}
	for {
		for {
			if err := s.writableLocked(); err != nil {
				w.err = err
				return err
			}
			if len(p) == 0 || (s.sendWin > 0 && c.connSend > 0 && (w.noWait || len(c.wbuf) < maxPendingWrite)) {
				break
			}
			c.flow.Wait()
		}
		n := len(p)
		n = min(n, c.peerMax, int(s.sendWin), int(c.connSend))
		last := end && n == len(p)
		_ = c.wfr.WriteData(s.id, last, p[:n])
		s.sendWin -= int64(n)
		c.connSend -= int64(n)
		c.queued()
		p = p[n:]
		if len(p) == 0 {
			return nil
		}
	}
}

// status encodes :status, a block's first field: a status in HPACK's
// static table (RFC 7541 Appendix A) is one byte, unless the encoder may owe
// a dynamic table size update, which must open the block (the field cache
// is empty then: onSettings emptied it, so the encoder writes the field).
func (c *conn) status(code int) {
	if !c.tableUpdate {
		if i := staticStatus(code); i != 0 {
			c.hbuf.WriteByte(0x80 | i) // indexed field
			return
		}
	}
	c.tableUpdate = false
	c.field(":status", strconv.Itoa(code))
}

func staticStatus(code int) byte {
	switch code {
	case 200:
		return 8
	case 204:
		return 9
	case 206:
		return 10
	case 304:
		return 11
	case 400:
		return 12
	case 404:
		return 13
	case 500:
		return 14
	}
	return 0
}

// contentLength encodes content-length as a literal field without indexing
// and with the static table's name (index 28): its values vary, so adding
// them to the dynamic table would only push out fields that repeat.
func (c *conn) contentLength(v []byte) {
	if len(v) > 126 {
		c.field("content-length", string(v))
		return
	}
	c.hbuf.WriteByte(0x0f) // literal without indexing, name index 15+13
	c.hbuf.WriteByte(28 - 15)
	c.hbuf.WriteByte(byte(len(v))) // not Huffman-coded
	c.hbuf.Write(v)
}

// field encodes one field; every field the connection sends goes through
// it (the encoder's table and the cache below agree only so).
func (c *conn) field(name, value string) {
	if b := c.fields.lookup(name, value); b != nil {
		c.hbuf.Write(b)
		return
	}
	start := c.hbuf.Len()
	_ = c.henc.WriteField(hpack.HeaderField{Name: name, Value: value})
	c.fields.note(name, value, c.hbuf.Bytes()[start:])
}

// fieldCache holds the encodings of the fields last sent as an index into
// HPACK's tables (RFC 7541 §6.1): the same field sent again while the
// tables have not changed is the same bytes, found without the encoder's
// search of its tables. A field that changed the dynamic table (literal
// with incremental indexing, §6.2.1, or a table size update, §6.3) moved
// every dynamic index: the cache is emptied.
type fieldCache struct {
	e    [8]cachedField
	n    int // entries in use
	next int // the entry the next one replaces when all are in use
}

type cachedField struct {
	name, value string
	enc         [4]byte
	len         uint8
}

func (fc *fieldCache) lookup(name, value string) []byte {
	for i := range fc.e[:fc.n] {
		if e := &fc.e[i]; e.name == name && e.value == value {
			return e.enc[:e.len]
		}
	}
	return nil
}

// note learns how name and value were just encoded (enc).
func (fc *fieldCache) note(name, value string, enc []byte) {
	switch {
	case len(enc) == 0:
	case enc[0]&0x80 != 0: // indexed: the tables did not change
		if len(enc) > len(cachedField{}.enc) {
			return
		}
		i := fc.n
		if i == len(fc.e) {
			i = fc.next
			fc.next = (fc.next + 1) % len(fc.e)
		} else {
			fc.n++
		}
		e := &fc.e[i]
		e.name, e.value = name, value
		e.len = uint8(copy(e.enc[:], enc))
	case enc[0]&0xc0 == 0x40, enc[0]&0xe0 == 0x20: // added to the table, or resized
		fc.n, fc.next = 0, 0
	}
}

// headersLocked writes the block in c.hbuf as HEADERS and CONTINUATION
// frames.
func (c *conn) headersLocked(id uint32, end bool) {
	block := c.hbuf.Bytes()
	first := true
	for first || len(block) > 0 {
		n := min(len(block), c.peerMax)
		frag := block[:n]
		block = block[n:]
		if first {
			_ = c.wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag, EndStream: end, EndHeaders: len(block) == 0})
			first = false
		} else {
			_ = c.wfr.WriteContinuation(id, len(block) == 0, frag)
		}
	}
	c.queued()
}

// connection-specific fields are never sent (RFC 9113 §8.2.2).
func hopField(lower string) bool {
	switch lower {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		return true
	}
	return false
}

// encodeHeader encodes the response header into c.hbuf; done tells that
// the handler has finished and body is the whole body, trailers that
// trailers follow it (hasTrailers, known when done).
func (w *responseWriter) encodeHeader(done, trailers bool, body []byte) {
	c := w.s.c
	c.status(w.status)
	declared := w.declaredTrailers()
	var hasCT, hasCL, hasDate bool
	for k, vv := range w.header {
		if strings.HasPrefix(k, http.TrailerPrefix) || declared != nil && containsFold(declared, k) {
			continue
		}
		l := lowerKey(k)
		if hopField(l) || !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		switch l {
		case "content-type":
			hasCT = true
		case "content-length":
			hasCL = true
			for _, v := range vv {
				if httpguts.ValidHeaderFieldValue(v) {
					c.contentLength([]byte(v))
				}
			}
			continue
		case "date":
			hasDate = true
		case "te":
			continue
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				continue
			}
			c.field(l, v)
		}
	}
	if _, ok := w.header["Content-Type"]; ok {
		hasCT = true // present, even empty or nil: no sniffing (as net/http)
	}
	if _, ok := w.header["Date"]; ok {
		hasDate = true
	}
	if !hasDate {
		c.field("date", c.srv.httpDate())
	}
	if !hasCT && w.bodyAllowed() && len(body) > 0 {
		c.field("content-type", http.DetectContentType(body))
	}
	if done && !hasCL && w.bodyAllowed() && (len(body) > 0 || w.s.req.Method != http.MethodHead) && !trailers {
		var b [20]byte
		c.contentLength(strconv.AppendInt(b[:0], int64(len(body)), 10))
	}
}

func (w *responseWriter) declaredTrailers() []string {
	var out []string
	for _, v := range w.header["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				out = append(out, k)
			}
		}
	}
	return out
}

func containsFold(list []string, k string) bool {
	for _, v := range list {
		if strings.EqualFold(v, k) {
			return true
		}
	}
	return false
}

// hasTrailers: a declared trailer or a TrailerPrefix key has a value.
func (w *responseWriter) hasTrailers() bool {
	for k, vv := range w.header {
		if len(vv) > 0 && strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	for _, k := range w.declaredTrailers() {
		if len(w.header.Values(k)) > 0 {
			return true
		}
	}
	return false
}

func (w *responseWriter) encodeTrailers() {
	c := w.s.c
	for _, k := range w.declaredTrailers() {
		for _, v := range w.header.Values(k) {
			if httpguts.ValidHeaderFieldValue(v) {
				c.field(strings.ToLower(k), v)
			}
		}
	}
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			for _, v := range vv {
				if httpguts.ValidHeaderFieldValue(v) {
					c.field(strings.ToLower(name), v)
				}
			}
		}
	}
}

// finish completes the answer once the handler has returned.
func (w *responseWriter) finish() {
	s := w.s
	c := s.c
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	err := w.err
	if err == nil {
		err = w.send(nil, true)
	}
	c.mu.Lock()
	w.doneLocked(err)
	c.mu.Unlock()
	w.release()
}

// finishNow finishes the answer of ServeImmediate on the read loop when it
// can leave at once: its body fits the send windows and the write buffer
// is not full. It reports false, having done nothing, otherwise.
func (w *responseWriter) finishNow() bool {
	s := w.s
	c := s.c
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n := int64(0)
	if w.buf != nil {
		n = int64(len(*w.buf))
	}
	c.mu.Lock()
	if w.err == nil && (n > s.sendWin || n > c.connSend || len(c.wbuf) >= maxPendingWrite) {
		c.mu.Unlock()
		return false
	}
	err := w.err
	if err == nil {
		w.noWait = true
		err = w.sendLocked(nil, true)
		w.noWait = false
	}
	w.doneLocked(err)
	c.mu.Unlock()
	w.release()
	return true
}

// doneLocked is the bookkeeping of an answer complete (err: how sending
// its end went).
func (w *responseWriter) doneLocked(err error) {
	s := w.s
	c := s.c
	short := err == nil && w.declared >= 0 && w.written < w.declared && s.req.Method != http.MethodHead && w.bodyAllowed()
	if short {
		c.resetLocked(s.id, http2.ErrCodeInternal) // never claim a complete body we did not send
	}
	s.answered = true
	s.stopTimersLocked()
	c.running--
	if c.streams[s.id] == s {
		if !s.remoteDone && s.ended == nil && !c.closingLocked() {
			// RFC 9113 §8.1: the answer is complete, stop the request body.
			_ = c.wfr.WriteRSTStream(s.id, http2.ErrCodeNo)
			c.queued()
			c.noteReset(s.id)
			s.endLocked(errStreamClosed)
		}
		c.removeLocked(s)
	}
}

func (w *responseWriter) release() {
	if w.buf != nil {
		if cap(*w.buf) <= 4*rwBufSize { // one ServeImmediate grew may be large
			*w.buf = (*w.buf)[:0]
			rwBufPool.Put(w.buf)
		}
		w.buf = nil
	}
}

var _ http.Flusher = (*responseWriter)(nil)
