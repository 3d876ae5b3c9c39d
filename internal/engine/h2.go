package engine

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"

	"github.com/portcullis/portcullis/internal/h2"
)

// useH2 makes srv hand the TLS connections that chose ALPN "h2" to
// internal/h2's mux (through net/http's TLSNextProto hook) instead of
// net/http's bundled HTTP/2 server, and drains them (GOAWAY) when srv shuts
// down. Requests reach srv.Handler as before.
func useH2(srv *http.Server, log *slog.Logger) {
	if srv.Protocols != nil && !srv.Protocols.HTTP2() {
		return
	}
	mux := &h2.Server{
		Handler:           srv.Handler,
		IdleTimeout:       srv.IdleTimeout,
		MaxHeaderListSize: uint32(max(srv.MaxHeaderBytes, 0)),
		Log:               log,
	}
	srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){
		"h2": func(_ *http.Server, c *tls.Conn, h http.Handler) {
			ctx := context.Background()
			if bc, ok := h.(interface{ BaseContext() context.Context }); ok {
				ctx = bc.BaseContext() // net/http's: ServerContextKey, LocalAddrContextKey
			}
			_ = mux.ServeConn(ctx, c)
		},
	}
	srv.RegisterOnShutdown(mux.Drain)
}
