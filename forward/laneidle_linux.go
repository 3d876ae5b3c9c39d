package forward

import (
	"net"
	"syscall"
)

// idleReadable reports whether the origin sent anything on c (bytes, or the
// end of the stream) while no request was outstanding on it: such bytes are
// not the answer to the next request, so the lane drops c instead of reusing
// it (an origin or middlebox that sends unsolicited bytes would otherwise
// answer the next client's request). It peeks without blocking or consuming;
// false when c exposes no socket.
func idleReadable(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var probe [1]byte
	readable := false
	_ = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), probe[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		readable = n > 0 || (n == 0 && err == nil) || (err != nil && err != syscall.EAGAIN && err != syscall.EINTR)
		return true // never wait
	})
	return readable
}
