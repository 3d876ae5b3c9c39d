package accesslog

import (
	"io"
	"testing"
	"time"
)

func BenchmarkAccessLogLog(b *testing.B) {
	a, err := NewWriter(Config{}, io.Discard)
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
