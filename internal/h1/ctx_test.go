package h1

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestClientGoneCancelsLateWatch: a handler that first asks about its
// request's context after the client left (through a derived context,
// context.AfterFunc, or Err) still sees it end.
func TestClientGoneCancelsLateWatch(t *testing.T) {
	watch := map[string]func(ctx context.Context) <-chan struct{}{
		"derived": func(ctx context.Context) <-chan struct{} {
			d, cancel := context.WithTimeout(ctx, time.Hour)
			_ = cancel // ends with ctx
			return d.Done()
		},
		"AfterFunc": func(ctx context.Context) <-chan struct{} {
			ch := make(chan struct{})
			context.AfterFunc(ctx, func() { close(ch) })
			return ch
		},
		"Err": func(ctx context.Context) <-chan struct{} {
			ch := make(chan struct{})
			go func() {
				for ctx.Err() == nil {
					time.Sleep(5 * time.Millisecond)
				}
				close(ch)
			}()
			return ch
		},
	}
	for name, w := range watch {
		t.Run(name, func(t *testing.T) {
			gone := make(chan struct{})
			cancelled := make(chan error, 1)
			ts := start(t, func(_ http.ResponseWriter, r *http.Request) {
				<-gone // the client left before anyone asked
				select {
				case <-w(r.Context()):
					cancelled <- r.Context().Err()
				case <-time.After(20 * time.Second):
					cancelled <- errors.New("not cancelled")
				}
			}, nil)
			c, _ := ts.dial(t)
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			deadline := time.Now().Add(15 * time.Second)
			for ts.calls.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			c.Close()
			close(gone)
			select {
			case err := <-cancelled:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("request context: %v, want context.Canceled", err)
				}
			case <-time.After(25 * time.Second):
				t.Fatal("the handler did not return")
			}
		})
	}
}

// TestRequestContextEnds: once the handler returned, its request's context
// and the contexts derived from it are done, with context.Canceled, and
// context.AfterFunc functions registered on it ran; a function stopped in
// time does not run. The connection serves the next request meanwhile.
func TestRequestContextEnds(t *testing.T) {
	t.Run("values", func(t *testing.T) { testRequestContextEnds(t, nil) })
	t.Run("cancellable", func(t *testing.T) {
		// a connection context that can end by itself: the request's is a
		// context.WithCancel of it
		testRequestContextEnds(t, func(s *Server) {
			s.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
				ctx, cancel := context.WithCancel(ctx)
				t.Cleanup(cancel)
				return ctx
			}
		})
	})
}

func testRequestContextEnds(t *testing.T, tune func(*Server)) {
	type seen struct {
		ctx, derived context.Context
		ran, stopped chan struct{}
		stop         bool
	}
	got := make(chan seen, 2)
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		s := seen{ctx: r.Context(), ran: make(chan struct{}), stopped: make(chan struct{})}
		if s.ctx.Err() != nil {
			t.Errorf("context done while the handler runs: %v", s.ctx.Err())
		}
		var cancel context.CancelFunc
		s.derived, cancel = context.WithCancel(s.ctx)
		defer cancel()
		context.AfterFunc(s.ctx, func() { close(s.ran) })
		stop := context.AfterFunc(s.ctx, func() { close(s.stopped) })
		s.stop = stop()
		got <- s
		io.WriteString(w, "ok")
	}, tune)
	c, br := ts.dial(t)
	for i := 0; i < 2; i++ {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if _, b := readResp(t, br, "GET"); b != "ok" {
			t.Fatalf("request %d: %q", i, b)
		}
		s := <-got
		for what, ch := range map[string]<-chan struct{}{"request": s.ctx.Done(), "derived": s.derived.Done(), "AfterFunc": s.ran} {
			select {
			case <-ch:
			case <-time.After(15 * time.Second):
				t.Fatalf("request %d: the %s context did not end after the response", i, what)
			}
		}
		if err := s.ctx.Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("request %d: Err %v", i, err)
		}
		if !s.stop {
			t.Fatalf("request %d: stopping an AfterFunc in time reported false", i)
		}
		select {
		case <-s.stopped:
			t.Fatalf("request %d: a stopped AfterFunc ran", i)
		default:
		}
	}
}

// TestLongHandlerKeepsContext: a handler without a body to read that runs
// past the connection's header deadline, waiting on its context, is not
// cancelled while its client stays, and the connection serves the next
// request after it.
func TestLongHandlerKeepsContext(t *testing.T) {
	res := make(chan error, 1)
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/long" {
			select {
			case <-r.Context().Done():
				res <- r.Context().Err()
			case <-time.After(600 * time.Millisecond): // 3x the header deadline
				res <- nil
			}
		}
		io.WriteString(w, "ok")
	}, func(s *Server) { s.ReadHeaderTimeout = 200 * time.Millisecond })
	c, br := ts.dial(t)
	for _, path := range []string{"/", "/long", "/"} {
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		if _, b := readResp(t, br, "GET"); b != "ok" {
			t.Fatalf("%s: %q", path, b)
		}
		if path == "/long" {
			if err := <-res; err != nil {
				t.Fatalf("the request's context ended while its client stayed: %v", err)
			}
		}
	}
}

// TestKeptHeaderTimeout: on a kept connection, a next request whose head
// comes slowly is cut at ReadHeaderTimeout too.
func TestKeptHeaderTimeout(t *testing.T) {
	ts := start(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") },
		func(s *Server) { s.ReadHeaderTimeout = 300 * time.Millisecond })
	c, br := ts.dial(t)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, b := readResp(t, br, "GET"); b != "ok" {
		t.Fatal(b)
	}
	begin := time.Now()
	io.WriteString(c, "GET / HTTP/1.1\r\n")
	for range 100 {
		if _, err := io.WriteString(c, "X: y\r\n"); err != nil {
			break
		}
		time.Sleep(50 * time.Millisecond) // a slow client, not a synchronisation
		if _, err := c.Read(make([]byte, 0)); err != nil {
			break
		}
	}
	wantEOF(t, br)
	if d := time.Since(begin); d > 4*time.Second {
		t.Fatalf("closed after %v", d)
	}
}
