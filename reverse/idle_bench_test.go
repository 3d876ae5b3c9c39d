package reverse

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
)

// BenchmarkIdleConnMemory measures what an idle keep-alive client connection
// costs the door (bench/ scenario f, in-process): it opens idleConns
// connections, sends one proxied request on each, keeps them open and idle,
// and reports the growth of the heap and goroutine stacks per connection
// (B/idle-conn). The client's own sockets are in the same process and count
// too (a few hundred bytes each; their read buffers are dropped).
func BenchmarkIdleConnMemory(b *testing.B) {
	const idleConns = 500
	origin := benchOrigin(b, 1024)
	door := benchDoor(b, origin.URL)
	addr := door.Listener.Addr().String()
	req := []byte("GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	for b.Loop() {
		heap0, stack0 := memInUse()
		conns := make([]net.Conn, 0, idleConns)
		for range idleConns {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
			if _, err := c.Write(req); err != nil {
				b.Fatal(err)
			}
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, res.Body); err != nil || res.StatusCode != http.StatusOK {
				b.Fatalf("status %d, %v", res.StatusCode, err)
			}
			res.Body.Close()
		}
		heap1, stack1 := memInUse()
		b.ReportMetric(float64(heap1+stack1-heap0-stack0)/idleConns, "B/idle-conn")
		b.ReportMetric(float64(stack1-stack0)/idleConns, "stack-B/idle-conn")
		for _, c := range conns {
			c.Close()
		}
	}
}

// memInUse is the heap and stack memory in use after two collections (the
// second lets stacks shrink).
func memInUse() (heap, stack int64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse), int64(ms.StackInuse)
}
