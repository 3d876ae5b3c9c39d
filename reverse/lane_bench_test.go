package reverse

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/cache"
)

// repeatConn is an in-memory connection that delivers the same request
// left times, then EOF, and counts what is written to it: the lane's
// per-request work without the kernel's.
type repeatConn struct {
	req     []byte
	left    int
	written int64
}

func (c *repeatConn) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	c.left--
	return copy(p, c.req), nil
}
func (c *repeatConn) Write(p []byte) (int, error) { c.written += int64(len(p)); return len(p), nil }
func (c *repeatConn) Close() error                { return nil }
func (c *repeatConn) LocalAddr() net.Addr         { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }
func (c *repeatConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *repeatConn) SetDeadline(time.Time) error      { return nil }
func (c *repeatConn) SetReadDeadline(time.Time) error  { return nil }
func (c *repeatConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkLaneHit1KiB: fresh hits of a 1 KiB object answered on the lane
// (parse, route, policy, cache lookup, response framing), one connection,
// as bench/ scenario c without the sockets and without an access log.
func BenchmarkLaneHit1KiB(b *testing.B) {
	origin, c := cacheableOrigin(b)
	h := benchHandler(b, origin, func(_ string, rt http.RoundTripper) http.RoundTripper {
		return c.WrapPolicy(&cache.Policy{Enabled: true}, rt)
	}, false)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://127.0.0.1/cacheable", nil))
	if rec.Code != 200 {
		b.Fatalf("warming: %d", rec.Code)
	}
	l := NewLane(&http.Server{IdleTimeout: time.Minute, ReadHeaderTimeout: 10 * time.Second}, func() *Handler { return h }, slog.New(slog.DiscardHandler))
	conn := &repeatConn{req: []byte("GET /cacheable HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: wrk\r\n\r\n"), left: b.N}
	lc := &laneConn{lane: l, c: conn, peer: netip.MustParseAddr("127.0.0.1")}
	if !l.conns.Add(lc) {
		b.Fatal("the lane refused a connection")
	}
	b.ReportAllocs()
	b.ResetTimer()
	lc.Serve()
	b.StopTimer()
	if answered, _ := l.Stats(); answered != uint64(b.N) {
		b.Fatalf("the lane answered %d of %d", answered, b.N)
	}
	if conn.written < int64(b.N)*1024 {
		b.Fatalf("%d bytes written for %d responses", conn.written, b.N)
	}
}
