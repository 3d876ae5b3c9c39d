package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/portcullis/portcullis/internal/accept"
	"github.com/portcullis/portcullis/internal/accesslog"
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
	// then tunnelled or inspected as a CONNECT to that name would be
	// (Proxy.ServeInterceptedTLS).
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

// InterceptListener wraps a listener receiving redirected connections: each
// accepted connection carries its original destination (a connection whose
// destination cannot be read is logged and closed). Plain-HTTP intercept
// listeners are served by an http.Server with InterceptConnContext; HTTPS ones
// hand each connection to Proxy.ServeInterceptedTLS.
func InterceptListener(ln net.Listener, logger *slog.Logger) net.Listener {
	return &interceptListener{Listener: ln, log: logger}
}

type interceptListener struct {
	net.Listener
	log *slog.Logger
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
		return &interceptConn{Conn: c, info: intercepted{dst: unmapPort(dst), local: unmapPort(local)}}, nil
	}
}

func unmapPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// interceptConn is a redirected connection and where it was going.
type interceptConn struct {
	net.Conn
	info intercepted
}

// ServeInterceptedTLS serves one connection of an HTTPS intercept listener
// (accepted through InterceptListener) until it ends: it peeks the
// ClientHello, and decides and runs the tunnel to the server name (to the
// original address without one) as a CONNECT to it would be, without an
// answer to write; a refusal closes the connection. One access-log entry.
func (p *Proxy) ServeInterceptedTLS(ctx context.Context, c net.Conn) {
	ic, ok := c.(*interceptConn)
	if !ok {
		_ = c.Close()
		return
	}
	x := &exchange{intercepted: true}
	x.entry = accesslog.Entry{Time: p.now(), Door: "forward", Client: clientAddr(c.RemoteAddr().String()), Method: http.MethodConnect, Upstream: "direct"}
	defer p.finish(x)
	p.tunnelFront(ctx, x, c, func() (string, []byte, *refusal) {
		peeked, sni := peekHello(c, nil, p.cfg.SNIPeekTimeout)
		target := ic.info.dst.String()
		if sni != "" {
			target = net.JoinHostPort(sni, strconv.Itoa(int(ic.info.dst.Port())))
		}
		x.entry.URL = target
		if len(peeked) == 0 {
			x.entry.Error = "intercept: nothing sent"
			return "", nil, &refusal{status: http.StatusBadRequest}
		}
		return target, peeked, p.checkIntercepted(ctx, x, target, &ic.info)
	}, nil)
}

// tunnelFront runs a tunnel for a front that is not an HTTP request (an
// intercepted TLS connection, SOCKS5) until it ends: allow_clients, then ask
// (the front's own reading of the target: host:port, bytes it read past its
// handshake, or a refusal), openTunnel, the front's answer (nil: none; given
// nil for success), and runTunnel. A refusal is answered, then c is closed.
func (p *Proxy) tunnelFront(ctx context.Context, x *exchange, c net.Conn, ask func() (string, []byte, *refusal), answer func(*refusal) error) {
	target, prefix, ref := "", []byte(nil), (*refusal)(nil)
	if !p.clientAllowed(x.entry.Client) {
		x.entry.Action, x.entry.Rule = rules.ActionBlock.String(), "allow_clients"
		x.entry.Error = "client not in allow_clients"
		ref = &refusal{status: http.StatusForbidden}
	} else if target, prefix, ref = ask(); ref == nil {
		ref = p.openTunnel(ctx, x, target)
	}
	if ref != nil {
		x.entry.Status = ref.status
		if answer != nil {
			_ = answer(ref)
		}
		_ = c.Close()
		return
	}
	if answer != nil {
		if err := answer(nil); err != nil {
			x.entry.Error = "answering the client: " + err.Error()
			_ = c.Close()
			return
		}
	}
	c, release := accept.Detach(c)
	defer release()
	p.runTunnel(ctx, x, c, prefix, nil)
}

// interceptedFrom returns what the connection of ctx says about its redirection;
// nil when it was not intercepted.
func interceptedFrom(ctx context.Context) *intercepted {
	in, _ := ctx.Value(interceptKey{}).(*intercepted)
	return in
}

// serveIntercepted turns a request that arrived on an intercept listener into
// the proxy request it stands for: an origin-form request becomes
// absolute-form with its Host. It refuses (and reports false) what
// checkIntercepted refuses.
func (p *Proxy) serveIntercepted(x *exchange, r *http.Request, in *intercepted) bool {
	authority := r.Host
	if r.URL.IsAbs() {
		authority = r.URL.Host // a client that knows it talks to a proxy
	}
	if ref := p.checkIntercepted(r.Context(), x, authority, in); ref != nil {
		p.page(&x.w, r, ref.status, ref.msg)
		return false
	}
	if r.Method == http.MethodConnect {
		return true
	}
	_, port, _ := rules.CanonicalAuthority(authority)
	if port == 0 && in.dst.Port() != 80 {
		authority = net.JoinHostPort(authority, strconv.Itoa(int(in.dst.Port())))
	}
	r.URL.Scheme, r.URL.Host = "http", authority
	r.RequestURI = r.URL.String()
	x.entry.URL = requestURL(r)
	return true
}

// checkIntercepted refuses an intercepted connection that loops back to the
// proxy, names no valid host, or names a host that does not resolve to the
// original destination (Squid's host verification).
func (p *Proxy) checkIntercepted(ctx context.Context, x *exchange, authority string, in *intercepted) *refusal {
	x.intercepted = true
	if in.dst == in.local || (p.isSelf != nil && p.isSelf(in.dst)) {
		x.entry.Error, x.entry.Rule = "intercept loop", "intercept_loop"
		x.entry.Action = rules.ActionBlock.String()
		p.logger.Warn("forward: intercepted connection refused: its original destination is the proxy itself (not redirected, or a forwarding loop)",
			"client", x.entry.Client.String(), "destination", in.dst.String())
		return &refusal{status: http.StatusLoopDetected, msg: "This connection was not redirected to the proxy by a firewall, or it loops back to the proxy."}
	}
	host, port, err := rules.CanonicalAuthority(authority)
	if err != nil || host == "" {
		x.entry.Error, x.entry.Rule = "intercept: no usable Host", "bad_host"
		x.entry.Action = rules.ActionBlock.String()
		return &refusal{status: http.StatusBadRequest, msg: "The request names no valid host."}
	}
	if err := p.verifyDst(ctx, host, port, in.dst); err != nil {
		x.entry.URL = authority
		x.entry.Error, x.entry.Rule = "intercept: "+err.Error(), "host_verify"
		x.entry.Action = rules.ActionBlock.String()
		p.logger.Warn("forward: intercepted request refused: the host does not match the original destination",
			"client", x.entry.Client.String(), "host", authority, "destination", in.dst.String(), "error", err.Error())
		return &refusal{status: http.StatusConflict, msg: "The host name does not match the address the connection was made to."}
	}
	return nil
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
