package engine

import (
	"net/http"
	"net/netip"

	"github.com/portcullis/portcullis/anonymize"
	"github.com/portcullis/portcullis/forward"
)

// buildForward builds the forward door for st when the policy has a forward section.
func (e *Engine) buildForward(st *state) error {
	cfg := st.file.Policy.Forward
	if cfg == nil {
		return nil
	}
	full := cfg.WithDefaults()
	tc := full.TransportConfig()
	p, err := forward.New(forward.Options{
		Config:     cfg,
		Policy:     st.program,
		Anonymizer: e.anonymizers(st),
		Transport:  e.shared.forwardTransport(tc),
		Dial:       e.shared.dial,
		Logger:     e.log.With("door", "forward"),
		Tunnels:    e.shared.tunnels,
		Now:        e.opts.Now,
		LoopToken:  e.shared.loopToken,
		Log:        e.shared.accessLog(),
	})
	if err != nil {
		return err
	}
	st.forward = p
	for _, addr := range full.Listen {
		st.listens = append(st.listens, httpListen("forward", addr, func(s *state) http.Handler { return s.forward }, nil,
			func(srv *http.Server) { srv.ReadHeaderTimeout = full.ReadHeaderTimeout }))
	}
	return nil
}

// anonymizers maps profile names to the anonymize profiles of st.
func (e *Engine) anonymizers(st *state) func(string) forward.Anonymizer {
	builtin := map[string]*anonymize.Profile{
		"":            anonymize.Elite(),
		"elite":       anonymize.Elite(),
		"anonymous":   anonymize.Anonymous(),
		"transparent": anonymize.Transparent(),
	}
	return func(name string) forward.Anonymizer {
		if p, ok := builtin[name]; ok {
			return p
		}
		return nil
	}
}

var _ forward.Anonymizer = (*anonymize.Profile)(nil)
var _ = netip.Addr{}
