package h2

import (
	"io"
	"net/http"
	"testing"
)

// TestAdoptHeader: a header map handed over (AdoptHeader, as internal/relay
// hands the upstream response's) before Header was called becomes the
// answer's (sent as Header()'s would be, changes made through Header()
// after it included); once Header was called, or after WriteHeader, it is
// refused and nothing changes.
func TestAdoptHeader(t *testing.T) {
	type adopter interface{ AdoptHeader(http.Header) bool }
	c := dialRaw(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := w.(adopter)
		if !ok {
			t.Error("the stream's ResponseWriter has no AdoptHeader")
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
	})})
	c.get(1, "/a")
	r := c.response(1)
	if r.status != "200" || string(r.body) != "hello" || r.get("content-length") != "5" || r.get("x-adopted") != "yes" ||
		r.get("x-after") != "2" || r.get("x-other") != "" {
		t.Fatalf("adopted: %s %q %v", r.status, r.body, r.fields)
	}
	c.get(3, "/late")
	r = c.response(3)
	if string(r.body) != "late" || r.get("x-own") != "1" || r.get("x-adopted") != "" {
		t.Fatalf("refused: %q %v", r.body, r.fields)
	}
}
