package h2

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// conn is one HTTP/2 connection. The read loop (serve) owns the framer it
// reads with and the header decoder; everything else is guarded by mu.
type conn struct {
	srv        *Server
	nc         net.Conn
	br         *bufio.Reader
	fr         *http2.Framer // reading
	hdec       *hpack.Decoder
	tlsState   *tls.ConnectionState
	remoteAddr string
	ctx        context.Context // streams' contexts' parent: never cancelled
	handlers   sync.WaitGroup

	// header block being read (read loop only)
	hb headerBlock

	mu       sync.Mutex
	flow     sync.Cond // handlers waiting for send window or buffer room
	wcond    sync.Cond // the writer waiting for frames
	streams  map[uint32]*stream
	maxID    uint32 // highest client stream id seen
	running  int    // handlers running, reset streams included
	goAway   bool   // GOAWAY sent
	finish   bool   // the read loop must end (drain finished, idle, abort)
	aborted  bool   // abort ended it: no linger
	closing  bool   // the writer flushes what is left and stops
	writing  bool   // the writer is writing what it took from wbuf
	dead     error  // the connection can no longer write
	connSend int64  // connection send window
	peerInit int64  // peer's SETTINGS_INITIAL_WINDOW_SIZE
	peerMax  int    // peer's SETTINGS_MAX_FRAME_SIZE
	connRecv int64  // connection receive window left
	connAck  int64  // connection credit consumed, not yet returned
	glitches float64
	glitchAt time.Time
	idle     *time.Timer
	resets   [32]uint32 // streams recently reset by us: their late frames are ignored
	nresets  int

	wbuf        []byte
	wfr         *http2.Framer // writing into wbuf
	henc        *hpack.Encoder
	hbuf        bytes.Buffer
	tableUpdate bool // the encoder may owe a table size update, which must open the next block
	fields      fieldCache
	holdWrites  bool // the read loop has whole frames to act on: queued does not wake the writer
}

type bufWriter struct{ c *conn }

func (w bufWriter) Write(p []byte) (int, error) {
	w.c.wbuf = append(w.c.wbuf, p...)
	return len(p), nil
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, nc: nc, remoteAddr: nc.RemoteAddr().String(),
		streams: make(map[uint32]*stream), connSend: 65535, peerInit: 65535, peerMax: 16384,
		connRecv: defaultConnWindow, glitches: float64(s.maxGlitches()), glitchAt: time.Now()}
	c.flow.L = &c.mu
	c.wcond.L = &c.mu
	if cs, ok := nc.(interface{ ConnectionState() tls.ConnectionState }); ok {
		st := cs.ConnectionState()
		c.tlsState = &st
	}
	c.br = bufio.NewReaderSize(nc, 16<<10)
	c.fr = http2.NewFramer(nil, c.br)
	c.fr.SetMaxReadFrameSize(maxFrameSize)
	c.hdec = hpack.NewDecoder(4096, c.hb.emit)
	c.hdec.SetMaxStringLength(int(s.maxHeaderList()))
	c.wfr = http2.NewFramer(bufWriter{c}, nil)
	c.henc = hpack.NewEncoder(&c.hbuf)
	return c
}

// connError ends the connection with GOAWAY code.
type connError struct {
	code   http2.ErrCode
	reason string
}

func (e connError) Error() string {
	return fmt.Sprintf("h2: connection error %v: %s", e.code, e.reason)
}

func (c *conn) serve(ctx context.Context) error {
	// Streams' contexts are children of ctx's values without its
	// cancellation, and not of a cancellable context of the connection: a
	// stream's WithCancel then registers with no parent (no map insert and
	// delete under a lock that all the connection's streams share). Every
	// stream whose handler still runs is in c.streams or was ended already,
	// and failStreamsLocked cancels the former when the connection ends.
	c.ctx = context.WithoutCancel(ctx)
	stop := context.AfterFunc(ctx, c.drain)
	defer stop()
	wdone := make(chan struct{})
	go func() { defer close(wdone); c.writeLoop() }()

	c.mu.Lock()
	settings := []http2.Setting{
		{ID: http2.SettingMaxConcurrentStreams, Val: c.srv.maxStreams()},
		{ID: http2.SettingInitialWindowSize, Val: defaultStreamWindow},
		{ID: http2.SettingMaxHeaderListSize, Val: c.srv.maxHeaderList()},
	}
	_ = c.wfr.WriteSettings(settings...)
	_ = c.wfr.WriteWindowUpdate(0, defaultConnWindow-65535)
	c.wcond.Signal()
	if c.srv.IdleTimeout > 0 {
		c.idle = time.AfterFunc(c.srv.IdleTimeout, c.idleFired)
	}
	c.mu.Unlock()

	err := c.readLoop()
	var ce connError
	if errors.As(err, &ce) {
		if c.srv.Log != nil {
			c.srv.Log.Info("h2: connection error", "remote", c.remoteAddr, "code", ce.code.String(), "reason", ce.reason)
		}
	}

	c.mu.Lock()
	if errors.As(err, &ce) && !c.closingLocked() {
		_ = c.wfr.WriteGoAway(c.maxID, ce.code, nil)
		c.goAway = true
	}
	c.closing = true
	if c.idle != nil {
		c.idle.Stop()
	}
	finished := c.finish
	drained := finished && !c.aborted && err == nil
	cause := err
	if cause == nil || finished {
		cause = errConnClosed
	}
	c.failStreamsLocked(cause)
	c.wcond.Signal()
	c.mu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	<-wdone
	c.mu.Lock()
	drained = drained && c.dead == errConnClosed // the writer wrote everything
	c.mu.Unlock()
	if drained {
		c.linger()
	}
	c.nc.Close()
	c.handlers.Wait()
	if finished || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// lingerTimeout is how long a drained connection waits for its client's
// next bytes, or its close, before it closes (linger).
const lingerTimeout = time.Second

// linger ends a drained connection without resetting it. A socket closed
// with bytes it has not read is reset (RST), and the kernel then drops what
// it had still to send, the end of the last answers; a client that reads
// them sends WINDOW_UPDATEs meanwhile. So it tells the client the
// connection is done (TLS close_notify, or FIN, where c can close its
// writing side), then reads and drops what the client sends until the
// client closes, sends nothing for lingerTimeout, or an abort (Shutdown's
// end) cuts it.
func (c *conn) linger() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	for {
		c.mu.Lock()
		if c.aborted {
			c.mu.Unlock()
			return
		}
		_ = c.nc.SetReadDeadline(time.Now().Add(lingerTimeout)) // under c.mu: abort's deadline comes after
		c.mu.Unlock()
		if _, err := c.br.ReadByte(); err != nil {
			return
		}
		_, _ = c.br.Discard(c.br.Buffered())
	}
}

var (
	errConnClosed   = errors.New("h2: connection closed")
	errStreamReset  = errors.New("h2: stream reset")
	errStreamClosed = errors.New("h2: stream closed")
	errBodyClosed   = errors.New("h2: request body closed")
)

func (c *conn) closingLocked() bool { return c.closing || c.dead != nil }

// abort ends the connection at once.
func (c *conn) abort() {
	c.mu.Lock()
	c.finish = true
	c.aborted = true
	c.mu.Unlock()
	_ = c.nc.SetReadDeadline(time.Now())
}

// drain sends GOAWAY (NO_ERROR) and ends the connection once its streams
// are done.
func (c *conn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.goAwayLocked()
}

func (c *conn) goAwayLocked() {
	if !c.goAway && !c.closingLocked() {
		c.goAway = true
		_ = c.wfr.WriteGoAway(c.maxID, http2.ErrCodeNo, nil)
		c.wcond.Signal()
	}
	c.maybeFinishLocked()
}

// maybeFinishLocked ends the read loop when a GOAWAY was sent, no stream
// is left and everything queued has been written: a drained connection
// closes once the client has the end of its last answers (the second the
// closing connection gives its writes is not for them; an abort, or
// Shutdown's end, cuts a client that does not take them).
func (c *conn) maybeFinishLocked() {
	if c.goAway && len(c.streams) == 0 && !c.finish && len(c.wbuf) == 0 && !c.writing {
		c.finish = true
		_ = c.nc.SetReadDeadline(time.Now())
	}
}

func (c *conn) idleFired() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.streams) == 0 {
		c.goAwayLocked()
	}
}

// failStreamsLocked ends every stream: their handlers see err.
func (c *conn) failStreamsLocked(err error) {
	for id, s := range c.streams {
		s.endLocked(err)
		delete(c.streams, id)
	}
	c.flow.Broadcast()
}

// writeLoop writes what the other goroutines queued in wbuf, everything
// ready in one write, until the connection closes.
func (c *conn) writeLoop() {
	var out []byte
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for len(c.wbuf) == 0 && !c.closing {
			c.wcond.Wait()
		}
		if len(c.wbuf) == 0 || c.dead != nil {
			if c.dead == nil {
				c.dead = errConnClosed
			}
			c.flow.Broadcast()
			return
		}
		if c.running > 0 && len(c.wbuf) < maxPendingWrite {
			// Handlers are answering: let them queue their frames too, so
			// that one write carries many answers.
			c.mu.Unlock()
			runtime.Gosched()
			c.mu.Lock()
		}
		out, c.wbuf = c.wbuf, out[:0]
		c.writing = true
		c.mu.Unlock()
		if d := c.srv.WriteTimeout; d > 0 {
			_ = c.nc.SetWriteDeadline(time.Now().Add(d))
		}
		_, err := c.nc.Write(out)
		c.mu.Lock()
		c.writing = false
		if err != nil {
			c.dead = err
			c.wbuf = c.wbuf[:0]
			c.failStreamsLocked(errConnClosed)
			c.finish = true
			_ = c.nc.SetReadDeadline(time.Now())
			return
		}
		c.flow.Broadcast()
		c.maybeFinishLocked()
	}
}

// queued notes that frames were added to wbuf: the writer is woken, unless
// the read loop holds the writes back (it will wake the writer itself).
func (c *conn) queued() {
	if !c.holdWrites {
		c.wcond.Signal()
	}
}

// frameBuffered reports whether a whole frame is in the read buffer, so
// that reading it will not wait for the network.
func (c *conn) frameBuffered() bool {
	n := c.br.Buffered()
	if n < 9 {
		return false
	}
	h, err := c.br.Peek(3)
	if err != nil {
		return false
	}
	return n >= 9+(int(h[0])<<16|int(h[1])<<8|int(h[2]))
}

// holdBack sets whether the read loop holds the writer back: while it has
// whole frames left to act on, the answers and acknowledgements they cause
// (an ImmediateHandler's answers, SETTINGS and PING acks, WINDOW_UPDATEs)
// gather in wbuf and leave in one write once it has acted on all of them.
func (c *conn) holdBack(hold bool) {
	c.mu.Lock()
	c.holdWrites = hold
	if !hold && len(c.wbuf) > 0 {
		c.wcond.Signal()
	}
	c.mu.Unlock()
}

// glitch takes n from the connection's budget of suspicious frames and
// reports whether some is left.
func (c *conn) glitch(n float64) bool {
	now := time.Now()
	max := float64(c.srv.maxGlitches())
	c.glitches += now.Sub(c.glitchAt).Seconds() * max / 10
	if c.glitches > max {
		c.glitches = max
	}
	c.glitchAt = now
	c.glitches -= n
	return c.glitches >= 0
}

var errCalm = connError{http2.ErrCodeEnhanceYourCalm, "too many suspicious frames"}

func (c *conn) readLoop() error {
	_ = c.nc.SetReadDeadline(time.Now().Add(defaultPrefaceTimeout))
	var pre [len(clientPreface)]byte
	if _, err := io.ReadFull(c.br, pre[:]); err != nil {
		return err
	}
	if string(pre[:]) != clientPreface {
		return connError{http2.ErrCodeProtocol, "bad connection preface"}
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	c.mu.Lock()
	fin := c.finish // a drain finished during the preface: its deadline was just cleared
	c.mu.Unlock()
	if fin {
		return nil
	}
	first := true
	holding := false
	defer func() {
		if holding {
			c.holdBack(false)
		}
	}()
	for {
		if buffered := c.frameBuffered(); buffered != holding {
			c.holdBack(buffered)
			holding = buffered
		}
		f, err := c.fr.ReadFrame()
		if err != nil {
			// A stream error is found by errors.As only here: a variable
			// whose address errors.As takes is allocated, once a frame when
			// it was done for every frame read.
			if se, ok := asStreamError(err); ok {
				if err := c.streamError(se); err != nil {
					return err
				}
				continue
			}
			c.mu.Lock()
			fin := c.finish
			c.mu.Unlock()
			if fin {
				return nil
			}
			return c.readError(err)
		}
		if first {
			if _, ok := f.(*http2.SettingsFrame); !ok {
				return connError{http2.ErrCodeProtocol, "first frame is not SETTINGS"}
			}
			first = false
		}
		if err := c.processFrame(f); err != nil {
			return err
		}
	}
}

func asStreamError(err error) (http2.StreamError, bool) {
	var se http2.StreamError
	ok := errors.As(err, &se)
	return se, ok
}

func (c *conn) readError(err error) error {
	if errors.Is(err, http2.ErrFrameTooLarge) {
		return connError{http2.ErrCodeFrameSize, "frame larger than SETTINGS_MAX_FRAME_SIZE"}
	}
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		reason := "framing"
		if d := c.fr.ErrorDetail(); d != nil {
			reason = d.Error()
		}
		return connError{http2.ErrCode(ce), reason}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	return err
}

// streamError answers a frame the framer found wrong for one stream.
func (c *conn) streamError(se http2.StreamError) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if se.StreamID > c.maxID {
		return connError{http2.ErrCodeProtocol, "error on an idle stream"}
	}
	c.resetLocked(se.StreamID, se.Code)
	return nil
}

func (c *conn) processFrame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.DataFrame:
		return c.onData(f)
	case *http2.HeadersFrame:
		return c.onHeaders(f)
	case *http2.ContinuationFrame:
		return c.onContinuation(f)
	case *http2.SettingsFrame:
		return c.onSettings(f)
	case *http2.PingFrame:
		return c.onPing(f)
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f)
	case *http2.RSTStreamFrame:
		return c.onReset(f)
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			c.mu.Lock()
			c.resetLocked(f.StreamID, http2.ErrCodeProtocol)
			c.mu.Unlock()
		}
		return nil
	case *http2.GoAwayFrame:
		c.mu.Lock()
		c.goAwayLocked()
		c.mu.Unlock()
		return nil
	case *http2.PushPromiseFrame:
		return connError{http2.ErrCodeProtocol, "PUSH_PROMISE from a client"}
	}
	return nil // unknown frame types are ignored
}

func (c *conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.glitch(1) {
		return errCalm
	}
	if f.NumSettings() > 100 || f.HasDuplicates() {
		// RFC 9113 §6.5.3 would apply the values in order; a sender of
		// several values for one setting (INITIAL_WINDOW_SIZE twice, say)
		// is refused, as HAProxy and Go's server do.
		return connError{http2.ErrCodeProtocol, "SETTINGS with duplicate or too many entries"}
	}
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			var ce http2.ConnectionError
			errors.As(err, &ce)
			return connError{http2.ErrCode(ce), "invalid " + s.ID.String()}
		}
		switch s.ID {
		case http2.SettingHeaderTableSize:
			c.henc.SetMaxDynamicTableSizeLimit(s.Val)
			c.tableUpdate = true
			c.fields.n = 0
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - c.peerInit
			c.peerInit = int64(s.Val)
			for _, st := range c.streams {
				st.sendWin += delta
				if st.sendWin > 1<<31-1 {
					return connError{http2.ErrCodeFlowControl, "INITIAL_WINDOW_SIZE overflows a stream window"}
				}
			}
		case http2.SettingMaxFrameSize:
			c.peerMax = int(s.Val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	_ = c.wfr.WriteSettingsAck()
	c.queued()
	c.flow.Broadcast()
	return c.controlBacklog()
}

// controlBacklog refuses a client that sends frames needing an answer
// (PING, SETTINGS) faster than it reads the answers.
func (c *conn) controlBacklog() error {
	if len(c.wbuf) > maxPendingControl {
		return errCalm
	}
	return nil
}

func (c *conn) onPing(f *http2.PingFrame) error {
	if f.IsAck() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.glitch(1) {
		return errCalm
	}
	_ = c.wfr.WritePing(true, f.Data)
	c.queued()
	return c.controlBacklog()
}

func (c *conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID == 0 {
		c.connSend += int64(f.Increment)
		if c.connSend > 1<<31-1 {
			return connError{http2.ErrCodeFlowControl, "connection window above 2^31-1"}
		}
		c.flow.Broadcast()
		return nil
	}
	if f.StreamID > c.maxID {
		return connError{http2.ErrCodeProtocol, "WINDOW_UPDATE on an idle stream"}
	}
	s := c.streams[f.StreamID]
	if s == nil {
		return nil
	}
	s.sendWin += int64(f.Increment)
	if s.sendWin > 1<<31-1 {
		c.resetLocked(s.id, http2.ErrCodeFlowControl)
		return nil
	}
	c.flow.Broadcast()
	return nil
}

func (c *conn) onReset(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID > c.maxID {
		return connError{http2.ErrCodeProtocol, "RST_STREAM on an idle stream"}
	}
	s := c.streams[f.StreamID]
	if s == nil {
		return nil
	}
	// A stream reset before its answer is what a rapid-reset attack
	// (CVE-2023-44487) is made of.
	if !s.answered && !c.glitch(1) {
		return errCalm
	}
	s.endLocked(errStreamReset)
	c.removeLocked(s)
	return nil
}

// resetLocked sends RST_STREAM for id and ends the stream if it is open.
func (c *conn) resetLocked(id uint32, code http2.ErrCode) {
	if !c.closingLocked() {
		_ = c.wfr.WriteRSTStream(id, code)
		c.queued()
	}
	c.noteReset(id)
	if s := c.streams[id]; s != nil {
		s.endLocked(http2.StreamError{StreamID: id, Code: code})
		c.removeLocked(s)
	}
}

func (c *conn) noteReset(id uint32) {
	c.resets[c.nresets%len(c.resets)] = id
	c.nresets++
}

// wasReset: id was reset by us recently (RFC 9113 §5.1: late frames for
// it are ignored).
func (c *conn) wasReset(id uint32) bool {
	for _, r := range c.resets {
		if r == id {
			return true
		}
	}
	return false
}

// removeLocked forgets s: its unread body goes back to the connection
// window.
func (c *conn) removeLocked(s *stream) {
	if c.streams[s.id] != s {
		return
	}
	delete(c.streams, s.id)
	c.creditLocked(nil, int64(len(s.body)-s.off))
	s.body, s.off = nil, 0
	c.flow.Broadcast()
	if len(c.streams) == 0 {
		if c.idle != nil {
			c.idle.Reset(c.srv.IdleTimeout)
		}
		c.maybeFinishLocked()
	}
}

// creditLocked returns n bytes of receive window to the connection and,
// when s is not nil and still receiving, to s; WINDOW_UPDATEs are sent once
// half a window is owed.
func (c *conn) creditLocked(s *stream, n int64) {
	if n <= 0 {
		return
	}
	c.connAck += n
	if c.connAck >= defaultConnWindow/2 && !c.closingLocked() {
		_ = c.wfr.WriteWindowUpdate(0, uint32(c.connAck))
		c.connRecv += c.connAck
		c.connAck = 0
		c.queued()
	}
	if s != nil && !s.remoteDone {
		s.recvAck += n
		if s.recvAck >= defaultStreamWindow/2 && !c.closingLocked() {
			_ = c.wfr.WriteWindowUpdate(s.id, uint32(s.recvAck))
			s.recvWin += s.recvAck
			s.recvAck = 0
			c.queued()
		}
	}
}

func (c *conn) onData(f *http2.DataFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, n := f.StreamID, int64(f.Length)
	if n > c.connRecv {
		return connError{http2.ErrCodeFlowControl, "DATA beyond the connection window"}
	}
	c.connRecv -= n
	s := c.streams[id]
	if s == nil || s.remoteDone {
		if id > c.maxID {
			return connError{http2.ErrCodeProtocol, "DATA on an idle stream"}
		}
		c.creditLocked(nil, n)
		if s == nil && c.wasReset(id) {
			return nil
		}
		c.resetLocked(id, http2.ErrCodeStreamClosed)
		return nil
	}
	if n > s.recvWin {
		c.creditLocked(nil, n)
		c.resetLocked(id, http2.ErrCodeFlowControl)
		return nil
	}
	s.recvWin -= n
	data := f.Data()
	if len(data) == 0 && !f.StreamEnded() && !c.glitch(1) {
		return errCalm
	}
	c.creditLocked(s, n-int64(len(data))) // padding
	s.got += int64(len(data))
	if s.declared >= 0 && s.got > s.declared {
		c.creditLocked(nil, int64(len(data)))
		c.resetLocked(id, http2.ErrCodeProtocol)
		return nil
	}
	if s.bodyClosed {
		c.creditLocked(s, int64(len(data)))
	} else if len(data) > 0 {
		if s.off == len(s.body) {
			s.body, s.off = s.body[:0], 0
		}
		s.body = append(s.body, data...)
		s.bodyCond.Signal()
	}
	if f.StreamEnded() {
		return c.endRemoteLocked(s)
	}
	return nil
}

// endRemoteLocked marks the request body complete (END_STREAM received).
func (c *conn) endRemoteLocked(s *stream) error {
	if s.declared >= 0 && s.got != s.declared {
		c.resetLocked(s.id, http2.ErrCodeProtocol)
		return nil
	}
	s.remoteDone = true
	if s.bodyErr == nil {
		s.bodyErr = io.EOF
	}
	s.bodyCond.Broadcast()
	if s.answered {
		c.removeLocked(s)
	}
	return nil
}

func (c *conn) onHeaders(f *http2.HeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 {
		return connError{http2.ErrCodeProtocol, "HEADERS on an even stream"}
	}
	c.hb.reset(c.srv.maxHeaderList())
	c.hb.id = id
	c.hb.endStream = f.StreamEnded()
	c.hb.selfDep = f.HasPriority() && f.Priority.StreamDep == id
	return c.headerFragment(f.HeaderBlockFragment(), f.HeadersEnded())
}

func (c *conn) onContinuation(f *http2.ContinuationFrame) error {
	frag := f.HeaderBlockFragment()
	if len(frag) == 0 && !f.HeadersEnded() {
		c.mu.Lock()
		ok := c.glitch(1)
		c.mu.Unlock()
		if !ok {
			return errCalm
		}
	}
	return c.headerFragment(frag, f.HeadersEnded())
}

func (c *conn) headerFragment(frag []byte, end bool) error {
	c.hb.wire += len(frag)
	if c.hb.wire > 2*int(c.srv.maxHeaderList())+maxFrameSize {
		return connError{http2.ErrCodeEnhanceYourCalm, "header block far larger than SETTINGS_MAX_HEADER_LIST_SIZE"}
	}
	if _, err := c.hdec.Write(frag); err != nil {
		return connError{http2.ErrCodeCompression, err.Error()}
	}
	if !end {
		return nil
	}
	if err := c.hdec.Close(); err != nil {
		return connError{http2.ErrCodeCompression, err.Error()}
	}
	s, ih, err := c.headersDone()
	if s != nil {
		s.runImmediate(ih)
	}
	return err
}

// headersDone acts on a complete header block: a new request, or trailers.
// A new stream whose request has no body, for a handler that may answer at
// once, is returned with that handler, for the read loop to offer it the
// stream once c.mu is released; any other new stream is dispatched here.
func (c *conn) headersDone() (*stream, ImmediateHandler, error) {
	s, err := c.headersDoneLocked()
	if s == nil || err != nil {
		return nil, nil, err
	}
	if ih, ok := c.srv.Handler.(ImmediateHandler); ok && c.hb.endStream {
		return s, ih, nil
	}
	c.srv.dispatch(s)
	return nil, nil, nil
}

// headersDoneLocked takes c.mu and does headersDone's work but the
// dispatch; it returns the stream started, if any.
func (c *conn) headersDoneLocked() (*stream, error) {
	hb := &c.hb
	id := hb.id
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.streams[id]; s != nil {
		return nil, c.trailersLocked(s)
	}
	if id <= c.maxID {
		if c.wasReset(id) {
			return nil, nil
		}
		return nil, connError{http2.ErrCodeStreamClosed, "HEADERS on a closed stream"}
	}
	c.maxID = id
	if c.goAway || c.closingLocked() {
		return nil, nil // after GOAWAY: not served
	}
	if hb.selfDep {
		c.resetLocked(id, http2.ErrCodeProtocol)
		return nil, nil
	}
	if hb.invalid != "" {
		c.resetLocked(id, http2.ErrCodeProtocol)
		return nil, nil
	}
	if uint32(len(c.streams)) >= c.srv.maxStreams() || c.running >= 2*int(c.srv.maxStreams()) {
		if !c.glitch(1) {
			return nil, errCalm
		}
		c.resetLocked(id, http2.ErrCodeRefusedStream)
		return nil, nil
	}
	if hb.tooLarge {
		c.writeStatusLocked(id, http.StatusRequestHeaderFieldsTooLarge, hb.endStream)
		return nil, nil
	}
	s, err := c.newStream(hb)
	if err != nil {
		c.resetLocked(id, http2.ErrCodeProtocol)
		return nil, nil
	}
	if c.idle != nil && len(c.streams) == 0 {
		c.idle.Stop() // armed only while the connection has no stream
	}
	c.streams[id] = s
	c.running++
	c.handlers.Add(1)
	return s, nil
}

// writeStatusLocked answers a stream with a bare status, no handler.
func (c *conn) writeStatusLocked(id uint32, status int, requestEnded bool) {
	c.hbuf.Reset()
	c.status(status)
	_ = c.wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndStream: true, EndHeaders: true})
	if !requestEnded {
		_ = c.wfr.WriteRSTStream(id, http2.ErrCodeNo)
		c.noteReset(id)
	}
	c.queued()
}

func (c *conn) trailersLocked(s *stream) error {
	hb := &c.hb
	if s.remoteDone {
		c.resetLocked(s.id, http2.ErrCodeStreamClosed)
		return nil
	}
	if !hb.endStream || hb.invalid != "" || hb.npseudo > 0 || hb.tooLarge {
		c.resetLocked(s.id, http2.ErrCodeProtocol)
		return nil
	}
	for _, f := range hb.fields {
		k := canonicalKey(f.Name)
		if !httpguts.ValidTrailerHeader(k) {
			c.resetLocked(s.id, http2.ErrCodeProtocol)
			return nil
		}
		if s.req.Trailer != nil { // as Go's server: kept only when declared
			s.req.Trailer[k] = append(s.req.Trailer[k], f.Value)
		}
	}
	return c.endRemoteLocked(s)
}
