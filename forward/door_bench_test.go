package forward

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/portcullis/portcullis/anonymize"
	"github.com/portcullis/portcullis/internal/accesslog"
)

// BenchmarkForwardDoorGET measures the forward door's own work for one
// absolute-form GET of a 1 KiB object, the request of peers.sh's scenario d:
// the decision, the header rewriting of the default (elite) profile, the
// relay and the access-log entry, with the connection engine and the upstream
// client replaced by stand-ins that cost next to nothing (a writer that
// discards, a transport that answers a canned response). What it reports per
// op is the door's share of a request through the real binary; cpu-ns/op
// (the process's CPU time, garbage collection included) is the figure to
// compare on a shared machine.
func BenchmarkForwardDoorGET(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	elite := anonymize.Elite()
	var logged int
	p, err := New(Options{
		Transport:  cannedTransport{body: body},
		Anonymizer: func(string) Anonymizer { return elite },
		Log:        statusSum{&logged},
	})
	if err != nil {
		b.Fatal(err)
	}
	target, err := url.ParseRequestURI("http://127.0.0.1:18080/small")
	if err != nil {
		b.Fatal(err)
	}
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	for range b.N {
		// What the connection engine hands the door for wrk's request line
		// "GET http://127.0.0.1:18080/small HTTP/1.1" with only a Host field.
		u := *target
		r := &http.Request{
			Method: http.MethodGet, URL: &u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: make(http.Header), Host: "127.0.0.1:18080", RemoteAddr: "127.0.0.1:40000",
			RequestURI: "http://127.0.0.1:18080/small", Body: http.NoBody,
		}
		clear(w.h)
		w.status = 0
		p.ServeHTTP(w, r)
		if w.status != http.StatusOK || w.n != int64(len(body)) {
			b.Fatalf("status %d, %d bytes", w.status, w.n)
		}
		w.n = 0
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	if logged != 200*b.N {
		b.Fatalf("logged %d statuses, want %d", logged, 200*b.N)
	}
}

// cannedTransport answers every request with 200 and body, its header built
// afresh each time as an upstream client's parser builds it.
type cannedTransport struct{ body []byte }

func (t cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{
			"Content-Type":   {"application/octet-stream"},
			"Content-Length": {"1024"},
			"Date":           {"Mon, 07 Dec 2026 11:00:00 GMT"},
		},
		ContentLength: int64(len(t.body)), Body: io.NopCloser(bytes.NewReader(t.body)), Request: r,
	}, nil
}

// discardWriter is an http.ResponseWriter that keeps the status and counts
// the body bytes.
type discardWriter struct {
	h      http.Header
	status int
	n      int64
}

func (w *discardWriter) Header() http.Header { return w.h }

// AdoptHeader takes h as the header map, as internal/h1's writer does while
// no header was written (the benchmark's loop clears the map it keeps).
func (w *discardWriter) AdoptHeader(h http.Header) bool {
	if w.status != 0 || len(w.h) != 0 {
		return false
	}
	w.h = h
	return true
}

func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += int64(len(p))
	return len(p), nil
}

// statusSum is an access log that adds up the statuses it is given.
type statusSum struct{ sum *int }

func (s statusSum) Log(e *accesslog.Entry) { *s.sum += e.Status }
