package upstream

import (
	"crypto/tls"
	"syscall"

	"golang.org/x/sys/unix"
)

// alive reports whether an idle connection still looks usable: no end of
// stream, error or unexpected byte waiting on its socket (one non-blocking
// peek). A TLS connection may have a record waiting (a session ticket), so
// only an end of stream or an error counts against it.
func (pc *pconn) alive() bool {
	nc := pc.nc
	isTLS := false
	if tc, ok := nc.(*tls.Conn); ok {
		nc, isTLS = tc.NetConn(), true
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var buf [1]byte
	n, rerr := 0, error(nil)
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return true
	})
	switch {
	case err != nil:
		return false
	case rerr == unix.EAGAIN || rerr == unix.EINTR:
		return true
	case rerr != nil, n == 0:
		return false // an error, or the end of the stream
	}
	return isTLS // a byte waiting: a TLS record, or garbage on plain HTTP
}
