package forward

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/anonymize"
	"github.com/portcullis/portcullis/internal/benchwire"
	"github.com/portcullis/portcullis/internal/h1"
)

// BenchmarkH1Forward1KiB is scenario d in one process: keep-alive clients on
// loopback send wrk's absolute-form GET of 1 KiB through the door served by
// internal/h1 (the default elite profile, the real upstream client, an
// access log that discards) to an origin that allocates nothing, so that
// allocs/op are the server's per forward GET (h1, door, relay, upstream
// client), comparable with reverse's BenchmarkH1Reverse1KiB; cpu-ns/op
// counts the origin's and the clients' work too.
func BenchmarkH1Forward1KiB(b *testing.B) {
	origin := strings.TrimPrefix(benchwire.Origin(b), "http://")
	elite := anonymize.Elite()
	p, err := New(Options{
		Anonymizer: func(string) Anonymizer { return elite },
		Log:        discardLog{},
	})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &h1.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	req := []byte("GET http://" + origin + "/small HTTP/1.1\r\nHost: " + origin + "\r\n\r\n")
	b.ReportAllocs()
	b.SetBytes(1024)
	cpu0 := processCPU()
	benchwire.Clients(b, ln.Addr().String(), req, 1024, 8192)
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}
