package forward

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portcullis/portcullis/internal/admin"
)

// BenchmarkForwardGET measures one small GET through the proxy (client, proxy and
// origin in this process, keep-alive on both legs).
func BenchmarkForwardGET(b *testing.B) {
	body := make([]byte, 1024)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(body)
	}))
	defer origin.Close()
	tp := startProxy(b, Options{Log: discardLog{}})
	c := tp.client(b)
	url := origin.URL + "/obj"
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

func (discardLog) Log(*admin.Entry) {}
