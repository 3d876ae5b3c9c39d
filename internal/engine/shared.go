package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"reflect"
	"strconv"
	"sync"

	"github.com/portcullis/portcullis/forward"
	"github.com/portcullis/portcullis/internal/admin"
)

// shared holds what outlives a policy version: long-lived connections and their
// state, caches, and logs. Each is rebuilt only when its own settings change.
type shared struct {
	e     *Engine
	lists *listCache

	tunnels   *forward.Tunnels
	loopToken string
	obs       *observability
	dial      forward.DialFunc // nil: plain dialing (until the resolver is configured)

	mu           sync.Mutex
	fwdTransport *transportHolder
}

type transportHolder struct {
	cfg forward.TransportConfig // Dial left nil: the dialer is the engine's own
	rt  *http.Transport
}

func newShared(e *Engine) *shared {
	var b [12]byte
	_, _ = rand.Read(b[:])
	s := &shared{e: e, lists: newListCache(), tunnels: forward.NewTunnels(), loopToken: hex.EncodeToString(b[:])}
	s.obs = newObservability(e)
	s.obs.metrics.RegisterLists(func() []admin.ListStatus { return e.snapshot().Lists })
	s.obs.metrics.RegisterPools(s.poolStatus)
	return s
}

// forwardTransport returns the upstream transport for forward mode, rebuilt only when
// its settings change.
func (s *shared) forwardTransport(tc forward.TransportConfig) *http.Transport {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fwdTransport != nil && reflect.DeepEqual(s.fwdTransport.cfg, tc) {
		return s.fwdTransport.rt
	}
	if s.fwdTransport != nil {
		s.fwdTransport.rt.CloseIdleConnections()
	}
	key := tc
	tc.Dial = s.dial
	t := forward.NewTransport(tc)
	s.fwdTransport = &transportHolder{cfg: key, rt: t}
	return t
}

// start launches background work owned by the engine until ctx ends.
func (s *shared) start(ctx context.Context) {}

// policyLoaded is told about every load attempt (for metrics and the status page).
func (s *shared) policyLoaded(st *state, err error) {
	s.obs.metrics.SetPolicy(strconv.Itoa(st.version), st.loadedAt, err)
}

// retire releases what the old state held and the new one does not use.
func (s *shared) retire(old, cur *state) {}

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
	s.obs.close()
}

// accessLog returns the logger every door writes its access-log entries to.
func (s *shared) accessLog() admin.Logger { return s.obs.fanout }

// adminRoutes are the extra admin routes the shared parts serve (cache purge, pool
// status, CA download…).
func (s *shared) adminRoutes(st *state) map[string]http.Handler { return nil }

// poolStatus reports every pool's members for the status page and metrics.
func (s *shared) poolStatus() []admin.PoolStatus { return nil }

// cacheStatus reports the cache's counters, nil without a cache.
func (s *shared) cacheStatus() *admin.CacheStatus { return nil }

func (s *shared) reopenLogs() {
	if err := s.obs.reopen(); err != nil {
		s.e.log.Error("reopening the access log", "error", err)
	}
}
