package filetype

import (
	"net/http"
	"net/url"
	"testing"
)

func BenchmarkCheck(b *testing.B) {
	chk, err := New(schoolConfig)
	if err != nil {
		b.Fatal(err)
	}
	req := &http.Request{URL: &url.URL{Path: "/files/report.pdf"}}
	resp := &http.Response{ContentLength: 500, Header: http.Header{
		"Content-Type":        {"application/pdf"},
		"Content-Disposition": {`attachment; filename="report.pdf"`},
	}}
	b.ReportAllocs()
	for b.Loop() {
		if blocked, _ := chk.Check(req, resp); blocked {
			b.Fatal("blocked")
		}
	}
}
