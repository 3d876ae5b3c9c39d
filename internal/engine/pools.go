package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"

	"github.com/portcullis/portcullis/internal/admin"
	"github.com/portcullis/portcullis/internal/config/field"
	"github.com/portcullis/portcullis/internal/pool"
)

// livePool is a pool the engine keeps across reloads, with its health checker.
type livePool struct {
	cfg    pool.Config
	p      *pool.Pool
	cancel context.CancelFunc // stops Run; nil until started
}

// usePools gives st the shared pools for its definitions: an unchanged pool is kept
// as it is; a changed one gets its new configuration prepared beside the live one
// (put in force when st is committed: members that stay keep their health and
// connections); a new one is created but not started until then. One no longer
// named is stopped only once st is serving (retirePools).
func (e *Engine) usePools(st *state) error {
	s := e.shared
	s.poolsMu.Lock()
	defer s.poolsMu.Unlock()
	st.pools = map[string]*pool.Pool{}
	var errs []field.Error
	for name, cfg := range st.file.Policy.Pools {
		if cfg == nil {
			cfg = &pool.Config{}
		}
		if cfg.CredentialsFile != "" {
			c, err := readCredentials(st.file.Resolve(cfg.CredentialsFile))
			if err != nil {
				errs = append(errs, field.Errorf("pools."+name+".credentials_file", "%v", err))
				continue
			}
			withCreds := *cfg
			withCreds.Credentials = c
			cfg = &withCreds
		}
		lp := s.pools[name]
		switch {
		case lp != nil && reflect.DeepEqual(lp.cfg, *cfg):
		case lp != nil:
			pend, err := lp.p.Prepare(*cfg)
			if err != nil {
				errs = append(errs, field.Errorf("pools."+name, "%v", err))
				continue
			}
			st.stage.poolUpdates = append(st.stage.poolUpdates, poolUpdate{lp: lp, cfg: *cfg, pend: pend})
		default:
			p, err := pool.New(name, *cfg, e.log.With("pool", name))
			if err != nil {
				errs = append(errs, field.Errorf("pools."+name, "%v", err))
				continue
			}
			lp = &livePool{cfg: *cfg, p: p}
			if st.stage.newPools == nil {
				st.stage.newPools = map[string]*livePool{}
			}
			st.stage.newPools[name] = lp
		}
		st.pools[name] = lp.p
	}
	if len(errs) > 0 {
		return st.file.FieldErrors(errs)
	}
	return nil
}

// readCredentials reads a parent pool's credentials file ("user:password").
// Its errors name the file, never its content.
func readCredentials(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %v", path, errors.Unwrap(err))
	}
	c := string(b)
	if _, _, err := pool.ParseCredentials(c); err != nil {
		return "", fmt.Errorf("%s: %v", path, err)
	}
	return c, nil
}

// retirePools stops the pools the state now serving no longer names. It runs after
// the swap, so a reload that fails after usePools leaves the old state's pools running.
func (s *shared) retirePools(cur *state) {
	s.poolsMu.Lock()
	defer s.poolsMu.Unlock()
	for name, lp := range s.pools {
		if _, ok := cur.pools[name]; !ok {
			if lp.cancel != nil {
				lp.cancel()
			}
			lp.p.Close()
			delete(s.pools, name)
		}
	}
}

// startPool runs lp's health checks until the engine stops or the pool is dropped.
func (s *shared) startPool(lp *livePool) {
	ctx, cancel := context.WithCancel(s.runCtx)
	lp.cancel = cancel
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		lp.p.Run(ctx)
	}()
}

// poolStatus reports every pool's members for the status page and metrics.
func (s *shared) poolStatus() []admin.PoolStatus {
	s.poolsMu.Lock()
	defer s.poolsMu.Unlock()
	names := make([]string, 0, len(s.pools))
	for n := range s.pools {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]admin.PoolStatus, 0, len(names))
	for _, n := range names {
		ps := admin.PoolStatus{Name: n}
		for _, m := range s.pools[n].p.Status() {
			ps.Members = append(ps.Members, admin.MemberStatus(m))
		}
		out = append(out, ps)
	}
	return out
}

// poolHealth answers whether a pool has a healthy member (for GSLB).
func (s *shared) poolHealth(name string) bool {
	s.poolsMu.Lock()
	lp := s.pools[name]
	s.poolsMu.Unlock()
	return lp != nil && lp.p.Healthy()
}
