//go:build unix

package h1

import (
	"io"
	"syscall"
)

// peek is c.raw.Read's callback while c is idle: it asks, without waiting
// or consuming, whether a byte (or the end of the stream) can be read, and
// returns false to wait for the socket's readiness when not.
func (c *conn) peek(fd uintptr) bool {
	n, _, err := syscall.Recvfrom(int(fd), c.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
		return false
	case err != nil:
		c.peekErr = err
	case n == 0:
		c.peekErr = io.EOF
	}
	return true
}
