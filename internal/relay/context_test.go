package relay

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
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
