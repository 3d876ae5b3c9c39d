package park

import (
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// sleeper records what its Set did with it.
type sleeper struct {
	woken, expiredCalls chan struct{}
	expired             atomic.Bool
}

func newSleeper() *sleeper {
	return &sleeper{woken: make(chan struct{}, 1), expiredCalls: make(chan struct{}, 1)}
}

func (s *sleeper) Wake()                  { s.woken <- struct{}{} }
func (s *sleeper) Expired(time.Time) bool { return s.expired.Load() }
func (s *sleeper) Expire()                { s.expiredCalls <- struct{}{} }

// pair returns a loopback TCP connection's two ends and the server end's socket.
func pair(t *testing.T) (client, server net.Conn, rc syscall.RawConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	rc, err = server.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return client, server, rc
}

func wait(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never came", what)
	}
}

// TestWakeOnBytesAndEnd: a parked socket wakes its sleeper when bytes
// arrive and, parked again, when its peer closes; the set's goroutine ends
// with nothing parked.
func TestWakeOnBytesAndEnd(t *testing.T) {
	if !CanPark {
		t.Skip("nothing parks on this system")
	}
	var set Set
	client, server, rc := pair(t)
	s := newSleeper()
	var spot Spot
	if !set.Park(&spot, rc, s, 0) {
		t.Fatal("Park failed")
	}
	if set.Len() != 1 || set.Parks() != 1 {
		t.Fatalf("Len %d, Parks %d", set.Len(), set.Parks())
	}
	select {
	case <-s.woken:
		t.Fatal("woken with nothing to read")
	case <-time.After(50 * time.Millisecond):
	}
	client.Write([]byte("x"))
	wait(t, s.woken, "Wake on bytes")
	if set.Len() != 0 || set.Take(&spot) {
		t.Fatal("still parked after Wake")
	}
	b := make([]byte, 1)
	if _, err := server.Read(b); err != nil || b[0] != 'x' {
		t.Fatalf("read %q %v", b, err)
	}
	if !set.Park(&spot, rc, s, 0) { // the same socket parks again
		t.Fatal("Park again failed")
	}
	client.Close()
	wait(t, s.woken, "Wake on the peer's close")
	if set.Parks() != 2 {
		t.Fatalf("Parks %d, want 2", set.Parks())
	}
}

// TestExpireAndTake: a sleeper whose Expired turns true is taken out and
// told to Expire; Take gives a parked socket back once; an expired sleeper
// does not park.
func TestExpireAndTake(t *testing.T) {
	if !CanPark {
		t.Skip("nothing parks on this system")
	}
	var set Set
	_, _, rc := pair(t)
	s := newSleeper()
	var spot Spot
	if !set.Park(&spot, rc, s, 10*time.Millisecond) {
		t.Fatal("Park failed")
	}
	s.expired.Store(true)
	wait(t, s.expiredCalls, "Expire")
	if set.Len() != 0 || set.Take(&spot) {
		t.Fatal("still parked after Expire")
	}
	if set.Park(&spot, rc, s, 0) {
		t.Fatal("an expired sleeper parked")
	}
	s.expired.Store(false)
	if !set.Park(&spot, rc, s, 0) {
		t.Fatal("Park failed")
	}
	if !set.Take(&spot) || set.Take(&spot) || set.Len() != 0 {
		t.Fatal("Take did not give the socket back exactly once")
	}
}
