package forward

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/filter/phrase"
	"github.com/portcullis/portcullis/forward/auth"
	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/internal/certs"
	"github.com/portcullis/portcullis/internal/ctxafter"
	"github.com/portcullis/portcullis/internal/fieldtext"
	"github.com/portcullis/portcullis/internal/relay"
	"github.com/portcullis/portcullis/internal/tunnel"
	"github.com/portcullis/portcullis/rules"
)

// LoopHeader carries the per-instance token that marks a request as having passed
// this proxy; a request that arrives carrying our own token is refused with 508.
// It is added only to requests that leave through an upstream pool (a verdict
// naming a Pool: a parent proxy), the only way a request can come back.
const LoopHeader = "Portcullis-Loop"

// ParentDialer opens tunnels through parent proxies (*pool.Pool with parent:
// true): DialConnect returns a connection to addr (host:port) once a parent has
// accepted the CONNECT. A *pool.Info in ctx learns which parent.
type ParentDialer interface {
	DialConnect(ctx context.Context, addr string) (net.Conn, error)
}

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
	// Parents returns the parent proxy pool a verdict names (rules' pool:, a
	// pool with parent: true), or nil when the name is not one: tunnels to
	// verdicts naming a parent are opened through it, the others dial directly.
	// Nil: every tunnel dials directly. Plain requests go through a parent by
	// Transport.
	Parents func(pool string) ParentDialer
	// Log receives one access-log entry per request or tunnel. Nil: none.
	Log accesslog.Logger
	// Current returns the forward door of the policy now in force (the
	// engine's newest). Requests inside inspected tunnels that an older
	// policy's door opened are decided by it, as requests on every other kept
	// connection are. Nil, or a nil result: this door.
	Current func() *Proxy
	// Logger receives operational messages. Nil: discarded.
	Logger *slog.Logger
	// Tunnels tracks open tunnels across reloads. Nil: a private tracker.
	Tunnels *tunnel.Set
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// BlockPage renders block pages. Nil: filter.NewBlockPage().
	BlockPage *filter.BlockPage
	// Local serves requests that are not proxy requests (relative URLs) other
	// than the PAC file and the CA download, which the door serves itself. Nil: a
	// small 404 page.
	Local http.Handler
	// LoopToken marks requests that passed this process. "": a random token per New.
	LoopToken string
	// CA signs the leaves for HTTPS inspection (certs.LoadCA / certs.CreateCA). Nil: no
	// inspection; an inspect verdict then tunnels, and blocked HTTPS is refused
	// without a block page.
	CA *certs.CA
	// Leaves caches leaf certificates across reloads. Nil: a private certs.NewLeaves(Config.LeafCacheSize).
	Leaves *certs.Leaves
	// Auth checks proxy credentials (forward/auth: the htpasswd Store, or the
	// directory of forward/auth/directory). Nil: no authentication.
	Auth auth.Verifier
	// AuthExempt lists clients and destinations that need no sign-in. Nil: none.
	AuthExempt *auth.Exemptions
	// AuthLimiter limits failed sign-ins per client; share it across reloads. Nil: none.
	AuthLimiter *auth.Limiter
	// AuthRealm is the realm of the 407 challenge ("" = "Portcullis").
	AuthRealm string
	// Phrases is the compiled phrase lists of Config.Phrase (the engine compiles
	// them once per policy version). Nil: no phrase filtering.
	Phrases *phrase.Matcher
	// Groups returns every group of a request's client and user, for per-group
	// SafeSearch and phrase thresholds (the compiled policy's GroupsOf). Nil: the
	// groups the authenticator reported.
	Groups func(*rules.Facts) []string
	// Lookup resolves names for intercept mode's host verification (the name a
	// redirected client sent must resolve to the address it dialed). Nil:
	// intercepted requests naming a host are refused.
	Lookup Lookup
	// IsSelf reports whether an address is one of the proxy's own listeners
	// (an intercepted connection to it is a loop). Nil: only a connection that
	// was not redirected at all counts as one.
	IsSelf func(netip.AddrPort) bool
	// ProbeSite answers, on the TLS listeners, the requests of clients that
	// have not signed in when Config.TLSProbeResistance is set (the reverse
	// door's site, or StaticSite). Nil: probe resistance is off.
	ProbeSite http.Handler
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
	parents   func(pool string) ParentDialer
	log       accesslog.Logger
	logger    *slog.Logger
	tunnels   *tunnel.Set
	now       func() time.Time
	block     *filter.BlockPage
	local     http.Handler
	token     string

	relay   *relay.Relay
	plain   relay.Options // how plain requests are relayed: Transport, modifyPlain
	inner   innerServers  // HTTPS inspection: the muxes serving inside inspected tunnels
	ca      *certs.CA
	leaves  *certs.Leaves
	auth    auth.Verifier
	exempts *auth.Exemptions
	limiter *auth.Limiter
	realm   string
	school  *school
	bufs    sync.Pool   // *[]byte, 32 KiB copy buffers
	quiet   logThrottle // the "sign-in unavailable" log line
	lookup  Lookup
	isSelf  func(netip.AddrPort) bool
	probe   http.Handler  // the probe-resistance site; nil: off
	secret  string        // the probe-resistance secret host, canonical
	current func() *Proxy // the door of the policy in force (Options.Current)
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
		lookup:    opts.Lookup,
		isSelf:    opts.IsSelf,
		current:   opts.Current,
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
		p.tunnels = tunnel.NewSet()
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
	sc, err := newSchool(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	p.school = sc
	p.ca = opts.CA // before localHandler, which serves it
	p.local = p.localHandler(p.local)
	if p.token == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		p.token = hex.EncodeToString(b[:])
	}
	tc := cfg.TransportConfig()
	tc.Dial = opts.Dial
	p.dial = timeoutDial(opts.Dial, cfg.DialTimeout)
	p.parents = opts.Parents
	if p.transport == nil {
		p.transport = NewTransport(tc)
	}
	p.ca = opts.CA
	p.auth, p.limiter, p.realm = opts.Auth, opts.AuthLimiter, opts.AuthRealm
	p.exempts = opts.AuthExempt
	p.leaves = opts.Leaves
	if p.leaves == nil && p.ca != nil {
		p.leaves = certs.NewLeaves(cfg.LeafCacheSize)
	}
	p.bufs.New = func() any { b := make([]byte, 32<<10); return &b }
	if pr := cfg.TLSProbeResistance; pr != nil && opts.ProbeSite != nil {
		p.probe = opts.ProbeSite
		p.secret, _ = rules.CanonicalName(pr.SecretHost)
	}
	p.relay = relay.New()
	p.plain = relay.Options{Transport: p.transport, ModifyResponse: p.modifyPlain, Upgrade: true}
	if p.ca != nil {
		p.inner = p.newInnerServers()
	}
	return p, nil
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
	entry   accesslog.Entry
	verdict rules.Verdict
	anon    Anonymizer
	tunnel  *tunnel.Tunnel // CONNECT: the tracked tunnel, awaiting the hijack
	started bool           // CONNECT: the hijack ran
	async   bool           // CONNECT: the tunnel runs on after the handler (tunnel.Tunnel.Start) and logs a copy of the entry
	release func()         // CONNECT on a taken connection: frees its connection-limit slot
	mode    connectMode    // CONNECT: what to do once hijacked
	connect *rules.Facts
	facts   rules.Facts // plain and inner requests: what checkHTTP asked the policy
	groups  []string    // authenticated user's groups
	sni     string      // the SNI peeked on this CONNECT (or of the tunnel an inner request came through)
	inner   bool        // a request inside an inspected tunnel

	intercepted bool // arrived on an intercept listener (no proxy sign-in; loop-marked upstream)

	ctx exchangeCtx // a plain request's context upstream (serveHTTP)
}

type exchangeKey struct{}

// exchangeCtx is a plain request's context on its way upstream: the
// request's own, carrying the exchange (exchangeFrom) and the verdict as it
// was when the request left (rules.VerdictFrom), without the allocations of
// two context.WithValue.
type exchangeCtx struct {
	context.Context
	x       *exchange
	verdict rules.Verdict
}

// Value implements context.Context.
func (c *exchangeCtx) Value(key any) any {
	if _, ok := key.(exchangeKey); ok {
		return c.x
	}
	if rules.IsVerdictKey(key) {
		return &c.verdict
	}
	return c.Context.Value(key)
}

// AfterFunc passes on the request context's AfterFunc (internal/h1's), so
// that the transport's context.AfterFunc on a plain request registers with
// it instead of starting a goroutine per request to wait for it.
func (c *exchangeCtx) AfterFunc(f func()) func() bool { return ctxafter.Pass(c.Context, f) }

func exchangeFrom(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
}

// NoteUpstream records in the access-log entry of the request or tunnel ctx
// belongs to where it left through (a parent proxy's URL, without credentials).
// A transport or dialer the door calls may use it; it does nothing for other contexts.
func NoteUpstream(ctx context.Context, upstream string) {
	if x := exchangeFrom(ctx); x != nil {
		x.entry.Upstream = upstream
	}
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.serve(w, r, false) }

// serve is the door; overTLS for the TLS listeners (TLSHandler).
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, overTLS bool) {
	x := &exchange{}
	x.w = respWriter{ResponseWriter: w, bufs: &p.bufs}
	x.entry = accesslog.Entry{Time: p.now(), Door: "forward", Client: clientAddr(r.RemoteAddr), Method: r.Method, Upstream: "direct", TLS: overTLS}
	clientHeaders(&x.entry, r)
	defer func() {
		if !x.async { // else the tunnel's end logs it
			p.finish(x)
		}
	}()
	if overTLS {
		p.asProxyRequest(r)
	}
	if !p.clientAllowed(x.entry.Client) {
		if p.hides(x) {
			x.entry.URL, x.entry.Error = requestURL(r), "client not in allow_clients"
			p.conceal(x, r)
			return
		}
		p.logger.Warn("forward: client not allowed", "client", x.entry.Client.String(), "method", r.Method, "host", r.Host)
		x.entry.URL = requestURL(r)
		x.entry.Action, x.entry.Rule = rules.ActionBlock.String(), "allow_clients"
		x.entry.Error = "client not in allow_clients"
		p.page(&x.w, r, http.StatusForbidden, "This proxy does not serve your address.")
		return
	}
	x.entry.URL = requestURL(r)
	if in := interceptedFrom(r.Context()); in != nil {
		// A redirected connection: the client never asked a proxy, so it is
		// never asked to sign in (it could not answer a 407); rules see its
		// address and the groups of that address only.
		if !p.serveIntercepted(x, r, in) {
			return
		}
	} else {
		if r.Method != http.MethodConnect && !r.URL.IsAbs() {
			if p.hides(x) {
				p.conceal(x, r)
				return
			}
			p.local.ServeHTTP(&x.w, r)
			return
		}
		if !p.authenticate(x, r) {
			return
		}
		if p.hides(x) && p.secretHost(r) {
			p.signedIn(x, r)
			return
		}
	}
	if r.Method == http.MethodConnect {
		p.serveConnect(x, r)
		return
	}
	p.serveHTTP(x, r)
}

// finish writes the access-log entry and closes a hijacked connection left
// open (a finished WebSocket relay).
func (p *Proxy) finish(x *exchange) {
	if x.w.relay != nil {
		x.w.relay.Done()
	} else if x.w.hijacked != nil && !x.started {
		_ = x.w.hijacked.Close()
	}
	if x.tunnel != nil && !x.started {
		x.tunnel.Done()
	}
	if p.log == nil {
		return
	}
	p.logEntry(p.entryOf(x))
}

// entryOf completes x's access-log entry (status, byte counts, identity)
// but for its duration.
func (p *Proxy) entryOf(x *exchange) *accesslog.Entry {
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
	p.logIdentity(x)
	return e
}

// logEntry writes e with its duration, if there is an access log.
func (p *Proxy) logEntry(e *accesslog.Entry) {
	if p.log == nil {
		return
	}
	e.Duration = p.now().Sub(e.Time)
	p.log.Log(e)
}

// clientHeaders records in e what the access log shows of the request as the
// client sent it, before any profile rewrites it: protocol version, Referer and
// User-Agent.
func clientHeaders(e *accesslog.Entry, r *http.Request) {
	e.Proto = r.Proto
	e.Referer = fieldtext.First(r.Header["Referer"]) // Header.Get, without canonicalising a canonical key
	e.UserAgent = fieldtext.First(r.Header["User-Agent"])
}

// anonymousLogger is implemented by anonymize profiles that keep the client's
// User-Agent and Referer out of the access log (anonymize.Profile.AnonymousLog).
type anonymousLogger interface{ AnonymousLog() bool }

// logIdentity clears the client's User-Agent and Referer from the exchange's
// entry when the profile it ran under (the verdict's, else Config.Profile) says
// the log must not record them.
func (p *Proxy) logIdentity(x *exchange) {
	e := &x.entry
	if (e.UserAgent == "" && e.Referer == "") || p.anon == nil {
		return
	}
	a := x.anon
	if a == nil {
		profile := x.verdict.Profile
		if profile == "" {
			profile = p.cfg.Profile
		}
		a = p.anon(profile)
	}
	if al, ok := a.(anonymousLogger); ok && al.AnonymousLog() {
		e.UserAgent, e.Referer = "", ""
	}
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

// clientAddr parses a RemoteAddr ("ip:port") into an unmapped address.
func clientAddr(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		a, _ := netip.ParseAddr(remote)
		return a.Unmap()
	}
	return ap.Addr().Unmap()
}

// requestURL is the URL the access log shows: absolute URL, or host:port for CONNECT.
func requestURL(r *http.Request) string {
	if r.Method == http.MethodConnect {
		return r.Host
	}
	if r.URL.User != nil { // credentials in the URL never reach logs or block pages
		u := *r.URL
		u.User = nil
		return u.String()
	}
	if spelledAsURL(r.RequestURI, r.URL) {
		return r.RequestURI // the same string, without building it again
	}
	return r.URL.String()
}

// spelledAsURL reports whether target, a request line's target, is exactly
// what u.String() returns for u, a plain absolute http(s) URL without
// credentials or fragment: the scheme, host, path and query as u holds them,
// with host and path made only of bytes String never escapes. (A
// browser's absolute-form request line almost always is; then requestURL
// returns it instead of building the same string again.)
func spelledAsURL(target string, u *url.URL) bool {
	if (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.User != nil ||
		u.RawPath != "" || u.Fragment != "" || u.RawFragment != "" {
		return false
	}
	rest, ok := strings.CutPrefix(target, u.Scheme)
	if !ok {
		return false
	}
	if rest, ok = strings.CutPrefix(rest, "://"); !ok {
		return false
	}
	if rest, ok = strings.CutPrefix(rest, u.Host); !ok || !plainURLBytes(u.Host, "-._~:[]") {
		return false
	}
	path, query, hasQuery := strings.Cut(rest, "?")
	if path != u.Path || (path != "" && path[0] != '/') || !plainURLBytes(path, "-._~/") {
		return false
	}
	if hasQuery != (u.RawQuery != "" || u.ForceQuery) {
		return false
	}
	return query == u.RawQuery
}

// plainURLBytes reports whether s holds only ASCII letters, digits and the
// bytes of extra.
func plainURLBytes(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || strings.IndexByte(extra, c) >= 0 {
			continue
		}
		return false
	}
	return true
}
