//go:build unix

// Package sockio reads and writes TCP sockets with raw system calls inside
// syscall.RawConn's callbacks, for the serving core's hot paths (internal/h1,
// internal/upstream). The sockets are non-blocking, so a call never waits in
// the kernel, and it need not tell the Go scheduler it enters a system call:
// a call made the usual way that takes over 20 µs (a loopback write runs the
// receiver's processing too, and a loaded machine makes that common) lets the
// runtime's monitor hand the processor to another thread and wake it back,
// futex and nanosleep calls on every few requests. Waits for readiness and
// deadlines stay the poller's, through RawConn.
package sockio

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// Conn reads and writes a TCP socket with raw system calls inside RawConn's
// callbacks. Its zero value is unusable; call Init. A Read and a Write may
// run at once (a handler's goroutine writing while another reads the
// request body); two Reads or two Writes may not.
type Conn struct {
	raw      syscall.RawConn
	c        net.Conn     // for error addresses
	r        op           // the read in progress; a read and a write may run at once
	w        op           // the write in progress
	first    func() error // ReadAfter's: run once inside the read's callback
	firstErr error
	readFn   func(fd uintptr) bool
	writeFn  func(fd uintptr) bool
}

// op is one read's or write's buffer, progress and system error.
type op struct {
	p   []byte
	n   int
	err error
}

// Raw returns c's socket when c is a bare *net.TCPConn, else nil: a
// wrapper may hold bytes the kernel does not see, so the callers unwrap what
// they know to be transparent before asking.
func Raw(c net.Conn) syscall.RawConn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// Init makes s read and write raw, the socket of c (errors name c's
// addresses).
func (s *Conn) Init(raw syscall.RawConn, c net.Conn) {
	s.raw, s.c = raw, c
	s.readFn, s.writeFn = s.read, s.write
}

// Read implements io.Reader.
func (s *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.r = op{p: p}
	err := s.raw.Read(s.readFn)
	s.r.p = nil
	switch {
	case err != nil:
		return 0, s.opError("read", err)
	case s.r.err != nil:
		return 0, s.opError("read", os.NewSyscallError("read", s.r.err))
	case s.r.n == 0:
		return 0, io.EOF
	}
	return s.r.n, nil
}

// ReadAfter is Read that first runs first inside RawConn.Read's callback,
// after the runtime forgot the socket's earlier readiness, then waits for
// readiness and reads: a request written by first is answered by a read
// that does not find nothing first, and an answer that comes at once is not
// missed. An error of first is returned as it is, nothing read.
func (s *Conn) ReadAfter(p []byte, first func() error) (int, error) {
	s.first, s.firstErr = first, nil
	n, err := s.Read(p)
	s.first = nil
	if s.firstErr != nil {
		return 0, s.firstErr
	}
	return n, err
}

func (s *Conn) read(fd uintptr) bool {
	if f := s.first; f != nil {
		s.first = nil
		if s.firstErr = f(); s.firstErr != nil {
			return true
		}
		return false // wait for readiness
	}
	for {
		n, e := sysRead(fd, s.r.p)
		switch e {
		case nil:
			s.r.n = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		s.r.err = e
		return true
	}
}

// opError is err as net.Conn's Read and Write report it: a *net.OpError
// naming op and the connection's addresses. RawConn's own errors (a
// deadline, a closed connection) come as a *net.OpError of op "raw-read" or
// "raw-write", whose cause is taken so that nothing is wrapped twice.
func (s *Conn) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: s.c.LocalAddr(), Addr: s.c.RemoteAddr(), Err: err}
}

// Write implements io.Writer.
func (s *Conn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.w = op{p: p}
	err := s.raw.Write(s.writeFn)
	s.w.p = nil
	switch {
	case err != nil:
		return s.w.n, s.opError("write", err)
	case s.w.err != nil:
		return s.w.n, s.opError("write", os.NewSyscallError("write", s.w.err))
	}
	return s.w.n, nil
}

func (s *Conn) write(fd uintptr) bool {
	for s.w.n < len(s.w.p) {
		n, e := sysWrite(fd, s.w.p[s.w.n:])
		switch e {
		case nil:
			s.w.n += n
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		s.w.err = e
		return true
	}
	return true
}

// Wrap returns c, a TCP connection whose socket is raw, with its Read and
// Write made by a Conn (for a TLS layer above it); its other methods are
// c's.
func Wrap(c net.Conn, raw syscall.RawConn) net.Conn {
	w := &netConn{Conn: c}
	w.s.Init(raw, c)
	return w
}

// netConn is a net.Conn reading and writing through a Conn.
type netConn struct {
	net.Conn
	s Conn
}

func (w *netConn) Read(p []byte) (int, error)  { return w.s.Read(p) }
func (w *netConn) Write(p []byte) (int, error) { return w.s.Write(p) }
