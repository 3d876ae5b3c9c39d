package engine

import (
	"context"
	"errors"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/portcullis/portcullis/internal/accept"
	"github.com/portcullis/portcullis/internal/h1"
)

// listenKey identifies a listener across reloads: the same kind on the same
// configured address is kept; anything else is bound anew or closed.
type listenKey struct {
	kind string // forward, intercept-http, intercept-https, reverse, reverse-tls, dns, admin
	addr string // as written in the policy
}

// listener is one bound socket (or, for DNS, a UDP and TCP pair) and its server.
type listener struct {
	key      listenKey
	addr     net.Addr
	shutdown func(ctx context.Context)
}

// listenSpec says how to serve one listener of a state.
type listenSpec struct {
	key   listenKey
	start func(e *Engine) (*listener, error)
}

// reconcileListeners binds what st wants and is not bound yet, then closes what st no
// longer wants. If a bind fails, the listeners bound in this call are closed again and
// the error returned, leaving the running set as it was.
func (e *Engine) reconcileListeners(st *state) error {
	fresh, err := e.bindListeners(st)
	if err != nil {
		return err
	}
	e.adoptListeners(st, fresh)
	return nil
}

// bindListeners binds what st wants and is not bound yet, without adding it to the
// running set (a fresh listener serves whichever state is current). If a bind
// fails, the listeners it bound are closed again and the error returned.
func (e *Engine) bindListeners(st *state) ([]*listener, error) {
	var fresh []*listener
	seen := map[listenKey]bool{}
	for _, s := range st.listens {
		if _, ok := e.listeners[s.key]; ok || seen[s.key] {
			continue
		}
		seen[s.key] = true
		l, err := s.start(e)
		if l != nil {
			fresh = append(fresh, l)
			e.publishListeners(fresh...) // refused by the egress guard from the start
		}
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			for _, f := range fresh {
				f.shutdown(ctx)
			}
			cancel()
			e.publishListeners()
			return nil, err
		}
	}
	return fresh, nil
}

// publishListeners tells the egress guard the addresses of the running
// listeners and of extra (bound but not adopted yet). The caller holds e.mu.
func (e *Engine) publishListeners(extra ...*listener) {
	var addrs []netip.AddrPort
	for _, l := range slices.Concat(slices.Collect(maps.Values(e.listeners)), extra) {
		if ap, err := netip.ParseAddrPort(l.addr.String()); err == nil {
			addrs = append(addrs, ap)
		}
	}
	e.shared.self.Set(addrs)
}

// adoptListeners adds fresh (from bindListeners) to the running set and closes, once
// drained, the listeners st no longer wants.
func (e *Engine) adoptListeners(st *state, fresh []*listener) {
	want := map[listenKey]bool{}
	for _, s := range st.listens {
		want[s.key] = true
	}
	for _, l := range fresh {
		e.listeners[l.key] = l
	}
	defer e.publishListeners()
	for k, l := range e.listeners {
		if want[k] {
			continue
		}
		delete(e.listeners, k)
		e.log.Info("closing listener no longer in the policy", "kind", k.kind, "addr", l.addr.String())
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), e.opts.DrainTimeout)
			defer cancel()
			l.shutdown(ctx)
		}()
	}
}

// httpListen returns a spec that serves HTTP on addr with the handler the current
// state picks (so every request uses the policy current when it arrived), on the
// HTTP/1.1 engine (internal/h1); tune sets the door's timeouts, TLS and HTTP/2.
func httpListen(kind, addr string, pick func(*state) http.Handler, wrap func(net.Listener) net.Listener, tune func(*h1.Server)) listenSpec {
	return httpListenCC(kind, addr, "", pick, wrap, tune)
}

// httpListenCC is httpListen whose accepted connections use the TCP
// congestion control congestion (empty: the system's; see listenTCP).
func httpListenCC(kind, addr, congestion string, pick func(*state) http.Handler, wrap func(net.Listener) net.Listener, tune func(*h1.Server)) listenSpec {
	return listenSpec{key: listenKey{kind, addr}, start: func(e *Engine) (*listener, error) {
		ln, err := listenTCP(addr, congestion)
		if err != nil {
			return nil, &BindError{Kind: kind, Addr: addr, Err: err}
		}
		// EMFILE and the like: back off and accept again, never stop (see accept).
		ln = accept.New(ln, kind+" "+ln.Addr().String(), e.log, &e.shared.accepts)
		if wrap != nil {
			ln = wrap(ln)
		}
		srv := &h1.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h := pick(e.cur.Load())
				if h == nil {
					http.Error(w, "not serving on this address", http.StatusServiceUnavailable)
					return
				}
				h.ServeHTTP(w, r)
			}),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			Log:               e.log.With("listener", kind),
		}
		if tune != nil {
			tune(srv)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				e.log.Error("listener stopped", "kind", kind, "addr", addr, "error", err)
			}
		}()
		return &listener{key: listenKey{kind, addr}, addr: ln.Addr(), shutdown: func(ctx context.Context) {
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close()
			}
			<-done
		}}, nil
	}}
}

// BindError reports a listener that could not be bound.
type BindError struct {
	Kind, Addr string
	Err        error
}

func (b *BindError) Error() string {
	return "cannot listen for " + b.Kind + " on " + b.Addr + ": " + b.Err.Error()
}

func (b *BindError) Unwrap() error { return b.Err }
