package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"reflect"
	"runtime/debug"
	"slices"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/portcullis/portcullis/internal/admin"
	"github.com/portcullis/portcullis/internal/cache"
	"github.com/portcullis/portcullis/internal/cluster"
	"github.com/portcullis/portcullis/internal/config/field"
)

// liveCluster is the running connection to the shared state and what stops it.
type liveCluster struct {
	c    *cluster.Cluster
	cfg  cluster.Config
	stop context.CancelFunc // nil until started
	done chan struct{}
}

// useCluster gives st the live cluster while its settings stay the same, and
// otherwise a new one (not yet connected), put in force when st is committed. A
// policy without a cluster section stops the live one at commit.
func (e *Engine) useCluster(st *state) error {
	cfg := st.file.Policy.Cluster
	s := e.shared
	s.clusterMu.Lock()
	live := s.cluster
	s.clusterMu.Unlock()
	if cfg == nil {
		st.stage.clusterSet = live != nil
		return nil
	}
	if live != nil && reflect.DeepEqual(live.cfg, *cfg) {
		st.cluster = live.c
		return nil
	}
	c, err := cluster.New(*cfg, st.file.Dir, e.log.With("part", "cluster"))
	if err != nil {
		return st.file.FieldErrors([]field.Error{field.Errorf("cluster", "%v", err)})
	}
	st.stage.clusterSet = true
	st.stage.cluster = &liveCluster{c: c, cfg: *cfg}
	st.cluster = c
	return nil
}

// commitCluster puts a prepared cluster in force (or none) and returns what stops
// the one it replaced.
func (s *shared) commitCluster(g *staged) (release func()) {
	if !g.clusterSet {
		return func() {}
	}
	s.clusterMu.Lock()
	old := s.cluster
	s.cluster = g.cluster
	s.poolsMu.Lock()
	running := s.runCtx != nil
	s.poolsMu.Unlock()
	if g.cluster != nil && running {
		s.startCluster(g.cluster)
	}
	s.clusterMu.Unlock()
	if g.cluster != nil {
		s.wireCluster(g.cluster.c)
	} else {
		s.limiter.SetShared(nil)
	}
	s.cacheMu.Lock()
	if s.cache != nil {
		s.cache.SetTier(cacheTier(s.cluster))
	}
	s.cacheMu.Unlock()
	return func() {
		if old != nil {
			old.stopAndWait()
		}
	}
}

// wireCluster connects the shared parts to c: the rate limiter, purges from other
// nodes, and what the heartbeat says of this node.
func (s *shared) wireCluster(c *cluster.Cluster) {
	if c.Config().Shares(cluster.ShareRateLimits) {
		s.limiter.SetShared(c.Limiter())
	} else {
		s.limiter.SetShared(nil)
	}
	c.OnEvent(func(ev cluster.Event) {
		switch ev.Kind {
		case eventSignInFail, eventSignInReset:
			s.mu.Lock()
			a := s.authAttempts
			s.mu.Unlock()
			if a != nil && c.Config().Shares(cluster.ShareSignIn) {
				a.remote(ev, s.e.opts.Now())
			}
			return
		}
		if !c.Config().Shares(cluster.SharePurge) {
			return
		}
		s.cacheMu.Lock()
		cc := s.cache
		s.cacheMu.Unlock()
		if cc == nil {
			return
		}
		// Only this node's memory: the sender has removed it from the tier.
		cc.PurgeLocal(ev.Key, ev.Kind == cluster.EventPurgePrefix)
	})
	c.SetNodeInfo(func() cluster.NodeInfo {
		st := s.e.cur.Load()
		info := cluster.NodeInfo{ReloadOK: true}
		if st != nil {
			sum := sha256.Sum256(st.file.Source)
			info.Policy, info.PolicyLoaded = hex.EncodeToString(sum[:6]), st.loadedAt
		}
		if err := s.e.LastReloadError(); err != nil {
			info.ReloadOK, info.ReloadError = false, err.Error()
		}
		info.Version = buildVersion()
		return info
	})
}

// cacheTier is lc's shared cache tier when it shares the cache, else nil.
func cacheTier(lc *liveCluster) cache.Tier {
	if lc == nil || !lc.c.Config().Shares(cluster.ShareCache) {
		return nil
	}
	return lc.c.CacheTier()
}

// startCluster runs lc until the engine stops or lc is replaced. s.clusterMu is
// held; s.runCtx is set.
func (s *shared) startCluster(lc *liveCluster) {
	if lc.stop != nil {
		return
	}
	s.poolsMu.Lock()
	runCtx := s.runCtx
	s.poolsMu.Unlock()
	ctx, cancel := context.WithCancel(runCtx)
	lc.stop, lc.done = cancel, make(chan struct{})
	s.bg.Go(func() {
		defer close(lc.done)
		lc.c.Run(ctx)
	})
}

// stopAndWait stops a started cluster and waits for it; an unstarted one is
// closed.
func (lc *liveCluster) stopAndWait() {
	if lc.stop == nil {
		lc.c.Close()
		return
	}
	lc.stop()
	<-lc.done
}

// clusterStatus is the status page's view of the cluster, nil without one.
func (s *shared) clusterStatus() *admin.ClusterStatus {
	s.clusterMu.Lock()
	lc := s.cluster
	s.clusterMu.Unlock()
	if lc == nil {
		return nil
	}
	cs := lc.c.Status()
	out := &admin.ClusterStatus{Node: cs.Node, Redis: cs.Redis, Mode: cs.Mode, Up: cs.Up, LastError: cs.LastError,
		Failures: cs.Failures, Shared: cs.Shared}
	for _, p := range cs.Nodes {
		out.Nodes = append(out.Nodes, admin.ClusterNode{Node: p.Node, Policy: p.Policy, PolicyLoaded: p.PolicyLoaded,
			ReloadOK: p.ReloadOK, ReloadError: p.ReloadError, Version: p.Version, Started: p.Started, Seen: p.Seen,
			Alive: p.Alive, Self: p.Self, OlderPolicy: p.OlderPolicy})
	}
	return out
}

// currentCluster is the cluster in force, nil when the node stands alone.
func (s *shared) currentCluster() *cluster.Cluster {
	s.clusterMu.Lock()
	defer s.clusterMu.Unlock()
	if s.cluster == nil {
		return nil
	}
	return s.cluster.c
}

// clusterPurge broadcasts an admin purge to the other nodes once next has purged
// this node (its memory and the shared tier), just before next's answer is
// written; the answer's Portcullis-Cluster-Purge header says whether Redis took it.
func (s *shared) clusterPurge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := s.currentCluster()
		q := r.URL.Query()
		kind, key := cluster.EventPurge, q.Get("url")
		if key == "" {
			kind, key = cluster.EventPurgePrefix, q.Get("prefix")
		}
		if c == nil || !c.Config().Shares(cluster.SharePurge) || key == "" {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&beforeAnswer{ResponseWriter: w, f: func(status int) {
			if status != http.StatusOK {
				return // refused: nothing was purged here
			}
			if err := c.Broadcast(r.Context(), kind, key); err != nil {
				w.Header().Set("Portcullis-Cluster-Purge", "not sent: "+err.Error())
				s.e.log.Warn("cluster: purge not broadcast; only this node purged", "key", key, "error", err)
				return
			}
			w.Header().Set("Portcullis-Cluster-Purge", "sent")
		}}, r)
	})
}

// beforeAnswer calls f with the status once, just before the answer's header is
// written.
type beforeAnswer struct {
	http.ResponseWriter
	f    func(status int)
	done bool
}

func (b *beforeAnswer) WriteHeader(code int) {
	if !b.done {
		b.done = true
		b.f(code)
	}
	b.ResponseWriter.WriteHeader(code)
}

func (b *beforeAnswer) Write(p []byte) (int, error) {
	if !b.done {
		b.WriteHeader(http.StatusOK)
	}
	return b.ResponseWriter.Write(p)
}

// registerClusterMetrics adds the cluster's gauges to reg.
func (s *shared) registerClusterMetrics(reg prometheus.Registerer) {
	gauge := func(name, help string, f func(*cluster.Cluster) float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			if c := s.currentCluster(); c != nil {
				return f(c)
			}
			return 0
		}))
	}
	gauge("portcullis_cluster_redis_up", "1 while Redis answers (shared state in use), 0 while this node runs on its own state or stands alone.",
		func(c *cluster.Cluster) float64 { return b2f(c.Up()) })
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "portcullis_cluster_redis_failures_total",
		Help: "Times Redis went from reachable to unreachable."}, func() float64 {
		if c := s.currentCluster(); c != nil {
			return float64(c.Failures())
		}
		return 0
	}))
	gauge("portcullis_cluster_nodes_alive", "Nodes in the cluster's registry with a recent heartbeat.", func(c *cluster.Cluster) float64 {
		n := 0
		for _, p := range c.LastPeers() {
			if p.Alive {
				n++
			}
		}
		return float64(n)
	})
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// nodeGatherer adds a node label (the cluster's node name) to every metric while
// a cluster is configured, so several nodes' metrics stay apart.
type nodeGatherer struct {
	g    prometheus.Gatherer
	node func() string
}

// Gather implements prometheus.Gatherer.
func (n nodeGatherer) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := n.g.Gather()
	node := n.node()
	if node == "" {
		return mfs, err
	}
	name := "node"
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			if slices.ContainsFunc(m.Label, func(l *dto.LabelPair) bool { return l.GetName() == name }) {
				continue
			}
			v := node
			m.Label = append(m.Label, &dto.LabelPair{Name: &name, Value: &v})
			sort.Slice(m.Label, func(i, j int) bool { return m.Label[i].GetName() < m.Label[j].GetName() })
		}
	}
	return mfs, err
}

// nodeName is the cluster's node name, "" when the node stands alone.
func (s *shared) nodeName() string {
	if c := s.currentCluster(); c != nil {
		return c.Node()
	}
	return ""
}

// buildVersion is the binary's module version and VCS revision.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}
