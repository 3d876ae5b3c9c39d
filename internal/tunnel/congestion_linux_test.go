package tunnel

import (
	"context"
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
	ln, err := (&net.ListenConfig{Control: ctl}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("congestion control %s: %v", cc, err)
	}
	defer ln.Close()
	got := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		got <- c
	}()
	a, err = (&net.Dialer{Control: ctl}).Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-got
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return a, b
}
