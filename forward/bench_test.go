package forward

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/portcullis/portcullis/internal/accesslog"
)

// BenchmarkForwardGET measures one small GET through the proxy (client, proxy and
// origin in this process, keep-alive on both legs), served as the engine
// serves it.
func BenchmarkForwardGET(b *testing.B) {
	body := make([]byte, 1024)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(body)
	}))
	defer origin.Close()
	benchForwardGET(b, origin.URL)
}

func benchForwardGET(b *testing.B, originURL string) {
	tp := startProxy(b, Options{Log: discardLog{}})
	c := tp.client(b)
	url := originURL + "/obj"
	buf := make([]byte, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.CopyBuffer(io.Discard, resp.Body, buf)
			resp.Body.Close()
		}
	})
}

type discardLog struct{}

func (discardLog) Log(*accesslog.Entry) {}

// BenchmarkTunnelThroughput measures bytes/s through one CONNECT tunnel to a sink
// (both legs are *net.TCPConn, so the relay splices), and straight to the sink
// for comparison.
func BenchmarkTunnelThroughput(b *testing.B) {
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	go func() {
		for {
			c, err := sink.Accept()
			if err != nil {
				return
			}
			go func() {
				n, _ := io.Copy(io.Discard, c)
				_, _ = io.WriteString(c, strconv.FormatInt(n, 10))
				_ = c.Close()
			}()
		}
	}()
	tp := startProxy(b, Options{Log: discardLog{}, Config: connectPorts(b, "tcp://"+sink.Addr().String())})
	b.Run("direct", func(b *testing.B) {
		c, err := net.Dial("tcp", sink.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		pump(b, c, bufio.NewReader(c))
	})
	b.Run("tunnel", func(b *testing.B) {
		c, err := net.Dial("tcp", tp.addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "CONNECT "+sink.Addr().String()+" HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("CONNECT: %v %v", resp, err)
		}
		pump(b, c, br)
	})
}

// pump writes 1 MiB per iteration to c, then checks the sink's byte count.
func pump(b *testing.B, c net.Conn, br *bufio.Reader) {
	chunk := make([]byte, 1<<20)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
		n += len(chunk)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	got, _ := io.ReadAll(br)
	if string(got) != strconv.Itoa(n) {
		b.Fatalf("sink counted %s bytes, want %d", got, n)
	}
}
