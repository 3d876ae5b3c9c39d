package upstream

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
)

// BenchmarkRoundTrip is a small GET on a kept connection to a loopback
// origin (a raw one, so the origin's cost is small and the same for both):
// this client against net/http's Transport.
func BenchmarkRoundTrip(b *testing.B) {
	srv := newRawServer(b, func(c net.Conn, br *bufio.Reader) {
		bw := bufio.NewWriter(c)
		for {
			// Read the head up to its empty line (the benchmark's GETs have no body).
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) <= 2 {
					break
				}
			}
			bw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Mon, 07 Dec 2026 06:00:00 GMT\r\nContent-Length: 12\r\n\r\nhello world\n")
			if bw.Flush() != nil {
				return
			}
		}
	})
	for _, rt := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"client=upstream", New(Config{})},
		{"client=nethttp", &http.Transport{DisableCompression: true}},
	} {
		b.Run(rt.name, func(b *testing.B) {
			req, _ := http.NewRequest(http.MethodGet, srv.url()+"/bench?x=1", nil)
			req.Header["User-Agent"] = []string{""}
			req.Header.Set("Accept", "*/*")
			buf := make([]byte, 64)
			b.ReportAllocs()
			// CPU time per request (this process: client and origin), which a
			// loaded machine's scheduling delays do not inflate as they do ns/op.
			cpu0 := cpuTime()
			for b.Loop() {
				resp, err := rt.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := resp.Body.Read(buf); err == io.EOF {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
				resp.Body.Close()
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			if ci, ok := rt.rt.(interface{ CloseIdleConnections() }); ok {
				ci.CloseIdleConnections()
			}
		})
	}
}

// originHead is the head the bench origin (shared/bench/origin) sends for
// /small, as Go's net/http server writes it.
const originHead = "HTTP/1.1 200 OK\r\nContent-Length: 1024\r\nContent-Type: text/plain\r\nDate: Mon, 07 Dec 2026 19:31:45 GMT\r\n\r\n"

// loopReader serves the same bytes forever.
type loopReader struct {
	s   string
	off int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.s[r.off:])
		n += c
		r.off = (r.off + c) % len(r.s)
	}
	return n, nil
}

// BenchmarkReadHead reads a typical origin head from a bufio.Reader that
// holds it (the usual case: one read of the socket takes the whole answer),
// into a head the caller reuses, as an exchange does.
func BenchmarkReadHead(b *testing.B) {
	for _, c := range []struct {
		name string
		read func(*bufio.Reader, int, *head, []string) (int, error)
	}{
		{"parser=new", readHead},
		{"parser=ref", refReadHead},
	} {
		b.Run(c.name, func(b *testing.B) {
			// A buffer a whole number of heads long, so each head is whole in it.
			br := bufio.NewReaderSize(&loopReader{s: originHead}, 32*len(originHead))
			var h head
			var vals [8]string
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				if _, err := c.read(br, DefaultMaxHeaderBytes, &h, vals[:]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
