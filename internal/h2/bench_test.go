package h2

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/portcullis/portcullis/internal/ctxafter"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// BenchmarkServe measures one request on a kept connection — GET, 1 KiB
// answer, 10 streams in flight — through this mux (its handler also as an
// ImmediateHandler, and a handler doing what a proxied answer does to the
// stream) and through Go's http2 server with the same handler and
// the same frame-level client, so ns/op
// and allocs/op are per request and mostly the server's. cpu-ns/op is the
// process's CPU time (user and system, client included) per request: on a
// machine shared with other work it moves far less than ns/op.
//
//	go test -run XXX -bench Serve -benchmem ./internal/h2/
func BenchmarkServe(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 1024)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(payload)
	})
	// proxied answers as internal/relay gives them: the upstream client
	// registers its cut with the request's context (internal/ctxafter) and
	// stops it at the end; the response's header map, made by the upstream
	// client, goes to the writer (AdoptHeader) or is copied into its map.
	proxied := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stop := ctxafter.Func(r.Context(), func() {})
		h := make(http.Header, 2)
		h["Content-Type"] = []string{"text/plain"}
		h["Content-Length"] = []string{"1024"}
		if a, ok := w.(interface{ AdoptHeader(http.Header) bool }); !ok || !a.AdoptHeader(h) {
			for k, vv := range h {
				w.Header()[k] = vv
			}
		}
		w.WriteHeader(http.StatusOK)
		w.Write(payload)
		if stop != nil {
			stop()
		}
	})
	servers := []struct {
		name  string
		serve func(context.Context, net.Conn) error
	}{
		{"h2", (&Server{Handler: h}).ServeConn},
		{"h2-immediate", (&Server{Handler: immediateFunc(h)}).ServeConn},
		{"h2-proxied", (&Server{Handler: proxied}).ServeConn},
		{"x-net-http2", func(ctx context.Context, c net.Conn) error {
			(&http2.Server{}).ServeConn(c, &http2.ServeConnOpts{Context: ctx, Handler: h})
			return nil
		}},
	}
	for _, sv := range servers {
		b.Run(sv.name, func(b *testing.B) { benchServe(b, sv.serve) })
	}
}

// immediateFunc is h as an ImmediateHandler that answers every request at
// once.
type immediateFunc http.HandlerFunc

func (f immediateFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) { f(w, r) }

func (f immediateFunc) ServeImmediate(w http.ResponseWriter, r *http.Request) bool {
	f(w, r)
	return true
}

func benchServe(b *testing.B, serve func(context.Context, net.Conn) error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		serve(ctx, c)
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriterSize(nc, 64<<10)
	br := bufio.NewReaderSize(nc, 64<<10)
	fr := http2.NewFramer(bw, br)
	io.WriteString(bw, clientPreface)
	fr.WriteSettings()
	fr.WriteWindowUpdate(0, 1<<30)
	bw.Flush()
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	const inflight = 10
	id := uint32(1)
	send := func() {
		hbuf.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "bench.test"}, {":path", "/small"}, {"user-agent", "bench"}, {"accept", "*/*"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hbuf.Bytes(), EndStream: true, EndHeaders: true})
		id += 2
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	sent, doneN := 0, 0
	for sent < b.N && sent < inflight {
		send()
		sent++
	}
	bw.Flush()
	var credit uint32
	for doneN < b.N {
		f, err := fr.ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			credit += f.Length
			if f.StreamEnded() {
				doneN++
				if sent < b.N {
					send()
					sent++
				}
			}
		case *http2.HeadersFrame:
			if f.StreamEnded() {
				doneN++
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			b.Fatalf("unexpected %v", describe(f))
		}
		if credit > 1<<20 {
			fr.WriteWindowUpdate(0, credit)
			credit = 0
		}
		if br.Buffered() == 0 {
			bw.Flush()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	nc.Close()
	<-done
}

// BenchmarkEncodeFields encodes the fields of a usual answer that go
// through HPACK's encoder (:status and content-length do not) with the
// encoder alone and through the connection's field cache, on a connection
// that sent them before.
//
//	go test -run XXX -bench EncodeFields ./internal/h2/
func BenchmarkEncodeFields(b *testing.B) {
	fields := []hpack.HeaderField{{Name: "content-type", Value: "text/plain"},
		{Name: "date", Value: "Mon, 07 Dec 2026 17:00:00 GMT"}, {Name: "server", Value: "origin"}}
	for _, cached := range []bool{false, true} {
		name := "encoder"
		if cached {
			name = "cache"
		}
		b.Run(name, func(b *testing.B) {
			c := &conn{}
			c.henc = hpack.NewEncoder(&c.hbuf)
			for i := 0; i < b.N; i++ {
				c.hbuf.Reset()
				for _, f := range fields {
					if cached {
						c.field(f.Name, f.Value)
					} else {
						_ = c.henc.WriteField(f)
					}
				}
			}
		})
	}
}
