package pool

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"
)

// ConnectError is a parent proxy's refusal of a CONNECT: it answered, with a
// status other than 2xx (403 from its own filter, 407 for wrong credentials,
// 502/504 when it could not reach the destination).
type ConnectError struct {
	// Member is the parent that answered.
	Member string
	// Status is its answer's status code.
	Status int
}

// Error implements error.
func (e *ConnectError) Error() string {
	return fmt.Sprintf("parent %s answered CONNECT with %d %s", e.Member, e.Status, http.StatusText(e.Status))
}

// DialConnect opens a tunnel to addr (host:port) through one of the pool's
// parent proxies: a TCP connection to the member, a CONNECT with the configured
// Proxy-Authorization, and the connection returned once the parent answers 2xx.
// A parent that cannot be dialled, or closes or times out before answering,
// counts toward passive health and the next member is tried (nothing reached
// the destination), within retries.max and the retry budget. A parent's
// non-2xx answer is returned as a *ConnectError without retrying (it counts as
// a failure only when passive.unhealthy_status lists it). *Info in ctx, if any,
// learns the member and attempts.
func (p *Pool) DialConnect(ctx context.Context, addr string) (net.Conn, error) {
	s := p.state.Load()
	if !s.cfg.Parent {
		return nil, fmt.Errorf("pool %s: not a parent proxy pool", p.name)
	}
	info := infoFrom(ctx)
	var key string
	if info != nil {
		key = info.Key
	}
	rc := s.cfg.Retries
	p.budget.deposit(rc.BudgetRatio)
	auth := ""
	if s.cfg.Credentials != "" {
		user, pass, _ := ParseCredentials(s.cfg.Credentials) // validated
		auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	var tried [maxTried]*Member
	var lastErr error
	for attempt := 0; ; attempt++ {
		m := p.pick(s, key, tried[:min(attempt, maxTried)])
		if m == nil {
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, p.noHealthy(s)
		}
		if info != nil {
			info.Member, info.Attempts = m.name, attempt+1
		}
		c, err := connectVia(ctx, &s.cfg, m, addr, auth)
		var ce *ConnectError
		switch {
		case err == nil:
			p.recordSuccess(m)
			m.st.inFlight.Add(1)
			return c, nil
		case errors.As(err, &ce):
			if slices.Contains(s.cfg.Passive.UnhealthyStatus, ce.Status) {
				p.recordFailure(s, m, err)
			} else {
				p.recordSuccess(m)
			}
			return nil, err
		case ctx.Err() != nil:
			return nil, err
		}
		p.recordFailure(s, m, err)
		lastErr = err
		if attempt >= max(rc.Max, 0) || !p.budget.withdraw(rc.MinPerSecond, p.now()) {
			return nil, err
		}
		if attempt < maxTried {
			tried[attempt] = m
		}
	}
}

// connectVia dials m and asks it for a tunnel to addr.
func connectVia(ctx context.Context, cfg *Config, m *Member, addr, auth string) (net.Conn, error) {
	d := net.Dialer{Timeout: cfg.Dial, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", memberAddr(m.URL))
	if err != nil {
		return nil, &DialError{Err: err}
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(cfg.ResponseHeader))
	req := "CONNECT " + addr + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	if auth != "" {
		req += "Proxy-Authorization: " + auth + "\r\n"
	}
	req += "\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		c.Close()
		return nil, fmt.Errorf("parent %s: CONNECT: %w", m.name, err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("parent %s: no answer to CONNECT: %w", m.name, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		c.Close()
		return nil, &ConnectError{Member: m.name, Status: resp.StatusCode}
	}
	if !stop() {
		c.Close()
		return nil, ctx.Err()
	}
	_ = c.SetDeadline(time.Time{})
	return &tunnelConn{Conn: c, br: br, st: m.st}, nil
}

// tunnelConn is a tunnel through a parent: what the parent sent after its answer
// (already buffered) is read first, and closing it ends the member's in-flight count.
type tunnelConn struct {
	net.Conn
	br   *bufio.Reader
	st   *memberState
	done atomic.Bool
}

func (c *tunnelConn) Read(b []byte) (int, error) {
	if c.br != nil {
		if c.br.Buffered() > 0 {
			return c.br.Read(b)
		}
		c.br = nil
	}
	return c.Conn.Read(b)
}

func (c *tunnelConn) Close() error {
	if c.done.CompareAndSwap(false, true) {
		c.st.inFlight.Add(-1)
	}
	return c.Conn.Close()
}

// CloseWrite half-closes the connection to the parent (the tunnel relays a
// client's end of stream).
func (c *tunnelConn) CloseWrite() error {
	if hc, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return hc.CloseWrite()
	}
	return nil
}
