package engine

import (
	"github.com/portcullis/portcullis/internal/cache"
	"net/http"

	"github.com/portcullis/portcullis/forward"
	"github.com/portcullis/portcullis/rules"
)

// buildForward builds the forward door for st when the policy has a forward section.
func (e *Engine) buildForward(st *state) error {
	cfg := st.file.Policy.Forward
	if cfg == nil {
		return nil
	}
	full := cfg.WithDefaults()
	tc := full.TransportConfig()
	rt := &verdictTransport{st: st, direct: e.shared.forwardTransport(tc)}
	if st.cache != nil {
		rt.cached = st.cache.Wrap(rt.direct)
	}
	p, err := forward.New(forward.Options{
		Config:     cfg,
		Policy:     trackerGuard(st, full.Profile),
		Anonymizer: e.anonymizers(st),
		Transport:  rt,
		Dial:       e.shared.dialContext,
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
	return func(name string) forward.Anonymizer {
		if p, ok := st.profiles[name]; ok {
			return p
		}
		return nil
	}
}

// trackerGuard wraps the policy so that requests a profile's tracker lists name are
// blocked quietly (204) instead of shown a block page.
func trackerGuard(st *state, defaultProfile string) rules.Evaluator {
	if !st.hasTrackers {
		return st.program
	}
	return rules.EvaluatorFunc(func(f *rules.Facts) rules.Verdict {
		v := st.program.Evaluate(f)
		if v.Action == rules.ActionBlock {
			return v
		}
		name := v.Profile
		if name == "" {
			name = defaultProfile
		}
		if p := st.profiles[name]; p != nil && p.Tracker(f.Host) {
			return rules.Verdict{Action: rules.ActionBlock, Quiet: true, Rule: "tracker:" + name, Category: "tracker", Reason: "tracker"}
		}
		return v
	})
}

// verdictTransport sends forward-mode requests through the shared cache when the
// verdict names a cache policy (rules' `cache:`), and straight upstream otherwise.
type verdictTransport struct {
	st     *state
	direct http.RoundTripper
	cached http.RoundTripper // nil without a cache
}

func (t *verdictTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.cached != nil {
		if v, ok := rules.VerdictFrom(r.Context()); ok {
			if p := t.st.cachePolicy(v.Cache); p != nil {
				return t.cached.RoundTrip(r.WithContext(cache.WithPolicy(r.Context(), p)))
			}
		}
	}
	return t.direct.RoundTrip(r)
}
