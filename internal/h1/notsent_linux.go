package h1

import (
	"net"

	"golang.org/x/sys/unix"
)

// swapNotSent sets how many bytes the kernel may hold not yet sent on c
// (TCP_NOTSENT_LOWAT) to n and returns the value it had, for the caller to
// put back; ok is false when it could not be read or set (then nothing
// changed). See spliceNotSent for why ReadFromConn uses it.
func swapNotSent(c *net.TCPConn, n int) (old int, ok bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		old, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, n)
		}
	}); err != nil {
		return 0, false
	}
	return old, serr == nil
}
