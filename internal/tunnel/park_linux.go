package tunnel

import (
	"net"
	"syscall"

	"github.com/portcullis/portcullis/internal/sockio"
)

// rawConn returns src's socket when src is a bare *net.TCPConn (a wrapper may
// hold buffered bytes the kernel does not see), else nil.
func rawConn(src net.Conn) syscall.RawConn { return sockio.Raw(src) }
