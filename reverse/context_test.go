package reverse

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/pool"
)

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A proxied request's context upstream passes on the AfterFunc of the
// request's own context (internal/h1's): a function the transport registers
// there runs when the request ends, and the upstream client stops its
// exchange that way with no derived context or goroutine per request.
func TestUpstreamContextAfterFunc(t *testing.T) {
	o := newTestOrigin(t, "a", nil)
	ended := make(chan struct{})
	wrap := func(_ string, rt http.RoundTripper) http.RoundTripper {
		return rtFunc(func(r *http.Request) (*http.Response, error) {
			a, ok := r.Context().(interface{ AfterFunc(func()) func() bool })
			if !ok {
				return nil, errors.New("the upstream context has no AfterFunc")
			}
			a.AfterFunc(func() { close(ended) })
			return rt.RoundTrip(r)
		})
	}
	p := newTestPool(t, pool.Config{}, o.url())
	d := startDoor(t, Config{Routes: []Route{{Name: "app", Pool: "p"}}}, map[string]*pool.Pool{"p": p}, Options{Wrap: wrap})
	if code, body, _ := fetch(t, client(t, d.plain, nil, false), http.MethodGet, "http://"+d.plain+"/x", nil); code != 200 || body != "a" {
		t.Fatalf("status %d, body %q", code, body)
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the function registered upstream did not run when the request ended")
	}
}
