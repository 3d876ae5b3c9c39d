package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// dial opens a connection to k: TCP (to the destination or the parent proxy),
// a CONNECT through the parent for https, then TLS for https. An https
// destination that takes h2 is returned as an HTTP/2 connection (pc.h2).
func (c *Client) dial(ctx context.Context, k destKey) (*pconn, error) {
	addr := k.proxy
	if addr == "" {
		addr = k.addr()
	}
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	nc, err := c.cfg.Dial(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return nil, err
	}
	if k.scheme == "https" {
		if k.proxy != "" {
			if err := c.connect(ctx, nc, k); err != nil {
				nc.Close()
				return nil, err
			}
		}
		tc, err := c.handshake(ctx, nc, k)
		if err != nil {
			nc.Close()
			return nil, err
		}
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			cc, err := c.newH2(ctx, k, tc)
			if err != nil {
				tc.Close()
				return nil, err
			}
			return &pconn{h2: cc}, nil
		}
		nc = tc
	}
	pc := &pconn{c: c, nc: nc, key: k, epoch: c.idle.epoch(), recent: true}
	pc.rd.init(nc)
	if tc, ok := nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		pc.tls = &st
	}
	pc.attach()
	return pc, nil
}

// handshake runs the TLS handshake with the client's settings and k's server
// name, within the handshake timeout and the request's context.
func (c *Client) handshake(ctx context.Context, nc net.Conn, k destKey) (*tls.Conn, error) {
	cfg := c.tlsCfg
	if cfg.ServerName != k.serverName || k.h1only {
		cfg = cfg.Clone()
		cfg.ServerName = k.serverName
		if k.h1only {
			cfg.NextProtos = []string{"http/1.1"}
		}
	}
	tc := tls.Client(nc, cfg)
	hctx, cancel := context.WithTimeout(ctx, c.cfg.TLSHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, &timeoutError{fmt.Sprintf("upstream %s: TLS handshake timeout (%s)", k.addr(), c.cfg.TLSHandshakeTimeout)}
		}
		return nil, err
	}
	return tc, nil
}

// ConnectError is a parent proxy's refusal of a CONNECT (a status other than 2xx).
type ConnectError struct {
	// Proxy is the parent's host:port.
	Proxy string
	// Status is its answer's status code.
	Status int
}

// Error implements error.
func (e *ConnectError) Error() string {
	return fmt.Sprintf("parent %s answered CONNECT with %d %s", e.Proxy, e.Status, http.StatusText(e.Status))
}

// connect asks the parent proxy on nc for a tunnel to k's host:port.
func (c *Client) connect(ctx context.Context, nc net.Conn, k destKey) error {
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(longAgo) })
	defer stop()
	if d := c.cfg.ResponseHeaderTimeout; d > 0 {
		_ = nc.SetDeadline(time.Now().Add(d))
	}
	addr := k.addr()
	req := "CONNECT " + addr + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	if c.proxyAuth != "" {
		req += "Proxy-Authorization: " + c.proxyAuth + "\r\n"
	}
	req += "\r\n"
	if _, err := nc.Write([]byte(req)); err != nil {
		return c.ctxErr(ctx, fmt.Errorf("parent %s: CONNECT: %w", k.proxy, err))
	}
	// Read the answer byte by byte's worth of buffer: nothing after its head
	// may be consumed (the tunnel's first bytes are the server's).
	br := bufio.NewReaderSize(nc, 1024)
	var h head
	if _, err := readHead(br, c.cfg.MaxHeaderBytes, &h, nil); err != nil {
		return c.ctxErr(ctx, fmt.Errorf("parent %s: no answer to CONNECT: %w", k.proxy, err))
	}
	if h.status < 200 || h.status > 299 {
		return &ConnectError{Proxy: k.proxy, Status: h.status}
	}
	if br.Buffered() > 0 {
		return fmt.Errorf("parent %s: bytes after its CONNECT answer before the TLS handshake", k.proxy)
	}
	if !stop() {
		return ctx.Err()
	}
	return nc.SetDeadline(time.Time{})
}

// ctxErr returns the context's error when it ended (the deadline it set caused
// err), else err.
func (c *Client) ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// longAgo is a deadline in the past: it interrupts blocked reads and writes.
var longAgo = time.Unix(1, 0)

// h2Conn returns an HTTP/2 connection to k with room for one more request
// (reserved), or nil.
func (c *Client) h2Conn(k destKey) *http.ClientConn {
	c.h2mu.Lock()
	defer c.h2mu.Unlock()
	ccs := c.h2[k]
	if len(ccs) == 0 {
		return nil
	}
	keep := ccs[:0]
	var found *http.ClientConn
	for _, cc := range ccs {
		if cc.Err() != nil {
			continue
		}
		keep = append(keep, cc)
		if found == nil && cc.Reserve() == nil {
			found = cc
		}
	}
	clear(ccs[len(keep):])
	c.h2[k] = keep
	return found
}

type h2ConnKey struct{}

// newH2 hands tc, which negotiated h2, to Go's HTTP/2 transport and keeps the
// connection for k's later requests. The returned connection has a slot
// reserved for the caller's request.
func (c *Client) newH2(ctx context.Context, k destKey, tc *tls.Conn) (*http.ClientConn, error) {
	c.h2once.Do(func() {
		t := &http.Transport{
			DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				if nc, ok := ctx.Value(h2ConnKey{}).(net.Conn); ok {
					return nc, nil
				}
				return nil, errors.New("upstream: no connection handed to HTTP/2")
			},
			IdleConnTimeout:        c.cfg.IdleTimeout,
			ResponseHeaderTimeout:  c.cfg.ResponseHeaderTimeout,
			DisableCompression:     true,
			MaxResponseHeaderBytes: int64(c.cfg.MaxHeaderBytes),
		}
		t.Protocols = new(http.Protocols)
		t.Protocols.SetHTTP2(true)
		c.h2t = t
	})
	cc, err := c.h2t.NewClientConn(context.WithValue(ctx, h2ConnKey{}, net.Conn(tc)), "https", k.addr())
	if err != nil {
		return nil, err
	}
	if err := cc.Reserve(); err != nil {
		cc.Close()
		return nil, err
	}
	c.h2mu.Lock()
	if c.h2 == nil {
		c.h2 = map[destKey][]*http.ClientConn{}
	}
	c.h2[k] = append(c.h2[k], cc)
	c.h2mu.Unlock()
	return cc, nil
}
