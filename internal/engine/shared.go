package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portcullis/portcullis/forward/auth"
	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/internal/cache"
	"github.com/portcullis/portcullis/internal/dnsserver"
	"github.com/portcullis/portcullis/internal/resolver"
	"github.com/portcullis/portcullis/internal/upstream"
	"github.com/portcullis/portcullis/reverse"

	"github.com/portcullis/portcullis/forward"
	"github.com/portcullis/portcullis/internal/accept"
	"github.com/portcullis/portcullis/internal/admin"
	"github.com/portcullis/portcullis/internal/certs"
	"github.com/portcullis/portcullis/internal/tunnel"
)

// shared holds what outlives a policy version: long-lived connections and their
// state, caches, and logs. Each is rebuilt only when its own settings change.
type shared struct {
	e     *Engine
	lists *listCache

	tunnels   *tunnel.Set
	loopToken string
	obs       *observability

	resolver        *resolver.Resolver // guarded by mu
	resolverCfg     resolver.Config
	currentResolver atomic.Pointer[resolver.Resolver]
	self            resolver.Listeners // the bound listeners, refused by the egress guard

	poolsMu sync.Mutex
	pools   map[string]*livePool
	runCtx  context.Context // set by start; pools created later start at once
	bg      sync.WaitGroup  // background work (health checks)

	cacheMu       sync.Mutex
	cache         *cache.Cache
	cacheCfg      cache.Config
	retiredCaches []*cache.Cache

	limiter *reverse.RateLimiter

	accepts accept.Watch // listeners that cannot accept now (EMFILE…), for /readyz

	leaves     *certs.Leaves // guarded by mu
	leavesSize int
	sources    map[string]*certs.Source // the doors' ACME and files certificate sources by settings, kept across reloads; guarded by mu

	authLim      *auth.Limiter // guarded by mu: failed sign-ins, kept across reloads
	authLimCfg   auth.LimiterConfig
	authAttempts *sharedAttempts // guarded by mu: authLim's counters

	clusterMu sync.Mutex
	cluster   *liveCluster // nil: the node stands alone

	dnsMu sync.Mutex
	dns   *dnsserver.Server

	mu           sync.Mutex
	fwdTransport *transportHolder
}

type transportHolder struct {
	cfg forward.TransportConfig // Dial left nil: the dialer is the engine's own
	rt  *upstream.Client
}

func newShared(e *Engine) *shared {
	var b [12]byte
	_, _ = rand.Read(b[:])
	s := &shared{e: e, lists: newListCache(), tunnels: tunnel.NewSet(), loopToken: hex.EncodeToString(b[:]),
		pools: map[string]*livePool{}, limiter: reverse.NewRateLimiter(0)}
	s.obs = newObservability(e)
	s.obs.metrics.RegisterLists(func() []admin.ListStatus { return e.snapshot().Lists })
	s.obs.metrics.RegisterPools(s.poolStatus)
	s.registerClusterMetrics(s.obs.registry)
	return s
}

// forwardTransport returns the upstream transport for forward mode: the live one
// while its settings stay the same, else a new one, prepared in g (made current,
// and the old one's idle connections closed, when g is committed).
func (s *shared) forwardTransport(tc forward.TransportConfig, g *staged) *upstream.Client {
	s.mu.Lock()
	live := s.fwdTransport
	s.mu.Unlock()
	if live != nil && reflect.DeepEqual(live.cfg, tc) {
		return live.rt
	}
	key := tc
	tc.Dial = s.dialContext
	t := forward.NewTransport(tc)
	g.fwd = &transportHolder{cfg: key, rt: t}
	return t
}

// start launches background work owned by the engine until ctx ends: pool health
// checks and the cluster's loops.
func (s *shared) start(ctx context.Context) {
	s.poolsMu.Lock()
	s.runCtx = ctx
	for _, lp := range s.pools {
		s.startPool(lp)
	}
	s.poolsMu.Unlock()
	s.clusterMu.Lock()
	if s.cluster != nil {
		s.startCluster(s.cluster)
	}
	s.clusterMu.Unlock()
}

// policyLoaded is told about every load attempt (for metrics and the status page).
func (s *shared) policyLoaded(st *state, err error) {
	s.obs.metrics.SetPolicy(strconv.Itoa(st.version), st.loadedAt, err)
}

// retire releases what the old state held and the new one does not use: pools it
// no longer names are stopped, and a cache replaced by one with other settings is
// closed.
func (s *shared) retire(old, cur *state) {
	s.retirePools(cur)
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	keep := s.retiredCaches[:0]
	for _, c := range s.retiredCaches {
		if c == cur.cache {
			keep = append(keep, c)
			continue
		}
		c.Close()
	}
	s.retiredCaches = keep
}

// shutdown drains long-lived connections (tunnels) within ctx.
func (s *shared) shutdown(ctx context.Context) {
	if err := s.tunnels.Shutdown(ctx); err != nil {
		s.tunnels.CloseAll()
	}
}

// close releases everything.
func (s *shared) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fwdTransport != nil {
		s.fwdTransport.rt.CloseIdleConnections()
	}
	s.clusterMu.Lock()
	lc := s.cluster
	s.cluster = nil
	s.clusterMu.Unlock()
	if lc != nil {
		lc.stopAndWait()
	}
	s.bg.Wait()
	s.poolsMu.Lock()
	for _, lp := range s.pools {
		lp.p.Close()
	}
	s.poolsMu.Unlock()
	s.cacheMu.Lock()
	if s.cache != nil {
		s.cache.Close()
	}
	for _, c := range s.retiredCaches {
		c.Close()
	}
	s.cacheMu.Unlock()
	s.obs.close()
	for _, src := range s.sources {
		src.Close()
	}
	s.sources = nil
	if s.resolver != nil {
		s.resolver.Close()
	}
}

// accessLog returns the logger every door writes its access-log entries to.
func (s *shared) accessLog() accesslog.Logger { return s.obs.fanout }

// adminRoutes are the extra admin routes the shared parts serve (cache purge, pool
// status, CA download…).
func (s *shared) adminRoutes(st *state) map[string]http.Handler {
	routes := map[string]http.Handler{}
	if st.cache != nil {
		routes["POST /cache/purge"] = s.clusterPurge(s.purgeHandler())
	}
	if st.ca != nil {
		ca := forward.CAHandler(st.ca) // the forward door serves the same on its port
		routes["GET "+forward.CAPEMPath] = ca
		routes["GET "+forward.CACRTPath] = ca
		routes["GET "+forward.CAPagePath] = ca
	}
	routes["GET /pools"] = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.poolStatus())
	})
	return routes
}

func (s *shared) reopenLogs() {
	if err := s.obs.reopen(); err != nil {
		s.e.log.Error("reopening the access log", "error", err)
	}
}

// authLimiter returns the failed-sign-in limiter, kept across reloads (so a reload
// does not forget lockouts) while its settings stay the same; a new one is
// prepared in g and kept from when g is committed.
func (s *shared) authLimiter(cfg auth.LimiterConfig, now func() time.Time, g *staged) *auth.Limiter {
	s.mu.Lock()
	live, liveCfg := s.authLim, s.authLimCfg
	s.mu.Unlock()
	if live != nil && reflect.DeepEqual(liveCfg, cfg) {
		return live
	}
	g.authAttempts = &sharedAttempts{MemoryAttempts: auth.NewMemoryAttempts(cfg.MaxAddresses), cl: s.currentCluster}
	g.authLim, g.authLimCfg = auth.NewLimiterStore(cfg, now, g.authAttempts), cfg
	return g.authLim
}
