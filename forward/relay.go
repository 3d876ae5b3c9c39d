package forward

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/portcullis/portcullis/anonymize"
	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/internal/relay"
	"github.com/portcullis/portcullis/internal/resolver"
	"github.com/portcullis/portcullis/rules"
)

// serveHTTP handles an absolute-form request: decide, prepare the upstream
// request, then internal/relay sends it through the door's transport and
// relays the answer, with the response checks (file types, phrases) and the
// profile's response edits as its hook (modifyPlain).
func (p *Proxy) serveHTTP(x *exchange, r *http.Request) {
	if resp := p.checkHTTP(x, r); resp != nil {
		writeResponse(&x.w, r, resp)
		return
	}
	p.prepareUpstream(x, r)
	x.w.tunnels = p.tunnels // a WebSocket relay is tracked like a tunnel
	// The exchange and the verdict travel in the context: the transport reads
	// the verdict (cache policy, parent pool), modifyPlain the exchange.
	x.ctx = exchangeCtx{Context: r.Context(), x: x, verdict: x.verdict}
	p.schoolRequest(x, r)
	stripProxyHeaders(r)
	res, err := p.relay.ServeContext(&x.ctx, &x.w, r, &p.plain)
	if res.Status == http.StatusSwitchingProtocols {
		x.entry.Status, x.entry.BytesOut = res.Status, res.BytesOut
	}
	switch {
	case err == nil:
	case res.Status == 0: // nothing sent: the door's page
		resp := p.upstreamFailure(x, r, err)
		p.relayHeaders(x, resp)
		writeResponse(&x.w, r, resp)
	default: // after the head: relay cut the client connection (Aborted), or the client went away
		x.entry.Error = err.Error()
	}
}

// modifyPlain is relay's response hook for plain requests: the response
// checks (which may replace the response by a block page), then the
// exchange's profile and connection handling (profileHeaders).
func (p *Proxy) modifyPlain(resp *http.Response) error {
	x := exchangeFrom(resp.Request.Context())
	if x == nil {
		return nil
	}
	if nr := p.schoolResponse(x, resp.Request, resp); nr != resp {
		*resp = *nr
	}
	p.profileHeaders(x, resp) // relay removed the hop-by-hop fields; the door's pages have none
	return nil
}

// checkHTTP applies everything that may refuse an HTTP request (plain or inside an
// inspected tunnel): scheme, loop, policy. It returns the canned response to send,
// or nil to relay the request.
func (p *Proxy) checkHTTP(x *exchange, r *http.Request) *http.Response {
	scheme := r.URL.Scheme
	if scheme != "http" && scheme != "https" {
		x.entry.Error = "unsupported scheme"
		return p.pageResponse(r, http.StatusBadRequest, "This proxy relays http and https URLs only.")
	}
	for _, v := range r.Header[LoopHeader] {
		if strings.Contains(v, p.token) {
			x.entry.Error = "loop"
			p.logger.Warn("forward: request loop refused", "url", x.entry.URL)
			return p.pageResponse(r, http.StatusLoopDetected, "This request already passed through this proxy (a forwarding loop).")
		}
	}
	host, port, err := rules.CanonicalAuthority(r.URL.Host)
	if err != nil {
		return p.badHost(x, r, err)
	}
	if rules.PathRefused(r.URL.Path) { // as the reverse door does
		x.entry.Error = "dot segment or control byte in the path"
		x.entry.Action, x.entry.Rule = rules.ActionBlock.String(), "bad_path"
		p.logger.Warn("forward: request refused: a dot segment or a control byte in the path", "client", x.entry.Client.String(), "url", x.entry.URL)
		return p.pageResponse(r, http.StatusBadRequest, "The path of this address holds \".\" or \"..\" segments or control characters.")
	}
	// From here on the request goes to, and is dialed by, the name the
	// policy sees: never a spelling the resolver would read differently.
	r.URL.Host = rules.JoinAuthority(r.URL.Host, host, port)
	if port == 0 {
		port = 80
		if scheme == "https" {
			port = 443
		}
	}
	// The facts live in the exchange: one allocation less than a Facts of its own
	// (its address escapes into the policy).
	f := &x.facts
	*f = rules.Facts{
		Door: rules.DoorForward, Client: x.entry.Client, User: x.entry.User, Groups: x.groups, Time: x.entry.Time,
		Method: r.Method, Scheme: scheme, Host: host, Port: port, SNI: x.sni,
		Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Header: r.Header,
	}
	v := p.evaluate(f)
	x.record(v)
	if !v.Blocked() {
		return nil
	}
	if v.Quiet {
		// What the page expects of that kind of resource (a transparent GIF, an
		// empty script, style sheet or page), else 204.
		return anonymize.QuietResponse(r)
	}
	return p.blockResponse(r, &filter.BlockInfo{
		URL: x.entry.URL, Host: host, Rule: v.Rule, Category: v.Category,
		Reason: v.Reason, Contact: p.cfg.Contact, User: x.entry.User, Time: x.entry.Time,
	})
}

// badHost refuses a request whose host does not normalise (rules.CanonicalAuthority)
// with 400 and a log line; a host other parsers read as an IP address
// ("127.1", "0x7f.1") gets the egress guard's 403, as it did when the guard
// refused it at the dial.
func (p *Proxy) badHost(x *exchange, r *http.Request, err error) *http.Response {
	x.entry.Error = "bad host: " + err.Error()
	x.entry.Action, x.entry.Rule = rules.ActionBlock.String(), "bad_host"
	p.logger.Warn("forward: request refused: the host does not normalise", "client", x.entry.Client.String(), "error", err.Error())
	if _, _, lerr := resolver.ParseLiteral(r.URL.Hostname()); errors.Is(lerr, resolver.ErrEgressDenied) {
		return p.pageResponse(r, http.StatusForbidden, upstreamMessage(http.StatusForbidden))
	}
	return p.pageResponse(r, http.StatusBadRequest, "The host name of this address is not valid.")
}

// prepareUpstream turns an allowed client request into the upstream request:
// hop-by-hop fields removed, anonymized, no Go default User-Agent, the loop mark
// added when it leaves through a pool, the URL's authority as Host, the body counted.
func (p *Proxy) prepareUpstream(x *exchange, r *http.Request) {
	relay.RemoveHopByHopKeepUpgrade(r.Header)
	if p.anon != nil {
		profile := x.verdict.Profile
		if profile == "" {
			profile = p.cfg.Profile
		}
		if a := p.anon(profile); a != nil {
			x.anon = a
			a.Request(r, x.entry.Client)
		}
	}
	if _, ok := r.Header["User-Agent"]; !ok {
		r.Header["User-Agent"] = []string{""} // present but empty: Go adds no default
	}
	if x.verdict.Pool != "" || x.intercepted {
		// Only a request leaving through an upstream pool (a parent proxy) can come
		// back here; a direct request to our own address arrives in origin form and
		// gets the local page. Origins never see the mark, except on an
		// intercepted request: a firewall that redirects the proxy's own
		// requests back to it would otherwise loop.
		r.Header[LoopHeader] = append(r.Header[LoopHeader], p.token)
	}
	r.Host = "" // the URL's authority decides where and to whom the request goes
	if r.Body != nil && r.Body != http.NoBody {
		x.body.rc = r.Body
		if p.cfg.RequestBodyTimeout > 0 {
			x.body.ctl, x.body.timeout = http.NewResponseController(x.w.ResponseWriter), p.cfg.RequestBodyTimeout
		}
		r.Body = &x.body
	}
}

// writeResponse sends a canned response through w.
func writeResponse(w http.ResponseWriter, r *http.Request, resp *http.Response) {
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	if resp.ContentLength >= 0 && resp.StatusCode != http.StatusNoContent {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method != http.MethodHead && resp.Body != nil {
		_, _ = io.Copy(w, resp.Body)
	}
	if resp.Body != nil {
		_ = resp.Body.Close()
	}
}

// blockResponse renders the block page for r as a response: HTML when the client
// accepts it, plain text otherwise, in the language it prefers (Accept-Language).
func (p *Proxy) blockResponse(r *http.Request, info *filter.BlockInfo) *http.Response {
	var buf bytes.Buffer
	info.AcceptLanguage = r.Header.Get("Accept-Language")
	ctype := "text/plain; charset=utf-8"
	var err error
	if filter.AcceptsHTML(r.Header.Get("Accept")) {
		ctype = "text/html; charset=utf-8"
		err = p.block.WriteHTML(&buf, info)
	} else {
		err = p.block.WriteText(&buf, info)
	}
	if err != nil {
		buf.Reset()
		ctype = "text/plain; charset=utf-8"
		buf.WriteString("Blocked by Portcullis.\n")
	}
	h := make(http.Header, 4)
	h.Set("Content-Type", ctype)
	h.Set("Content-Language", p.block.Language(info.AcceptLanguage))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	return &http.Response{
		StatusCode: http.StatusForbidden, Status: "403 Forbidden", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, ContentLength: int64(buf.Len()), Body: io.NopCloser(&buf), Request: r,
	}
}

// tunnelAuthority makes the tunnel's authority the destination of a request
// inside an inspected tunnel (serveInner builds its URL from the inner Host): the
// host must be the CONNECT's host or the server name the tunnel was decided on,
// and the port the CONNECT's (an absent one is taken from the tunnel), so that
// the inner Host never picks another site or a port connect_ports refuses. A
// request naming anything else is answered 421 Misdirected Request (RFC 9110
// §15.5.20: this connection cannot answer for that authority; a browser that
// coalesced connections retries on a new one) with a log line; nil otherwise.
func (p *Proxy) tunnelAuthority(x *exchange, sess *session, r *http.Request) *http.Response {
	host, port, err := rules.CanonicalAuthority(r.URL.Host)
	if err != nil {
		return p.badHost(x, r, err)
	}
	if (host != sess.host && host != sess.sni) || (port != 0 && port != sess.port) {
		x.entry.Error = "misdirected: the request names " + r.URL.Host + " inside a tunnel to " + net.JoinHostPort(sess.host, strconv.Itoa(int(sess.port)))
		x.entry.Action, x.entry.Rule = rules.ActionBlock.String(), "tunnel_authority"
		p.logger.Warn("forward: request refused: its Host differs from the tunnel's", "client", x.entry.Client.String(),
			"host", r.URL.Host, "tunnel", sess.host, "port", sess.port, "sni", sess.sni)
		return p.pageResponse(r, http.StatusMisdirectedRequest, "This request names another site than the connection it was sent on.")
	}
	if port == 0 && !(r.URL.Scheme == "https" && sess.port == 443) {
		port = sess.port
	}
	r.URL.Host = rules.JoinAuthority(r.URL.Host, host, port)
	return nil
}

// upstreamFailure records err (a failed dial or exchange with the origin) in the
// exchange (nil: none) and returns the short page the client gets instead:
// 403, 502 or 504 (upstreamStatus), or 502 naming a certificate problem.
func (p *Proxy) upstreamFailure(x *exchange, r *http.Request, err error) *http.Response {
	if x != nil {
		if resp := p.bodyFailure(x, r); resp != nil {
			return resp
		}
		recordUpstreamError(x, err)
	}
	if msg, ok := certProblem(err); ok {
		return p.pageResponse(r, http.StatusBadGateway, msg)
	}
	status := upstreamStatus(err)
	return p.pageResponse(r, status, upstreamMessage(status))
}

// bodyFailure returns the answer when the exchange failed because reading the
// client's request body did (nil: it did not): 408 when the client sent no byte
// of it for request_body_timeout, 400 when it was malformed (a bad chunk line or
// extension, a body shorter than its Content-Length). The failure is logged, and
// relayHeaders closes the connection after the answer.
func (p *Proxy) bodyFailure(x *exchange, r *http.Request) *http.Response {
	err := x.body.failure()
	if err == nil {
		return nil
	}
	var resp *http.Response
	if errors.Is(err, os.ErrDeadlineExceeded) {
		x.entry.Error = fmt.Sprintf("request body: no byte for %s (request_body_timeout)", p.cfg.RequestBodyTimeout)
		p.logger.Warn("forward: request body too slow", "client", x.entry.Client.String(), "url", x.entry.URL,
			"received", x.body.n.Load(), "request_body_timeout", p.cfg.RequestBodyTimeout.String())
		resp = p.pageResponse(r, http.StatusRequestTimeout, "The request body arrived too slowly.")
	} else {
		x.entry.Error = "request body: " + err.Error()
		p.logger.Info("forward: malformed request body", "client", x.entry.Client.String(), "url", x.entry.URL, "error", err.Error())
		resp = p.pageResponse(r, http.StatusBadRequest, "The request body is malformed.")
	}
	return resp // relayHeaders adds Connection: close
}

// stripProxyHeaders does what goproxy's RemoveProxyHeaders did with
// KeepAcceptEncoding on: clear RequestURI (a client request must not carry one),
// drop the Proxy-* fields, and drop Connection unless r is a WebSocket handshake.
func stripProxyHeaders(r *http.Request) {
	r.RequestURI = ""
	h := r.Header
	// Header.Del of canonical keys, without canonicalising them again.
	delete(h, "Proxy-Connection")
	delete(h, "Proxy-Authenticate")
	delete(h, "Proxy-Authorization")
	if _, ok := h["Connection"]; ok && (!headerContains(h, "Connection", "Upgrade") || !headerContains(h, "Upgrade", "websocket")) {
		delete(h, "Connection") // only that spelling of the key was ever deleted: no scan of the fields without it
	}
}

// headerContains reports whether a field named name (any case) lists value (any
// case) among its comma-separated elements, as goproxy decides a WebSocket handshake.
func headerContains(h http.Header, name, value string) bool {
	for key, values := range h {
		if !strings.EqualFold(key, name) {
			continue
		}
		for _, v := range values {
			for s := range strings.SplitSeq(v, ",") {
				if strings.EqualFold(value, strings.TrimSpace(s)) {
					return true
				}
			}
		}
	}
	return false
}

// certProblem describes an upstream certificate verification failure for the
// user: a bad certificate is reported, never hidden.
func certProblem(err error) (string, bool) {
	const pre = "The site's certificate could not be verified: "
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknown):
		return pre + "it is signed by an authority this proxy does not trust.", true
	case errors.As(err, &host):
		return pre + "it is not valid for this site's name.", true
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return pre + "it has expired or is not yet valid.", true
		}
		return pre + "it is not valid.", true
	case errors.As(err, &verify):
		return pre + "it is not valid.", true
	}
	return "", false
}

// relayHeaders makes resp's header fields the ones relayed to the client:
// hop-by-hop fields removed (a 101 keeps its Upgrade), then the exchange's
// anonymize profile applied (x nil: none).
func (p *Proxy) relayHeaders(x *exchange, resp *http.Response) {
	if resp.StatusCode == http.StatusSwitchingProtocols {
		relay.RemoveHopByHopKeepUpgrade(resp.Header)
	} else {
		relay.RemoveHopByHop(resp.Header)
	}
	p.profileHeaders(x, resp)
}

// profileHeaders is relayHeaders for a response without hop-by-hop fields:
// the exchange's anonymize profile, and Connection: close after a failed
// request body.
func (p *Proxy) profileHeaders(x *exchange, resp *http.Response) {
	if x != nil && x.anon != nil {
		x.anon.Response(resp)
	}
	if x != nil && x.body.failure() != nil {
		// The rest of a failed request body is never read: net/http must not
		// wait for the next request on this connection.
		resp.Header.Set("Connection", "close")
	}
}

// upstreamStatus maps a transport error to 403 (the egress guard refused an
// internal address), 504 (timeouts) or 502 (anything else).
func upstreamStatus(err error) int {
	if errors.Is(err, resolver.ErrEgressDenied) {
		return http.StatusForbidden
	}
	var te interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &te) && te.Timeout()) {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// recordUpstreamError records err (a failed dial or exchange with the origin) in
// x's log entry. A refusal of the egress guard is logged as a block by rule
// "egress", naming the setting that allows the destination (the page stays
// short: it is for the user, the log line for the admin).
func recordUpstreamError(x *exchange, err error) {
	x.entry.Error = err.Error()
	if !errors.Is(err, resolver.ErrEgressDenied) {
		return
	}
	x.entry.Action, x.entry.Rule, x.entry.Category = rules.ActionBlock.String(), "egress", ""
	x.entry.Error += "; " + resolver.EgressHint(err)
}

func upstreamMessage(status int) string {
	switch status {
	case http.StatusGatewayTimeout:
		return "The site did not answer in time."
	case http.StatusForbidden:
		return "This proxy does not connect to internal addresses. Ask your administrator if you need this one."
	}
	return "The site could not be reached."
}
