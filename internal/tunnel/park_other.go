//go:build !linux

package tunnel

import (
	"net"
	"syscall"
)

// rawConn is nil off Linux: directions do not park.
func rawConn(net.Conn) syscall.RawConn { return nil }
