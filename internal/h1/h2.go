package h1

import (
	"context"
	"crypto/tls"
	"net/http"
	"sync"

	"golang.org/x/net/http2"
)

// HTTP2 returns a Server.H2 that serves "h2" connections with Go's HTTP/2
// server (golang.org/x/net/http2) and h. When the context of any connection
// it serves ends (the Server shuts down), every connection it serves is
// told to finish (GOAWAY): streams in flight complete, no new ones start.
// Requests' contexts carry the connection context's values.
func HTTP2(h http.Handler) func(ctx context.Context, c *tls.Conn) {
	h2 := &http2.Server{}
	// Only for the graceful-shutdown hook http2.ConfigureServer registers.
	base := &http.Server{Handler: h}
	_ = http2.ConfigureServer(base, h2)
	var once sync.Once
	return func(ctx context.Context, c *tls.Conn) {
		stop := context.AfterFunc(ctx, func() {
			once.Do(func() { go base.Shutdown(context.Background()) })
		})
		defer stop()
		h2.ServeConn(c, &http2.ServeConnOpts{Context: context.WithoutCancel(ctx), Handler: h, BaseConfig: base})
	}
}
