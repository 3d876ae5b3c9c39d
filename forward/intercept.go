package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/portcullis/portcullis/internal/accept"
	"github.com/portcullis/portcullis/internal/config/field"
	"github.com/portcullis/portcullis/rules"
)

// InterceptConfig is the `forward.intercept` section: listeners for connections
// a firewall redirected to the proxy (iptables/nftables REDIRECT), served as if
// the client had asked the proxy for their original destination.
type InterceptConfig struct {
	// HTTP holds the addresses ("host:port") receiving redirected plain HTTP
	// (port 80): the name is the Host header.
	HTTP []string `yaml:"http"`
	// HTTPS holds the addresses receiving redirected TLS (port 443): the name is
	// the ClientHello's server name, peeked and never answered; the connection is
	// then tunnelled or inspected as a CONNECT to that name would be.
	HTTPS []string `yaml:"https"`
}

// validate reports bad addresses, at paths relative to the forward section.
func (c *InterceptConfig) validate() []field.Error {
	var errs []field.Error
	for i, a := range c.HTTP {
		errs = append(errs, validateListen(fmt.Sprintf("intercept.http[%d]", i), a)...)
	}
	for i, a := range c.HTTPS {
		errs = append(errs, validateListen(fmt.Sprintf("intercept.https[%d]", i), a)...)
	}
	return errs
}

// Lookup resolves a host name to its addresses (the engine's resolver).
type Lookup func(ctx context.Context, host string) ([]netip.Addr, error)

// intercepted is what a redirected connection tells the door: where the client
// meant to go and where it actually arrived.
type intercepted struct {
	dst   netip.AddrPort // SO_ORIGINAL_DST
	local netip.AddrPort // the listener's side of the connection
	tls   bool
}

type interceptKey struct{}

// InterceptConnContext is an http.Server ConnContext for intercept listeners
// (InterceptListener): it tells the door the connection's original destination,
// which marks every request on it as intercepted.
func InterceptConnContext(ctx context.Context, c net.Conn) context.Context {
	if ic, ok := c.(*interceptConn); ok {
		return context.WithValue(ctx, interceptKey{}, &ic.info)
	}
	return ctx
}

// InterceptListener wraps a listener receiving redirected connections. Each
// accepted connection carries its original destination (a connection whose
// destination cannot be read is logged and closed). With tls, the connection's
// ClientHello is peeked and the connection presents itself to the HTTP server as
// a CONNECT to the server name (to the original address without one) followed
// by the client's bytes; the answer to that CONNECT never reaches the client: a
// 200 is swallowed, anything else closes the connection.
func InterceptListener(ln net.Listener, tls bool, peekTimeout time.Duration, logger *slog.Logger) net.Listener {
	if peekTimeout <= 0 {
		peekTimeout = DefaultSNIPeekTimeout
	}
	return &interceptListener{Listener: ln, tls: tls, peek: peekTimeout, log: logger}
}

type interceptListener struct {
	net.Listener
	tls  bool
	peek time.Duration
	log  *slog.Logger
}

func (l *interceptListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		dst, err := originalDst(accept.Bare(c))
		if err != nil {
			l.log.Warn("intercept: cannot read the original destination; closing", "client", c.RemoteAddr().String(), "error", err.Error())
			_ = c.Close()
			continue
		}
		local, _ := netip.ParseAddrPort(c.LocalAddr().String())
		ic := &interceptConn{Conn: c, info: intercepted{dst: unmapPort(dst), local: unmapPort(local), tls: l.tls}, peek: l.peek}
		return ic, nil
	}
}

func unmapPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// interceptConn is a redirected connection. For TLS it reads as a CONNECT
// request followed by the client's bytes and hides the answer to that CONNECT.
type interceptConn struct {
	net.Conn
	info intercepted
	peek time.Duration

	rmu    sync.Mutex
	primed bool
	prefix []byte

	wmu     sync.Mutex
	head    []byte // the CONNECT answer's header so far
	through bool   // the answer was a 200: writes pass
	refused bool   // the answer was not a 200: the connection is closed
}

func (c *interceptConn) Read(p []byte) (int, error) {
	if !c.info.tls {
		return c.Conn.Read(p)
	}
	c.rmu.Lock()
	if !c.primed {
		c.primed = true
		peeked, sni := peekHello(c.Conn, nil, c.peek)
		if len(peeked) == 0 {
			c.rmu.Unlock()
			return 0, errors.New("intercept: nothing sent")
		}
		target := c.info.dst.String()
		if sni != "" {
			target = net.JoinHostPort(sni, strconv.Itoa(int(c.info.dst.Port())))
		}
		c.prefix = append([]byte("CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n"), peeked...)
	}
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		c.rmu.Unlock()
		return n, nil
	}
	c.rmu.Unlock()
	return c.Conn.Read(p) // not under rmu: a deadline set elsewhere must be able to end it
}

// maxAnswerHead bounds the CONNECT answer header kept while waiting for its end.
const maxAnswerHead = 64 << 10

func (c *interceptConn) Write(p []byte) (int, error) {
	if !c.info.tls {
		return c.Conn.Write(p)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.through {
		return c.Conn.Write(p)
	}
	if c.refused {
		return 0, net.ErrClosed
	}
	c.head = append(c.head, p...)
	end := bytes.Index(c.head, []byte("\r\n\r\n"))
	if end < 0 {
		if len(c.head) > maxAnswerHead {
			c.refused = true
			_ = c.Conn.Close()
		}
		return len(p), nil
	}
	if !bytes.HasPrefix(c.head, []byte("HTTP/1.1 200 ")) && !bytes.HasPrefix(c.head, []byte("HTTP/1.0 200 ")) {
		// refused (blocked, loop, conflicting name): the client gets no answer
		// it could take for the server's; it sees the connection closed
		c.refused = true
		_ = c.Conn.Close()
		return len(p), nil
	}
	c.through = true
	rest := c.head[end+4:]
	c.head = nil
	if len(rest) > 0 {
		if _, err := c.Conn.Write(rest); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// interceptedFrom returns what the connection of ctx says about its redirection;
// nil when it was not intercepted.
func interceptedFrom(ctx context.Context) *intercepted {
	in, _ := ctx.Value(interceptKey{}).(*intercepted)
	return in
}

// serveIntercepted turns a request that arrived on an intercept listener into
// the proxy request it stands for: an origin-form request becomes absolute-form
// with its Host, a CONNECT (made by interceptConn) keeps the server name. It
// refuses (and reports false) a loop back to the proxy and a name that does not
// resolve to the original destination (Squid's host verification).
func (p *Proxy) serveIntercepted(x *exchange, r *http.Request, in *intercepted) bool {
	x.intercepted = true
	if in.dst == in.local || (p.isSelf != nil && p.isSelf(in.dst)) {
		x.entry.Error, x.entry.Rule = "intercept loop", "intercept_loop"
		x.entry.Action = rules.ActionBlock.String()
		p.logger.Warn("forward: intercepted connection refused: its original destination is the proxy itself (not redirected, or a forwarding loop)",
			"client", x.entry.Client.String(), "destination", in.dst.String())
		p.page(&x.w, r, http.StatusLoopDetected, "This connection was not redirected to the proxy by a firewall, or it loops back to the proxy.")
		return false
	}
	authority := r.Host
	if r.Method != http.MethodConnect && r.URL.IsAbs() {
		authority = r.URL.Host // a client that knows it talks to a proxy
	}
	host, port, err := rules.CanonicalAuthority(authority)
	if err != nil || host == "" {
		x.entry.Error, x.entry.Rule = "intercept: no usable Host", "bad_host"
		x.entry.Action = rules.ActionBlock.String()
		p.page(&x.w, r, http.StatusBadRequest, "The request names no valid host.")
		return false
	}
	if err := p.verifyDst(r.Context(), host, port, in.dst); err != nil {
		x.entry.URL = authority
		x.entry.Error, x.entry.Rule = "intercept: "+err.Error(), "host_verify"
		x.entry.Action = rules.ActionBlock.String()
		p.logger.Warn("forward: intercepted request refused: the host does not match the original destination",
			"client", x.entry.Client.String(), "host", authority, "destination", in.dst.String(), "error", err.Error())
		p.page(&x.w, r, http.StatusConflict, "The host name does not match the address the connection was made to.")
		return false
	}
	if r.Method == http.MethodConnect {
		return true
	}
	if port == 0 && in.dst.Port() != 80 {
		authority = net.JoinHostPort(authority, strconv.Itoa(int(in.dst.Port())))
	}
	r.URL.Scheme, r.URL.Host = "http", authority
	r.RequestURI = r.URL.String()
	x.entry.URL = requestURL(r)
	return true
}

// verifyDst reports whether host (and port, 0 if the request named none) may be
// the name of dst: an address literal must be dst's address, a name must
// resolve to it.
func (p *Proxy) verifyDst(ctx context.Context, host string, port uint16, dst netip.AddrPort) error {
	if port != 0 && port != dst.Port() {
		return fmt.Errorf("port %d named, %d dialed", port, dst.Port())
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Unmap() != dst.Addr() {
			return fmt.Errorf("address %s named, %s dialed", a, dst.Addr())
		}
		return nil
	}
	if p.lookup == nil {
		return errors.New("no resolver to check the name")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, err := p.lookup(ctx, host)
	if err != nil {
		return fmt.Errorf("cannot resolve %s: %v", host, err)
	}
	for _, a := range addrs {
		if a.Unmap() == dst.Addr() {
			return nil
		}
	}
	return fmt.Errorf("%s does not resolve to %s", host, dst.Addr())
}
