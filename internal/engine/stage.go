package engine

import (
	"github.com/portcullis/portcullis/forward/auth"
	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/internal/cache"
	"github.com/portcullis/portcullis/internal/certs"
	"github.com/portcullis/portcullis/internal/dnsserver"
	"github.com/portcullis/portcullis/internal/pool"
	"github.com/portcullis/portcullis/internal/resolver"
)

// staged is what building one policy prepared beside the shared live objects:
// the build changes nothing that serves. When the whole build has succeeded (and
// its listeners are bound) commit puts it in force just before the state is
// swapped in; otherwise discard releases it and the running objects are exactly
// as before. Only the goroutine holding the engine's reload lock (or New) uses it.
type staged struct {
	s *shared

	resolver    *resolver.Resolver // a new resolver; nil: the live one stays
	resolverCfg resolver.Config

	poolUpdates []poolUpdate         // changed pools, members prepared beside the live ones
	newPools    map[string]*livePool // pools the live set does not have (not started)

	cache    *cache.Cache // a new cache (settings changed); nil: the live one stays
	cacheCfg cache.Config

	dns     *dnsserver.Server  // the first DNS server; nil: none or the live one stays
	dnsOpts *dnsserver.Options // new settings for the live DNS server

	logSet bool // the access log settings changed: log (nil when off) replaces it
	log    *accesslog.Writer
	logCfg accesslog.Config

	fwd *transportHolder // a new forward transport

	authLim      *auth.Limiter // a new failed sign-in limiter
	authLimCfg   auth.LimiterConfig
	authAttempts *sharedAttempts

	clusterSet bool         // the cluster settings changed: cluster (nil: none) replaces the live one
	cluster    *liveCluster // prepared, not started

	leaves     *certs.Leaves // a new leaf-certificate cache
	leavesSize int

	sourcesSet bool                     // sources replaces the live certificate sources (useACME ran)
	sources    map[string]*certs.Source // the ACME and files sources the policy uses, by settings
	sourcesNew []*certs.Source          // those built for it: closed by discard
}

// poolUpdate is a changed pool's new configuration, prepared.
type poolUpdate struct {
	lp   *livePool
	cfg  pool.Config
	pend *pool.Pending
}

// commit puts everything prepared in force. It returns what releases the objects
// it replaced, to be called once the new state is serving.
func (g *staged) commit() (release func()) {
	s := g.s
	var after []func()

	s.mu.Lock()
	if g.resolver != nil {
		old := s.resolver
		s.resolver, s.resolverCfg = g.resolver, g.resolverCfg
		s.currentResolver.Store(g.resolver)
		if old != nil {
			after = append(after, func() { old.Close() })
		}
	}
	if g.fwd != nil {
		if old := s.fwdTransport; old != nil {
			after = append(after, old.rt.CloseIdleConnections)
		}
		s.fwdTransport = g.fwd
	}
	if g.authLim != nil {
		s.authLim, s.authLimCfg, s.authAttempts = g.authLim, g.authLimCfg, g.authAttempts
	}
	if g.leaves != nil {
		s.leaves, s.leavesSize = g.leaves, g.leavesSize
	}
	if g.sourcesSet {
		for k, old := range s.sources {
			if g.sources[k] != old {
				after = append(after, old.Close)
			}
		}
		s.sources = g.sources
	}
	s.mu.Unlock()

	s.poolsMu.Lock()
	for _, u := range g.poolUpdates {
		u.pend.Commit()
		u.lp.cfg = u.cfg
	}
	for name, lp := range g.newPools {
		s.pools[name] = lp
		if s.runCtx != nil {
			s.startPool(lp)
		}
	}
	s.poolsMu.Unlock()

	if g.cache != nil {
		s.cacheMu.Lock()
		if s.cache != nil {
			s.retiredCaches = append(s.retiredCaches, s.cache) // closed by retire
		}
		s.cache, s.cacheCfg = g.cache, g.cacheCfg
		s.cacheMu.Unlock()
	}

	s.dnsMu.Lock()
	switch {
	case g.dns != nil:
		s.dns = g.dns
	case g.dnsOpts != nil:
		// dnsserver.New accepted the same options during the build.
		if err := s.dns.Update(*g.dnsOpts); err != nil {
			s.e.log.Error("updating the DNS server", "error", err)
		}
	}
	s.dnsMu.Unlock()

	if g.logSet {
		o := s.obs
		o.mu.Lock()
		old := o.current.Swap(g.log)
		o.logCfg = g.logCfg
		o.mu.Unlock()
		if old != nil {
			after = append(after, func() { old.Close() })
		}
	}
	after = append(after, s.commitCluster(g))
	*g = staged{s: s}
	return func() {
		for _, f := range after {
			f()
		}
	}
}

// discard releases everything prepared; the live objects are untouched.
func (g *staged) discard() {
	if g.resolver != nil {
		g.resolver.Close()
	}
	for _, u := range g.poolUpdates {
		u.pend.Discard()
	}
	for _, lp := range g.newPools {
		lp.p.Close()
	}
	if g.cache != nil {
		g.cache.Close()
	}
	if g.log != nil {
		g.log.Close()
	}
	if g.fwd != nil {
		g.fwd.rt.CloseIdleConnections()
	}
	if g.cluster != nil {
		g.cluster.stopAndWait()
	}
	for _, src := range g.sourcesNew {
		src.Close()
	}
	*g = staged{s: g.s}
}
