package engine

import (
	"net/http"
	"reflect"

	"github.com/portcullis/portcullis/internal/admin"
	"github.com/portcullis/portcullis/internal/cache"
	"github.com/portcullis/portcullis/internal/cluster"
	"github.com/portcullis/portcullis/internal/pool"
)

// useCache gives st the live cache (and what it holds) while its settings stay the
// same, and otherwise a new cache built beside it, made current (for purges and
// the counters) when st is committed.
func (e *Engine) useCache(st *state) error {
	cfg := st.file.Policy.Cache
	if cfg == nil {
		return nil // no cache section: nothing is cached (an old cache stays until retired)
	}
	s := e.shared
	s.cacheMu.Lock()
	live, liveCfg := s.cache, s.cacheCfg
	s.cacheMu.Unlock()
	if live != nil && reflect.DeepEqual(liveCfg, *cfg) {
		st.cache = live
		return nil
	}
	c, err := cache.New(*cfg, e.log.With("part", "cache"), cache.WithDownError(pool.ErrNoHealthyMember))
	if err != nil {
		return err
	}
	if st.cluster != nil && st.cluster.Config().Shares(cluster.ShareCache) {
		c.SetTier(st.cluster.CacheTier())
	}
	st.stage.cache, st.stage.cacheCfg = c, *cfg
	st.cache = c
	return nil
}

// cachePolicy returns the named cache policy of st, nil when there is none.
func (st *state) cachePolicy(name string) *cache.Policy {
	if name == "" || st.cache == nil {
		return nil
	}
	return st.file.Policy.CachePolicies[name]
}

// cacheStatus reports the cache's counters, nil without a cache.
func (s *shared) cacheStatus() *admin.CacheStatus {
	s.cacheMu.Lock()
	c := s.cache
	s.cacheMu.Unlock()
	if c == nil {
		return nil
	}
	cs := admin.CacheStatus(c.Stats())
	return &cs
}

// purgeHandler purges from whichever cache is current.
func (s *shared) purgeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.cacheMu.Lock()
		c := s.cache
		s.cacheMu.Unlock()
		if c == nil {
			http.Error(w, "no cache configured", http.StatusNotFound)
			return
		}
		c.PurgeHandler().ServeHTTP(w, r)
	})
}

// MemoryLimitHint suggests a soft memory limit for the process (runtime/debug
// SetMemoryLimit) when the policy has a cache: the cache's bound plus room for
// everything else, so the garbage collector keeps the heap near the configured
// bound instead of letting it double between collections. 0 means no hint.
func (e *Engine) MemoryLimitHint() int64 {
	st := e.cur.Load()
	if st.cache == nil {
		return 0
	}
	maxBytes := st.file.Policy.Cache.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 256 << 20
	}
	return maxBytes*3/2 + 512<<20
}
