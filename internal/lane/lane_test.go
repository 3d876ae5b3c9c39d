package lane

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// testConn is a lane connection for the tests: it reads a request head
// itself, then hands the connection with the bytes it read to net/http
// (waiting for hold, when set, before it is done with it); a connection
// that sends nothing waits on the lane until Wake or Kill.
type testConn struct {
	conns   *Conns
	c       net.Conn
	started chan struct{} // closed when Serve runs
	hold    chan struct{} // when set: received from after the hand-off, before Forget
	noWake  bool          // Wake does nothing (only Kill ends the connection)

	woken, killed  atomic.Bool
	inSetAtHandoff atomic.Bool // tracked still when its deadlines were reset for net/http
}

// handoffConn is the connection a testConn hands off: when Handoff resets
// its deadlines (just before net/http gets it) it records whether the lane
// still tracks its testConn.
type handoffConn struct {
	net.Conn
	tc *testConn
}

func (c *handoffConn) SetDeadline(t time.Time) error {
	c.tc.conns.mu.Lock()
	_, in := c.tc.conns.conns[c.tc]
	c.tc.conns.mu.Unlock()
	c.tc.inSetAtHandoff.Store(in)
	return c.Conn.SetDeadline(t)
}

func (tc *testConn) Serve() {
	defer tc.conns.Forget(tc)
	close(tc.started)
	buf := make([]byte, 4096)
	n := 0
	for Head(buf[:n], n == len(buf)) == 0 {
		m, err := tc.c.Read(buf[n:])
		n += m
		if err != nil {
			tc.c.Close()
			return
		}
	}
	tc.conns.Handoff(tc, NewPrefixConn(&handoffConn{Conn: tc.c, tc: tc}, buf[:n]))
	if tc.hold != nil {
		<-tc.hold
	}
}

func (tc *testConn) Wake() {
	tc.woken.Store(true)
	if !tc.noWake {
		tc.c.SetReadDeadline(time.Unix(1, 0))
	}
}

func (tc *testConn) Kill() {
	tc.killed.Store(true)
	tc.c.Close()
}

// laneServer serves h behind a lane on a loopback listener; each accepted
// connection's testConn is sent on the returned channel once it runs.
func laneServer(t *testing.T, h http.Handler, setup func(*testConn)) (*Conns, string, <-chan *testConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := NewConns(&http.Server{Handler: h}, slog.New(slog.DiscardHandler), "test")
	running := make(chan *testConn, 8)
	served := make(chan error, 1)
	go func() {
		served <- conns.Serve(ln, func(c net.Conn) Conn {
			tc := &testConn{conns: conns, c: c, started: make(chan struct{})}
			if setup != nil {
				setup(tc)
			}
			go func() { <-tc.started; running <- tc }()
			return tc
		})
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conns.Shutdown(ctx)
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	})
	return conns, ln.Addr().String(), running
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// TestHandoffReplaysReadBytes: the bytes the lane read (the head and the
// start of the body, written in one piece) reach net/http first, then the
// rest from the socket.
func TestHandoffReplaysReadBytes(t *testing.T) {
	_, addr, running := laneServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+r.Header.Get("X-Tag")+" "+string(b))
	}), nil)
	c := dial(t, addr)
	io.WriteString(c, "POST /replayed HTTP/1.1\r\nHost: a\r\nX-Tag: t1\r\nContent-Length: 10\r\n\r\nhello")
	<-running
	io.WriteString(c, "world")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if want := "POST /replayed t1 helloworld"; resp.StatusCode != 200 || string(body) != want {
		t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, want)
	}
}

// TestShutdownClosesIdleLaneConnsNotHandedOff: Shutdown wakes and so closes
// a connection idle on the lane, but neither wakes nor closes one handed to
// net/http — even while the lane's goroutine for it has not finished —
// whose request in flight completes.
func TestShutdownClosesIdleLaneConnsNotHandedOff(t *testing.T) {
	inHandler, release := make(chan struct{}), make(chan struct{})
	hold := make(chan struct{})
	conns, addr, running := laneServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inHandler)
		<-release
		if err := r.Context().Err(); err != nil {
			io.WriteString(w, "canceled: "+err.Error())
			return
		}
		io.WriteString(w, "done")
	}), func(tc *testConn) { tc.hold = hold })

	idle := dial(t, addr)
	idleTC := <-running
	busy := dial(t, addr)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	busyTC := <-running
	<-inHandler

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- conns.Shutdown(ctx)
	}()
	if n, err := idle.Read(make([]byte, 1)); err == nil {
		t.Fatalf("the idle lane connection read %d bytes, want it closed", n)
	}
	if !idleTC.woken.Load() {
		t.Error("the idle lane connection was not woken")
	}
	if !conns.Closing() {
		t.Error("Closing is false during Shutdown")
	}
	close(hold) // the handed-off connection's lane goroutine finishes
	close(release)
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "done" {
		t.Fatalf("in-flight request: %d %q, want 200 \"done\"", resp.StatusCode, body)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if busyTC.inSetAtHandoff.Load() {
		t.Error("the lane still tracked the connection when it went to net/http")
	}
	if busyTC.woken.Load() || busyTC.killed.Load() {
		t.Errorf("Shutdown touched the handed-off connection (woken %v, killed %v)", busyTC.woken.Load(), busyTC.killed.Load())
	}
	if conns.Add(&testConn{}) {
		t.Error("Add took a connection after Shutdown")
	}
}

// TestShutdownKillsPastDeadline: a lane connection still busy when ctx ends
// is killed, and Shutdown returns ctx's error.
func TestShutdownKillsPastDeadline(t *testing.T) {
	conns, addr, running := laneServer(t, http.NotFoundHandler(), func(tc *testConn) { tc.noWake = true })
	c := dial(t, addr)
	tc := <-running
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := conns.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: %v, want context.Canceled", err)
	}
	if !tc.killed.Load() {
		t.Fatal("the busy lane connection was not killed")
	}
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes, want the connection closed", n)
	}
}

// TestServeAfterShutdown: a listener given to Serve after Shutdown is
// closed at once.
func TestServeAfterShutdown(t *testing.T) {
	conns := NewConns(&http.Server{}, nil, "test")
	if err := conns.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := conns.Serve(ln, func(net.Conn) Conn { t.Error("accepted after Shutdown"); return nil }); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v, want http.ErrServerClosed", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("the listener is still open")
	}
}

// TestListenerGiveAfterClose: a connection given to a closed Listener is
// closed, and Accept reports net.ErrClosed.
func TestListenerGiveAfterClose(t *testing.T) {
	l := NewListener()
	l.Close()
	a, b := net.Pipe()
	defer b.Close()
	l.Give(a)
	if _, err := b.Write([]byte("x")); err == nil {
		t.Fatal("the given connection is still open")
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept: %v, want net.ErrClosed", err)
	}
}

// TestPrefixConn: the replayed bytes come first, in reads as small as the
// caller's buffer, and Bare gives the socket only once they are all read.
func TestPrefixConn(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	read := []byte("abc")
	pc := NewPrefixConn(a, read)
	read[0] = 'X' // the PrefixConn has its own copy
	if pc.Bare() != nil {
		t.Fatal("Bare before the replayed bytes were read")
	}
	p := make([]byte, 2)
	if n, _ := pc.Read(p); string(p[:n]) != "ab" {
		t.Fatalf("first read %q, want \"ab\"", p[:n])
	}
	if n, _ := pc.Read(p); string(p[:n]) != "c" {
		t.Fatalf("second read %q, want \"c\"", p[:n])
	}
	if pc.Bare() != a {
		t.Fatal("Bare is not the connection under it")
	}
	go b.Write([]byte("d"))
	if n, _ := pc.Read(p); string(p[:n]) != "d" {
		t.Fatalf("third read %q, want \"d\" from the connection", p[:n])
	}
}

func TestHead(t *testing.T) {
	for _, c := range []struct {
		in   string
		full bool
		want int
	}{
		{"", false, 0},
		{"GET / HTTP/1.1\r\nHost: a\r\n", false, 0},
		{"GET / HTTP/1.1\r\nHost: a\r\n", true, -1},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", false, 27},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET", true, 27},
		{"GET / HTTP/1.1\nHost: a\r\n\r\n", false, -1},
		{"\n", false, -1},
		{"GET / HTTP/1.1\r\nHost: a\r\n\n", false, -1},
	} {
		if got := Head([]byte(c.in), c.full); got != c.want {
			t.Errorf("Head(%q, %v) = %d, want %d", c.in, c.full, got, c.want)
		}
	}
}

func TestAppendField(t *testing.T) {
	for _, c := range []struct{ v, want string }{
		{"text/plain", "K: text/plain\r\n"},
		{" \tpadded\t ", "K: padded\r\n"},
		{"a\r\nb\nc", "K: a  b c\r\n"},
	} {
		if got := string(AppendField([]byte("x"), "K", c.v)); got != "x"+c.want {
			t.Errorf("AppendField(%q) = %q, want %q", c.v, got, "x"+c.want)
		}
	}
}

// TestDeadlines: a read deadline moves earlier at once and later only when
// more than DeadlineSlack stale; the write deadline only later.
func TestDeadlines(t *testing.T) {
	c := &deadlineConn{}
	var d Deadlines
	t0 := time.Unix(1000, 0)
	d.SetRead(c, t0)
	d.SetRead(c, t0.Add(DeadlineSlack/2))
	d.SetRead(c, t0.Add(-time.Millisecond))
	d.SetRead(c, t0.Add(2*DeadlineSlack))
	if want := []time.Time{t0, t0.Add(-time.Millisecond), t0.Add(2 * DeadlineSlack)}; !equalTimes(c.rd, want) {
		t.Errorf("read deadlines set %v, want %v", c.rd, want)
	}
	d.SetWrite(c, t0)
	d.SetWrite(c, t0.Add(DeadlineSlack/2))
	d.SetWrite(c, t0.Add(-time.Second))
	d.SetWrite(c, t0.Add(2*DeadlineSlack))
	if want := []time.Time{t0, t0.Add(2 * DeadlineSlack)}; !equalTimes(c.wr, want) {
		t.Errorf("write deadlines set %v, want %v", c.wr, want)
	}
}

type deadlineConn struct {
	net.Conn
	rd, wr []time.Time
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error  { c.rd = append(c.rd, t); return nil }
func (c *deadlineConn) SetWriteDeadline(t time.Time) error { c.wr = append(c.wr, t); return nil }

func equalTimes(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}
