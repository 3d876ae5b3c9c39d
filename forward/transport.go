package forward

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/portcullis/portcullis/internal/upstream"
)

// DialFunc dials an origin; the resolver's guarded dialer has this shape.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// TransportConfig is the upstream transport's settings (see Config.TransportConfig).
// Zero durations and counts take the Config defaults.
type TransportConfig struct {
	Dial                  DialFunc // nil: a net.Dialer with DialTimeout
	TLSClientConfig       *tls.Config
	DialTimeout           time.Duration
	TLSHandshakeTimeout   time.Duration
	ResponseHeaderTimeout time.Duration
	IdleConnTimeout       time.Duration
	MaxIdleConnsPerHost   int
	MaxIdleConns          int
}

// NewTransport returns the client the forward door sends requests with
// (internal/upstream): kept connections per destination host:port dialed with
// tc.Dial (the resolver's guarded dialer), shared by every client connection;
// timeouts on every phase, no environment proxy (HTTP_PROXY is ignored), no
// transparent compression (the client's own Accept-Encoding goes through and
// bodies are relayed as the origin sent them), HTTP/2 to https origins that
// offer it. Build it once and share it across reloads: it holds the idle pool.
func NewTransport(tc TransportConfig) *upstream.Client {
	def := (&Config{}).TransportConfig()
	if tc.DialTimeout <= 0 {
		tc.DialTimeout = def.DialTimeout
	}
	if tc.TLSHandshakeTimeout <= 0 {
		tc.TLSHandshakeTimeout = def.TLSHandshakeTimeout
	}
	if tc.ResponseHeaderTimeout <= 0 {
		tc.ResponseHeaderTimeout = def.ResponseHeaderTimeout
	}
	if tc.IdleConnTimeout <= 0 {
		tc.IdleConnTimeout = def.IdleConnTimeout
	}
	if tc.MaxIdleConnsPerHost <= 0 {
		tc.MaxIdleConnsPerHost = def.MaxIdleConnsPerHost
	}
	if tc.MaxIdleConns <= 0 {
		tc.MaxIdleConns = def.MaxIdleConns
	}
	var dial upstream.DialFunc
	if tc.Dial != nil {
		dial = upstream.DialFunc(tc.Dial)
	}
	return upstream.New(upstream.Config{
		Dial:                  dial,
		DialTimeout:           tc.DialTimeout,
		TLS:                   tc.TLSClientConfig,
		TLSHandshakeTimeout:   tc.TLSHandshakeTimeout,
		ResponseHeaderTimeout: tc.ResponseHeaderTimeout,
		IdleTimeout:           tc.IdleConnTimeout,
		MaxIdle:               tc.MaxIdleConns,
		MaxIdlePerHost:        tc.MaxIdleConnsPerHost,
		MaxHeaderBytes:        256 << 10,
		HTTP2:                 true,
	})
}

// timeoutDial wraps dial (nil: a plain net.Dialer) so every dial is bounded by d.
func timeoutDial(dial DialFunc, d time.Duration) DialFunc {
	if dial == nil {
		nd := &net.Dialer{Timeout: d, KeepAlive: 30 * time.Second}
		return nd.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return dial(ctx, network, addr)
	}
}

// LoadRootCAs reads a PEM bundle of CA certificates for verifying origins
// (Config.UpstreamCAFile).
func LoadRootCAs(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("forward: no certificates in %s", path)
	}
	return pool, nil
}
