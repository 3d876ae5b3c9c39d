package engine

import (
	"fmt"

	"github.com/portcullis/portcullis/internal/admin"
	"github.com/portcullis/portcullis/internal/certs"
	"github.com/portcullis/portcullis/reverse"
)

// reverseCerts returns the certificate source of the reverse door's TLS
// listeners. Files and internal sources are built per policy. An ACME source
// holds a certificate cache and its maintenance, so it is kept across reloads
// while its settings stay the same, replaced when the reload commits otherwise
// (the old one closed once the new state serves), and closed with the engine.
func (e *Engine) reverseCerts(st *state, cfg *reverse.Config) (*certs.Source, error) {
	opts := reverse.CertOptions(cfg, defaultStateDir())
	opts.Leaves, opts.Logger = st.leaves, e.log.With("door", "reverse")
	if cfg.TLS.Mode != certs.ModeACME {
		return certs.New(cfg.TLS, opts)
	}
	if len(cfg.Listen) > 0 {
		opts.HTTPAddr = cfg.Listen[0]
	}
	opts.TLSAddr = cfg.TLSListen[0]
	key := fmt.Sprintf("%#v|%q|%q|%q|%q", cfg.TLS, opts.Dir, opts.DefaultNames, opts.HTTPAddr, opts.TLSAddr)
	s := e.shared
	s.mu.Lock()
	cur, curKey := s.acme, s.acmeKey
	s.mu.Unlock()
	if cur != nil && curKey == key {
		st.stage.acmeSet = false
		return cur, nil
	}
	src, err := certs.New(cfg.TLS, opts)
	if err != nil {
		return nil, err
	}
	st.stage.acmeSet, st.stage.acme, st.stage.acmeKey = true, src, key
	return src, nil
}

// dropACME stages the removal of the live ACME source, if any; reverseCerts
// undoes it when the new policy keeps it.
func (e *Engine) dropACME(st *state) {
	s := e.shared
	s.mu.Lock()
	st.stage.acmeSet = s.acme != nil
	s.mu.Unlock()
}

// certStatus is the current policy's ACME certificates, for the status page and
// the metrics.
func (e *Engine) certStatus() []admin.CertStatus {
	st := e.cur.Load()
	if st == nil || st.reverseCerts == nil {
		return nil
	}
	var out []admin.CertStatus
	for _, s := range st.reverseCerts.Status() {
		out = append(out, admin.CertStatus(s))
	}
	return out
}
