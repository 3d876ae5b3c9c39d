package forward

import (
	"net/http"

	"github.com/elazarl/goproxy"

	"github.com/portcullis/portcullis/rules"
)

// The goproxy hooks: goproxy relays only the requests inside an inspected
// tunnel (its MITM loop); each is decided and prepared like a plain request
// (serveHTTP) by these callbacks, which newGoproxy registers.

// onRequest runs inside goproxy for every relayed request. A plain request was
// decided in ServeHTTP already; a request inside an inspected tunnel is decided here,
// exactly like a plain one.
func (p *Proxy) onRequest(r *http.Request, ctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
	ctx.RoundTripper = p.rt
	if x := exchangeFrom(r.Context()); x != nil {
		ctx.UserData = x
		return r, nil
	}
	sess, ok := ctx.UserData.(*session)
	if !ok {
		return r, p.pageResponse(r, http.StatusBadGateway, upstreamMessage(http.StatusBadGateway))
	}
	x := &exchange{inner: true, sni: sess.sni, groups: sess.x.groups}
	x.entry = sess.entry
	x.entry.Time = p.now()
	x.entry.Method = r.Method
	x.entry.URL = r.URL.String()
	x.entry.Status, x.entry.BytesIn, x.entry.BytesOut, x.entry.Error = 0, 0, 0, ""
	clientHeaders(&x.entry, r)
	ctx.UserData = x
	if resp := p.tunnelAuthority(x, sess, r); resp != nil {
		return r, resp
	}
	if resp := p.checkHTTP(x, r); resp != nil {
		return r, resp
	}
	p.prepareUpstream(x, r)
	return r, nil
}

// roundTrip sends r upstream; a failure becomes a short proxy page (goproxy would
// otherwise drop an inspected connection, or echo the error text).
// The verdict travels in the request's context (rules.WithVerdict) for the parts
// after the door: the cache policy, the upstream pool.
func (p *Proxy) roundTrip(r *http.Request, ctx *goproxy.ProxyCtx) (*http.Response, error) {
	stripProxyHeaders(r)
	x, _ := ctx.UserData.(*exchange)
	if x != nil {
		// A plain request carries it since serveHTTP; an inner one gets it here.
		if v, ok := rules.VerdictFrom(r.Context()); !ok || v != x.verdict {
			r = r.WithContext(rules.WithVerdict(r.Context(), x.verdict))
		}
	}
	resp, err := p.transport.RoundTrip(r)
	if err == nil {
		return resp, nil
	}
	return p.upstreamFailure(x, r, err), nil
}

// onResponse strips hop-by-hop fields and anonymizes the response; for requests
// inside an inspected tunnel it also arranges the access-log entry, written when the
// body has been relayed.
func (p *Proxy) onResponse(resp *http.Response, ctx *goproxy.ProxyCtx) *http.Response {
	x, _ := ctx.UserData.(*exchange)
	if resp == nil {
		status := upstreamStatus(ctx.Error)
		if x != nil && ctx.Error != nil {
			recordUpstreamError(x, ctx.Error)
		}
		resp = p.pageResponse(ctx.Req, status, upstreamMessage(status))
	}
	p.relayHeaders(x, resp)
	if x == nil {
		return resp
	}
	if x.inner {
		x.entry.Status = resp.StatusCode
		if resp.StatusCode == http.StatusSwitchingProtocols || resp.Body == nil {
			p.logInner(x)
		} else {
			resp.Body = &loggedBody{rc: resp.Body, p: p, x: x}
		}
	}
	return resp
}

// gpSchoolRequest runs schoolRequest in goproxy after onRequest.
func (p *Proxy) gpSchoolRequest(r *http.Request, ctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
	if x, _ := ctx.UserData.(*exchange); x != nil {
		p.schoolRequest(x, r)
	}
	return r, nil
}

// gpSchoolResponse runs schoolResponse in goproxy before onResponse.
func (p *Proxy) gpSchoolResponse(resp *http.Response, ctx *goproxy.ProxyCtx) *http.Response {
	x, _ := ctx.UserData.(*exchange)
	if resp == nil || x == nil || ctx.Req == nil {
		return resp
	}
	return p.schoolResponse(x, ctx.Req, resp)
}
