package tunnel

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/park"
)

// pair returns the two ends of a loopback TCP connection.
func pair(t testing.TB) (a, b net.Conn) {
	t.Helper()
	a, b, err := pairControl(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// pairControl is pair with ctl (when not nil) run on the listening and the
// dialing socket before they connect; the error is the listener's.
func pairControl(t testing.TB, ctl func(network, address string, c syscall.RawConn) error) (a, b net.Conn, err error) {
	t.Helper()
	ln, err := (&net.ListenConfig{Control: ctl}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
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
	return a, b, nil
}

type result struct{ in, out int64 }

// relay starts a tunnel between two loopback connections and returns the
// outer ends: the client's and the origin's.
func relay(t testing.TB, s *Set, prefix []byte, idle time.Duration) (client, origin net.Conn, done <-chan result) {
	t.Helper()
	client, proxyClient := pair(t)
	proxyUp, origin := pair(t)
	ch := make(chan result, 1)
	go func() {
		in, out, err := s.Relay(proxyClient, proxyUp, prefix, idle)
		if err != nil {
			t.Errorf("Relay: %v", err)
		}
		ch <- result{in, out}
	}()
	return client, origin, ch
}

func wait[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatal("timed out")
		panic("unreachable")
	}
}

func readAll(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

// TestRelayHalfCloseAndCounts: each side's end of stream reaches the other as
// a half-close while the other direction still flows; the counts are the bytes
// each way, the prefix included.
func TestRelayHalfCloseAndCounts(t *testing.T) {
	s := NewSet()
	client, origin, done := relay(t, s, []byte("hello "), time.Minute)
	if _, err := io.WriteString(client, "world"); err != nil {
		t.Fatal(err)
	}
	_ = client.(*net.TCPConn).CloseWrite()
	if got := readAll(t, origin); got != "hello world" {
		t.Fatalf("origin read %q", got)
	}
	// the client half-closed; the origin can still answer
	if _, err := io.WriteString(origin, "answer"); err != nil {
		t.Fatal(err)
	}
	_ = origin.(*net.TCPConn).CloseWrite()
	if got := readAll(t, client); got != "answer" {
		t.Fatalf("client read %q", got)
	}
	r := wait(t, done)
	if r.in != int64(len("hello world")) || r.out != int64(len("answer")) {
		t.Fatalf("counts in=%d out=%d, want 11 and 6", r.in, r.out)
	}
	if s.Len() != 0 || s.Total() != 1 {
		t.Fatalf("Len %d Total %d after the tunnel ended", s.Len(), s.Total())
	}
}

// TestRelayBulkBothWays: megabytes both ways at once (the splice path on
// Linux, with the pipe's many refills) arrive whole and in order, the
// counts are exact, and once the tunnel ended no descriptor is left behind
// (each direction's pipe is closed).
func TestRelayBulkBothWays(t *testing.T) {
	fdsBefore := openFDs(t)
	s := NewSet()
	client, origin, done := relay(t, s, []byte("pre"), time.Minute)
	const size = 4<<20 + 12345
	up, down := randomBytes(size, 1), randomBytes(size, 2)
	sendThenHalfClose := func(c net.Conn, b []byte, errc chan<- error) {
		var err error
		for off, step := 0, 1; off < len(b) && err == nil; off, step = off+step, step*3%(300<<10)+1 {
			_, err = c.Write(b[off:min(off+step, len(b))])
		}
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		errc <- err
	}
	errc := make(chan error, 2)
	go sendThenHalfClose(client, up, errc)
	go sendThenHalfClose(origin, down, errc)
	gotUp, gotDown := make(chan string, 1), make(chan string, 1)
	go func() { gotUp <- readAll(t, origin) }()
	go func() { gotDown <- readAll(t, client) }()
	if u := wait(t, gotUp); u != "pre"+string(up) {
		t.Errorf("origin got %d bytes, not the %d sent (or not in order)", len(u), 3+len(up))
	}
	if d := wait(t, gotDown); d != string(down) {
		t.Errorf("client got %d bytes, not the %d sent (or not in order)", len(d), len(down))
	}
	for range 2 {
		if err := wait(t, (<-chan error)(errc)); err != nil {
			t.Fatalf("sending: %v", err)
		}
	}
	r := wait(t, done)
	if r.in != 3+size || r.out != size {
		t.Fatalf("counts in=%d out=%d, want %d and %d", r.in, r.out, 3+size, size)
	}
	_ = client.Close()
	_ = origin.Close()
	for start := time.Now(); openFDs(t) > fdsBefore; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%d descriptors open after the tunnel ended, %d before it began", openFDs(t), fdsBefore)
		}
	}
}

// randomBytes returns n bytes of a fixed pseudo-random sequence.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	x := seed*0x9E3779B97F4A7C15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x >> 32)
	}
	return b
}

// openFDs counts this process's open descriptors (-1 where /proc is missing).
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// TestRelayIdleTimeout: a tunnel with no byte either way for the idle timeout
// is closed; one that keeps moving bytes is not.
func TestRelayIdleTimeout(t *testing.T) {
	s := NewSet()
	// Activity is seen when a copy round ends (at most spliceBurst after the
	// bytes), so the idle timeout is well above it: a slow machine must not
	// make a busy tunnel look idle.
	const idle = 3 * time.Second
	client, origin, done := relay(t, s, nil, idle)
	// busy for longer than a tunnel blind to activity could live (1.5×idle)
	deadline := time.Now().Add(idle*3/2 + time.Second)
	buf := make([]byte, 1)
	for time.Now().Before(deadline) {
		if _, err := client.Write([]byte{'x'}); err != nil {
			t.Fatalf("busy tunnel closed: %v", err)
		}
		_ = origin.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.ReadFull(origin, buf); err != nil {
			t.Fatalf("busy tunnel closed: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // the pace of the traffic, not synchronisation
	}
	// then idle: it ends by itself and the client sees the close
	wait(t, done)
	_ = client.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := client.Read(buf); err == nil {
		t.Fatal("the client read a byte from an idle-closed tunnel")
	}
}

// TestShutdownWaitsThenCloses: Shutdown refuses new tunnels, and closes the open
// ones when its context ends.
func TestShutdownWaitsThenCloses(t *testing.T) {
	s := NewSet()
	client, _, done := relay(t, s, nil, 0)
	for start := time.Now(); s.Len() != 1; time.Sleep(time.Millisecond) {
		if time.Since(start) > 30*time.Second {
			t.Fatal("the tunnel never opened")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want the context's error", err)
	}
	wait(t, done)
	_ = client.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Fatal("tunnel still open after Shutdown")
	}
	if _, err := s.Open(); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("Open after Shutdown = %v", err)
	}
}

// TestSetSidesAfterClose: a side set after the tunnel was closed (CloseAll
// between a dial and a hijack) is closed at once.
func TestSetSidesAfterClose(t *testing.T) {
	s := NewSet()
	tn, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	s.CloseAll()
	a, b := pair(t)
	if tn.SetUpstream(a) {
		t.Fatal("SetUpstream succeeded on a closed tunnel")
	}
	_ = b.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := b.Read(make([]byte, 1)); err == nil {
		t.Fatal("the refused side was not closed")
	}
	tn.Done()
	if s.Len() != 0 {
		t.Fatalf("Len %d after Done", s.Len())
	}
}

// parkedCount is how many directions of s's tunnels are parked.
func parkedCount(s *Set) int { return s.parker.Len() }

// waitParked polls until n directions of s's tunnels are parked.
func waitParked(t *testing.T, s *Set, n int) {
	t.Helper()
	for start := time.Now(); parkedCount(s) != n; time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%d directions parked, want %d", parkedCount(s), n)
		}
	}
}

// TestParkedTunnel: an idle tunnel's directions park (on Linux) and wake for
// bytes both ways and for a half-close, with the counts right; a parked
// tunnel ends on its idle timeout and on CloseAll.
func TestParkedTunnel(t *testing.T) {
	if !park.CanPark {
		t.Skip("directions park on Linux only")
	}
	s := NewSet()
	client, origin, done := relay(t, s, []byte("p"), 0)
	waitParked(t, s, 2)
	for i := range 3 {
		want := "abc"
		if i == 0 {
			want = "pabc"
		}
		io.WriteString(client, "abc")
		got := make([]byte, len(want))
		_ = origin.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.ReadFull(origin, got); err != nil || string(got) != want {
			t.Fatalf("origin read %q, %v; want %q", got, err, want)
		}
		waitParked(t, s, 2)
	}
	io.WriteString(origin, "answer")
	_ = client.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(client, make([]byte, 6)); err != nil {
		t.Fatal(err)
	}
	waitParked(t, s, 2)
	_ = client.(*net.TCPConn).CloseWrite()
	_ = origin.SetReadDeadline(time.Now().Add(30 * time.Second))
	if b, err := io.ReadAll(origin); err != nil || len(b) != 0 {
		t.Fatalf("origin read %q, %v after the client's half-close", b, err)
	}
	_ = origin.(*net.TCPConn).CloseWrite()
	r := wait(t, done)
	if r.in != 10 || r.out != 6 {
		t.Fatalf("counts in=%d out=%d, want 10 and 6", r.in, r.out)
	}

	// idle timeout while parked
	const idle = 500 * time.Millisecond
	_, _, done = relay(t, s, nil, idle)
	waitParked(t, s, 2)
	wait(t, done)
	waitParked(t, s, 0)

	// CloseAll while parked
	client, _, done = relay(t, s, nil, 0)
	waitParked(t, s, 2)
	s.CloseAll()
	wait(t, done)
	_ = client.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Fatal("tunnel still open after CloseAll")
	}
	if parkedCount(s) != 0 || s.Len() != 0 {
		t.Fatalf("%d parked, %d open after CloseAll", parkedCount(s), s.Len())
	}
}

// TestBusyDirectionDoesNotPark: a direction that keeps moving bytes keeps its
// goroutine and splice pipe for as long as they flow; it does not park (and
// come back on a new goroutine with a new pipe) at the end of every copy
// burst. The origin sends without a pause for 1.5 s (about 15 bursts of
// parkBurst): each direction parks once when the tunnel starts, the busy one
// again only when a whole burst saw no byte (a stall of the machine; a few
// are allowed for).
func TestBusyDirectionDoesNotPark(t *testing.T) {
	if !park.CanPark {
		t.Skip("directions park on Linux only")
	}
	s := NewSet()
	client, origin, done := relay(t, s, nil, 0)
	waitParked(t, s, 2)
	sent := make(chan int64, 1)
	go func() {
		chunk := make([]byte, 64<<10)
		var n int64
		for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); {
			m, err := origin.Write(chunk)
			n += int64(m)
			if err != nil {
				break
			}
		}
		_ = origin.(*net.TCPConn).CloseWrite()
		sent <- n
	}()
	_ = client.SetReadDeadline(time.Now().Add(60 * time.Second))
	got, err := io.Copy(io.Discard, client)
	if err != nil {
		t.Fatal(err)
	}
	if n := wait(t, sent); got != n {
		t.Fatalf("client got %d bytes, origin sent %d", got, n)
	}
	parks := s.parker.Parks()
	_ = client.Close()
	wait(t, done)
	if parks > 6 {
		t.Fatalf("the directions parked %d times during 1.5 s of steady bytes, want at most 6 (2 at the start)", parks)
	}
	t.Logf("%d parks", parks)
}
