package forward

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// clientHello returns the first TLS record a client sends for serverName.
func clientHello(t *testing.T, serverName string) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer b.Close()
	go func() {
		_ = tls.Client(a, &tls.Config{ServerName: serverName, InsecureSkipVerify: true}).Handshake()
		a.Close()
	}()
	var head [5]byte
	if _, err := io.ReadFull(b, head[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint16(head[3:5]))
	if _, err := io.ReadFull(b, body); err != nil {
		t.Fatal(err)
	}
	return append(head[:], body...)
}

// TestInterceptConnHidesConnectAnswer: a redirected TLS connection reads as a
// CONNECT to its server name followed by the ClientHello, the 200 that answers
// it never reaches the client (what follows does), and any other answer closes
// the connection without a byte of it reaching the client.
func TestInterceptConnHidesConnectAnswer(t *testing.T) {
	hello := clientHello(t, "allowed.test")
	dst := netip.MustParseAddrPort("192.0.2.7:443")
	for _, tc := range []struct {
		answer string
		want   string // what the client receives
	}{
		{"HTTP/1.1 200 Connection established\r\n\r\n", "server bytes"},
		{"HTTP/1.1 403 Forbidden\r\nContent-Length: 7\r\n\r\nblocked", ""},
		{"HTTP/1.1 409 Conflict\r\n\r\n", ""},
	} {
		client, server := net.Pipe()
		ic := &interceptConn{Conn: server, info: intercepted{dst: dst, tls: true}, peek: 5 * time.Second}
		got := make(chan string, 1)
		go func() {
			_, _ = client.Write(hello)
			b, _ := io.ReadAll(client)
			got <- string(b)
		}()
		br := bufio.NewReader(ic)
		r, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("%q: reading the CONNECT: %v", tc.answer, err)
		}
		if r.Method != http.MethodConnect || r.Host != "allowed.test:443" {
			t.Fatalf("%q: read %s %s, want CONNECT allowed.test:443", tc.answer, r.Method, r.Host)
		}
		rest := make([]byte, len(hello))
		if _, err := io.ReadFull(br, rest); err != nil || string(rest) != string(hello) {
			t.Fatalf("%q: the ClientHello does not follow the CONNECT (%v)", tc.answer, err)
		}
		// written in two pieces, as a server may
		_, _ = ic.Write([]byte(tc.answer[:10]))
		_, _ = ic.Write([]byte(tc.answer[10:]))
		_, _ = ic.Write([]byte("server bytes"))
		ic.Close()
		if s := <-got; s != tc.want {
			t.Errorf("%q: the client received %q, want %q", tc.answer, s, tc.want)
		}
	}
}
