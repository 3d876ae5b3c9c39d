package forward

import (
	"bytes"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/rules"
)

func FuzzSplitHostPort(f *testing.F) {
	for _, s := range []string{"example.com:443", "[::1]:8080", "EXAMPLE.com.:80", "::1", "[fe80::1%eth0]:1", "host:", ":80", "a:b:c", "host:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, authority string) {
		host, port := rules.SplitHostPort(authority)
		if strings.ContainsAny(host, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			t.Fatalf("%q: host %q not lowercased", authority, host)
		}
		if strings.HasSuffix(host, ".") && !strings.HasSuffix(authority, "..") && !strings.Contains(authority, ".:") {
			t.Fatalf("%q: trailing dot kept in %q", authority, host)
		}
		if port != 0 && !strings.HasSuffix(authority, ":"+itoa(port)) && !strings.Contains(authority, ":0") {
			t.Fatalf("%q: port %d not from the authority", authority, port)
		}
	})
}

func itoa(n uint16) string {
	var b [5]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// FuzzPeekHello feeds arbitrary client bytes to the ClientHello peek: it must not
// panic, and must return every byte it read, in order, for the replay.
func FuzzPeekHello(f *testing.F) {
	f.Add([]byte("\x16\x03\x01\x00\x05hello"), 3)
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), 0)
	f.Add(clientHelloBytes(f, "example.com"), 7)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		if split < 0 || split > len(data) {
			split = len(data) / 2
		}
		client, peer := net.Pipe()
		defer client.Close()
		go func() {
			_, _ = peer.Write(data[split:])
			_ = peer.Close()
		}()
		peeked, _ := peekHello(client, data[:split], 2*time.Second)
		if !bytes.HasPrefix(data, peeked) {
			t.Fatalf("peeked %q is not a prefix of %q", peeked, data)
		}
	})
}

// clientHelloBytes returns a real ClientHello for sni.
func clientHelloBytes(tb testing.TB, sni string) []byte {
	c, s := net.Pipe()
	done := make(chan []byte)
	go func() {
		buf := make([]byte, 4096)
		_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _ := s.Read(buf)
		_ = s.Close()
		done <- buf[:n]
	}()
	go func() {
		_ = tlsClientHandshake(c, sni)
	}()
	return <-done
}

func TestPeekHelloReadsSNIAndReplaysEverything(t *testing.T) {
	hello := clientHelloBytes(t, "Www.Example.com")
	for _, split := range []int{0, 1, 5, len(hello)} {
		client, peer := net.Pipe()
		go func() {
			_, _ = peer.Write(hello[split:])
			_, _ = peer.Write([]byte("after"))
		}()
		peeked, sni := peekHello(client, hello[:split], 5*time.Second)
		if sni != "Www.Example.com" { // as sent: hijackTunnel makes it canonical
			t.Fatalf("split %d: sni %q", split, sni)
		}
		if !bytes.HasPrefix(append(bytes.Clone(hello), "after"...), peeked) || len(peeked) < len(hello) {
			t.Fatalf("split %d: peeked %d bytes of %d", split, len(peeked), len(hello))
		}
		_ = client.Close()
		_ = peer.Close()
	}
}

// tlsClientHandshake starts a TLS client handshake on c (it never completes).
func tlsClientHandshake(c net.Conn, sni string) error {
	return tls.Client(c, &tls.Config{ServerName: sni, InsecureSkipVerify: true}).Handshake()
}
