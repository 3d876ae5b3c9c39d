package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSlowlorisCutOff: clients that dribble their headers are disconnected at
// read_header_timeout while a well-behaved client is served at once.
func TestSlowlorisCutOff(t *testing.T) {
	o := startOrigin(t, nil)
	p := startProxy(t, `
forward:
  listen: ["127.0.0.1:0"]
  read_header_timeout: 1s
resolver: {egress: {allow: ["127.0.0.0/8"]}}
`, nil)
	const slow = 50
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cut := make(chan time.Duration, slow)
	var wg sync.WaitGroup
	for i := range slow {
		c, err := net.Dial("tcp", p.fwd())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Add(1)
		go func() { // writer: one header byte every 100ms until the proxy hangs up
			defer wg.Done()
			start := time.Now()
			header := fmt.Sprintf("GET %s/slow%d HTTP/1.1\r\nHost: %s\r\nX-Slow: %s", o.url(), i, o.addr(), string(make([]byte, 200)))
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for j := 0; ; j++ {
				if _, err := c.Write([]byte{header[j%len(header)]}); err != nil {
					break
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				c.SetReadDeadline(time.Now().Add(time.Millisecond))
				if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
					break // EOF or reset: cut off
				}
			}
			cut <- time.Since(start)
		}()
	}
	// A normal client is served while they dribble.
	client := p.client(t)
	for i := range 5 {
		start := time.Now()
		resp, err := client.Get(fmt.Sprintf("%s/normal%d", o.url(), i))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("normal client during slowloris: %v %v", err, resp)
		}
		resp.Body.Close()
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("normal request took %v", d)
		}
	}
	deadline := time.After(10 * time.Second)
	for range slow {
		select {
		case d := <-cut:
			if d > 4*time.Second {
				t.Errorf("slow client cut off only after %v (read_header_timeout 1s)", d)
			}
		case <-deadline:
			t.Fatal("slow clients still connected after 10s")
		}
	}
	wg.Wait()
	for _, r := range o.requests() {
		if len(r.Target) > 5 && r.Target[:5] == "/slow" {
			t.Errorf("a slow request reached the origin: %s", r.Target)
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// idleConns is how many idle client connections TestIdleConnectionsBounded holds.
const idleConns = 2000

// TestIdleConnectionsBounded: thousands of idle connections neither stop service nor
// cost more than a bounded amount of memory each, and their goroutines go when they
// close.
func TestIdleConnectionsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	o := startOrigin(t, nil)
	p := startProxy(t, `
forward: {listen: ["127.0.0.1:0"], read_header_timeout: 2m}   # idle, not slowloris: keep them
resolver: {egress: {allow: ["127.0.0.0/8"]}}
`, nil)
	client := p.client(t)
	get := func(path string) {
		t.Helper()
		resp, err := client.Get(o.url() + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", path, err, resp)
		}
		resp.Body.Close()
	}
	get("/warm")
	baseG := runtime.NumGoroutine()
	baseHeap := heapInUse()
	conns := make([]net.Conn, 0, idleConns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range idleConns {
		c, err := net.Dial("tcp", p.fwd())
		if err != nil {
			t.Fatalf("after %d idle connections: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	// Every connection has a server goroutine once the proxy accepted it (the margin
	// allows for goroutines of earlier tests still winding down).
	waitFor(t, 20*time.Second, "the proxy to accept the idle connections", func() bool {
		return runtime.NumGoroutine() >= baseG+idleConns*9/10
	})
	start := time.Now()
	get("/while-idle")
	if d := time.Since(start); d > time.Second {
		t.Errorf("request among %d idle connections took %v", idleConns, d)
	}
	perConn := (heapInUse() - baseHeap) / idleConns
	t.Logf("%d idle connections: %d bytes of heap each (both ends)", idleConns, perConn)
	if perConn > 32<<10 {
		t.Errorf("%d bytes of heap per idle connection, want under 32 KiB", perConn)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = conns[:0]
	waitFor(t, 10*time.Second, "idle connection goroutines to end", func() bool {
		return runtime.NumGoroutine() <= baseG+20
	})
	get("/after")
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// blackhole returns a loopback address whose accept queue is full: connection
// attempts to it get no answer at all, like a filtered port.
func blackhole(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(sa.(*syscall.SockaddrInet4).Port)
	// Fill the queue; the first attempt that times out proves the hole is closed.
	for i := 0; i < 16; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return addr
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("could not fill a loopback accept queue")
	return ""
}

// TestConnectToBlackholeFailsPromptly: CONNECTs (and plain requests) to a port that
// never answers fail with 504 at dial_timeout, many at once, while other clients are
// served.
func TestConnectToBlackholeFailsPromptly(t *testing.T) {
	hole := blackhole(t)
	_, port, _ := net.SplitHostPort(hole)
	o := startOrigin(t, nil)
	p := startProxy(t, fmt.Sprintf(`
forward:
  listen: ["127.0.0.1:0"]
  connect_ports: [%s]
  dial_timeout: 1s
resolver: {egress: {allow: ["127.0.0.0/8"]}}
`, port), nil)
	const n = 20
	type result struct {
		code int
		d    time.Duration
	}
	results := make(chan result, n)
	for range n {
		go func() {
			start := time.Now()
			code, _ := connect(t, p.fwd(), hole)
			results <- result{code, time.Since(start)}
		}()
	}
	client := p.client(t)
	resp, err := client.Get(o.url() + "/meanwhile")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("normal request during the CONNECT storm: %v %v", err, resp)
	}
	resp.Body.Close()
	for range n {
		r := <-results
		if r.code != http.StatusGatewayTimeout && r.code != http.StatusBadGateway {
			t.Errorf("CONNECT to a blackhole: %d, want 504/502", r.code)
		}
		if r.d > 4*time.Second {
			t.Errorf("CONNECT to a blackhole answered after %v (dial_timeout 1s)", r.d)
		}
	}
	start := time.Now()
	resp, err = client.Get("http://" + hole + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout || time.Since(start) > 4*time.Second {
		t.Errorf("GET to a blackhole: %d after %v, want 504 within the dial timeout", resp.StatusCode, time.Since(start))
	}
}

// TestSlowReadersBounded: clients that ask for large responses and never read them
// do not make the proxy buffer those bodies (heap stays far below their total) nor
// delay other clients.
func TestSlowReadersBounded(t *testing.T) {
	const size = 8 << 20
	chunk := make([]byte, 64<<10)
	o := startOrigin(t, func(c net.Conn, r *http.Request) bool {
		if r.URL.Path != "/big" {
			return okReply(c, r)
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := c.Write(chunk); err != nil {
				return false
			}
		}
		return true
	})
	p := startProxy(t, loopbackPolicy, nil)
	baseHeap := heapInUse()
	const slow = 20
	for range slow {
		c, err := net.Dial("tcp", p.fwd())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET %s/big HTTP/1.1\r\nHost: %s\r\n\r\n", o.url(), o.addr())
	}
	waitFor(t, 10*time.Second, "every slow request to reach the origin", func() bool {
		return len(o.requests()) >= slow
	})
	start := time.Now()
	resp, err := p.client(t).Get(o.url() + "/small")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("normal client beside slow readers: %v %v", err, resp)
	}
	resp.Body.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("normal request took %v", d)
	}
	grown := heapInUse() - baseHeap
	t.Logf("%d slow readers of %d MiB each: heap grew %d KiB", slow, size>>20, grown>>10)
	if grown > slow*size/8 {
		t.Errorf("heap grew by %d bytes: the proxy buffers bodies its clients do not read", grown)
	}
}
