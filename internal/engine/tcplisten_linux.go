package engine

import (
	"context"
	"fmt"
	"net"
	"syscall"
)

// listenTCP opens a TCP listener on addr whose accepted connections use the
// congestion control congestion (empty: the system's). It is set on the
// listening socket, before any connection: an accepted connection starts
// with it, pacing included (a connection switched later keeps the pacing its
// first algorithm asked for).
func listenTCP(addr, congestion string) (net.Listener, error) {
	if congestion == "" {
		return net.Listen("tcp", addr)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptString(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CONGESTION, congestion)
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("tcp_congestion %q: %w", congestion, serr)
		}
		return nil
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}
