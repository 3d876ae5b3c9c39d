package forward

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/internal/accept"
	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/internal/pool"
	"github.com/portcullis/portcullis/internal/tunnel"
	"github.com/portcullis/portcullis/rules"
)

// ReasonHeader carries the reason of a refused CONNECT (browsers do not show the
// body of a CONNECT error, tools do show headers).
const ReasonHeader = "X-Portcullis-Reason"

// RuleHeader names the deciding rule of a refused CONNECT.
const RuleHeader = "X-Portcullis-Rule"

// connectMode is what an accepted CONNECT becomes once the client is hijacked.
type connectMode uint8

const (
	modeTunnel   connectMode = iota // relay bytes (after the SNI check)
	modeInspect                     // terminate TLS with a leaf, evaluate each request (inspect)
	modeBlockTLS                    // terminate TLS only to show the block page
	modeRefused                     // refused after the 200: close the connection
)

// refusal is why the door refuses a tunnel before it is established: each
// front answers it its own way (an HTTP status and page for CONNECT, a reply
// code for SOCKS5, a closed connection for intercepted TLS).
type refusal struct {
	status int               // the HTTP status: 403 refused, 400 bad target, 502/504 upstream, 503 shutting down
	block  *filter.BlockInfo // a refusal by the policy or connect_ports: the block page's facts
	msg    string            // the page's text otherwise
	err    error             // the dial's error, when the upstream could not be reached
}

// openTunnel decides a tunnel to authority (host:port) for x: the host must
// normalise, the port be in connect_ports, and the verdict on host and port
// allow it. It then opens the tunnel in the Set and, when it is to relay,
// dials the upstream. On nil the tunnel is x.tunnel, to be run by runTunnel.
func (p *Proxy) openTunnel(ctx context.Context, x *exchange, authority string) *refusal {
	x.entry.URL = authority
	host, port, err := rules.CanonicalAuthority(authority)
	if err != nil {
		x.entry.Error = "bad host: " + err.Error()
		x.entry.Action, x.entry.Rule = rules.ActionBlock.String(), "bad_host"
		p.logger.Warn("forward: tunnel refused: the host does not normalise", "client", x.entry.Client.String(), "error", err.Error())
		return &refusal{status: http.StatusForbidden, block: &filter.BlockInfo{
			URL: authority, Rule: "bad_host", Reason: "The host name is not valid.",
			Contact: p.cfg.Contact, Time: x.entry.Time,
		}}
	}
	if port == 0 {
		x.entry.Error = "bad CONNECT target"
		return &refusal{status: http.StatusBadRequest, msg: "CONNECT needs a host and a port."}
	}
	if !p.ports[port] {
		x.entry.Action = rules.ActionBlock.String()
		x.entry.Rule = "connect_ports"
		return &refusal{status: http.StatusForbidden, block: &filter.BlockInfo{
			URL: authority, Host: host, Rule: "connect_ports",
			Reason:  "Tunnels to port " + strconv.Itoa(int(port)) + " are not allowed.",
			Contact: p.cfg.Contact, Time: x.entry.Time,
		}}
	}
	scheme := ""
	if port == 443 {
		scheme = "https"
	}
	f := &rules.Facts{
		Door: rules.DoorForward, Client: x.entry.Client, User: x.entry.User, Groups: x.groups, Time: x.entry.Time,
		Method: http.MethodConnect, Scheme: scheme, Host: host, Port: port,
	}
	x.connect = f
	v := p.evaluate(f)
	x.record(v)
	switch {
	case v.Blocked() && p.blockOverTLS(x.entry.Client):
		x.mode = modeBlockTLS
	case v.Blocked():
		return &refusal{status: http.StatusForbidden, block: p.connectBlockInfo(x, host)}
	case v.Action == rules.ActionInspect && p.ca != nil:
		x.mode = modeInspect
	default:
		x.mode = modeTunnel
	}
	shutdown := &refusal{status: http.StatusServiceUnavailable, msg: "The proxy is shutting down."}
	tn, err := p.tunnels.Open()
	if err != nil {
		x.entry.Error = err.Error()
		return shutdown
	}
	x.tunnel = tn
	if x.mode == modeTunnel {
		up, err := p.dialTunnel(ctx, x, net.JoinHostPort(p.connectHost(x, host), strconv.Itoa(int(port))))
		if err != nil {
			recordUpstreamError(x, err)
			status := upstreamStatus(err)
			return &refusal{status: status, msg: upstreamMessage(status), err: err}
		}
		if !tn.SetUpstream(up) { // CloseAll ran during the dial
			x.entry.Error = "closed by shutdown"
			return shutdown
		}
	}
	return nil
}

// serveConnect serves a CONNECT: the decision on its host and port, then the
// door takes the client connection (http.Hijacker), answers 200 and runs the
// tunnel (runTunnel), where the SNI is checked. On HTTP/2, where there is no
// connection to take, the CONNECT's stream is the tunnel (tunnel.StreamConn).
func (p *Proxy) serveConnect(x *exchange, r *http.Request) {
	if ref := p.openTunnel(r.Context(), x, r.Host); ref != nil {
		p.refuseConnect(&x.w, r, ref)
		return
	}
	client, _, err := x.w.Hijack()
	if errors.Is(err, http.ErrNotSupported) && r.ProtoMajor >= 2 {
		// a CONNECT on an HTTP/2 stream (RFC 9113 §8.5): the stream is the
		// tunnel's client side, for as long as this handler runs
		x.w.ResponseWriter.WriteHeader(http.StatusOK)
		if err := http.NewResponseController(x.w.ResponseWriter).Flush(); err != nil {
			x.entry.Error = "answering the CONNECT: " + err.Error()
			return
		}
		p.runTunnel(r.Context(), x, tunnel.NewStreamConn(x.w.ResponseWriter, r, nil), nil, nil)
		return
	}
	if err != nil {
		x.entry.Error = "cannot take the connection: " + err.Error()
		p.page(&x.w, r, http.StatusInternalServerError, "The proxy cannot open a tunnel on this connection.")
		return
	}
	// the socket itself, for splices and readWaiter; its connection-limit slot
	// is freed when the tunnel ends
	client, x.release = accept.Detach(client)
	p.runTunnel(r.Context(), x, client, x.w.buffered, connectEstablished)
}

// dialTunnel connects a tunnel's upstream: through the parent proxy pool x's
// verdict names, else directly (with the egress guard).
func (p *Proxy) dialTunnel(ctx context.Context, x *exchange, addr string) (net.Conn, error) {
	if x.verdict.Pool != "" && p.parents != nil {
		if pd := p.parents(x.verdict.Pool); pd != nil {
			info := &pool.Info{}
			c, err := pd.DialConnect(pool.WithInfo(ctx, info), addr)
			x.entry.Upstream = info.Member
			return c, err
		}
	}
	return p.dial(ctx, "tcp", addr)
}

// blockOverTLS reports whether a blocked HTTPS request from client is shown the
// block page through a short inspection: the CA is configured and the client is
// known to trust it.
func (p *Proxy) blockOverTLS(client netip.Addr) bool {
	if p.ca == nil {
		return false
	}
	for _, pf := range p.cfg.CAClients {
		if pf.Contains(client) {
			return true
		}
	}
	return false
}

func (p *Proxy) connectBlockInfo(x *exchange, host string) *filter.BlockInfo {
	v := x.verdict
	return &filter.BlockInfo{
		URL: x.entry.URL, Host: host, Rule: v.Rule, Category: v.Category,
		Reason: v.Reason, Contact: p.cfg.Contact, User: x.entry.User, Time: x.entry.Time,
	}
}

// refuseConnect answers a refused CONNECT and closes the connection. A
// refusal by the policy gets 403, the reason in ReasonHeader and the
// plain-text block page as the body (in the language r prefers); any other a
// short page with its status.
func (p *Proxy) refuseConnect(w http.ResponseWriter, r *http.Request, ref *refusal) {
	h := w.Header()
	h.Set("Connection", "close")
	info := ref.block
	if info == nil {
		p.page(w, r, ref.status, ref.msg)
		return
	}
	var body bytes.Buffer
	info.AcceptLanguage = r.Header.Get("Accept-Language")
	_ = p.block.WriteText(&body, info)
	reason := info.Reason
	if reason == "" {
		reason = "Blocked by rule " + info.Rule
	}
	h.Set(ReasonHeader, reason)
	h.Set(RuleHeader, info.Rule)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Language", p.block.Language(info.AcceptLanguage))
	h.Set("Content-Length", strconv.Itoa(body.Len()))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write(body.Bytes())
}

// runTunnel runs an opened tunnel (openTunnel) on the client connection until
// it ends: it writes answer (the front's "established", if any), peeks the
// ClientHello after prefix (bytes the front already read), checks the SNI
// against the policy, and then relays, inspects or shows the block page.
func (p *Proxy) runTunnel(ctx context.Context, x *exchange, client net.Conn, prefix, answer []byte) {
	x.started = true
	tn := x.tunnel
	defer func() {
		if !x.async {
			tn.Done()
			if x.release != nil {
				x.release()
			}
		}
	}()
	if !tn.SetClient(client) { // CloseAll ran between dial and hijack
		return
	}
	x.w.status = http.StatusOK
	x.entry.Status = http.StatusOK
	if len(answer) > 0 {
		if _, err := client.Write(answer); err != nil {
			return
		}
	}
	peeked, rawSNI := peekHello(client, prefix, p.cfg.SNIPeekTimeout)
	sni, err := "", error(nil)
	if rawSNI != "" {
		sni, err = rules.CanonicalName(rawSNI)
	}
	x.sni = sni
	switch {
	case err != nil:
		x.entry.Error = "bad server name: " + err.Error()
		x.record(rules.Verdict{Action: rules.ActionBlock, Rule: "bad_host", Reason: "The server name is not valid."})
		p.logger.Warn("forward: tunnel refused: the server name does not normalise", "client", x.entry.Client.String(), "host", x.connect.Host, "error", err.Error())
		p.refusedAfterHello(x)
	case sni != "" && x.mode != modeBlockTLS:
		p.checkSNI(x, sni)
	}
	dest := ""
	if x.mode == modeTunnel && x.sni != "" && x.sni != x.connect.Host {
		// The policy decided on the server name (checkSNI): so does SafeSearch,
		// whatever address the CONNECT named (an IP literal, another name).
		if target := p.connectHost(x, x.sni); target != x.sni {
			tn.DropUpstream()
			dest = target
		}
	}
	if x.mode == modeTunnel && !tn.HasUpstream() { // the SNI verdict asked for a tunnel after all, or SafeSearch
		if dest == "" {
			dest = p.connectHost(x, x.connect.Host)
		}
		addr := net.JoinHostPort(dest, strconv.Itoa(int(x.connect.Port)))
		up, err := p.dialTunnel(ctx, x, addr)
		if err != nil {
			recordUpstreamError(x, err)
			x.entry.Status = upstreamStatus(err)
			return
		}
		if !tn.SetUpstream(up) {
			return
		}
	}
	switch x.mode {
	case modeTunnel:
		if x.release != nil {
			// A taken connection: the tunnel outlives this handler, whose
			// goroutine, stack, request and exchange end now; its
			// access-log entry alone waits for the tunnel's end.
			x.async = true
			e, release := new(accesslog.Entry), x.release
			*e = *p.entryOf(x)
			tn.Start(peeked, p.cfg.TunnelIdleTimeout, func(in, out int64) {
				e.BytesIn, e.BytesOut = in, out
				tn.Done()
				release()
				p.logEntry(e)
			})
			return
		}
		in, out := tn.Relay(peeked, p.cfg.TunnelIdleTimeout)
		x.entry.BytesIn, x.entry.BytesOut = in, out
	case modeInspect:
		tn.DropUpstream()
		p.inspect(ctx, x, client, peeked)
	case modeBlockTLS:
		tn.DropUpstream()
		x.entry.Status = http.StatusForbidden
		p.serveBlockTLS(ctx, x, client, peeked)
	default: // refused after the SNI check, without a way to show why
		x.entry.Status = http.StatusForbidden
	}
}

// checkSNI evaluates the policy again with the server name the client asked for.
// A name differing from the CONNECT host (an IP-literal CONNECT, or domain
// fronting) is evaluated as the host too, so host rules apply to it.
func (p *Proxy) checkSNI(x *exchange, sni string) {
	f := *x.connect
	f.SNI = sni
	if sni != f.Host {
		if p.cfg.SNIMustMatch {
			if _, err := netip.ParseAddr(f.Host); err != nil {
				x.record(rules.Verdict{Action: rules.ActionBlock, Rule: "sni_must_match",
					Reason: "The server name does not match the requested host."})
				p.refusedAfterHello(x)
				return
			}
		}
		f.Host = sni
	}
	v := p.evaluate(&f)
	switch v.Action {
	case rules.ActionBlock:
		x.record(v)
		p.refusedAfterHello(x)
	case rules.ActionInspect:
		x.record(v)
		if p.ca != nil {
			x.mode = modeInspect
		}
	case rules.ActionTunnel:
		x.record(v)
		x.mode = modeTunnel
	}
}

// refusedAfterHello picks how to refuse a tunnel the client already has a 200 for:
// the block page over TLS when the client trusts the CA, else a closed connection.
func (p *Proxy) refusedAfterHello(x *exchange) {
	if p.blockOverTLS(x.entry.Client) {
		x.mode = modeBlockTLS
		return
	}
	x.mode = modeRefused
}

var connectEstablished = []byte("HTTP/1.1 200 Connection established\r\n\r\n")
