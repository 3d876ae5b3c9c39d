// Package upstream is the HTTP/1.1 client both doors send requests upstream
// with: an http.RoundTripper that keeps connections per destination (scheme,
// host:port, TLS server name, parent proxy), writes the request and reads the
// response on the caller's goroutine (no goroutine per request or per idle
// connection), and hands HTTP/2 destinations to Go's transport.
//
// What it does that callers rely on: request heads written as net/http's
// Transport writes them (Host from req.Host, no default User-Agent, header
// fields sorted by name), a strict response parser (no Content-Length with
// Transfer-Encoding, no bad chunking, bounded heads), 1xx answers passed to
// httptrace.ClientTrace.Got1xxResponse, a 101's Body writable (WebSocket),
// trailers in resp.Trailer, Expect: 100-continue, a kept connection the server
// closed while idle retried once on a fresh one for idempotent requests, and
// the request's context ending the exchange at any point.
package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// DialFunc dials a TCP address; the resolver's guarded dialer has this shape.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Config is a Client's settings. Zero values take the defaults named.
type Config struct {
	// Dial opens connections (to the destination, or to Proxy). Nil: a
	// net.Dialer. Errors are returned as they come (a caller may wrap them to
	// tell dial failures apart).
	Dial DialFunc
	// DialTimeout bounds one dial (default 5s).
	DialTimeout time.Duration
	// TLS is the client TLS configuration for https destinations (cloned; nil:
	// defaults). Its ServerName, when set, is sent and verified instead of the
	// request's host.
	TLS *tls.Config
	// TLSHandshakeTimeout bounds the TLS handshake (default 10s).
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response head once the
	// request is written (0: none; the request's context still applies).
	ResponseHeaderTimeout time.Duration
	// ExpectContinueTimeout is how long a request with Expect: 100-continue
	// waits for the 100 before sending its body anyway (default 1s).
	ExpectContinueTimeout time.Duration
	// IdleTimeout closes a kept connection idle this long (default 90s).
	IdleTimeout time.Duration
	// MaxIdlePerHost bounds kept connections per destination (default 2, as
	// net/http).
	MaxIdlePerHost int
	// MaxIdle bounds kept connections in total (default 100); the longest idle
	// is closed first.
	MaxIdle int
	// MaxHeaderBytes bounds a response head (default 1 MiB), 1xx heads included.
	MaxHeaderBytes int
	// Proxy, when set, is a parent proxy (http://[user:pass@]host:port): http
	// requests go to it in absolute form with Proxy-Authorization, https ones
	// through a CONNECT tunnel.
	Proxy *url.URL
	// HTTP2 offers h2 by ALPN to https destinations; a destination that takes
	// it is served by Go's HTTP/2 transport (the one place this package uses
	// net/http's client).
	HTTP2 bool
}

// Defaults applied to zero Config fields.
const (
	DefaultDialTimeout           = 5 * time.Second
	DefaultTLSHandshakeTimeout   = 10 * time.Second
	DefaultExpectContinueTimeout = time.Second
	DefaultIdleTimeout           = 90 * time.Second
	DefaultMaxIdlePerHost        = 2
	DefaultMaxIdle               = 100
	DefaultMaxHeaderBytes        = 1 << 20
)

// Client is an HTTP/1.1 client with per-destination keep-alive pools. It is
// safe for concurrent use; build one and share it (it holds the pools).
type Client struct {
	cfg       Config
	proxyAddr string // host:port of cfg.Proxy
	proxyAuth string // "Basic …" for cfg.Proxy's credentials, or ""
	tlsCfg    *tls.Config
	idle      idlePool

	h2once sync.Once
	h2t    *http.Transport // HTTP/2 destinations (built at the first one)
	h2mu   sync.Mutex
	h2     map[destKey][]*http.ClientConn
}

// New returns a Client for cfg.
func New(cfg Config) *Client {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.DialTimeout, DefaultDialTimeout)
	def(&cfg.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
	def(&cfg.ExpectContinueTimeout, DefaultExpectContinueTimeout)
	def(&cfg.IdleTimeout, DefaultIdleTimeout)
	if cfg.MaxIdlePerHost <= 0 {
		cfg.MaxIdlePerHost = DefaultMaxIdlePerHost
	}
	if cfg.MaxIdle <= 0 {
		cfg.MaxIdle = DefaultMaxIdle
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.Dial == nil {
		d := &net.Dialer{KeepAlive: 30 * time.Second}
		cfg.Dial = d.DialContext
	}
	c := &Client{cfg: cfg}
	c.tlsCfg = cfg.TLS.Clone()
	if c.tlsCfg == nil {
		c.tlsCfg = &tls.Config{}
	}
	if cfg.HTTP2 {
		c.tlsCfg.NextProtos = []string{"h2", "http/1.1"}
	} else {
		c.tlsCfg.NextProtos = []string{"http/1.1"}
	}
	if p := cfg.Proxy; p != nil {
		c.proxyAddr = hostPort(p.Hostname(), p.Port(), p.Scheme)
		if p.User != nil {
			pass, _ := p.User.Password()
			c.proxyAuth = basicAuth(p.User.Username(), pass)
		}
	}
	c.idle.init(cfg.MaxIdlePerHost, cfg.MaxIdle, cfg.IdleTimeout)
	return c
}

// CloseIdleConnections closes every kept connection that is not in use (and
// HTTP/2 connections with no request in flight).
func (c *Client) CloseIdleConnections() {
	c.idle.closeAll()
	c.h2mu.Lock()
	for k, ccs := range c.h2 {
		keep := ccs[:0]
		for _, cc := range ccs {
			if cc.InFlight() == 0 {
				cc.Close()
			} else {
				keep = append(keep, cc)
			}
		}
		if len(keep) == 0 {
			delete(c.h2, k)
		} else {
			c.h2[k] = keep
		}
	}
	c.h2mu.Unlock()
}

// destKey names a destination: connections are kept and reused per key.
type destKey struct {
	scheme     string // "http" or "https"
	host, port string // empty for http through a parent (one pool for all)
	serverName string // TLS server name sent and verified
	proxy      string // parent proxy host:port, or ""
	h1only     bool   // an upgrade: never HTTP/2 (offered h2 only otherwise)
}

// addr is the destination's host:port.
func (k *destKey) addr() string { return net.JoinHostPort(k.host, k.port) }

// key returns the destination of req.
func (c *Client) key(req *http.Request) (destKey, error) {
	u := req.URL
	var k destKey
	switch u.Scheme {
	case "http", "https":
		k.scheme = u.Scheme
	default:
		return k, fmt.Errorf("upstream: unsupported protocol scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return k, errors.New("upstream: no host in request URL")
	}
	k.host, k.port = u.Hostname(), u.Port()
	if k.port == "" {
		k.port = defaultPort(k.scheme)
	}
	if k.scheme == "https" {
		k.serverName = c.tlsCfg.ServerName
		if k.serverName == "" {
			k.serverName = k.host
		}
		// An upgrade (WebSocket) needs HTTP/1.1, as in net/http.
		k.h1only = c.cfg.HTTP2 && headerHasToken(req.Header["Connection"], "upgrade") && len(req.Header["Upgrade"]) > 0
	}
	if c.proxyAddr != "" {
		k.proxy = c.proxyAddr
		if k.scheme == "http" {
			k.host, k.port = "", "" // every http request shares the parent's connections
		}
	}
	return k, nil
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

func hostPort(host, port, scheme string) string {
	if port == "" {
		port = defaultPort(scheme)
	}
	return net.JoinHostPort(host, port)
}

// RoundTrip implements http.RoundTripper. The request's body is always closed.
func (c *Client) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.roundTrip(req)
	if err != nil && req.Body != nil {
		req.Body.Close()
	}
	return resp, err
}

func (c *Client) roundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		return nil, errors.New("upstream: nil Request.URL")
	}
	if req.Header == nil {
		return nil, errors.New("upstream: nil Request.Header")
	}
	k, err := c.key(req)
	if err != nil {
		return nil, err
	}
	host, err := prepare(req)
	if err != nil {
		return nil, err
	}
	ctx := req.Context()
	if k.scheme == "https" && c.cfg.HTTP2 && !k.h1only {
		if cc := c.h2Conn(k); cc != nil {
			return cc.RoundTrip(req)
		}
	}
	out := req
	for attempt := 0; ; attempt++ {
		pc, err := c.conn(ctx, k, req, attempt > 0)
		if err != nil {
			return nil, err
		}
		if pc.h2 != nil {
			return pc.h2.RoundTrip(out)
		}
		resp, err := pc.roundTrip(out, host)
		if err == nil {
			return resp, nil
		}
		var se *staleError
		if !errors.As(err, &se) {
			return nil, err
		}
		if attempt > 0 || !replayable(req) {
			return nil, fmt.Errorf("upstream %s: the kept connection was closed by the server before it answered; %s %s not retried (not idempotent): %w",
				pc.key.addrOrProxy(), req.Method, req.URL.Redacted(), se.err)
		}
		if out, err = rewind(req); err != nil {
			return nil, err
		}
	}
}

func (k *destKey) addrOrProxy() string {
	if k.host == "" {
		return k.proxy
	}
	return k.addr()
}

// replayable reports whether req may be sent again after a kept connection
// failed before any response byte: an idempotent method (or an
// Idempotency-Key) and a body that is absent or can be had again.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, a := req.Header["Idempotency-Key"]
	_, b := req.Header["X-Idempotency-Key"]
	return a || b
}

// rewind returns req with a fresh body for a second attempt.
func rewind(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	req.Body.Close()
	b, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	out := *req
	out.Body = b
	return &out, nil
}

// staleError is a failure on a kept connection before any byte of the
// response arrived: the server had closed it while it was idle.
type staleError struct{ err error }

func (e *staleError) Error() string { return "stale connection: " + e.err.Error() }
func (e *staleError) Unwrap() error { return e.err }

// timeoutError is a timeout of this package (response head, 100-continue).
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string   { return e.msg }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }

// conn returns a connection for req to k: a kept one when there is one (and
// fresh is false), else a new one.
func (c *Client) conn(ctx context.Context, k destKey, req *http.Request, fresh bool) (*pconn, error) {
	if !fresh {
		check := !replayable(req)
		for {
			pc := c.idle.get(k)
			if pc == nil {
				break
			}
			// A request that cannot be retried is not sent on a connection
			// the server has closed while it was idle, as far as we can tell
			// without reading.
			if check {
				if !pc.rdl.IsZero() {
					pc.clearDeadline() // it may have passed while idle
				}
				if !pc.alive() {
					pc.nc.Close()
					continue
				}
			}
			pc.reused = true
			pc.attach()
			return pc, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.dial(ctx, k)
}

var _ io.ReadWriteCloser = (*switchedBody)(nil)

// Config returns the client's settings with the defaults applied.
func (c *Client) Config() Config { return c.cfg }
