//go:build !unix

// Package sockio reads and writes TCP sockets with raw system calls on Unix;
// elsewhere Conn goes through the net.Conn.
package sockio

import (
	"net"
	"syscall"
)

// Conn reads and writes the net.Conn given to Init.
type Conn struct{ net.Conn }

// Init makes s read and write c.
func (s *Conn) Init(_ syscall.RawConn, c net.Conn) { s.Conn = c }

// Raw returns nil: off Unix the callers read and write through the net.Conn.
func Raw(net.Conn) syscall.RawConn { return nil }

// Wrap returns c.
func Wrap(c net.Conn, _ syscall.RawConn) net.Conn { return c }

// ReadAfter runs first, then reads.
func (s *Conn) ReadAfter(p []byte, first func() error) (int, error) {
	if err := first(); err != nil {
		return 0, err
	}
	return s.Read(p)
}
