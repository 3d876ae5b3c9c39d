package engine

import (
	"net"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// congestionOf reads the congestion control of c's socket.
func congestionOf(t *testing.T, c syscall.Conn) string {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var name string
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		name, gerr = unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return strings.TrimRight(name, "\x00")
}

// TestListenTCPCongestion: forward.tcp_congestion reaches the connections a
// listener accepts (reno is built into every Linux kernel and allowed to
// every user), and a name the kernel does not have fails the listen with
// the key's name in the error.
func TestListenTCPCongestion(t *testing.T) {
	ln, err := listenTCP("127.0.0.1:0", "reno")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := congestionOf(t, s.(*net.TCPConn)); got != "reno" {
		t.Fatalf("accepted connection's congestion control %q, want reno", got)
	}

	plain, err := listenTCP("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	plain.Close()

	if ln, err := listenTCP("127.0.0.1:0", "nosuchcc"); err == nil {
		ln.Close()
		t.Fatal("a congestion control the kernel lacks was accepted")
	} else if !strings.Contains(err.Error(), `tcp_congestion "nosuchcc"`) {
		t.Fatalf("error %q does not name tcp_congestion", err)
	}
}
