package tunnel

import (
	"net"
	"syscall"
)

// rawConn returns src's socket when src is a bare *net.TCPConn (a wrapper may
// hold buffered bytes the kernel does not see), else nil.
func rawConn(src net.Conn) syscall.RawConn {
	tc, ok := src.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
