// Package h1 is Portcullis's HTTP/1.1 connection engine: it serves every
// plain and TLS HTTP/1.1 listener of every door, handing each request as an
// *http.Request with an http.ResponseWriter to the door's http.Handler.
//
// Server mirrors the part of net/http's http.Server the doors use (timeouts,
// MaxHeaderBytes, TLSConfig, ConnContext, Serve, Shutdown, Close), and
// differs where a proxy needs it to:
//
//   - The request-head parser is strict. It answers 400 and closes the
//     connection, with a log line, for what makes two parsers read one byte
//     stream differently (request smuggling): Content-Length with
//     Transfer-Encoding, Transfer-Encoding in HTTP/1.0, more than one
//     Content-Length or one that is not a plain decimal, whitespace before a
//     field's colon, obsolete line folding of any field, a CR not followed
//     by LF, controls in field values, two Host fields; 501 for a transfer
//     coding other than chunked, 505 for a version other than 1.x, 417 for
//     an Expect other than 100-continue, 431 (414 within the request line)
//     past MaxHeaderBytes. Chunk lines must end in CRLF, and sizes be at
//     most 16 hexadecimal digits. Lines of the head may end in a bare LF
//     (RFC 9112 §2.2), as net/http reads them.
//   - No buffer is held by an idle connection, and no goroutine beyond the
//     one waiting for it to become readable: the read and write buffers go
//     back to a pool between requests.
//   - Responses to pipelined requests already read are written together.
//
// Bodies (Content-Length, chunked with extensions and trailers), Expect:
// 100-continue (the 100 is sent at the first body read), keep-alive for
// HTTP/1.0 and 1.1, 1xx responses, trailers (declared or with
// http.TrailerPrefix), Flush, Hijack (CONNECT and Upgrade take the
// connection over) and http.NewResponseController's deadlines work as with
// net/http. A request's context ends when the handler returns or the client
// goes away.
//
// On a TLS listener, a connection that negotiates "h2" by ALPN is handed to
// Server.H2 (HTTP2 adapts Go's HTTP/2 server).
package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/park"
)

// Server serves HTTP/1.1 on the listeners given to Serve. Set its fields
// before the first Serve; it must not be copied after.
type Server struct {
	// Handler answers every request.
	Handler http.Handler
	// ReadHeaderTimeout bounds the reading of a request head, from its first
	// byte (from the accept for a connection's first request), and the TLS
	// handshake. Zero: no bound.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds the reading of a whole request, body included,
	// from its first byte. Zero: no bound (handlers set body deadlines with
	// http.NewResponseController).
	ReadTimeout time.Duration
	// WriteTimeout bounds the writing of a response, from the end of its
	// request's head. Zero: no bound.
	WriteTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept
	// connection (ReadTimeout when zero; no bound when both are).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request head (http.DefaultMaxHeaderBytes when
	// zero); past it the request is answered 431, or 414 within its request
	// line.
	MaxHeaderBytes int
	// TLSConfig, when set, makes Serve terminate TLS on every connection.
	TLSConfig *tls.Config
	// ConnContext, when set, derives each connection's context (which every
	// request's context derives from) from the server's.
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// H2 serves a TLS connection that negotiated "h2" (nil: such
	// connections are closed). Its context carries the connection's values
	// and ends when the server shuts down: H2 should then finish the
	// streams in flight and return. The server closes c when Shutdown's
	// context ends, and Close closes it at once.
	H2 func(ctx context.Context, c *tls.Conn)
	// Log receives one line per refused request, at Info, and handler
	// panics, at Error. Nil: nothing is logged.
	Log *slog.Logger

	mu      sync.Mutex
	lns     map[net.Listener]struct{}
	conns   map[*conn]struct{}
	hijack  map[*conn]struct{} // hijacked, their handler not returned yet
	wg      sync.WaitGroup     // connections
	closing atomic.Bool
	dates   dateCache
	rpool   sync.Pool // *bufio.Reader
	wpool   sync.Pool // *wbuf
	parker  park.Set  // idle connections (no goroutine waits for them)
}

// Serve accepts connections on ln and serves each on a goroutine of its
// own, until ln fails or the server shuts down; then it returns
// http.ErrServerClosed. ln should come from internal/accept, whose Accept
// retries temporary errors (EMFILE and the like) with back-off: any error
// Accept returns ends Serve.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	if s.lns == nil {
		s.lns = map[net.Listener]struct{}{}
		s.conns = map[*conn]struct{}{}
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()
	for {
		rwc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			return err
		}
		c := s.newConn(rwc)
		if !s.track(c) {
			rwc.Close()
			return http.ErrServerClosed
		}
		go c.serve()
	}
}

// track adds c to the connections Shutdown waits for; false once the
// server is shutting down.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

// forget removes c: its goroutine is done with it (closed, or hijacked:
// then it stays in s.hijack until its handler returns, for Close).
func (s *Server) forget(c *conn, hijacked bool) {
	s.mu.Lock()
	delete(s.conns, c)
	if hijacked {
		if s.hijack == nil {
			s.hijack = map[*conn]struct{}{}
		}
		s.hijack[c] = struct{}{}
	}
	s.mu.Unlock()
	s.wg.Done()
}

// handlerDone ends the tracking of a hijacked connection.
func (s *Server) handlerDone(c *conn) {
	s.mu.Lock()
	delete(s.hijack, c)
	s.mu.Unlock()
}

// Shutdown stops accepting, closes idle connections, tells HTTP/2
// connections to finish, and waits for the requests in flight (each
// connection closes after its response). When ctx ends first, it closes
// the connections left and returns ctx's error. Hijacked connections are
// not the server's any more.
func (s *Server) Shutdown(ctx context.Context) error {
	s.StartShutdown()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.closeConns()
	<-done
	return ctx.Err()
}

// StartShutdown is Shutdown without the wait: when it returns, the server
// accepts nothing more, its idle connections are closed, every response
// not begun yet carries Connection: close and ends its connection, and
// HTTP/2 connections were told to finish. A Shutdown afterwards waits for
// them (and cuts them when its context ends).
func (s *Server) StartShutdown() {
	s.mu.Lock()
	s.closing.Store(true)
	for ln := range s.lns {
		ln.Close()
	}
	var parked []*conn
	for c := range s.conns {
		if c.shutdown() {
			parked = append(parked, c)
		}
	}
	s.mu.Unlock()
	for _, c := range parked {
		c.end(nil)
	}
}

// Close closes the listeners and every connection at once, hijacked ones
// whose handler has not returned included.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing.Store(true)
	for ln := range s.lns {
		ln.Close()
	}
	for c := range s.hijack {
		c.rwc.Close()
	}
	s.mu.Unlock()
	s.closeConns()
	return nil
}

func (s *Server) closeConns() {
	s.mu.Lock()
	var parked []*conn
	for c := range s.conns {
		if c.state.CompareAndSwap(stateParked, stateClosed) && s.parker.Take(&c.spot) {
			parked = append(parked, c)
		}
		c.rwc.Close()
	}
	s.mu.Unlock()
	for _, c := range parked {
		c.end(nil)
	}
}

func (s *Server) logger() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func (s *Server) maxHeaderBytes() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes
	}
	return http.DefaultMaxHeaderBytes
}

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return s.ReadTimeout
}

// bufSize is the size of the pooled read and write buffers.
const bufSize = 4 << 10

func (s *Server) getReader(c *connReader) *bufio.Reader {
	if br, ok := s.rpool.Get().(*bufio.Reader); ok {
		br.Reset(c)
		return br
	}
	return bufio.NewReaderSize(c, bufSize)
}

func (s *Server) putReader(br *bufio.Reader) {
	br.Reset(nil)
	s.rpool.Put(br)
}

// wbuf is a connection's write side while it writes: the buffered writer,
// the body held before a response is framed, and scratch for header keys.
type wbuf struct {
	bw   *bufio.Writer
	pend []byte
	keys []string
}

func (s *Server) getWriter(w io.Writer) *wbuf {
	if b, ok := s.wpool.Get().(*wbuf); ok {
		b.bw.Reset(w)
		return b
	}
	return &wbuf{bw: bufio.NewWriterSize(w, bufSize), pend: make([]byte, 0, bufSize)}
}

func (s *Server) putWriter(b *wbuf) {
	b.bw.Reset(nil)
	b.pend = b.pend[:0]
	clear(b.keys)
	b.keys = b.keys[:0]
	s.wpool.Put(b)
}

// dateCache is the Date field of the current second.
type dateCache struct{ p atomic.Pointer[dateValue] }

type dateValue struct {
	sec int64
	b   []byte
}

func (d *dateCache) get(now time.Time) []byte {
	sec := now.Unix()
	if v := d.p.Load(); v != nil && v.sec == sec {
		return v.b
	}
	v := &dateValue{sec: sec, b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	d.p.Store(v)
	return v.b
}

// errHijacked is returned by writes after Hijack.
var errHijacked = errors.New("h1: connection hijacked")
