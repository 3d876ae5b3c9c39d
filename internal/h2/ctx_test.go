package h2

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/ctxafter"
	"golang.org/x/net/http2"
)

type ctxKey struct{}

// A stream's context carries the connection's values, is not done while
// its handler runs, and ends, with every way of waiting on it (Done, Err,
// a derived context, context.AfterFunc, ctxafter.Func as the upstream
// client registers its cut), when the client resets the stream; a function
// stopped before the end does not run; and a stream answered in full ends
// its context too.
func TestStreamContext(t *testing.T) {
	type seen struct {
		value            any
		errWhileRunning  error
		derivedErr       error
		afterFunc, ctxaf bool
		stoppedRan       bool
		cause            error
	}
	got := make(chan seen, 2)
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		var s seen
		s.value = ctx.Value(ctxKey{})
		s.errWhileRunning = ctx.Err()
		derived, cancel := context.WithCancel(ctx)
		defer cancel()
		af := make(chan struct{})
		context.AfterFunc(ctx, func() { close(af) })
		caf := make(chan struct{})
		ctxafter.Func(ctx, func() { close(caf) })
		stopped := make(chan struct{})
		if stop := ctxafter.Func(ctx, func() { close(stopped) }); stop == nil || !stop() {
			t.Error("ctxafter.Func's stop did not stop the function before the end")
		}
		if r.URL.Path == "/answer" {
			io.WriteString(w, "ok")
			go func() {
				<-derived.Done()
				<-af
				<-caf
				s.derivedErr = derived.Err()
				s.afterFunc, s.ctxaf = true, true
				s.cause = context.Cause(ctx)
				got <- s
			}()
			return
		}
		close(started)
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Second):
		}
		select {
		case <-derived.Done():
		case <-time.After(20 * time.Second):
		}
		s.derivedErr = derived.Err()
		for _, ch := range []chan struct{}{af, caf} {
			select {
			case <-ch:
				if ch == af {
					s.afterFunc = true
				} else {
					s.ctxaf = true
				}
			case <-time.After(20 * time.Second):
			}
		}
		select {
		case <-stopped:
			s.stoppedRan = true
		default:
		}
		s.cause = context.Cause(ctx)
		got <- s
	})
	srv := &Server{Handler: h}
	c := dialServe(t, func(ctx context.Context, nc net.Conn) error {
		return srv.ServeConn(context.WithValue(ctx, ctxKey{}, "conn value"), nc)
	})
	check := func(what string, s seen) {
		t.Helper()
		if s.value != "conn value" {
			t.Errorf("%s: Value %v, want the connection's", what, s.value)
		}
		if s.errWhileRunning != nil {
			t.Errorf("%s: Err %v while the handler runs", what, s.errWhileRunning)
		}
		if !errors.Is(s.derivedErr, context.Canceled) || !s.afterFunc || !s.ctxaf {
			t.Errorf("%s: derived context's Err %v, context.AfterFunc ran %v, ctxafter.Func ran %v; want all ended", what, s.derivedErr, s.afterFunc, s.ctxaf)
		}
		if s.stoppedRan {
			t.Errorf("%s: a function stopped before the end ran", what)
		}
		if !errors.Is(s.cause, context.Canceled) {
			t.Errorf("%s: context.Cause %v, want context.Canceled", what, s.cause)
		}
	}
	c.get(1, "/wait")
	<-started
	_ = c.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	select {
	case s := <-got:
		check("reset", s)
	case <-time.After(30 * time.Second):
		t.Fatal("handler of the reset stream did not see its context end")
	}
	c.get(3, "/answer")
	if r := c.response(3); r.status != "200" || string(r.body) != "ok" {
		t.Fatalf("answer %s %q", r.status, r.body)
	}
	select {
	case s := <-got:
		check("answered", s)
	case <-time.After(30 * time.Second):
		t.Fatal("the context of a stream answered in full did not end")
	}
}
