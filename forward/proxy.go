package forward

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/elazarl/goproxy"

	"github.com/portcullis/portcullis/anonymize"
	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/internal/admin"
	"github.com/portcullis/portcullis/rules"
)

// LoopHeader carries the per-instance token that marks a request as having passed
// this proxy; a request that arrives carrying our own token is refused with 508.
const LoopHeader = "Portcullis-Loop"

// Anonymizer rewrites what crosses the door for privacy. The anonymize package's
// profiles satisfy it; Request runs after the door has removed the hop-by-hop
// fields, Response before the response is relayed.
type Anonymizer interface {
	Request(r *http.Request, client netip.Addr)
	Response(resp *http.Response)
}

// Options is everything New needs. Only Config may be nil-free; every other field
// has a default, documented on it.
type Options struct {
	// Config is the policy's forward section (nil: all defaults).
	Config *Config
	// Policy decides every request. Nil allows everything.
	Policy rules.Evaluator
	// Anonymizer returns the profile named by a verdict (or Config.Profile); nil, or
	// a nil result, means no anonymization beyond hop-by-hop removal.
	Anonymizer func(profile string) Anonymizer
	// Transport sends plain HTTP requests upstream; the engine wraps the shared
	// NewTransport with the cache. Nil: a NewTransport of its own (not shared).
	Transport http.RoundTripper
	// Dial connects CONNECT tunnels (the resolver's guarded dialer). Nil: net.Dialer.
	// Each dial is bounded by Config.DialTimeout.
	Dial DialFunc
	// Log receives one access-log entry per request or tunnel. Nil: none.
	Log admin.Logger
	// Logger receives operational messages. Nil: discarded.
	Logger *slog.Logger
	// Tunnels tracks open tunnels across reloads. Nil: a private tracker.
	Tunnels *Tunnels
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// BlockPage renders block pages. Nil: filter.NewBlockPage().
	BlockPage *filter.BlockPage
	// Local serves requests that are not proxy requests (relative URLs: the PAC
	// file, the CA download). Nil: a small 404 page.
	Local http.Handler
	// LoopToken marks requests that passed this process. "": a random token per New.
	LoopToken string
}

// Proxy is the forward door: an http.Handler for the engine's listeners. It is
// immutable after New and safe for concurrent use; the engine builds a new one on
// every policy reload, sharing Tunnels and Transport.
type Proxy struct {
	cfg       *Config
	ports     map[uint16]bool
	policy    rules.Evaluator
	anon      func(string) Anonymizer
	transport http.RoundTripper
	dial      DialFunc
	log       admin.Logger
	logger    *slog.Logger
	tunnels   *Tunnels
	now       func() time.Time
	block     *filter.BlockPage
	local     http.Handler
	token     string

	gp       *goproxy.ProxyHttpServer
	rt       goproxy.RoundTripper
	tunnelTo *goproxy.ConnectAction
	bufs     sync.Pool // *[]byte, 32 KiB copy buffers
}

// New builds a forward door from opts. It is cheap (no I/O, no goroutines) so the
// engine may call it on every reload.
func New(opts Options) (*Proxy, error) {
	if opts.Config != nil {
		if errs := opts.Config.Validate(); len(errs) > 0 {
			msgs := make([]string, len(errs))
			for i, e := range errs {
				msgs[i] = e.Error()
			}
			return nil, fmt.Errorf("forward: invalid config: %s", strings.Join(msgs, "; "))
		}
	}
	cfg := opts.Config.WithDefaults()
	p := &Proxy{
		cfg:       cfg,
		ports:     make(map[uint16]bool, len(cfg.ConnectPorts)),
		policy:    opts.Policy,
		anon:      opts.Anonymizer,
		transport: opts.Transport,
		log:       opts.Log,
		logger:    opts.Logger,
		tunnels:   opts.Tunnels,
		now:       opts.Now,
		block:     opts.BlockPage,
		local:     opts.Local,
		token:     opts.LoopToken,
	}
	for _, port := range cfg.ConnectPorts {
		p.ports[uint16(port)] = true
	}
	if p.policy == nil {
		p.policy = rules.EvaluatorFunc(func(*rules.Facts) rules.Verdict {
			return rules.Verdict{Action: rules.ActionAllow, Rule: "default"}
		})
	}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	if p.tunnels == nil {
		p.tunnels = NewTunnels()
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.block == nil {
		bp, err := filter.NewBlockPage()
		if err != nil {
			return nil, fmt.Errorf("forward: block page: %w", err)
		}
		p.block = bp
	}
	if p.local == nil {
		p.local = http.HandlerFunc(p.notProxyRequest)
	}
	if p.token == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		p.token = hex.EncodeToString(b[:])
	}
	tc := cfg.TransportConfig()
	tc.Dial = opts.Dial
	p.dial = timeoutDial(opts.Dial, cfg.DialTimeout)
	if p.transport == nil {
		p.transport = NewTransport(tc)
	}
	p.bufs.New = func() any { b := make([]byte, 32<<10); return &b }
	p.gp = p.newGoproxy()
	return p, nil
}

// newGoproxy configures goproxy as DESIGN.md says: our transport and dialer, no
// environment proxies, no echoed errors, the client's Accept-Encoding kept, and our
// handlers deciding everything.
func (p *Proxy) newGoproxy() *goproxy.ProxyHttpServer {
	gp := goproxy.NewProxyHttpServer()
	gp.Logger = goproxyLogger{p.logger}
	gp.Verbose = false
	gp.KeepAcceptEncoding = true
	gp.KeepHeader = false
	gp.NonproxyHandler = p.local
	if tr, ok := p.transport.(*http.Transport); ok {
		gp.Tr = tr
	} else {
		gp.Tr = &http.Transport{Proxy: nil, DialContext: p.dial}
	}
	gp.ConnectDial = nil
	gp.ConnectDialWithReq = func(r *http.Request, network, addr string) (net.Conn, error) {
		return p.dial(r.Context(), network, addr)
	}
	gp.ConnectionErrHandler = func(w io.Writer, _ *goproxy.ProxyCtx, _ error) {
		_, _ = w.Write(rawBadGateway)
	}
	p.rt = goproxy.RoundTripperFunc(func(r *http.Request, _ *goproxy.ProxyCtx) (*http.Response, error) {
		return p.transport.RoundTrip(r)
	})
	p.tunnelTo = &goproxy.ConnectAction{Action: goproxy.ConnectHijack, Hijack: p.hijackTunnel}
	gp.OnRequest().DoFunc(p.onRequest)
	gp.OnRequest().HandleConnectFunc(p.onConnect)
	gp.OnResponse().DoFunc(p.onResponse)
	return gp
}

// goproxyLogger sends goproxy's warnings to slog at debug level: they are about
// single connections (client went away, bad request inside a tunnel).
type goproxyLogger struct{ l *slog.Logger }

// Printf implements goproxy.Logger.
func (g goproxyLogger) Printf(format string, v ...any) {
	if g.l.Enabled(context.Background(), slog.LevelDebug) {
		g.l.Debug("goproxy: " + strings.TrimSpace(fmt.Sprintf(format, v...)))
	}
}

// ReadHeaderTimeout is the value the engine should give its http.Server for this
// door (never ReadTimeout or WriteTimeout: they would cut tunnels and downloads).
func (p *Proxy) ReadHeaderTimeout() time.Duration { return p.cfg.ReadHeaderTimeout }

// Config returns the door's configuration with defaults applied.
func (p *Proxy) Config() *Config { return p.cfg }

// exchange is one request's state, from arrival to the access-log entry.
type exchange struct {
	w       respWriter
	body    countingBody
	entry   admin.Entry
	verdict rules.Verdict
	anon    Anonymizer
	tunnel  *tunnel // CONNECT: dialled upstream, awaiting the hijack
	started bool    // CONNECT: the tunnel ran
}

type exchangeKey struct{}

func exchangeFrom(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{}
	x.w = respWriter{ResponseWriter: w, bufs: &p.bufs}
	x.entry = admin.Entry{Time: p.now(), Door: "forward", Client: clientAddr(r.RemoteAddr), Method: r.Method, Upstream: "direct"}
	defer p.finish(x)
	if !p.clientAllowed(x.entry.Client) {
		p.logger.Warn("forward: client not allowed", "client", x.entry.Client.String(), "method", r.Method, "host", r.Host)
		x.entry.URL = requestURL(r)
		x.entry.Action = "refuse"
		x.entry.Error = "client not in allow_clients"
		p.page(&x.w, r, http.StatusForbidden, "This proxy does not serve your address.")
		return
	}
	if r.Method == http.MethodConnect {
		p.serveConnect(x, r)
		return
	}
	x.entry.URL = requestURL(r)
	if !r.URL.IsAbs() {
		p.local.ServeHTTP(&x.w, r)
		return
	}
	p.serveHTTP(x, r)
}

// finish writes the access-log entry and closes a hijacked connection that goproxy
// left open (a finished WebSocket relay).
func (p *Proxy) finish(x *exchange) {
	if x.w.hijacked != nil && !x.started {
		_ = x.w.hijacked.Close()
	}
	if x.tunnel != nil && !x.started {
		x.tunnel.close()
		p.tunnels.remove(x.tunnel)
	}
	if p.log == nil {
		return
	}
	e := &x.entry
	if e.Status == 0 {
		e.Status = x.w.status
	}
	if e.BytesIn == 0 {
		e.BytesIn = x.body.n.Load()
	}
	if e.BytesOut == 0 {
		e.BytesOut = x.w.n
	}
	e.Duration = p.now().Sub(e.Time)
	p.log.Log(e)
}

// clientAllowed reports whether a is inside Config.AllowClients.
func (p *Proxy) clientAllowed(a netip.Addr) bool {
	for _, pf := range p.cfg.AllowClients {
		if pf.Contains(a) {
			return true
		}
	}
	return false
}

// evaluate asks the policy, failing closed if it panics.
func (p *Proxy) evaluate(f *rules.Facts) (v rules.Verdict) {
	defer func() {
		if e := recover(); e != nil {
			p.logger.Error("forward: policy evaluation panicked", "panic", fmt.Sprint(e))
			v = rules.Verdict{Action: rules.ActionBlock, Rule: "error", Reason: "The filter could not decide about this request."}
		}
	}()
	return p.policy.Evaluate(f)
}

// record copies the verdict into the log entry.
func (x *exchange) record(v rules.Verdict) {
	x.verdict = v
	x.entry.Action = v.Action.String()
	x.entry.Rule = v.Rule
	x.entry.Category = v.Category
}

// serveHTTP handles an absolute-form request: decide, then relay through goproxy.
func (p *Proxy) serveHTTP(x *exchange, r *http.Request) {
	w := &x.w
	scheme := r.URL.Scheme
	if scheme != "http" && scheme != "https" {
		x.entry.Error = "unsupported scheme"
		p.page(w, r, http.StatusBadRequest, "This proxy relays http and https URLs only.")
		return
	}
	for _, v := range r.Header[LoopHeader] {
		if strings.Contains(v, p.token) {
			x.entry.Error = "loop"
			p.logger.Warn("forward: request loop refused", "url", x.entry.URL)
			p.page(w, r, http.StatusLoopDetected, "This request already passed through this proxy (a forwarding loop).")
			return
		}
	}
	host, port := splitHostPort(r.URL.Host)
	if port == 0 {
		port = 80
		if scheme == "https" {
			port = 443
		}
	}
	f := rules.Facts{
		Door: rules.DoorForward, Client: x.entry.Client, Time: x.entry.Time,
		Method: r.Method, Scheme: scheme, Host: host, Port: port,
		Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Header: r.Header,
	}
	v := p.evaluate(&f)
	x.record(v)
	if v.Blocked() {
		if v.Quiet {
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		p.block.Serve(w, r, http.StatusForbidden, &filter.BlockInfo{
			URL: x.entry.URL, Host: host, Rule: v.Rule, Category: v.Category,
			Reason: v.Reason, Contact: p.cfg.Contact, Time: x.entry.Time,
		})
		return
	}

	anonymize.RemoveHopByHopKeepUpgrade(r.Header)
	if p.anon != nil {
		profile := v.Profile
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
	r.Header[LoopHeader] = append(r.Header[LoopHeader], p.token)
	r.Host = "" // the URL's authority decides where and to whom the request goes
	if r.Body != nil && r.Body != http.NoBody {
		x.body.rc = r.Body
		r.Body = &x.body
	}
	r = r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x))
	p.gp.ServeHTTP(w, r)
}

// onRequest runs inside goproxy for every relayed request: it routes the request
// through our transport and hands the exchange to onResponse.
func (p *Proxy) onRequest(r *http.Request, ctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
	ctx.RoundTripper = p.rt
	if x := exchangeFrom(r.Context()); x != nil {
		ctx.UserData = x
	}
	return r, nil
}

// onResponse strips hop-by-hop fields and anonymizes the response, or turns an
// upstream failure into a short proxy page (502, or 504 on a timeout).
func (p *Proxy) onResponse(resp *http.Response, ctx *goproxy.ProxyCtx) *http.Response {
	x, _ := ctx.UserData.(*exchange)
	if resp == nil {
		status := upstreamStatus(ctx.Error)
		if x != nil && ctx.Error != nil {
			x.entry.Error = ctx.Error.Error()
		}
		return p.pageResponse(ctx.Req, status, upstreamMessage(status))
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		anonymize.RemoveHopByHopKeepUpgrade(resp.Header)
	} else {
		anonymize.RemoveHopByHop(resp.Header)
	}
	if x != nil && x.anon != nil {
		x.anon.Response(resp)
	}
	return resp
}

// upstreamStatus maps a transport error to 504 (timeouts) or 502 (anything else).
func upstreamStatus(err error) int {
	var te interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &te) && te.Timeout()) {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

func upstreamMessage(status int) string {
	if status == http.StatusGatewayTimeout {
		return "The site did not answer in time."
	}
	return "The site could not be reached."
}

// clientAddr parses a RemoteAddr ("ip:port") into an unmapped address.
func clientAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		a, _ := netip.ParseAddr(remote)
		return a.Unmap()
	}
	return ap.Addr().Unmap()
}

// splitHostPort normalises an authority into the Facts host (lowercase, no port,
// no trailing dot, IPv6 without brackets) and port (0 when absent or invalid).
func splitHostPort(authority string) (string, uint16) {
	host, portStr := authority, ""
	if i := strings.LastIndexByte(authority, ':'); i >= 0 && strings.IndexByte(authority[i:], ']') < 0 {
		host, portStr = authority[:i], authority[i+1:]
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	host = strings.TrimSuffix(host, ".")
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			host = strings.ToLower(host)
			break
		}
	}
	var port uint16
	if portStr != "" {
		if n, err := strconv.ParseUint(portStr, 10, 16); err == nil {
			port = uint16(n)
		}
	}
	return host, port
}

// requestURL is the URL the access log shows: absolute URL, or host:port for CONNECT.
func requestURL(r *http.Request) string {
	if r.Method == http.MethodConnect {
		return r.Host
	}
	return r.URL.String()
}
