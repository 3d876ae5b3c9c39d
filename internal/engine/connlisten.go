package engine

import (
	"context"
	"net"
	"sync"

	"github.com/portcullis/portcullis/internal/accept"
)

// connListen returns a spec for a listener whose connections are not HTTP
// (intercepted TLS, SOCKS5): each accepted connection is handed, on a
// goroutine of its own, to serve with the state current when it arrived.
// Shutting the listener down closes it, waits for the connections it is
// serving until ctx ends, then closes those still open.
func connListen(kind, addr string, wrap func(net.Listener) net.Listener, serve func(ctx context.Context, st *state, c net.Conn)) listenSpec {
	key := listenKey{kind, addr}
	return listenSpec{key: key, start: func(e *Engine) (*listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, &BindError{Kind: kind, Addr: addr, Err: err}
		}
		bound := ln.Addr()
		ln = accept.New(ln, kind+" "+bound.String(), e.log, &e.shared.accepts)
		if wrap != nil {
			ln = wrap(ln)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var (
			mu    sync.Mutex
			conns = map[net.Conn]struct{}{}
			wg    sync.WaitGroup
		)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				c, err := ln.Accept()
				if err != nil {
					return // closed (accept retries every other error)
				}
				st := e.cur.Load()
				if st == nil {
					_ = c.Close()
					continue
				}
				mu.Lock()
				conns[c] = struct{}{}
				mu.Unlock()
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() {
						mu.Lock()
						delete(conns, c)
						mu.Unlock()
					}()
					serve(ctx, st, c)
				}()
			}
		}()
		return &listener{key: key, addr: bound, shutdown: func(sctx context.Context) {
			_ = ln.Close()
			<-done
			served := make(chan struct{})
			go func() { wg.Wait(); close(served) }()
			select {
			case <-served:
			case <-sctx.Done():
				cancel()
				mu.Lock()
				for c := range conns {
					_ = c.Close()
				}
				mu.Unlock()
				<-served
			}
			cancel()
		}}, nil
	}}
}
