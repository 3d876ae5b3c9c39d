package relay

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
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

// afterFuncCtx is a door's context with an AfterFunc of its own, as
// internal/h1's request context has: it counts the functions registered and
// runs them when cancel is called.
type afterFuncCtx struct {
	context.Context
	done chan struct{}
	fns  []func()
}

func (c *afterFuncCtx) Done() <-chan struct{} { return c.done }

func (c *afterFuncCtx) Err() error {
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}

func (c *afterFuncCtx) AfterFunc(f func()) func() bool {
	c.fns = append(c.fns, f)
	return func() bool { return true }
}

func (c *afterFuncCtx) cancel() {
	close(c.done)
	for _, f := range c.fns {
		f()
	}
}

// A transport's context.AfterFunc on the request it is given registers with
// the door's context's own AfterFunc (no goroutine waiting for the door's
// context per exchange), and still runs when the door's context ends.
func TestUpstreamContextAfterFunc(t *testing.T) {
	door := &afterFuncCtx{Context: context.Background(), done: make(chan struct{})}
	fired := make(chan struct{})
	var registered int
	opts := &Options{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		context.AfterFunc(r.Context(), func() { close(fired) })
		registered = len(door.fns)
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, ContentLength: 0, Request: r}, nil
	})}
	req := httptest.NewRequest(http.MethodGet, "http://origin.test/", nil)
	Prepare(req, false)
	res, err := New().ServeContext(door, httptest.NewRecorder(), req, opts)
	if err != nil || res.Status != 200 {
		t.Fatalf("status %d, err %v", res.Status, err)
	}
	if registered != 1 {
		t.Fatalf("the transport's AfterFunc registered %d functions with the door's context, want 1 (else a goroutine waits per exchange)", registered)
	}
	door.cancel()
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("the transport's AfterFunc did not run when the door's context ended")
	}
}
