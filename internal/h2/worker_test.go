package h2

import (
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// Handlers run on pooled workers, and the workers left idle end when the
// server's last connection ends (no goroutine outlives the connections it
// served).
func TestWorkersEndWithLastConnection(t *testing.T) {
	srv, c := workerBurst(t)
	c.nc.Close()
	if !eventually(t, 20*time.Second, func() bool { return srv.workers.Load() == 0 }) {
		t.Fatalf("%d workers left after the last connection ended", srv.workers.Load())
	}
}

// Workers left idle by a burst of streams end after workerIdle although
// their connection stays open and asks nothing more.
func TestIdleWorkersEndOnQuietConnection(t *testing.T) {
	srv, c := workerBurst(t)
	if !eventually(t, 20*time.Second, func() bool { return srv.workers.Load() == 0 }) {
		t.Fatalf("%d workers left idle on a quiet connection", srv.workers.Load())
	}
	c.get(41, "/") // the connection still serves
	if r := c.response(41); r.status != "200" || string(r.body) != "ok" {
		t.Fatalf("after the workers ended: %s %q", r.status, r.body)
	}
}

// workerBurst serves 20 streams in a row on one connection of a new server
// answering "ok", and checks that they were answered by counted workers.
func workerBurst(t *testing.T) (*Server, *rawClient) {
	t.Helper()
	srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	c := dialRaw(t, srv)
	for id := uint32(1); id < 40; id += 2 {
		c.get(id, "/")
		if r := c.response(id); r.status != "200" || string(r.body) != "ok" {
			t.Fatalf("stream %d: %s %q", id, r.status, r.body)
		}
	}
	if srv.workers.Load() < 1 {
		t.Fatal("no worker counted")
	}
	return srv, c
}

// A worker's stack, grown by its handlers, is not shrunk by the garbage
// collector while the worker waits for its next stream (and grown again,
// copied, by that stream's handler): a handler on the same worker finds
// itself at the same stack address before and after collections.
func TestIdleWorkerKeepsItsStack(t *testing.T) {
	var addr []uintptr
	srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var here byte
		addr = append(addr, uintptr(unsafe.Pointer(&here)))
		io.WriteString(w, deepStack(24))
	})}
	c := dialRaw(t, srv)
	for id := uint32(1); id <= 5; id += 2 {
		if id == 5 {
			runtime.GC()
			runtime.GC()
		}
		c.get(id, "/")
		if r := c.response(id); r.status != "200" {
			t.Fatalf("stream %d: %s", id, r.status)
		}
	}
	if n := srv.workers.Load(); n != 1 {
		t.Skipf("%d workers served the three streams, want one", n)
	}
	if addr[2] != addr[1] {
		t.Fatalf("the idle worker's stack moved across a collection (handler at %#x, then %#x)", addr[1], addr[2])
	}
}

// deepStack uses about n × 512 bytes of stack.
//
//go:noinline
func deepStack(n int) string {
	var pad [64]uint64
	pad[n%64] = uint64(n)
	if n == 0 {
		return "ok"
	}
	s := deepStack(n - 1)
	if pad[n%64] != uint64(n) {
		s += "!"
	}
	return s
}
