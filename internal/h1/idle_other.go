//go:build !unix

package h1

import (
	"net"
	"syscall"
)

// rawConn returns nil: idle connections wait by reading one byte.
func rawConn(net.Conn) syscall.RawConn { return nil }

func (c *conn) peek(uintptr) bool { return true }
