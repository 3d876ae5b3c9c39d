package forward

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/portcullis/portcullis/forward/socks"
)

// startSOCKS serves p.ServeSOCKS on a loopback listener and returns its address.
func startSOCKS(t *testing.T, p *Proxy) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.ServeSOCKS(context.Background(), c)
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return ln.Addr().String()
}

// socksRequest opens a connection, negotiates "no authentication" and sends
// a request with cmd for the address in atyp form; it returns the reply code
// and the connection.
func socksRequest(t *testing.T, addr string, cmd byte, dst []byte) (byte, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte{5, 1, socks.MethodNone}); err != nil {
		t.Fatal(err)
	}
	var m [2]byte
	if _, err := io.ReadFull(c, m[:]); err != nil || m != [2]byte{5, socks.MethodNone} {
		t.Fatalf("method answer %v %v", m, err)
	}
	if _, err := c.Write(append([]byte{5, cmd, 0}, dst...)); err != nil {
		t.Fatal(err)
	}
	var reply [10]byte
	if _, err := io.ReadFull(c, reply[:]); err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	return reply[1], c
}

// atyp encodes ap as SOCKS5 address type, address and port.
func atyp(ap netip.AddrPort) []byte {
	var b []byte
	if ap.Addr().Is4() {
		a := ap.Addr().As4()
		b = append([]byte{1}, a[:]...)
	} else {
		a := ap.Addr().As16()
		b = append([]byte{4}, a[:]...)
	}
	return binary.BigEndian.AppendUint16(b, ap.Port())
}

// domain encodes host:port as a SOCKS5 domain-name address.
func domain(host string, port uint16) []byte {
	b := append([]byte{3, byte(len(host))}, host...)
	return binary.BigEndian.AppendUint16(b, port)
}

// TestSOCKSAddressTypesAndCommands: CONNECT to an IPv4 and an IPv6 address
// and to a domain name relays; BIND and UDP ASSOCIATE get "command not
// supported", an unknown address type "address type not supported", a port
// outside connect_ports and a blocked name "not allowed by ruleset"; a client
// offering only username/password to a door without sign-in gets "no
// acceptable methods".
func TestSOCKSAddressTypesAndCommands(t *testing.T) {
	echo4 := startEcho(t)
	ln6, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln6.Close()
	echo6 := startEchoOn(t, "[::1]:0")
	a4 := netip.MustParseAddrPort(echo4.Addr().String())
	a6 := netip.MustParseAddrPort(echo6.Addr().String())
	cfg := &Config{ConnectPorts: []int{int(a4.Port()), int(a6.Port())}}
	p, err := New(Options{Config: cfg, Policy: hostPolicy("no-blocked", "blocked.test"),
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if h, port, _ := net.SplitHostPort(addr); h == "echo.test" {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}})
	if err != nil {
		t.Fatal(err)
	}
	addr := startSOCKS(t, p)
	for _, tc := range []struct {
		name string
		dst  []byte
	}{{"IPv4", atyp(a4)}, {"IPv6", atyp(a6)}, {"domain", domain("echo.test", a4.Port())}} {
		code, c := socksRequest(t, addr, socks.CmdConnect, tc.dst)
		if code != socks.ReplySucceeded {
			t.Fatalf("%s: reply %d", tc.name, code)
		}
		if _, err := io.WriteString(c, "ping\n"); err != nil {
			t.Fatal(err)
		}
		var b [5]byte
		if _, err := io.ReadFull(c, b[:]); err != nil || string(b[:]) != "ping\n" {
			t.Fatalf("%s: echo %q %v", tc.name, b, err)
		}
	}
	for _, tc := range []struct {
		name string
		cmd  byte
		dst  []byte
		want byte
	}{
		{"BIND", socks.CmdBind, atyp(a4), socks.ReplyCommandNotSupported},
		{"UDP ASSOCIATE", socks.CmdUDPAssociate, atyp(a4), socks.ReplyCommandNotSupported},
		{"address type 9", socks.CmdConnect, []byte{9, 1, 2, 3, 4, 0, 80}, socks.ReplyAddressNotSupported},
		{"port not in connect_ports", socks.CmdConnect, domain("echo.test", 25), socks.ReplyNotAllowed},
		{"blocked name", socks.CmdConnect, domain("blocked.test", a4.Port()), socks.ReplyNotAllowed},
	} {
		if code, _ := socksRequest(t, addr, tc.cmd, tc.dst); code != tc.want {
			t.Errorf("%s: reply %d, want %d", tc.name, code, tc.want)
		}
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	_, _ = c.Write([]byte{5, 1, socks.MethodPassword})
	var m [2]byte
	if _, err := io.ReadFull(c, m[:]); err != nil || m != [2]byte{5, socks.MethodNoAcceptable} {
		t.Errorf("password-only client: answer %v %v, want no acceptable methods", m, err)
	}
}
