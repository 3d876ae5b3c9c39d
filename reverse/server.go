package reverse

import (
	"time"

	"github.com/portcullis/portcullis/internal/h1"
)

// ConfigureServer sets the slow-client defences of the door's listeners on
// srv (whose Handler is set): ReadHeaderTimeout (limits.header_timeout,
// default 10s), IdleTimeout 120s, MaxHeaderBytes (limits.max_header_bytes,
// default 64 KiB), and with tlsOn HTTP/2 per cfg.HTTP2 (srv.H2).
// ReadTimeout and WriteTimeout stay 0 so that WebSockets, SSE and big
// bodies are not cut off; the Handler enforces body_timeout and
// min_body_rate itself. "OPTIONS *" reaches the Handler, which answers it
// with Allow.
func ConfigureServer(srv *h1.Server, cfg *Config, tlsOn bool) {
	lim := cfg.Limits
	srv.ReadHeaderTimeout = orDuration(lim.HeaderTimeout, DefaultHeaderTimeout)
	srv.IdleTimeout = DefaultIdleTimeout
	srv.MaxHeaderBytes = orInt(lim.MaxHeaderBytes, DefaultMaxHeaderBytes)
	if tlsOn && boolOr(cfg.HTTP2, true) {
		srv.H2 = h1.HTTP2(srv.Handler)
	}
}

func orDuration(v, d time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return d
}

func orInt(v, d int) int {
	if v > 0 {
		return v
	}
	return d
}
