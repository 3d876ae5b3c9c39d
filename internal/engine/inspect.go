package engine

import (
	"crypto/tls"

	"github.com/portcullis/portcullis/forward"
)

// useInspection loads the inspection CA st names (forward.ca_cert/ca_key) into st,
// keeping the leaf-certificate cache across reloads while the CA stays the same.
func (e *Engine) useInspection(st *state) error {
	cfg := st.file.Policy.Forward
	if cfg == nil || cfg.CACert == "" {
		return nil
	}
	certPath, keyPath := st.file.Resolve(cfg.CACert), st.file.Resolve(cfg.CAKey)
	ca, err := forward.LoadCA(certPath, keyPath)
	if err != nil {
		return err
	}
	s := e.shared
	s.mu.Lock()
	leaves, key, size := s.leaves, certPath+"|"+keyPath, cfg.WithDefaults().LeafCacheSize
	if leaves == nil || s.leavesKey != key || s.leavesSize != size {
		leaves = forward.NewLeaves(size)
		st.stage.leaves, st.stage.leavesKey, st.stage.leavesSize = leaves, key, size
	}
	s.mu.Unlock()
	st.ca, st.leaves = ca, leaves
	return nil
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
