package tunnel

import (
	"net"
	"syscall"
	"testing"
)

// pairCC is pair whose two sockets use the congestion control cc from
// their first byte (set before connect and on the listener: switched later,
// a connection keeps the pacing bbr asked for at the handshake).
func pairCC(t testing.TB, cc string) (a, b net.Conn) {
	t.Helper()
	ctl := func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptString(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CONGESTION, cc)
		}); err != nil {
			return err
		}
		return serr
	}
	a, b, err := pairControl(t, ctl)
	if err != nil {
		t.Skipf("congestion control %s: %v", cc, err)
	}
	return a, b
}
