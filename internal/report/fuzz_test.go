package report

import (
	"bytes"
	"testing"
)

// FuzzParseLine: no line, however malformed, panics the parser; a line it accepts
// has a time. Seeds: lines of every format as the proxy writes them.
func FuzzParseLine(f *testing.F) {
	entries := testEntries()[:40]
	for _, format := range formats {
		for _, line := range bytes.SplitAfter(writeLog(f, format, entries), []byte("\n")) {
			f.Add(line)
		}
	}
	f.Add([]byte(`1795684530.251 x`))
	f.Add([]byte(`- - - [bad] "`))
	f.Add([]byte(`10.0.0.1 - \x [26/Nov/2026:09:15:30 +0000] "GET \" HTTP/1.1" 200 - "\\" "\x4`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := parseLine(line)
		if err == nil && r.time.IsZero() {
			t.Errorf("accepted %q without a time", line)
		}
	})
}
