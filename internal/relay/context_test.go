package relay

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
)

type ctxKey struct{}

// ServeContext sends the request upstream with the context given, which the
// transport and ModifyResponse see, and relays the answer as Serve does.
func TestServeContext(t *testing.T) {
	o := origin(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") })
	u, _ := url.Parse(o.URL)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	var sawTransport, sawModify any
	opts := &Options{
		Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sawTransport = r.Context().Value(ctxKey{})
			return tr.RoundTrip(r)
		}),
		ModifyResponse: func(resp *http.Response) error {
			sawModify = resp.Request.Context().Value(ctxKey{})
			return nil
		},
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	Prepare(req, false)
	req.URL.Scheme, req.URL.Host = "http", u.Host
	rec := httptest.NewRecorder()
	ctx := context.WithValue(req.Context(), ctxKey{}, "door state")
	res, err := New().ServeContext(ctx, rec, req, opts)
	if err != nil || res.Status != 200 || rec.Body.String() != "hi" {
		t.Fatalf("status %d, body %q, err %v", res.Status, rec.Body.String(), err)
	}
	if sawTransport != "door state" || sawModify != "door state" {
		t.Fatalf("transport saw %v, ModifyResponse %v; want the context given", sawTransport, sawModify)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// afterCtx is a context with an AfterFunc of its own (as internal/h1's
// request context): it counts registrations and runs them at cancel.
type afterCtx struct {
	context.Context
	mu    sync.Mutex
	fns   []func()
	added int
}

func (c *afterCtx) AfterFunc(f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fns = append(c.fns, f)
	c.added++
	return func() bool { return true }
}

// The context the transport gets passes the caller's AfterFunc on: a
// transport that stops its exchange when the context ends (internal/
// upstream) registers there, with neither a derived context nor a
// goroutine of context.AfterFunc's.
func TestServeContextPassesAfterFunc(t *testing.T) {
	o := origin(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") })
	u, _ := url.Parse(o.URL)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	ac := &afterCtx{Context: context.Background()}
	var ran bool
	opts := &Options{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		a, ok := r.Context().(interface{ AfterFunc(func()) func() bool })
		if !ok {
			return nil, errors.New("the transport's context has no AfterFunc")
		}
		a.AfterFunc(func() { ran = true })
		return tr.RoundTrip(r)
	})}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	Prepare(req, false)
	req.URL.Scheme, req.URL.Host = "http", u.Host
	rec := httptest.NewRecorder()
	res, err := New().ServeContext(ac, rec, req, opts)
	if err != nil || res.Status != 200 {
		t.Fatalf("status %d, err %v", res.Status, err)
	}
	ac.mu.Lock()
	fns := ac.fns
	ac.mu.Unlock()
	if ac.added != 1 {
		t.Fatalf("%d functions registered with the caller's context, want 1", ac.added)
	}
	fns[0]()
	if !ran {
		t.Fatal("the function registered is not the transport's")
	}
}

// A caller whose context carries a ClientTrace of its own gets its hooks
// called beside relay's (composed, as httptrace.WithClientTrace does), and
// relay still learns the upstream address.
func TestServeContextCallerTrace(t *testing.T) {
	o := origin(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") })
	u, _ := url.Parse(o.URL)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	var got net.Addr
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { got = i.Conn.RemoteAddr() },
	})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	Prepare(req, false)
	req.URL.Scheme, req.URL.Host = "http", u.Host
	rec := httptest.NewRecorder()
	res, err := New().ServeContext(ctx, rec, req, &Options{Transport: tr})
	if err != nil || res.Status != 200 || rec.Body.String() != "hi" {
		t.Fatalf("status %d, body %q, err %v", res.Status, rec.Body.String(), err)
	}
	if got == nil || got.String() != u.Host {
		t.Fatalf("the caller's GotConn saw %v, want %s", got, u.Host)
	}
	if res.Upstream == nil || res.Upstream.String() != u.Host {
		t.Fatalf("Result.Upstream %v, want %s", res.Upstream, u.Host)
	}
}

// adoptWriter is a ResponseWriter that can take a header map as its own
// (as internal/h1's does), over a recorder.
type adoptWriter struct {
	*httptest.ResponseRecorder
	adopted http.Header
	wrote   bool
}

func (w *adoptWriter) AdoptHeader(h http.Header) bool {
	if w.adopted != nil {
		return false
	}
	w.adopted = h
	return true
}

func (w *adoptWriter) Header() http.Header {
	if w.adopted != nil {
		return w.adopted
	}
	return w.ResponseRecorder.Header()
}

func (w *adoptWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	for k, v := range w.adopted {
		w.ResponseRecorder.Header()[k] = v
	}
	w.ResponseRecorder.WriteHeader(code)
}

func (w *adoptWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.ResponseRecorder.Write(p)
}

// A writer that can take the response's header map as its own gets it
// (hop-by-hop fields removed, ModifyResponse's edits made), instead of a
// copy into its own map.
func TestHeaderHandedOver(t *testing.T) {
	var sent http.Header
	opts := &Options{
		Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sent = http.Header{"Content-Type": {"text/plain"}, "Connection": {"X-Hop"}, "X-Hop": {"1"}, "Server": {"origin"}, "Content-Length": {"2"}}
			return &http.Response{StatusCode: 200, Header: sent, ContentLength: 2, Body: io.NopCloser(strings.NewReader("ok")), Request: r}, nil
		}),
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Del("Server")
			return nil
		},
	}
	req := httptest.NewRequest(http.MethodGet, "http://origin.test/", nil)
	Prepare(req, false)
	w := &adoptWriter{ResponseRecorder: httptest.NewRecorder()}
	res, err := New().Serve(w, req, opts)
	if err != nil || res.Status != 200 || w.Body.String() != "ok" {
		t.Fatalf("status %d, body %q, err %v", res.Status, w.Body.String(), err)
	}
	if w.adopted == nil || reflect.ValueOf(w.adopted).UnsafePointer() != reflect.ValueOf(sent).UnsafePointer() {
		t.Fatal("the writer was not handed the response's header map")
	}
	got := w.ResponseRecorder.Header()
	if got.Get("Content-Type") != "text/plain" || got.Get("X-Hop") != "" || got.Get("Connection") != "" || got.Get("Server") != "" {
		t.Fatalf("header sent: %v", got)
	}
}
