package forward

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"

	"github.com/elazarl/goproxy"

	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/rules"
)

// ReasonHeader carries the reason of a refused CONNECT (browsers do not show the
// body of a CONNECT error, tools do show headers).
const ReasonHeader = "X-Portcullis-Reason"

// RuleHeader names the deciding rule of a refused CONNECT.
const RuleHeader = "X-Portcullis-Rule"

// serveConnect decides a CONNECT, dials the origin, and hands the connection to
// goproxy, whose hijack gives it back to hijackTunnel.
func (p *Proxy) serveConnect(x *exchange, r *http.Request) {
	w := &x.w
	x.entry.URL = r.Host
	host, port := splitHostPort(r.Host)
	if host == "" || port == 0 {
		x.entry.Error = "bad CONNECT target"
		p.page(w, r, http.StatusBadRequest, "CONNECT needs a host and a port.")
		return
	}
	if !p.ports[port] {
		x.entry.Action = rules.ActionBlock.String()
		x.entry.Rule = "connect_ports"
		p.refuseConnect(w, r, &filter.BlockInfo{
			URL: r.Host, Host: host, Rule: "connect_ports",
			Reason:  "Tunnels to port " + strconv.Itoa(int(port)) + " are not allowed.",
			Contact: p.cfg.Contact, Time: x.entry.Time,
		})
		return
	}
	scheme := ""
	if port == 443 {
		scheme = "https"
	}
	f := rules.Facts{
		Door: rules.DoorForward, Client: x.entry.Client, Time: x.entry.Time,
		Method: http.MethodConnect, Scheme: scheme, Host: host, Port: port,
	}
	v := p.evaluate(&f)
	x.record(v)
	if v.Blocked() {
		p.refuseConnect(w, r, &filter.BlockInfo{
			URL: r.Host, Host: host, Rule: v.Rule, Category: v.Category,
			Reason: v.Reason, Contact: p.cfg.Contact, Time: x.entry.Time,
		})
		return
	}

	addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
	up, err := p.dial(r.Context(), "tcp", addr)
	if err != nil {
		x.entry.Error = err.Error()
		status := upstreamStatus(err)
		w.Header().Set("Connection", "close")
		p.page(w, r, status, upstreamMessage(status))
		return
	}
	tn := &tunnel{upstream: up}
	if err := p.tunnels.add(tn); err != nil {
		_ = up.Close()
		x.entry.Error = err.Error()
		w.Header().Set("Connection", "close")
		p.page(w, r, http.StatusServiceUnavailable, "The proxy is shutting down.")
		return
	}
	x.tunnel = tn
	r = r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x))
	p.gp.ServeHTTP(w, r)
}

// refuseConnect answers a refused CONNECT with 403, the reason in ReasonHeader and
// the plain-text block page as the body, and closes the connection.
func (p *Proxy) refuseConnect(w http.ResponseWriter, r *http.Request, info *filter.BlockInfo) {
	var body bytes.Buffer
	_ = p.block.WriteText(&body, info)
	reason := info.Reason
	if reason == "" {
		reason = "Blocked by rule " + info.Rule
	}
	h := w.Header()
	h.Set(ReasonHeader, reason)
	h.Set(RuleHeader, info.Rule)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(body.Len()))
	h.Set("Cache-Control", "no-store")
	h.Set("Connection", "close")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write(body.Bytes())
}

// onConnect is goproxy's CONNECT handler: serveConnect already decided, so every
// CONNECT reaching goproxy is hijacked into our tunnel.
func (p *Proxy) onConnect(host string, ctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
	return p.tunnelTo, host
}

// hijackTunnel runs in the request's goroutine with the raw client connection: it
// confirms the tunnel and relays until it ends.
func (p *Proxy) hijackTunnel(r *http.Request, client net.Conn, _ *goproxy.ProxyCtx) {
	x := exchangeFrom(r.Context())
	if x == nil || x.tunnel == nil {
		_ = client.Close()
		return
	}
	x.started = true
	tn := x.tunnel
	defer p.tunnels.remove(tn)
	if !tn.attach(client) { // CloseAll ran between dial and hijack
		return
	}
	x.w.status = http.StatusOK
	x.entry.Status = http.StatusOK
	if _, err := client.Write(connectEstablished); err != nil {
		tn.close()
		return
	}
	in, out := tn.run(x.w.buffered, p.cfg.TunnelIdleTimeout)
	x.entry.BytesIn, x.entry.BytesOut = in, out
}

var connectEstablished = []byte("HTTP/1.1 200 Connection established\r\n\r\n")
