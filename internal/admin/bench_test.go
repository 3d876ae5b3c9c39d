package admin

import (
	"io"
	"testing"

	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkLogFanout is the per-request cost of what the engine wires: one entry to the
// access log, the metrics and the status counters through Multi.
func BenchmarkLogFanout(b *testing.B) {
	a, err := accesslog.NewWriter(accesslog.Config{Format: accesslog.FormatSquid}, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	l := accesslog.Multi(a, NewMetrics(prometheus.NewRegistry()), NewStatus(nil))
	e := benchEntry()
	e.Pool = "web"
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		l.Log(e)
	}
}

// BenchmarkLogFanoutParallel is the same from every core at once (Status takes a lock).
func BenchmarkLogFanoutParallel(b *testing.B) {
	a, err := accesslog.NewWriter(accesslog.Config{Format: accesslog.FormatSquid}, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	l := accesslog.Multi(a, NewMetrics(prometheus.NewRegistry()), NewStatus(nil))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		e := benchEntry()
		for pb.Next() {
			l.Log(e)
		}
	})
}

func BenchmarkMetricsLog(b *testing.B) {
	m := NewMetrics(prometheus.NewRegistry())
	e := benchEntry()
	b.ReportAllocs()
	for b.Loop() {
		m.Log(e)
	}
}

func BenchmarkStatusLog(b *testing.B) {
	s := NewStatus(nil)
	e := benchEntry()
	e.Action = "block"
	b.ReportAllocs()
	for b.Loop() {
		s.Log(e)
	}
}

// benchEntry is a forward-door entry like the ones the fan-out sees per request.
func benchEntry() *accesslog.Entry {
	e := entry("forward", "GET", "http://example.com:8080/path?q=1", "allow", 200, nil)
	e.User, e.Rule, e.Category, e.BytesIn, e.BytesOut = "alice", "default", "news", 12, 1024
	return e
}
