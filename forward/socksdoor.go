package forward

import (
	"context"
	"errors"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/portcullis/portcullis/forward/socks"
	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/internal/resolver"
)

// ServeSOCKS serves one connection of a SOCKS5 listener (forward.socks) until
// it ends: method negotiation; with auth password, an RFC 1929 sign-in against
// the door's sign-in and limiter (as Proxy-Authorization is checked); the
// request, of which only CONNECT is served; then the tunnel, decided and run
// as a CONNECT to the requested destination would be (connect_ports, the
// rules on host, port and the peeked SNI, the egress guard) and answered with
// a SOCKS5 reply. The handshake is bounded by read_header_timeout. One
// access-log entry, door "socks".
func (p *Proxy) ServeSOCKS(ctx context.Context, c net.Conn) {
	x := &exchange{}
	x.entry = accesslog.Entry{Time: p.now(), Door: "socks", Client: clientAddr(c.RemoteAddr().String()),
		Method: http.MethodConnect, Proto: "SOCKS5", Upstream: "direct"}
	defer p.finish(x)
	// forward.socks.auth: password is refused without forward.auth (Validate)
	password := p.auth != nil && p.cfg.Socks.Mode(true) == socks.AuthPassword
	_ = c.SetDeadline(time.Now().Add(p.cfg.ReadHeaderTimeout))
	var reply byte // a code of the front's own (set once a request was read: a reply is due)
	requested := false
	ask := func() (string, []byte, *refusal) {
		method := socks.MethodNone
		if password {
			method = socks.MethodPassword
		}
		if err := socks.Negotiate(c, method); err != nil {
			x.entry.Error = "socks: " + err.Error()
			return "", nil, &refusal{status: http.StatusBadRequest}
		}
		if password {
			user, pass, err := socks.ReadPassword(c)
			if err != nil {
				x.entry.Error = "socks: " + err.Error()
				return "", nil, &refusal{status: http.StatusBadRequest}
			}
			res, _, err := p.checkPassword(ctx, x, user, pass)
			_ = socks.WritePasswordStatus(c, res == signedIn)
			switch res {
			case lockedOut:
				return "", nil, &refusal{status: http.StatusTooManyRequests}
			case signInDown:
				x.entry.Error = "sign-in unavailable: " + err.Error()
				return "", nil, &refusal{status: http.StatusServiceUnavailable}
			case badCredentials:
				return "", nil, &refusal{status: http.StatusProxyAuthRequired}
			}
		}
		req, err := socks.ReadRequest(c)
		if err != nil {
			x.entry.Error = "socks: " + err.Error()
			if errors.Is(err, socks.ErrAddressType) {
				requested, reply = true, socks.ReplyAddressNotSupported
			}
			return "", nil, &refusal{status: http.StatusBadRequest}
		}
		requested = true
		x.entry.URL = req.Target()
		if req.Cmd != socks.CmdConnect {
			reply = socks.ReplyCommandNotSupported
			x.entry.Error = "socks: only CONNECT is served (BIND and UDP ASSOCIATE are not)"
			return "", nil, &refusal{status: http.StatusMethodNotAllowed}
		}
		return req.Target(), nil, nil
	}
	answer := func(ref *refusal) error {
		if !requested {
			return nil
		}
		code := reply
		if ref == nil {
			_ = c.SetDeadline(time.Time{})
		} else if code == 0 {
			code = socksReply(ref)
		}
		return socks.WriteReply(c, code)
	}
	p.tunnelFront(ctx, x, c, ask, answer)
}

// socksReply is the SOCKS5 reply code for a refused tunnel.
func socksReply(ref *refusal) byte {
	switch {
	case ref.err != nil && errors.Is(ref.err, resolver.ErrEgressDenied):
		return socks.ReplyNotAllowed
	case ref.err != nil && errors.Is(ref.err, syscall.ECONNREFUSED):
		return socks.ReplyConnectionRefused
	case ref.err != nil && errors.Is(ref.err, syscall.ENETUNREACH):
		return socks.ReplyNetworkUnreachable
	case ref.err != nil && ref.status == http.StatusGatewayTimeout:
		return socks.ReplyTTLExpired
	case ref.err != nil:
		return socks.ReplyHostUnreachable
	case ref.status == http.StatusForbidden:
		return socks.ReplyNotAllowed
	}
	return socks.ReplyGeneralFailure
}
