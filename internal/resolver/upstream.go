package resolver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// upstream answers one query; the resolver adds failover, caching and
// de-duplication around it.
type upstream interface {
	exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error)
	String() string
}

// upstreamSpec is a parsed Config.Upstreams entry.
type upstreamSpec struct {
	scheme     string // "udp", "tcp", "tls", "system"
	addr       string // host:port to dial
	serverName string // tls: the name to verify
}

// parseUpstream parses "system", "udp://IP[:PORT]", "tcp://IP[:PORT]",
// "tls://HOST[:PORT][#NAME]" or a bare "IP[:PORT]" (udp).
func parseUpstream(s string) (upstreamSpec, error) {
	if s == "system" {
		return upstreamSpec{scheme: "system"}, nil
	}
	if !strings.Contains(s, "://") {
		s = "udp://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return upstreamSpec{}, err
	}
	spec := upstreamSpec{scheme: u.Scheme}
	port := "53"
	switch u.Scheme {
	case "udp", "tcp":
	case "tls":
		port = "853"
	default:
		return upstreamSpec{}, fmt.Errorf("unknown scheme %q (want udp, tcp, tls or system)", u.Scheme)
	}
	if u.Path != "" || u.RawQuery != "" || u.User != nil {
		return upstreamSpec{}, fmt.Errorf("%q: only scheme://host:port is allowed", s)
	}
	host := u.Hostname()
	if host == "" {
		return upstreamSpec{}, fmt.Errorf("%q: missing host", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return upstreamSpec{}, fmt.Errorf("%q: bad port", s)
		}
		port = p
	}
	if _, err := netip.ParseAddr(host); err != nil && u.Scheme != "tls" {
		return upstreamSpec{}, fmt.Errorf("%q: host must be an IP address (a name would need a resolver)", s)
	}
	spec.addr = net.JoinHostPort(host, port)
	spec.serverName = host
	if u.Fragment != "" {
		if u.Scheme != "tls" {
			return upstreamSpec{}, fmt.Errorf("%q: #name is for tls:// only", s)
		}
		spec.serverName = u.Fragment
	}
	return spec, nil
}

// newUpstream builds the client for spec. tlsConf is the base TLS
// configuration (roots) for tls upstreams.
func newUpstream(spec upstreamSpec, timeout time.Duration, tlsConf *tls.Config) upstream {
	switch spec.scheme {
	case "system":
		return newSystemUpstream(timeout)
	case "udp":
		return &udpUpstream{
			addr: spec.addr,
			udp:  &dns.Client{Net: "udp", Timeout: timeout, UDPSize: ednsSize},
			idle: make(chan *udpConn, maxIdleUDPConns),
			tcp:  newStreamUpstream("tcp", spec.addr, timeout, nil),
		}
	case "tcp":
		return newStreamUpstream("tcp", spec.addr, timeout, nil)
	default: // tls
		c := tlsConf.Clone()
		c.ServerName = spec.serverName
		return newStreamUpstream("tcp-tls", spec.addr, timeout, c)
	}
}

// ednsSize is the UDP payload size the resolver advertises (the DNS flag day 2020
// value, which avoids fragmentation).
const ednsSize = 1232

// udpUpstream queries over UDP and repeats a truncated answer's query over TCP.
// Its sockets are reused: one carries one query at a time, goes back to a small
// idle set after an answer, and is closed after a failure or timeout (a late
// answer must not meet the next query) and after maxUDPConnUses queries, so the
// source port keeps changing (with the random ID, what an off-path spoofer must
// guess). Open sockets are thus bounded by the queries in flight, which the DNS
// door bounds, plus the idle set.
type udpUpstream struct {
	addr   string
	udp    *dns.Client
	idle   chan *udpConn
	closed atomic.Bool
	tcp    *streamUpstream
}

// udpConn is a connected UDP socket to the upstream and how many queries it
// carried.
type udpConn struct {
	*dns.Conn
	uses int
}

const (
	// maxIdleUDPConns bounds the idle sockets kept per UDP upstream.
	maxIdleUDPConns = 64
	// maxUDPConnUses is how many queries one UDP socket carries before it is
	// closed and another (with another random source port) opened.
	maxUDPConnUses = 100
)

func (u *udpUpstream) String() string { return "udp://" + u.addr }

func (u *udpUpstream) exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	co, err := u.conn(ctx)
	if err != nil {
		return nil, err
	}
	r, _, err := u.udp.ExchangeWithConnContext(ctx, m, co.Conn)
	if err != nil {
		co.Close()
		return nil, err
	}
	u.release(co)
	if r.Truncated {
		return u.tcp.exchange(ctx, m)
	}
	return r, nil
}

func (u *udpUpstream) conn(ctx context.Context) (*udpConn, error) {
	select {
	case co := <-u.idle:
		return co, nil
	default:
	}
	co, err := u.udp.DialContext(ctx, u.addr)
	if err != nil {
		return nil, err
	}
	return &udpConn{Conn: co}, nil
}

func (u *udpUpstream) release(co *udpConn) {
	co.uses++
	if co.uses >= maxUDPConnUses || u.closed.Load() {
		co.Close()
		return
	}
	select {
	case u.idle <- co:
	default:
		co.Close()
	}
}

// close closes the idle sockets (later releases close theirs) and the TCP
// connections.
func (u *udpUpstream) close() {
	u.closed.Store(true)
	for {
		select {
		case co := <-u.idle:
			co.Close()
		default:
			u.tcp.close()
			return
		}
	}
}

// streamUpstream queries over TCP or TLS, keeping a few idle connections for
// reuse (a TLS handshake per query would dominate).
type streamUpstream struct {
	addr   string
	client *dns.Client
	idle   chan *dns.Conn
	closed atomic.Bool
}

const maxIdleStreamConns = 4

func newStreamUpstream(network, addr string, timeout time.Duration, tlsConf *tls.Config) *streamUpstream {
	return &streamUpstream{
		addr:   addr,
		client: &dns.Client{Net: network, Timeout: timeout, TLSConfig: tlsConf},
		idle:   make(chan *dns.Conn, maxIdleStreamConns),
	}
}

func (s *streamUpstream) String() string {
	if s.client.Net == "tcp-tls" {
		return "tls://" + s.addr
	}
	return "tcp://" + s.addr
}

func (s *streamUpstream) exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	// A pooled connection may have been closed by the server while idle: one
	// failure on a reused connection earns a retry on a fresh one.
	for attempt := 0; ; attempt++ {
		co, reused, err := s.conn(ctx)
		if err != nil {
			return nil, err
		}
		r, _, err := s.client.ExchangeWithConnContext(ctx, m, co)
		if err == nil {
			s.release(co)
			return r, nil
		}
		co.Close()
		if !reused || attempt > 0 || ctx.Err() != nil {
			return nil, err
		}
	}
}

func (s *streamUpstream) conn(ctx context.Context) (co *dns.Conn, reused bool, err error) {
	select {
	case co := <-s.idle:
		return co, true, nil
	default:
	}
	co, err = s.client.DialContext(ctx, s.addr)
	return co, false, err
}

func (s *streamUpstream) release(co *dns.Conn) {
	if s.closed.Load() {
		co.Close()
		return
	}
	select {
	case s.idle <- co:
	default:
		co.Close()
	}
}

// close closes the idle connections; later releases close theirs.
func (s *streamUpstream) close() {
	s.closed.Store(true)
	for {
		select {
		case co := <-s.idle:
			co.Close()
		default:
			return
		}
	}
}

// errNoSystemServers is returned by the system upstream for a type net.Resolver
// cannot look up when /etc/resolv.conf names no server.
var errNoSystemServers = errors.New("resolver: no nameserver in /etc/resolv.conf")
