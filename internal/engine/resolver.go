package engine

import (
	"context"
	"errors"
	"net"
	"reflect"

	"github.com/portcullis/portcullis/internal/resolver"
	"github.com/portcullis/portcullis/rules"
)

// errCloaked refuses a dial whose CNAME chain passes through a blocked name.
var errCloaked = errors.New("a name in the CNAME chain is blocked by policy")

// useResolver gives st the live resolver while its settings are the same, and
// otherwise builds a new one beside it (made current when st is committed). The
// doors dial through shared.dialContext, which always uses the current one, so
// transports built earlier follow along.
func (e *Engine) useResolver(st *state) error {
	var cfg resolver.Config
	if st.file.Policy.Resolver != nil {
		cfg = *st.file.Policy.Resolver
	}
	s := e.shared
	s.mu.Lock()
	live, liveCfg := s.resolver, s.resolverCfg
	s.mu.Unlock()
	if live != nil && reflect.DeepEqual(liveCfg, cfg) {
		st.resolver = live
		return nil
	}
	r, err := resolver.New(cfg, e.log.With("part", "resolver"), resolver.WithCheckName(e.checkCNAME), resolver.WithListeners(&s.self))
	if err != nil {
		return err
	}
	st.stage.resolver, st.stage.resolverCfg = r, cfg
	st.resolver = r
	return nil
}

// checkCNAME applies the current policy to a name met in a CNAME chain.
func (e *Engine) checkCNAME(name string) error {
	st := e.cur.Load()
	if st == nil {
		return nil
	}
	if v := st.program.Evaluate(&rules.Facts{Door: rules.DoorDNS, Host: name, Time: e.opts.Now()}); v.Blocked() {
		return errCloaked
	}
	return nil
}

// dialContext dials through the current resolver: names resolved by Portcullis
// itself, Happy Eyeballs, and the egress guard on the address actually dialed.
func (s *shared) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return s.currentResolver.Load().DialContext(ctx, network, addr)
}
