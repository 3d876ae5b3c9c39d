package h1

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// benchServe measures one request and response on a kept loopback
// connection to a trivial handler (which registers a context.AfterFunc on
// its request's context when watch), served by serve (which returns the
// listener's address and its shutdown).
func benchServe(b *testing.B, watch bool, serve func(net.Listener, http.Handler) func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	stop := serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if watch {
			defer context.AfterFunc(r.Context(), func() {})()
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello, world\n")
	}))
	defer stop()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	req := []byte("GET /index.html HTTP/1.1\r\nHost: example.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
}

func BenchmarkServe(b *testing.B) {
	for _, watch := range []bool{false, true} {
		name := ""
		if watch {
			// the handler watches its request's context as the upstream
			// client does for a proxied request
			name = "-watched"
		}
		b.Run("h1"+name, func(b *testing.B) {
			benchServe(b, watch, func(ln net.Listener, h http.Handler) func() {
				s := &Server{Handler: h, IdleTimeout: time.Minute, ReadHeaderTimeout: 10 * time.Second}
				go s.Serve(ln)
				return func() { s.Close() }
			})
		})
		b.Run("net-http"+name, func(b *testing.B) {
			benchServe(b, watch, func(ln net.Listener, h http.Handler) func() {
				s := &http.Server{Handler: h, IdleTimeout: time.Minute, ReadHeaderTimeout: 10 * time.Second}
				go s.Serve(ln)
				return func() { s.Close() }
			})
		})
	}
}
