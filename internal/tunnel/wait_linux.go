package tunnel

import (
	"net"
	"syscall"
)

// readWaiter returns a function that blocks until src has something to read (data,
// end of stream or a pending error) or its read deadline passes, without consuming
// anything and without holding a splice pipe: an idle tunnel then costs its two
// sockets only. It returns nil when src is not a bare *net.TCPConn (a wrapper may
// hold buffered bytes the kernel does not see), and the caller just copies.
func readWaiter(src net.Conn) func() error {
	rc := rawConn(src)
	if rc == nil {
		return nil
	}
	var probe [1]byte
	ready := func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), probe[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN && err != syscall.EINTR
	}
	return func() error { return rc.Read(ready) }
}
