package h1

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portcullis/portcullis/internal/accept"
)

// TestSplicedBodyKeepsLittleUnsent: while ReadFromConn splices a large body
// to a client that reads slowly, the client's socket holds at most about
// spliceNotSent bytes not yet sent (the rest waits in the splice, fed as
// the client reads), the body arrives whole, and the socket's own setting
// is back once the body is out. Without the limit the splice moved up to the send
// buffer's size (MiBs) into the socket at once, which kept a loopback
// client's receive window small and every segment paced (see
// spliceNotSent).
func TestSplicedBodyKeepsLittleUnsent(t *testing.T) {
	const size = 8 << 20
	body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	origin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	go func() {
		c, err := origin.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write(body)
		io.Copy(io.Discard, c) // until the handler closes its end
	}()

	socks := make(chan *net.TCPConn, 1)
	var before atomic.Int64
	spliced := make(chan error, 1)
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		src, err := net.Dial("tcp", origin.Addr().String())
		if err != nil {
			t.Error(err)
			return
		}
		defer src.Close()
		sock := accept.Bare(w.(*response).c.rwc).(*net.TCPConn)
		before.Store(int64(notSentLowat(t, sock)))
		socks <- sock
		w.Header().Set("Content-Length", fmt.Sprint(size))
		n, ok, err := w.(*response).ReadFromConn(nil, src, size)
		if !ok || n != size {
			err = fmt.Errorf("ReadFromConn: %d bytes, ok %v, %v", n, ok, err)
		}
		spliced <- err
	}, nil)

	c, br := ts.dial(t)
	c.(*net.TCPConn).SetReadBuffer(64 << 10) // a slow client's small window
	fmt.Fprint(c, "GET /large HTTP/1.1\r\nHost: x\r\n\r\n")
	sock := <-socks

	// Watch the server's unsent bytes while the client reads slowly.
	var most atomic.Int64
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			if n := unsent(t, sock); n > most.Load() {
				most.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 0, size)
	buf := make([]byte, 4<<10)
	for {
		n, err := res.Body.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
	}
	close(stop)
	<-watched
	if err := <-spliced; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("body differs: %d bytes, want %d", len(got), size)
	}
	// The kernel may take one more segment (up to 64 KiB) past the limit.
	if limit := int64(spliceNotSent + 64<<10 + 4<<10); most.Load() > limit {
		t.Errorf("the client's socket held up to %d bytes unsent, want at most %d", most.Load(), limit)
	}
	if v := notSentLowat(t, sock); int64(v) != before.Load() {
		t.Errorf("TCP_NOTSENT_LOWAT after the body is %d, want %d as before it", v, before.Load())
	}
}

// unsent is how many bytes c's socket holds not yet sent (SIOCOUTQNSD).
func unsent(t *testing.T, c *net.TCPConn) int64 {
	var n int
	var ierr error
	raw, err := c.SyscallConn()
	if err == nil {
		err = raw.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQNSD) })
	}
	if err != nil || ierr != nil {
		t.Errorf("SIOCOUTQNSD: %v %v", err, ierr)
	}
	return int64(n)
}

func notSentLowat(t *testing.T, c *net.TCPConn) int {
	var v int
	var gerr error
	raw, err := c.SyscallConn()
	if err == nil {
		err = raw.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT) })
	}
	if err != nil || gerr != nil {
		t.Errorf("TCP_NOTSENT_LOWAT: %v %v", err, gerr)
	}
	return v
}
