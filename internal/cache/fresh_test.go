package cache

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// rawWriter is a ResponseWriter that takes rendered header fields, as
// internal/h1's does.
type rawWriter struct {
	discardWriter
	fields []byte
}

func (w *rawWriter) SetRawHeader(fields []byte, contentLength int64, withDate bool) bool {
	w.fields = fields
	return true
}

// TestServeFreshEditRendered: a hit with an Edit (the door's origin hiding)
// goes as rendered fields too, the same fields the header map would have
// held, and hits without the Edit keep the stored fields.
func TestServeFreshEditRendered(t *testing.T) {
	_, rt, req := warmWith(t, "/app.css", func(h http.Header) {
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("Content-Type", "text/css")
		h.Set("Server", "origin-httpd")
		h.Set("X-Powered-By", "php")
	}, "body")
	fs := rt.(interface {
		ServeFresh(http.ResponseWriter, *http.Request, string, *Edit, time.Time) (string, bool)
	})
	in := httptest.NewRequest("GET", "/app.css", nil)
	in.Host = req.URL.Host
	in.Header = req.Header
	edit := &Edit{Remove: []string{"Server", "X-Powered-By"}, Set: http.Header{"Server": {"portcullis"}}}

	for range 2 { // rendered, then reused
		raw := &rawWriter{discardWriter: discardWriter{h: http.Header{}}}
		if ct, ok := fs.ServeFresh(raw, in, "http", edit, time.Time{}); !ok || ct != "text/css" || raw.status != 200 || raw.n != 4 {
			t.Fatalf("edited hit: ok %v, type %q, status %d, %d bytes", ok, ct, raw.status, raw.n)
		}
		if raw.fields == nil || len(raw.h) != 0 {
			t.Fatalf("edited hit went through the header map %v, not rendered", raw.h)
		}
		if !bytes.Contains(raw.fields, []byte("\r\nServer: portcullis\r\n")) || bytes.Contains(raw.fields, []byte("php")) ||
			bytes.Contains(raw.fields, []byte("origin-httpd")) {
			t.Errorf("edited hit's fields:\n%s", raw.fields)
		}
		mapped := &discardWriter{h: http.Header{}}
		if _, ok := fs.ServeFresh(mapped, in, "http", edit, time.Time{}); !ok {
			t.Fatal("edited hit declined")
		}
		if want := renderFields(mapped.h, nil); !bytes.Equal(raw.fields, want) {
			t.Errorf("rendered fields differ from the header map's:\n%s\nwant\n%s", raw.fields, want)
		}
	}
	plain := &rawWriter{discardWriter: discardWriter{h: http.Header{}}}
	if _, ok := fs.ServeFresh(plain, in, "http", nil, time.Time{}); !ok || !bytes.Contains(plain.fields, []byte("\r\nServer: origin-httpd\r\n")) ||
		!bytes.Contains(plain.fields, []byte("X-Powered-By: php\r\n")) {
		t.Errorf("hit without the edit: ok %v, fields:\n%s", ok, plain.fields)
	}
}

// TestServeFreshAgeAtCallersTime: ServeFresh takes the entry's age at the
// time the caller read for the request (the door reads the clock once per
// request), and at its own clock's reading when given none.
func TestServeFreshAgeAtCallersTime(t *testing.T) {
	_, rt, req := warmWith(t, "/at.txt", func(h http.Header) {
		h.Set("Cache-Control", "public, max-age=3600")
	}, "body")
	fs := rt.(interface {
		ServeFresh(http.ResponseWriter, *http.Request, string, *Edit, time.Time) (string, bool)
	})
	in := httptest.NewRequest("GET", "/at.txt", nil)
	in.Host = req.URL.Host
	in.Header = req.Header
	age := func(now time.Time) int {
		w := &discardWriter{h: http.Header{}}
		if _, ok := fs.ServeFresh(w, in, "http", nil, now); !ok {
			t.Fatal("fresh hit declined")
		}
		a, err := strconv.Atoi(w.h.Get("Age"))
		if err != nil {
			t.Fatalf("Age %q: %v", w.h.Get("Age"), err)
		}
		return a
	}
	// Ages are whole seconds: the two readings may straddle one boundary.
	later, own := age(time.Now().Add(90*time.Second)), age(time.Time{})
	if d := later - own; d < 89 || d > 91 {
		t.Errorf("Age %d at the caller's time 90 s on, %d at the cache's clock", later, own)
	}
	if _, ok := fs.ServeFresh(&discardWriter{h: http.Header{}}, in, "http", nil, time.Now().Add(2*time.Hour)); ok {
		t.Error("a hit at a time the entry is stale was served fresh")
	}
}

// TestServeFreshDeclinesFields: each request field that makes the fast path
// decline (a precondition, a range, an upgrade, a method or URL override, a
// hop-by-hop field named in Connection) still does among other fields, as
// the one-pass check of a request's fields (quietFields) must see it; the
// same request without it, or with a plain Connection, is a hit.
func TestServeFreshDeclinesFields(t *testing.T) {
	_, rt, req := warmWith(t, "/page", func(h http.Header) {
		h.Set("Cache-Control", "public, max-age=3600")
	}, "body")
	fs := rt.(interface {
		ServeFresh(http.ResponseWriter, *http.Request, string, *Edit, time.Time) (string, bool)
	})
	serve := func(name, value string) bool {
		in := httptest.NewRequest("GET", "/page", nil)
		in.Host = req.URL.Host
		in.Header = req.Header.Clone()
		in.Header.Set("User-Agent", "test")
		in.Header.Set("Accept", "*/*")
		if name != "" {
			in.Header.Set(name, value)
		}
		_, ok := fs.ServeFresh(&discardWriter{h: http.Header{}}, in, "http", nil, time.Time{})
		return ok
	}
	if !serve("", "") || !serve("Connection", "keep-alive") || !serve("Cookie", "a=b") {
		t.Fatal("a plain request was declined")
	}
	for _, f := range [][2]string{
		{"If-Match", `"x"`}, {"If-Unmodified-Since", "Mon, 07 Dec 2026 10:00:00 GMT"}, {"Range", "bytes=0-1"},
		{"Upgrade", "websocket"}, {"Connection", "x-secret"}, {"X-Http-Method-Override", "POST"},
		{"X-Http-Method", "POST"}, {"X-Method-Override", "POST"}, {"X-Original-Url", "/admin"},
		{"X-Rewrite-Url", "/admin"},
	} {
		if serve(f[0], f[1]) {
			t.Errorf("%s: %s answered from the cache", f[0], f[1])
		}
	}
}
