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
