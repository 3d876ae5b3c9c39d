// Package reverse owns the reverse-proxy door: routing fronted sites to upstream
// pools, TLS termination (internal CA or certificate files chosen by SNI), the
// forwarding headers, origin hiding, and protection from abuse (per-client rate
// limits, connection limits, slow-client timeouts, size limits). The door
// builds the outbound request (forwarding headers, the public URL) and
// internal/relay sends it through the route's transport and relays the
// answer; the pool package does selection, health and retries, and the engine
// inserts the cache through Options.Wrap. A route transport that is a
// FreshServer (the cache's) answers fresh hits itself, without a round trip.
package reverse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/internal/ctxafter"
	"github.com/portcullis/portcullis/internal/fieldtext"
	"github.com/portcullis/portcullis/internal/h1"

	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/internal/cache"

	"github.com/gobwas/glob"

	"github.com/portcullis/portcullis/internal/pool"
	"github.com/portcullis/portcullis/internal/relay"
	"github.com/portcullis/portcullis/rules"
)

// Options are what New builds a Handler from. Pools and Limiter outlive the
// Handler (the engine keeps them across reloads); everything else is per
// policy version.
type Options struct {
	// Config is the reverse section of the policy (validated by the caller).
	Config Config
	// Policy decides each request (Door reverse, Route set); nil allows all.
	Policy rules.Evaluator
	// Pools are the upstream pools by name; every route's pool must be here.
	Pools map[string]*pool.Pool
	// Wrap decorates a route's transport (the engine inserts the cache); nil = none.
	Wrap func(route string, rt http.RoundTripper) http.RoundTripper
	// Limiter holds per-client rate state; nil = a new one (lost on reload).
	Limiter *RateLimiter
	// BlockPage answers a request the policy blocked (not Quiet); nil = a
	// small built-in 403 page. The engine adapts filter.BlockPage:
	//
	//	func(w http.ResponseWriter, r *http.Request, v *rules.Verdict) {
	//		bp.Serve(w, r, http.StatusForbidden, &filter.BlockInfo{URL: …, Rule: v.Rule, …})
	//	}
	BlockPage func(w http.ResponseWriter, r *http.Request, v *rules.Verdict)
	// Log receives one access-log entry per request; nil = none.
	Log accesslog.Logger
	// Logger receives operational messages; nil = discarded.
	Logger *slog.Logger
}

// Handler is the reverse door for one policy version. It is an http.Handler;
// build a new one (cheaply) on every reload.
type Handler struct {
	cfg       Config
	policy    rules.Evaluator
	routes    []*route
	pools     map[string]*pool.Pool
	wrap      func(string, http.RoundTripper) http.RoundTripper
	limiter   *RateLimiter
	blockPage func(http.ResponseWriter, *http.Request, *rules.Verdict)
	log       accesslog.Logger
	detail    accesslog.DetailLogger // log, when it may not read entries' details
	logger    *slog.Logger
	relay     *relay.Relay
	modify    func(*http.Response) error // h.modifyResponse, bound once
	fwd       forwarding
	hide      *cache.Edit // what hide_origin does to a response header
	httpsPort string      // for redirect_https; "" = 443
	overrides sync.Map    // route+"\x00"+pool → *relay.Options (verdict.Pool overrides)
	exchanges sync.Pool   // *exchange of requests that gave it to nobody (see ServeHTTP)

	// Recent answers, reused while requests repeat them. Immutable values
	// behind atomic pointers: a request reads them without writing shared
	// memory, and only a change of value stores (and allocates) a new one.
	lastURL  atomic.Pointer[string]   // the access-log URL of a recent request
	lastHost atomic.Pointer[hostMemo] // a recent Host field and its normal form
}

// hostMemo is a Host field (and whether it came over TLS) with what
// splitHost makes of it.
type hostMemo struct {
	raw  string
	tls  bool
	host string
	port uint16
}

// route is a compiled Route.
type route struct {
	Route
	exact    []string // exact host names
	suffixes []string // ".example.test" for "*.example.test"
	glob     *glob.Pattern
	header   [][2]string // canonical name, value
	limits   Limits
	pool     *pool.Pool
	upstream *relay.Options // how the route's requests are relayed (its transport)
	fresh    FreshServer    // the route's transport when it can answer fresh hits itself
	edit     *cache.Edit    // origin hiding for fresh hits; nil without hide_origin
}

// FreshServer is implemented by a route transport (as returned by Options.Wrap)
// that can answer a request from what it holds, without a round trip: the
// shared cache's WrapPolicy transport. ServeFresh writes the whole response to
// w (with edit made to its header: the door's one Edit, which the cache may
// keep rendered with a stored header) and returns true
// with the response's Content-Type (w's header map may not hold it: the
// header may go as rendered bytes), or writes nothing and returns false, and
// the request is proxied as usual. now is when the request arrived (the
// door's one reading of the clock for it). The door tries it first for
// requests without a body, after rules and limits; the access log records a
// request it answered as a hit.
type FreshServer interface {
	ServeFresh(w http.ResponseWriter, r *http.Request, scheme string, edit *cache.Edit, now time.Time) (contentType string, ok bool)
}

// New builds the door's Handler.
func New(opts Options) (*Handler, error) {
	cfg := opts.Config
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{
		cfg:       cfg,
		policy:    opts.Policy,
		pools:     opts.Pools,
		wrap:      opts.Wrap,
		limiter:   opts.Limiter,
		blockPage: opts.BlockPage,
		log:       opts.Log,
		logger:    logger,
		relay:     relay.New(),
		fwd:       newForwarding(&cfg.ForwardedHeaders),
	}
	h.modify = h.modifyResponse
	h.detail, _ = h.log.(accesslog.DetailLogger)
	if h.limiter == nil {
		h.limiter = NewRateLimiter(0)
	}
	remove := cfg.Hide.Remove
	if len(remove) == 0 {
		remove = []string{"Server", "X-Powered-By", "X-AspNet-Version", "X-AspNetMvc-Version", "X-Runtime", "X-Generator", "Via"}
	}
	h.hide = new(cache.Edit)
	for _, name := range remove {
		h.hide.Remove = append(h.hide.Remove, http.CanonicalHeaderKey(name))
	}
	if cfg.Hide.Server != "" {
		h.hide.Set = http.Header{"Server": {cfg.Hide.Server}}
	}
	if len(cfg.TLSListen) > 0 {
		if _, port, err := net.SplitHostPort(cfg.TLSListen[0]); err == nil && port != "443" {
			h.httpsPort = port
		}
	}
	for i := range cfg.Routes {
		rt, err := h.compileRoute(&cfg.Routes[i])
		if err != nil {
			return nil, err
		}
		h.routes = append(h.routes, rt)
	}
	return h, nil
}

func (h *Handler) compileRoute(rc *Route) (*route, error) {
	rt := &route{Route: *rc, limits: h.cfg.Limits.merged(rc.Limits)}
	for _, host := range rc.Host {
		if suffix, ok := strings.CutPrefix(host, "*"); ok {
			rt.suffixes = append(rt.suffixes, suffix)
		} else {
			rt.exact = append(rt.exact, host)
		}
	}
	if rc.PathGlob != "" {
		g, err := glob.Compile(rc.PathGlob, '/')
		if err != nil {
			return nil, fmt.Errorf("route %s: path_glob: %w", rc.Name, err)
		}
		rt.glob = g
	}
	for name, v := range rc.Header {
		rt.header = append(rt.header, [2]string{http.CanonicalHeaderKey(name), v})
	}
	p := h.pools[rc.Pool]
	if p == nil {
		return nil, fmt.Errorf("route %s: unknown pool %q", rc.Name, rc.Pool)
	}
	rt.pool = p
	rt.upstream = h.newUpstream(rc.Name, p)
	rt.fresh, _ = rt.upstream.Transport.(FreshServer)
	if rc.HideOrigin {
		rt.edit = h.hide
	}
	return rt, nil
}

// newUpstream builds the relay options for a route and pool: the pool's
// transport, wrapped (the cache) when the engine asks.
func (h *Handler) newUpstream(routeName string, p *pool.Pool) *relay.Options {
	var transport = p.Transport()
	if h.wrap != nil {
		transport = h.wrap(routeName, transport)
	}
	return &relay.Options{Transport: transport, ModifyResponse: h.modify, Upgrade: true}
}

// upstreamFor returns how to relay a request of a route to the pool a
// verdict named.
func (h *Handler) upstreamFor(rt *route, poolName string) *relay.Options {
	if poolName == "" || poolName == rt.Pool {
		return rt.upstream
	}
	if p := h.pools[poolName]; p != nil && p.Parent() {
		return rt.upstream // parent proxies are for the forward door only
	}
	key := rt.Name + "\x00" + poolName
	if v, ok := h.overrides.Load(key); ok {
		return v.(*relay.Options)
	}
	p := h.pools[poolName]
	if p == nil {
		return nil
	}
	v, _ := h.overrides.LoadOrStore(key, h.newUpstream(rt.Name, p))
	return v.(*relay.Options)
}

// poolFor returns the pool a request of a route goes to: the one its
// verdict names (a parent proxy pool aside), else the route's.
func (h *Handler) poolFor(rt *route, poolName string) *pool.Pool {
	if p := h.pools[poolName]; p != nil && !p.Parent() {
		return p
	}
	return rt.pool
}

// match returns the first route matching the request, or nil.
func (h *Handler) match(host string, r *http.Request) *route {
	for _, rt := range h.routes {
		if rt.matches(host, r) {
			return rt
		}
	}
	return nil
}

func (rt *route) matches(host string, r *http.Request) bool {
	if len(rt.exact)+len(rt.suffixes) > 0 && !rt.matchHost(host) {
		return false
	}
	if rt.PathPrefix != "" && !strings.HasPrefix(r.URL.Path, rt.PathPrefix) {
		return false
	}
	if rt.glob != nil && !rt.glob.Match(r.URL.Path) {
		return false
	}
	if len(rt.Methods) > 0 && !contains(rt.Methods, r.Method) {
		return false
	}
	for _, hv := range rt.header {
		vs, ok := r.Header[hv[0]]
		if !ok || (hv[1] != "" && !contains(vs, hv[1])) {
			return false
		}
	}
	return true
}

func (rt *route) matchHost(host string) bool {
	for _, e := range rt.exact {
		if host == e {
			return true
		}
	}
	for _, s := range rt.suffixes {
		if len(host) > len(s) && strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// exchange is one request's state, shared by ServeHTTP and modifyResponse
// through the request context. It is also the ResponseWriter handed to the
// relay, recording status and size.
//
// exchange is also the request's context: it embeds the incoming context and
// answers Value for its own key and for pool.InfoKey, which saves the two
// context.WithValue allocations per request.
type exchange struct {
	http.ResponseWriter
	context.Context
	status int
	bytes  int64
	werr   error // the first error writing to the client

	info     pool.Info
	peer     netip.Addr // the connecting address
	peerText string     // peer as text (h1.Peer); "" when not given
	remote   string     // the request's RemoteAddr when the engine gave no peer
	fwdVals  [3]string  // the forwarding fields' values (forwarding.apply)
	client   netip.Addr // the client (peer, or from trusted X-Forwarded-For)
	trusted  bool       // peer is a trusted proxy
	scheme   string
	host     string // normalised host, no port
	route    *route
	err      error
	body     *bodyReader
	facts    rules.Facts
	verdict  rules.Verdict
	entry    accesslog.Entry // the access-log entry, filled by logEntry
	fresh    bool            // answered by the route's FreshServer (a cache hit)
	ctype    string          // the Content-Type of that answer
	lent     bool            // ex went to something that may outlive the request (the proxy path)
}

type exchangeKey struct{}

// peerWriter is the engine's ResponseWriter when it parsed the
// connection's address once for all its requests (internal/h1's): the
// RemoteAddr it gives requests, that address parsed and as text.
type peerWriter interface {
	Peer() (remote string, addr netip.Addr, text string)
}

// Value implements context.Context.
func (ex *exchange) Value(key any) any {
	switch key.(type) {
	case exchangeKey:
		return ex
	case pool.InfoKey:
		return &ex.info
	}
	return ex.Context.Value(key)
}

// AfterFunc is context.AfterFunc of the request's context, through that
// context's own AfterFunc when it has one (internal/h1's; ctxafter.Pass):
// the upstream client stops its exchange when the request ends without a
// derived context or a goroutine of context.AfterFunc's per request.
func (ex *exchange) AfterFunc(f func()) (stop func() bool) { return ctxafter.Pass(ex.Context, f) }

func exchangeFrom(ctx context.Context) *exchange {
	ex, _ := ctx.Value(exchangeKey{}).(*exchange)
	return ex
}

// WriteHeader records the final status.
func (ex *exchange) WriteHeader(code int) {
	if ex.status == 0 && code >= 200 {
		ex.status = code
	}
	ex.ResponseWriter.WriteHeader(code)
}

// Write records the bytes written.
func (ex *exchange) Write(b []byte) (int, error) {
	if ex.status == 0 {
		ex.status = http.StatusOK
	}
	n, err := ex.ResponseWriter.Write(b)
	ex.bytes += int64(n)
	if err != nil && ex.werr == nil {
		ex.werr = err
	}
	return n, err
}

// ReadFromConn passes internal/relay's socket-to-socket body copy on to
// the engine's writer (internal/h1 on plain TCP splices it), recording the
// bytes as Write does; ok false (nothing done) when the writer cannot. (A
// failure may be of either socket: relay tells them apart, not ex.werr.)
func (ex *exchange) ReadFromConn(prefix []byte, src net.Conn, n int64) (int64, bool, error) {
	cw, ok := ex.ResponseWriter.(interface {
		ReadFromConn([]byte, net.Conn, int64) (int64, bool, error)
	})
	if !ok {
		return 0, false, nil
	}
	m, ok, err := cw.ReadFromConn(prefix, src, n)
	if !ok {
		return 0, false, nil
	}
	if ex.status == 0 {
		ex.status = http.StatusOK
	}
	ex.bytes += m
	return m, true, err
}

// AdoptHeader passes internal/relay's header handover on to the engine's
// writer (internal/h1's takes the response's header map as its own);
// false (nothing done) when the writer cannot.
func (ex *exchange) AdoptHeader(h http.Header) bool {
	a, ok := ex.ResponseWriter.(interface{ AdoptHeader(http.Header) bool })
	return ok && a.AdoptHeader(h)
}

// Unwrap lets http.ResponseController reach Flush, Hijack and deadlines.
func (ex *exchange) Unwrap() http.ResponseWriter { return ex.ResponseWriter }

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ex, _ := h.exchanges.Get().(*exchange)
	if ex == nil {
		ex = new(exchange)
	}
	ex.ResponseWriter, ex.scheme = w, "http"
	if r.TLS != nil {
		ex.scheme = "https"
	}
	// internal/h1 parsed the connection's address once for its requests;
	// it is this request's unless something changed RemoteAddr
	var remote string
	if pw, ok := w.(peerWriter); ok {
		remote, ex.peer, ex.peerText = pw.Peer()
	}
	if remote != r.RemoteAddr {
		ex.peer, ex.peerText, ex.remote = h1.PeerAddr(r.RemoteAddr), "", r.RemoteAddr // the text when needed (peerString)
	}
	defer func() {
		if v := recover(); v != nil {
			// relay panics with http.ErrAbortHandler when a response body
			// fails after its headers were sent on a connection it cannot
			// hijack (HTTP/2): log it, then let the server reset the stream.
			if ex.err == nil {
				ex.err = fmt.Errorf("aborted: %v", v)
			}
			h.logEntry(ex, r, &ex.verdict, start)
			panic(v)
		}
		h.logEntry(ex, r, &ex.verdict, start)
		// A request answered here (a cache hit, a page) handed ex to nothing
		// that outlives it; the next request takes it. One proxied, whose
		// context and body the transport may still hold, leaves it to the GC.
		if !ex.lent && ex.body == nil {
			*ex = exchange{}
			h.exchanges.Put(ex)
		}
	}()
	if up := h.serve(ex, r, start); up != nil {
		h.answer(ex, r, up, start)
	}
}

// readDifferently reports whether a reading of f's path that a member may
// make (rules.MemberReadings: "\" as "/", ";" parameters and "..;", trailing
// dots and spaces, case) is blocked by the policy while f's own path is not.
// Only paths holding such spellings cost a second evaluation.
func (h *Handler) readDifferently(f *rules.Facts) bool {
	for _, p := range rules.MemberReadings(f.Path) {
		g := *f
		g.Path = p
		if h.policy.Evaluate(&g).Blocked() {
			return true
		}
	}
	return false
}

// serve decides r: the HTTPS redirect, path checks, routing, the policy,
// the rate limit and body limits. It returns how to relay r (ex.route is
// its route), or nil when it answered r itself (a redirect, a refusal, an
// error page). answer then serves a fresh hit or proxies, after serve
// returned: serve's large frame (about 1 KiB: the rules' facts and
// verdicts, the log calls' arguments) is off the stack while the cache and
// the engine's writer run, so that a hit fits in the stack a goroutine
// starts with (the runtime's average of stacks in use, 4 KiB under load).
// When it did not, a hit served on a fresh goroutine (internal/h1 wakes a
// parked connection on one) copied its stack to a larger one in the
// cache's key building.
func (h *Handler) serve(ex *exchange, r *http.Request, start time.Time) *relay.Options {
	ex.client, ex.trusted = h.fwd.client(ex.peer, r.Header)
	host, port := h.splitHost(r.Host, r.TLS != nil)
	ex.host = host
	verdict := &ex.verdict // in ex: a local would escape (its address reaches the block page)

	if h.ownRequest(ex, r) {
		return nil
	}
	if h.cfg.RedirectHTTPS && r.TLS == nil && len(h.cfg.TLSListen) > 0 {
		h.redirect(ex, r, host)
		return nil
	}
	if rules.PathRefused(r.URL.Path) {
		h.page(ex, http.StatusBadRequest)
		return nil
	}
	rt := h.match(host, r)
	*verdict = rules.Verdict{Action: rules.ActionAllow, Rule: "default"}
	if h.policy != nil {
		f := &ex.facts
		*f = rules.Facts{
			Door: rules.DoorReverse, Client: ex.client, Time: start,
			Method: r.Method, Scheme: ex.scheme, Host: host, Port: port,
			Path: rules.JudgedPath(r.URL.Path), Query: r.URL.RawQuery, Header: r.Header,
		}
		if r.TLS != nil {
			f.SNI = r.TLS.ServerName
		}
		if rt != nil {
			f.Route = rt.Name
		}
		*verdict = h.policy.Evaluate(f)
		if !verdict.Blocked() && h.readDifferently(f) {
			h.logger.Warn("request refused: a member may read its path as one the policy blocks",
				"client", ex.client.String(), "host", host, "path", r.URL.Path)
			*verdict = rules.Verdict{Action: rules.ActionBlock, Rule: "ambiguous_path"}
			h.page(ex, http.StatusBadRequest)
			return nil
		}
	}
	if verdict.Blocked() {
		h.blocked(ex, r, verdict)
		return nil
	}
	if rt == nil {
		h.page(ex, http.StatusNotFound)
		return nil
	}
	ex.route = rt
	up := h.upstreamFor(rt, verdict.Pool)
	if up == nil {
		h.logger.Error("verdict names an unknown pool", "route", rt.Name, "pool", verdict.Pool, "rule", verdict.Rule)
		h.page(ex, http.StatusServiceUnavailable)
		return nil
	}
	lim := &rt.limits
	if lim.Rate > 0 {
		if ok, wait := h.limiter.Allow(rt.Name, ex.client, lim.Rate, lim.burst(), start); !ok {
			secs := int64((wait + time.Second - 1) / time.Second)
			ex.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
			h.page(ex, http.StatusTooManyRequests)
			return nil
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		if lim.MaxBodyBytes > 0 && r.ContentLength > lim.MaxBodyBytes {
			h.page(ex, http.StatusRequestEntityTooLarge)
			return nil
		}
		ex.body = newBodyReader(ex.ResponseWriter, r, lim, start)
		r.Body = ex.body
	}
	ex.Context = r.Context()
	return up
}

// answer serves r, which serve decided to relay with up: a fresh hit from
// the route's cache, else the proxy.
func (h *Handler) answer(ex *exchange, r *http.Request, up *relay.Options, start time.Time) {
	rt := ex.route
	// The cache declines requests with a body (as its RoundTrip would bypass
	// them); an HTTP/2 GET has a Body even when it has no bytes.
	if rt.fresh != nil && up == rt.upstream {
		if ex.ctype, ex.fresh = rt.fresh.ServeFresh(ex, r, ex.scheme, rt.edit, start); ex.fresh {
			if ex.werr != nil {
				ex.err = ex.werr
			}
			return
		}
	}
	ex.info.Key = h.poolFor(rt, ex.verdict.Pool).Key(r, ex.client) // what its policy hashes, if it hashes
	ex.lent = true
	h.proxy(ex, r, up)
}

// proxy relays r to the route's upstream: the outbound request is r itself,
// rewritten in place (rewrite), then internal/relay sends it and writes the
// answer; a failure before anything was written gets the door's page.
func (h *Handler) proxy(ex *exchange, r *http.Request, up *relay.Options) {
	h.rewrite(ex, r)
	res, err := h.relay.ServeContext(ex, ex, r, up) // ex is the context upstream too
	if res.Status == http.StatusSwitchingProtocols {
		ex.status, ex.bytes = res.Status, res.BytesOut
	}
	if err == nil {
		return
	}
	if res.Status == 0 {
		h.proxyError(ex, err)
		return
	}
	ex.err = err // the client has the header: a cut body was aborted by relay
}

// rewrite makes r the outbound request: hop-by-hop fields removed (an
// upgrade kept, but no h2c upgrade smuggling), the public URL (so a cache
// keys on it; the pool's transport readdresses it to a member), the client's
// Host, a query the origin cannot read differently (cleanQuery), and the
// forwarding headers.
func (h *Handler) rewrite(ex *exchange, r *http.Request) {
	hdr := r.Header
	// What the client sent, before Prepare may drop it: one pass over the
	// fields (a request has a few) instead of a lookup and a delete per
	// name, mostly of names that are not there.
	var in forwardedIn
	var drop [5]string // the fields of those present that go
	n := 0
	for k, v := range hdr {
		switch k {
		case "X-Forwarded-For":
			in.xff = v
		case "X-Forwarded-Proto":
			in.proto = v
		case "X-Forwarded-Host":
			in.host = v
		case "Forwarded":
			in.forwarded = v
		case "Http2-Settings":
		default:
			continue
		}
		drop[n] = k
		n++
	}
	relay.Prepare(r, true)
	if up := hdr["Upgrade"]; len(up) > 0 && strings.Contains(strings.ToLower(up[0]), "h2c") {
		delete(hdr, "Upgrade")
		delete(hdr, "Connection")
	}
	for _, k := range drop[:n] {
		delete(hdr, k)
	}
	if q := cleanQuery(r.URL.RawQuery); q != r.URL.RawQuery {
		u := *r.URL // the access log shows the query the client sent
		u.RawQuery = q
		r.URL = &u
	}
	r.URL.Scheme = ex.scheme
	r.URL.Host = r.Host
	h.fwd.apply(&in, hdr, r.Host, ex)
}

// modifyResponse hides the origin: headers naming the server are removed or
// replaced (with hide_origin), and a Location pointing at the member is
// rewritten to the public host.
func (h *Handler) modifyResponse(resp *http.Response) error {
	ex := exchangeFrom(resp.Request.Context())
	if ex == nil {
		return nil
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		ex.status = resp.StatusCode
	}
	if loc := resp.Header.Get("Location"); loc != "" && ex.info.Member != "" {
		resp.Header.Set("Location", publicLocation(loc, ex.info.Member, ex.scheme, resp.Request.Host))
	}
	if ex.route != nil && ex.route.HideOrigin {
		h.hide.Apply(resp.Header) // the header fields naming the origin server go, hide.server comes
	}
	return nil
}

// publicLocation rewrites loc when it points at member (a URL such as
// "http://127.0.0.1:9101") to scheme://host.
func publicLocation(loc, member, scheme, host string) string {
	rest, ok := strings.CutPrefix(loc, member)
	if !ok || (rest != "" && rest[0] != '/' && rest[0] != '?' && rest[0] != '#') {
		return loc
	}
	return scheme + "://" + host + rest
}

// proxyError is the one error path: it maps the failure to a status and writes
// a page that never names a member.
func (h *Handler) proxyError(ex *exchange, err error) {
	status := errorStatus(err)
	ex.err = err
	var bodyErr error
	if ex.body != nil {
		bodyErr = ex.body.readErr()
	}
	switch {
	case bodyErr != nil:
		// The client's body failed (too big, too slow): net/http has cancelled
		// the context, but the client is there to read why.
		status = errorStatus(bodyErr)
	case ex.Err() != nil:
		// The client went away; nobody reads a page. Log 499 as nginx does.
		ex.status = 499
		return
	}
	h.page(ex, status)
}

// errorStatus maps a proxying error to the status the client gets.
func errorStatus(err error) int {
	var mbe *http.MaxBytesError
	var te interface{ Timeout() bool }
	switch {
	case errors.Is(err, pool.ErrNoHealthyMember):
		return http.StatusServiceUnavailable
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errBodyTooSlow):
		return http.StatusRequestTimeout
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &te) && te.Timeout():
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// page writes a small proxy-generated page for status.
func (h *Handler) page(w http.ResponseWriter, status int) {
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if h.cfg.Hide.Server != "" {
		hdr.Set("Server", h.cfg.Hide.Server)
	}
	w.WriteHeader(status)
	text := http.StatusText(status)
	if text == "" {
		text = "Error"
	}
	fmt.Fprintf(w, "<!doctype html><title>%d %s</title><h1>%d %s</h1>\n", status, text, status, text)
}

// allowMethods is the Allow field of the door's own answers to CONNECT and
// "OPTIONS *".
const allowMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

// ownRequest answers, without a member, the requests that address the proxy
// itself rather than a resource of a route, and reports whether it did:
// CONNECT gets 405 (a reverse proxy opens no tunnels, as Apache answers),
// "OPTIONS *" 200 with Allow and no body (RFC 9110 §9.3.7), and any other
// method with the asterisk target 400 (the target is valid only for OPTIONS).
func (h *Handler) ownRequest(ex *exchange, r *http.Request) bool {
	switch {
	case r.Method == http.MethodConnect:
		ex.Header().Set("Allow", allowMethods)
		h.page(ex, http.StatusMethodNotAllowed)
	case r.RequestURI == "*" || r.URL.Path == "*":
		if r.Method != http.MethodOptions {
			h.page(ex, http.StatusBadRequest)
			return true
		}
		hdr := ex.Header()
		hdr.Set("Allow", allowMethods)
		hdr.Set("Content-Length", "0")
		if h.cfg.Hide.Server != "" {
			hdr.Set("Server", h.cfg.Hide.Server)
		}
		ex.WriteHeader(http.StatusOK)
	default:
		return false
	}
	return true
}

// blocked answers a request the policy refused.
func (h *Handler) blocked(ex *exchange, r *http.Request, v *rules.Verdict) {
	if v.Quiet {
		ex.WriteHeader(http.StatusNoContent)
		return
	}
	if h.blockPage == nil {
		h.page(ex, http.StatusForbidden)
		return
	}
	h.blockPage(ex, r, v)
}

// redirect sends a plain-HTTP request to HTTPS.
func (h *Handler) redirect(ex *exchange, r *http.Request, host string) {
	if host == "" {
		h.page(ex, http.StatusBadRequest)
		return
	}
	target := "https://" + host
	if strings.IndexByte(host, ':') >= 0 {
		target = "https://[" + host + "]"
	}
	if h.httpsPort != "" {
		target += ":" + h.httpsPort
	}
	http.Redirect(ex, r, target+r.URL.RequestURI(), http.StatusPermanentRedirect)
}

// logEntry sends the request's access-log entry.
func (h *Handler) logEntry(ex *exchange, r *http.Request, v *rules.Verdict, start time.Time) {
	if h.log == nil {
		return
	}
	e := &ex.entry // loggers do not keep it: no allocation per request
	*e = accesslog.Entry{
		Time: start, Door: "reverse", Client: ex.client, Method: r.Method,
		URL:    h.logURL(ex.scheme, r.Host, r.URL),
		Action: v.Action.String(), Rule: v.Rule, Category: v.Category,
		Status: ex.status, BytesOut: ex.bytes, Duration: time.Since(start),
		Upstream: ex.info.Member, Proto: r.Proto,
	}
	if ex.body != nil {
		e.BytesIn = ex.body.n.Load()
	}
	if ex.err != nil {
		e.Error = ex.err.Error()
	}
	switch {
	case v.Pool != "":
		e.Pool = v.Pool
	case ex.route != nil:
		e.Pool = ex.route.Pool
	}
	// The details only a written access log shows: with the log off the
	// status page and the metrics read none, and their lookups are saved.
	if h.detail == nil || h.detail.WantsDetail() {
		e.Referer, e.UserAgent = fieldtext.First(r.Header["Referer"]), fieldtext.First(r.Header["User-Agent"])
		if ex.fresh {
			e.Cache, e.ContentType = "hit", ex.ctype
		} else {
			e.Cache = cache.Result(ex.Header()) // hit, stale, miss… from Cache-Status; "" when not cached
			e.ContentType = ex.Header().Get("Content-Type")
		}
	}
	h.log.Log(e)
}

// logURL returns scheme://host followed by u's request URI (as
// u.RequestURI gives it) for the access log. A busy door sees the same URL
// again and again (a hot cached object): the last one built is reused while
// it matches, which saves its allocation, and the path is compared in
// pieces, without building the request URI.
func (h *Handler) logURL(scheme, host string, u *url.URL) string {
	var path string
	query, hasQuery := u.RawQuery, u.ForceQuery || u.RawQuery != ""
	if u.Opaque == "" {
		if path = u.EscapedPath(); path == "" {
			path = "/"
		}
	} else {
		path, query, hasQuery = u.RequestURI(), "", false // rare: net/url's form, query included
	}
	if p := h.lastURL.Load(); p != nil && isURL(*p, scheme, host, path, hasQuery, query) {
		return *p
	}
	s := scheme + "://" + host + path
	if hasQuery {
		s += "?" + query
	}
	h.lastURL.Store(&s)
	return s
}

// isURL reports whether s is scheme://host+path, followed by "?"+query when
// hasQuery.
func isURL(s, scheme, host, path string, hasQuery bool, query string) bool {
	for _, part := range [...]string{scheme, "://", host, path} {
		var ok bool
		if s, ok = strings.CutPrefix(s, part); !ok {
			return false
		}
	}
	if !hasQuery {
		return s == ""
	}
	rest, ok := strings.CutPrefix(s, "?")
	return ok && rest == query
}

// splitHost is splitHost, remembering the last answer: a door's requests
// mostly name the same host.
func (h *Handler) splitHost(raw string, tls bool) (string, uint16) {
	if m := h.lastHost.Load(); m != nil && m.raw == raw && m.tls == tls {
		return m.host, m.port
	}
	host, port := splitHost(raw, tls)
	h.lastHost.Store(&hostMemo{raw: raw, tls: tls, host: host, port: port})
	return host, port
}
