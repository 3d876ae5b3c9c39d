package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/portcullis/portcullis/filter/phrase"
	"github.com/portcullis/portcullis/forward"
	"github.com/portcullis/portcullis/forward/auth"
	"github.com/portcullis/portcullis/forward/auth/directory"
	"github.com/portcullis/portcullis/internal/accept"
	"github.com/portcullis/portcullis/internal/cache"
	"github.com/portcullis/portcullis/internal/config/field"
	"github.com/portcullis/portcullis/internal/h1"
	"github.com/portcullis/portcullis/internal/pool"
	"github.com/portcullis/portcullis/internal/resolver"
	"github.com/portcullis/portcullis/rules"
)

// buildForward builds the forward door for st when the policy has a forward section.
func (e *Engine) buildForward(st *state) error {
	cfg := st.file.Policy.Forward
	if cfg == nil {
		return nil
	}
	full := cfg.WithDefaults()
	tc := full.TransportConfig()
	upTLS, err := upstreamTLS(st, cfg)
	if err != nil {
		return err
	}
	tc.TLSClientConfig = upTLS
	rt := &verdictTransport{st: st, direct: e.shared.forwardTransport(tc, st.stage)}
	if st.cache != nil {
		rt.cached = st.cache.Wrap(rt.direct)
	}
	store, limiter, err := e.forwardAuth(st, cfg)
	if err != nil {
		return err
	}
	phrases, err := forwardPhrases(st, cfg)
	if err != nil {
		return err
	}
	bp, err := blockPage(st)
	if err != nil {
		return err
	}
	site, err := probeSite(st, cfg)
	if err != nil {
		return err
	}
	p, err := forward.New(forward.Options{
		BlockPage:   bp,
		Config:      cfg,
		Policy:      trackerGuard(st, full.Profile),
		Anonymizer:  e.anonymizers(st),
		Transport:   rt,
		Dial:        e.shared.dialContext,
		Parents:     st.parentPool,
		Logger:      e.log.With("door", "forward"),
		Tunnels:     e.shared.tunnels,
		Now:         e.opts.Now,
		LoopToken:   e.shared.loopToken,
		Log:         e.shared.accessLog(),
		Auth:        store,
		AuthExempt:  st.authExempt,
		AuthLimiter: limiter,
		AuthRealm:   cfg.Auth.Realm,
		Phrases:     phrases,
		CA:          st.ca,
		Leaves:      st.leaves,
		Groups:      st.program.GroupsOf,
		Lookup: func(ctx context.Context, host string) ([]netip.Addr, error) {
			return e.shared.currentResolver.Load().LookupNetIP(ctx, host)
		},
		IsSelf:    e.shared.self.Contains,
		ProbeSite: site,
		Current:   e.forwardInForce,
	})
	if err != nil {
		return err
	}
	st.forward = p
	maxConns := full.MaxConns
	switch maxConns {
	case 0: // each connection holds its client and (at least) one upstream descriptor
		maxConns = accept.ConnBudget(accept.DescriptorLimit(), 2)
	case -1:
		maxConns = 0
	}
	limit := func(ln net.Listener) net.Listener {
		return accept.LimitShared(ln, maxConns, full.MaxConnsPerClient, "forward", e.shared.connCounts)
	}
	// Plain listeners answer ACME http-01 challenges before the door when
	// forward.tls asks for them (st.forwardPlain, set with the TLS listeners).
	pickPlain := func(s *state) http.Handler {
		if s.forwardPlain != nil {
			return s.forwardPlain
		}
		return s.forward
	}
	for _, addr := range full.Listen {
		st.listens = append(st.listens, httpListenCC("forward", addr, full.TCPCongestion, pickPlain, limit,
			func(srv *h1.Server) { srv.ReadHeaderTimeout = full.ReadHeaderTimeout }))
	}
	if err := e.forwardTLSListeners(st, full, p, limit); err != nil {
		return err
	}
	// Intercept listeners: connections a firewall redirected here, served by
	// the same door (it reads their original destination from the context).
	// Redirected TLS is no HTTP: each connection goes to the door's tunnel
	// core directly.
	pick := func(s *state) http.Handler { return s.forward }
	interceptTune := func(srv *h1.Server) {
		srv.ReadHeaderTimeout = full.ReadHeaderTimeout
		srv.ConnContext = forward.InterceptConnContext
	}
	logger := e.log.With("door", "forward")
	wrap := func(ln net.Listener) net.Listener { return forward.InterceptListener(limit(ln), logger) }
	for _, addr := range full.Intercept.HTTP {
		st.listens = append(st.listens, httpListen("intercept-http", addr, pick, wrap, interceptTune))
	}
	// SOCKS5 listeners: the door's own front (forward/socks) over the same
	// tunnel core, with connection limits of their own.
	limitSocks := func(ln net.Listener) net.Listener {
		return accept.LimitShared(ln, maxConns, full.MaxConnsPerClient, "socks", e.shared.connCounts)
	}
	for _, addr := range full.Socks.Listen {
		st.listens = append(st.listens, connListen("socks", addr, limitSocks, func(ctx context.Context, s *state, c net.Conn) {
			if p, ok := s.forward.(*forward.Proxy); ok {
				p.ServeSOCKS(ctx, c)
				return
			}
			_ = c.Close()
		}))
	}
	for _, addr := range full.Intercept.HTTPS {
		st.listens = append(st.listens, connListen("intercept-https", addr, wrap, func(ctx context.Context, s *state, c net.Conn) {
			if p, ok := s.forward.(*forward.Proxy); ok {
				p.ServeInterceptedTLS(ctx, c)
				return
			}
			_ = c.Close()
		}))
	}
	return nil
}

// anonymizers maps profile names to the anonymize profiles of st.
func (e *Engine) anonymizers(st *state) func(string) forward.Anonymizer {
	return func(name string) forward.Anonymizer {
		if p, ok := st.profiles[name]; ok {
			return p
		}
		return nil
	}
}

// trackerGuard wraps the policy so that requests a profile's tracker lists name are
// blocked quietly (204) instead of shown a block page.
func trackerGuard(st *state, defaultProfile string) rules.Evaluator {
	if !st.hasTrackers {
		return st.program
	}
	return rules.EvaluatorFunc(func(f *rules.Facts) rules.Verdict {
		v := st.program.Evaluate(f)
		if v.Action == rules.ActionBlock {
			return v
		}
		name := v.Profile
		if name == "" {
			name = defaultProfile
		}
		if p := st.profiles[name]; p != nil && p.Tracker(f.Host) {
			return rules.Verdict{Action: rules.ActionBlock, Quiet: true, Rule: "tracker:" + name, Category: "tracker", Reason: "tracker"}
		}
		return v
	})
}

// verdictTransport sends forward-mode requests through the parent proxy pool the
// verdict names (rules' `pool:` naming a pool with parent: true), else through the
// shared cache when the verdict names a cache policy (rules' `cache:`), and
// straight upstream otherwise.
type verdictTransport struct {
	st     *state
	direct http.RoundTripper
	cached http.RoundTripper // nil without a cache
}

func (t *verdictTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Close {
		// The client's Connection: close is about its own connection (hop by
		// hop): the upstream connection stays in the shared pool.
		c := *r
		c.Close = false
		r = &c
	}
	if v, ok := rules.VerdictFrom(r.Context()); ok && v.Pool != "" {
		if p := t.st.pools[v.Pool]; p != nil && p.Parent() {
			if err := t.st.guardLiteral(r.URL.Hostname(), r.URL.Port(), r.URL.Scheme); err != nil {
				return nil, err
			}
			info := &pool.Info{}
			resp, err := p.Transport().RoundTrip(r.WithContext(pool.WithInfo(r.Context(), info)))
			forward.NoteUpstream(r.Context(), info.Member)
			return resp, err
		}
	}
	if t.cached != nil {
		if v, ok := rules.VerdictFrom(r.Context()); ok {
			if p := t.st.cachePolicy(v.Cache); p != nil {
				return t.cached.RoundTrip(r.WithContext(cache.WithPolicy(r.Context(), p)))
			}
		}
	}
	return t.direct.RoundTrip(r)
}

// parentPool returns the pool named name when it is a parent proxy pool, for
// the forward door's tunnels. The door dials the parent without the egress guard:
// like a reverse pool's members, a parent is an address the administrator wrote
// in the policy. A destination written as an IP literal is still checked by the
// guard (the parent must not become a way around it); names are resolved by
// the parent, in its network.
func (st *state) parentPool(name string) forward.ParentDialer {
	if p := st.pools[name]; p != nil && p.Parent() {
		return parentDialer{st: st, p: p}
	}
	return nil
}

// parentDialer opens tunnels through a parent pool after the guard's check of
// IP-literal destinations.
type parentDialer struct {
	st *state
	p  *pool.Pool
}

func (d parentDialer) DialConnect(ctx context.Context, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if err := d.st.guardLiteral(host, port, ""); err != nil {
		return nil, err
	}
	return d.p.DialConnect(ctx, addr)
}

// guardLiteral applies the egress guard to a destination sent to a parent when
// it is an IP literal (port "" takes the scheme's).
func (st *state) guardLiteral(host, port, scheme string) error {
	a, lit, err := resolver.ParseLiteral(host)
	if err != nil || !lit {
		return err
	}
	if port == "" {
		port = "80"
		if scheme == "https" {
			port = "443"
		}
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("bad port %q", port)
	}
	var g resolver.Guard // the zero Guard refuses every non-public address
	if st.resolver != nil {
		g = st.resolver.Guard()
	}
	return g.Check(host, netip.AddrPortFrom(a.Unmap(), uint16(n)))
}

// forwardAuth loads the sign-in source of the forward section once per policy
// version: the htpasswd and group files (paths relative to the policy file),
// whose checks are then cheap (the Store's cache), or the school's directory
// (forward.auth.ldap: its password and CA files are read here, the directory is
// contacted per sign-in). The failed-attempt limiter is kept across reloads while
// its settings stay the same. A file that cannot be read or parsed is reported at
// the field naming it (POLICY:LINE:COL: forward.auth.htpasswd_file: …). The
// Verifier is nil when the policy has no sign-in.
func (e *Engine) forwardAuth(st *state, cfg *forward.Config) (auth.Verifier, *auth.Limiter, error) {
	if !cfg.Auth.Enabled() {
		return nil, nil, nil
	}
	ac := cfg.Auth
	var v auth.Verifier
	if ac.LDAP != nil {
		dc := *ac.LDAP
		dc.BindPasswordFile = st.file.Resolve(dc.BindPasswordFile)
		dc.CAFile = st.file.Resolve(dc.CAFile)
		d, err := directory.New(dc, directory.WithClock(e.opts.Now))
		if err != nil {
			at := "forward.auth.ldap"
			if fe := (*directory.FileError)(nil); errors.As(err, &fe) {
				at += "." + fe.Field
			}
			return nil, nil, st.file.FieldErrors([]field.Error{field.Errorf(at, "%v", err)})
		}
		v = d
	} else {
		ac.HtpasswdFile = st.file.Resolve(ac.HtpasswdFile)
		ac.GroupFile = st.file.Resolve(ac.GroupFile)
		store, err := ac.Load(auth.WithClock(e.opts.Now))
		if err != nil {
			return nil, nil, st.file.FieldErrors([]field.Error{authFileError(&ac, err)})
		}
		if store.Len() == 0 {
			w := st.file.FieldErrors([]field.Error{field.Errorf("forward.auth.htpasswd_file",
				"warning: %s has no user, so every sign-in fails; add one with: portcullis passwd %s USER", ac.HtpasswdFile, ac.HtpasswdFile)})
			for _, err := range w {
				st.warnings = append(st.warnings, err.Error())
				e.log.Warn(err.Error())
			}
		}
		v = store
	}
	st.auth, st.authExempt = v, ac.Exempt.Compile()
	return v, e.shared.authLimiter(ac.Limiter, e.opts.Now, st.stage), nil
}

// authFileError places an error of auth.Load at the field naming the file it is
// about: the group file when the error names it, else the htpasswd file.
func authFileError(ac *auth.Config, err error) field.Error {
	at, file := "forward.auth.htpasswd_file", ac.HtpasswdFile
	var pe *auth.ParseError
	var fe *fs.PathError
	switch {
	case errors.As(err, &pe):
		if ac.GroupFile != "" && pe.File == ac.GroupFile {
			at = "forward.auth.group_file"
		}
		return field.Errorf(at, "%v", pe)
	case errors.As(err, &fe):
		if ac.GroupFile != "" && fe.Path == ac.GroupFile {
			at, file = "forward.auth.group_file", ac.GroupFile
		}
		return field.Errorf(at, "cannot read %s: %v", file, fe.Err)
	}
	return field.Errorf(at, "%v", err)
}

// forwardPhrases compiles the forward section's phrase lists (paths relative to
// the policy file); nil when there are none.
func forwardPhrases(st *state, cfg *forward.Config) (*phrase.Matcher, error) {
	if len(cfg.Phrase.Lists) == 0 {
		return nil, nil
	}
	pc := cfg.Phrase
	pc.Lists = make([]string, len(cfg.Phrase.Lists))
	for i, l := range cfg.Phrase.Lists {
		pc.Lists[i] = st.file.Resolve(l)
	}
	m, err := pc.Compile()
	if err != nil {
		return nil, fmt.Errorf("forward.phrase: %w", err)
	}
	return m, nil
}

// forwardInForce is the forward door of the policy now serving, nil when it
// has none: inspected tunnels opened under an earlier policy hand it their
// requests (forward.Options.Current).
func (e *Engine) forwardInForce() *forward.Proxy { return forwardDoor(e.cur.Load()) }

// forwardDoor is st's forward door, nil when st (or its policy) has none.
func forwardDoor(st *state) *forward.Proxy {
	if st == nil {
		return nil
	}
	p, _ := st.forward.(*forward.Proxy)
	return p
}
