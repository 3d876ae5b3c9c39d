package forward

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
)

// relayOrigin is an origin with the answers the plain relay must carry: a
// 103 before the page, trailers declared and not, and a body cut midway.
func relayOrigin(t *testing.T) *httptest.Server {
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hints":
			w.Header().Set("Link", "</a.css>; rel=preload; as=style")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			io.WriteString(w, "page")
		case "/trailers":
			w.Header().Set("Trailer", "X-Declared")
			io.WriteString(w, "body")
			w.Header().Set("X-Declared", "d")
			w.Header().Set(http.TrailerPrefix+"X-Late", "l")
		case "/cut":
			io.WriteString(w, "0123456789")
			w.(http.Flusher).Flush()
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
		}
	}))
	t.Cleanup(o.Close)
	return o
}

// TestPlainEarlyHints: a 103 Early Hints from the origin reaches the client
// of the forward door before the final response (goproxy dropped it).
func TestPlainEarlyHints(t *testing.T) {
	o := relayOrigin(t)
	tp := startProxy(t, Options{})
	var codes []int
	var link string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		codes = append(codes, code)
		link = h.Get("Link")
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", o.URL+"/hints", nil)
	resp, err := tp.client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(codes) != 1 || codes[0] != http.StatusEarlyHints || link != "</a.css>; rel=preload; as=style" {
		t.Errorf("1xx seen %v, Link %q", codes, link)
	}
	if resp.StatusCode != 200 || string(body) != "page" || resp.Header.Get("Link") != "" {
		t.Errorf("final %d %q, Link %q", resp.StatusCode, body, resp.Header.Get("Link"))
	}
}

// TestPlainTrailers: trailers announced in Trailer and trailers the origin
// sends undeclared both reach the client.
func TestPlainTrailers(t *testing.T) {
	o := relayOrigin(t)
	tp := startProxy(t, Options{})
	req, _ := http.NewRequest("GET", o.URL+"/trailers", nil)
	req.Header.Set("Te", "trailers")
	resp, err := tp.client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "body" || resp.Trailer.Get("X-Declared") != "d" || resp.Trailer.Get("X-Late") != "l" {
		t.Errorf("body %q %v, trailers %v", body, err, resp.Trailer)
	}
}

// TestPlainCutBodyAborts: an origin dying midway through a chunked body
// leaves the client with an error, not a complete-looking response, and the
// access log says why.
func TestPlainCutBodyAborts(t *testing.T) {
	o := relayOrigin(t)
	tp := startProxy(t, Options{})
	resp, err := tp.client(t).Get(o.URL + "/cut")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("read %q without error: the cut looked complete", body)
	}
	if e := tp.log.next(t); e.Status != 200 || !strings.Contains(e.Error, "upstream response body failed") {
		t.Errorf("log entry: status %d, error %q", e.Status, e.Error)
	}
}

// afterFuncCtx stands for internal/h1's request context: a context with an
// AfterFunc of its own, counting the functions registered with it.
type afterFuncCtx struct {
	context.Context
	done chan struct{}
	fns  []func()
}

func (c *afterFuncCtx) Done() <-chan struct{} { return c.done }

func (c *afterFuncCtx) AfterFunc(f func()) func() bool {
	c.fns = append(c.fns, f)
	return func() bool { return true }
}

// The transport's context.AfterFunc on a plain request (internal/upstream
// registers one per exchange, to cut the connection when the client goes
// away) reaches the request context's own AfterFunc through the door's
// context and relay's: no goroutine waits for the request per exchange.
func TestPlainRequestContextAfterFunc(t *testing.T) {
	var registered int
	tr := transportFunc(func(r *http.Request) (*http.Response, error) {
		stop := context.AfterFunc(r.Context(), func() {})
		defer stop()
		registered = len(r.Context().Value(afterFuncKey{}).(*afterFuncCtx).fns)
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})
	p, err := New(Options{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "http://origin.test/page", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	parent := &afterFuncCtx{done: make(chan struct{})}
	parent.Context = context.WithValue(context.Background(), afterFuncKey{}, parent)
	req = req.WithContext(parent)
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("status %d, want 200", rec.Code)
	}
	if registered != 1 {
		t.Fatalf("%d functions registered with the request context's AfterFunc, want 1 (else a goroutine per request waits for it)", registered)
	}
}

type afterFuncKey struct{}

type transportFunc func(*http.Request) (*http.Response, error)

func (f transportFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A relayed response's header map goes to the engine's writer as it is
// (internal/h1's AdoptHeader, through the door's writer) instead of being
// copied field by field into a map of the writer's: the writer ends up
// holding the transport's own map, with the origin's fields and without the
// hop-by-hop ones, and a response with a Content-Length is not flushed write
// by write.
func TestPlainResponseHeaderAdopted(t *testing.T) {
	var sent http.Header
	tr := transportFunc(func(r *http.Request) (*http.Response, error) {
		sent = http.Header{"Content-Type": {"text/plain"}, "Content-Length": {"4"}, "Connection": {"keep-alive"}, "X-Origin": {"o"}}
		return &http.Response{StatusCode: 200, Header: sent, ContentLength: 4, Body: io.NopCloser(strings.NewReader("body")), Request: r}, nil
	})
	p, err := New(Options{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "http://origin.test/page", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	w := &adoptingRecorder{ResponseRecorder: httptest.NewRecorder()}
	p.ServeHTTP(w, req)
	if w.Code != 200 || w.Body.String() != "body" {
		t.Fatalf("status %d, body %q", w.Code, w.Body.String())
	}
	if w.adopted == nil || reflect.ValueOf(w.adopted).UnsafePointer() != reflect.ValueOf(sent).UnsafePointer() {
		t.Fatal("the writer was not handed the transport's header map")
	}
	if got := w.adopted.Get("X-Origin"); got != "o" {
		t.Errorf("X-Origin %q, want o", got)
	}
	if _, ok := w.adopted["Connection"]; ok {
		t.Error("the hop-by-hop Connection field was relayed")
	}
	if w.flushed {
		t.Error("a response with a Content-Length was flushed write by write")
	}
}

// adoptingRecorder is an httptest.ResponseRecorder that takes a header map as
// internal/h1's writer does (AdoptHeader) and notes flushes.
type adoptingRecorder struct {
	*httptest.ResponseRecorder
	adopted http.Header
	flushed bool
}

func (w *adoptingRecorder) Header() http.Header {
	if w.adopted != nil {
		return w.adopted
	}
	return w.ResponseRecorder.Header()
}

func (w *adoptingRecorder) AdoptHeader(h http.Header) bool {
	if w.adopted != nil || len(w.ResponseRecorder.Header()) > 0 {
		return false
	}
	w.adopted = h
	return true
}

func (w *adoptingRecorder) WriteHeader(code int) {
	for k, v := range w.Header() {
		w.ResponseRecorder.Header()[k] = v
	}
	w.ResponseRecorder.WriteHeader(code)
}

func (w *adoptingRecorder) Flush() { w.flushed = true }
