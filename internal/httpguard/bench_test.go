package httpguard

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// browserGet is a typical browser request head.
const browserGet = "GET /static/app.js?v=1234 HTTP/1.1\r\nHost: www.example.test\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: */*\r\nAccept-Language: en-GB,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Connection: keep-alive\r\nReferer: https://www.example.test/\r\nCookie: session=0123456789abcdef; theme=dark\r\n" +
	"Sec-Fetch-Dest: script\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Site: same-origin\r\nCache-Control: no-cache\r\n\r\n"

// BenchmarkRead reads 64 requests through a guarded connection ("guarded")
// and straight ("bare"), 4 KiB at a time as net/http's bufio.Reader does;
// ns/req is the cost per request.
func BenchmarkRead(b *testing.B) {
	body := strings.Repeat("x", 1024)
	cases := []struct{ name, req string }{
		{"get", browserGet},
		{"post-1KiB", "POST /api/items HTTP/1.1\r\nHost: api.example.test\r\nContent-Type: application/json\r\nContent-Length: 1024\r\n\r\n" + body},
		{"chunked-1KiB", fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n\r\n200\r\n%s\r\n200\r\n%s\r\n0\r\n\r\n", body[:512], body[:512])},
	}
	const reqs = 64
	for _, bc := range cases {
		stream := bytes.Repeat([]byte(bc.req), reqs)
		for _, guard := range []bool{true, false} {
			name := bc.name + "/bare"
			if guard {
				name = bc.name + "/guarded"
			}
			b.Run(name, func(b *testing.B) {
				src := bytes.NewReader(stream)
				cc := &chunkConn{r: src, size: 4096}
				g := NewConn(cc, nil)
				var r io.Reader = cc
				if guard {
					r = g
				}
				buf := make([]byte, 4096)
				b.SetBytes(int64(len(stream)))
				b.ReportAllocs()
				for b.Loop() {
					src.Reset(stream)
					g.f = follower{}
					for {
						if _, err := r.Read(buf); err != nil {
							break
						}
					}
				}
				if _, refused := g.Refused(); refused || g.f.st == sStopped {
					b.Fatalf("the guard lost the stream (state %d)", g.f.st)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*reqs), "ns/req")
			})
		}
	}
}

// BenchmarkNetHTTPReadRequest is net/http's own parse of browserGet, for
// scale: the guard's cost per request is a few percent of it.
func BenchmarkNetHTTPReadRequest(b *testing.B) {
	h := []byte(browserGet)
	r := bytes.NewReader(h)
	br := bufio.NewReader(r)
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(h)
		br.Reset(r)
		if _, err := http.ReadRequest(br); err != nil {
			b.Fatal(err)
		}
	}
}
