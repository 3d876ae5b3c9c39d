package h1

import (
	"io"
	"net/http"
	"testing"
)

// TestAdoptHeader: a header map handed over (AdoptHeader) before Header was
// called becomes the response's (sent as Header()'s would be, changes made
// through Header() after it included); once Header was called, or after
// WriteHeader, it is refused and nothing changes.
func TestAdoptHeader(t *testing.T) {
	type adopter interface{ AdoptHeader(http.Header) bool }
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		a, ok := w.(adopter)
		if !ok {
			t.Error("the engine's ResponseWriter has no AdoptHeader")
			return
		}
		if r.URL.Path == "/late" {
			w.Header().Set("X-Own", "1")
			if a.AdoptHeader(http.Header{"X-Adopted": {"no"}}) {
				t.Error("AdoptHeader took a map after Header was called")
			}
			io.WriteString(w, "late")
			return
		}
		h := http.Header{"X-Adopted": {"yes"}, "Content-Length": {"5"}}
		if !a.AdoptHeader(h) {
			t.Error("AdoptHeader refused before Header was called")
		}
		w.Header().Set("X-After", "2")
		w.WriteHeader(http.StatusOK)
		if a.AdoptHeader(http.Header{"X-Other": {"1"}}) {
			t.Error("AdoptHeader took a map after WriteHeader")
		}
		io.WriteString(w, "hello")
	}, nil)
	c, br := ts.dial(t)
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /late HTTP/1.1\r\nHost: x\r\n\r\n")
	res, body := readResp(t, br, "GET")
	if body != "hello" || res.ContentLength != 5 || res.Header.Get("X-Adopted") != "yes" || res.Header.Get("X-After") != "2" || res.Header.Get("X-Other") != "" {
		t.Fatalf("adopted: %d %q %v", res.ContentLength, body, res.Header)
	}
	res, body = readResp(t, br, "GET")
	if body != "late" || res.Header.Get("X-Own") != "1" || res.Header.Get("X-Adopted") != "" {
		t.Fatalf("refused: %q %v", body, res.Header)
	}
}
