package admin

import (
	"io"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkLogFanout is the per-request cost of what the engine wires: one entry to the
// access log, the metrics and the status counters through Multi.
func BenchmarkLogFanout(b *testing.B) {
	a, err := NewAccessLogWriter(LogConfig{Format: FormatSquid}, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	l := Multi(a, NewMetrics(prometheus.NewRegistry()), NewStatus(nil))
	e := sampleEntry()
	e.Pool = "web"
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		l.Log(e)
	}
}

// BenchmarkLogFanoutParallel is the same from every core at once (Status takes a lock).
func BenchmarkLogFanoutParallel(b *testing.B) {
	a, err := NewAccessLogWriter(LogConfig{Format: FormatSquid}, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	l := Multi(a, NewMetrics(prometheus.NewRegistry()), NewStatus(nil))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		e := sampleEntry()
		for pb.Next() {
			l.Log(e)
		}
	})
}

func BenchmarkMetricsLog(b *testing.B) {
	m := NewMetrics(prometheus.NewRegistry())
	e := sampleEntry()
	b.ReportAllocs()
	for b.Loop() {
		m.Log(e)
	}
}

func BenchmarkStatusLog(b *testing.B) {
	s := NewStatus(nil)
	e := sampleEntry()
	e.Action = "block"
	b.ReportAllocs()
	for b.Loop() {
		s.Log(e)
	}
}

func BenchmarkAccessLogLog(b *testing.B) {
	a, err := NewAccessLogWriter(LogConfig{}, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	e := sampleEntry()
	b.ReportAllocs()
	for b.Loop() {
		a.Log(e)
	}
}

func BenchmarkFormat(b *testing.B) {
	e := sampleEntry()
	e.Time = time.Now()
	d := sampleDNSEntry()
	d.Time = e.Time
	for _, f := range []Format{FormatJSON, FormatCombined, FormatSquid} {
		b.Run(string(f), func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			for b.Loop() {
				buf = appendLine(buf[:0], f, e, false)
			}
		})
		b.Run(string(f)+"-dns", func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			for b.Loop() {
				buf = appendLine(buf[:0], f, d, false)
			}
		})
	}
}
