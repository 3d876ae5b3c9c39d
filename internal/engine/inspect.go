package engine

import (
	"crypto/tls"

	"github.com/portcullis/portcullis/forward"
	"github.com/portcullis/portcullis/internal/certs"
)

// useInspection loads the inspection CA st names (forward.ca_cert/ca_key) into st,
// with the shared leaf-certificate cache.
func (e *Engine) useInspection(st *state) error {
	st.leaves = e.useLeaves(st)
	cfg := st.file.Policy.Forward
	if cfg == nil || cfg.CACert == "" {
		return nil
	}
	ca, err := certs.LoadCA(st.file.Resolve(cfg.CACert), st.file.Resolve(cfg.CAKey))
	if err != nil {
		return err
	}
	st.ca = ca
	return nil
}

// useLeaves returns the leaf-certificate cache every CA of the process signs
// into (the inspection CA and the reverse door's internal CA; it is keyed by CA),
// kept across reloads while forward.leaf_cache_size stays the same.
func (e *Engine) useLeaves(st *state) *certs.Leaves {
	size := certs.DefaultLeafCacheSize
	if cfg := st.file.Policy.Forward; cfg != nil {
		size = cfg.WithDefaults().LeafCacheSize
	}
	s := e.shared
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leaves != nil && s.leavesSize == size {
		return s.leaves
	}
	st.stage.leaves, st.stage.leavesSize = certs.NewLeaves(size), size
	return st.stage.leaves
}

// upstreamTLS returns the TLS settings forward mode verifies origins with: the
// system roots, or the bundle in forward.upstream_ca_file.
func upstreamTLS(st *state, cfg *forward.Config) (*tls.Config, error) {
	if cfg == nil || cfg.UpstreamCAFile == "" {
		return nil, nil
	}
	pool, err := forward.LoadRootCAs(st.file.Resolve(cfg.UpstreamCAFile))
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
