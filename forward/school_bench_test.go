package forward

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/filter/filetype"
	"github.com/portcullis/portcullis/filter/phrase"
	"github.com/portcullis/portcullis/rules"
)

// BenchmarkSchoolPageGET measures a 20 KB HTML page through the proxy without the
// school checks and with all of them (per-group SafeSearch lookup, file-type check,
// phrase scoring of the whole page, which passes).
func BenchmarkSchoolPageGET(b *testing.B) {
	page := "<html><body>" + strings.Repeat("<p>The history of Monaco and its casino, chapter four.</p>", 350) + "</body></html>"
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, page)
	}))
	defer origin.Close()
	pc := phrase.Config{Lists: []string{writeTestFile(b, b.TempDir(), "phrases.txt", testPhrases)}}
	m, err := pc.Compile()
	if err != nil {
		b.Fatal(err)
	}
	school := &Config{School: School{
		SafeSearchGroups: map[string]filter.SafeSearch{"students": {Google: true, YouTube: filter.YouTubeStrict}},
		FileTypes:        filetype.Config{BlockExtensions: []string{".exe", ".msi"}, MaxBytes: 1 << 30},
		Phrase:           phrase.Config{Threshold: 1 << 20},
	}}
	groups := func(*rules.Facts) []string { return []string{"students"} }
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"off", Options{Log: discardLog{}}},
		{"school", Options{Log: discardLog{}, Config: school, Phrases: m, Groups: groups}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tp := startProxy(b, bc.opts)
			c := tp.client(b)
			buf := make([]byte, 32<<10)
			b.SetBytes(int64(len(page)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := c.Get(origin.URL + "/page")
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.CopyBuffer(io.Discard, resp.Body, buf)
					resp.Body.Close()
				}
			})
		})
	}
}
