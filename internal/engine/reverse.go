package engine

import (
	"crypto/tls"
	"fmt"
	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/rules"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/portcullis/portcullis/internal/accept"
	"github.com/portcullis/portcullis/internal/cache"
	"github.com/portcullis/portcullis/internal/h1"
	"github.com/portcullis/portcullis/reverse"
)

// buildReverse builds the reverse door for st when the policy has a reverse section.
func (e *Engine) buildReverse(st *state) error {
	if st.file.Policy.Reverse == nil {
		return nil
	}
	cfg := *st.file.Policy.Reverse
	// Paths in the policy are relative to the policy file.
	cfg.StateDir = st.file.Resolve(cfg.StateDir)
	cfg.TLS.CARoot = st.file.Resolve(cfg.TLS.CARoot)
	cfg.TLS.Storage = st.file.Resolve(cfg.TLS.Storage)
	cfg.TLS.Certs = append([]reverse.CertFiles(nil), cfg.TLS.Certs...)
	for i := range cfg.TLS.Certs {
		cfg.TLS.Certs[i].CertFile = st.file.Resolve(cfg.TLS.Certs[i].CertFile)
		cfg.TLS.Certs[i].KeyFile = st.file.Resolve(cfg.TLS.Certs[i].KeyFile)
	}
	h, err := reverse.New(reverse.Options{
		Config:    cfg,
		Policy:    st.program,
		Pools:     st.pools,
		Wrap:      e.cacheWrap(st, &cfg),
		Limiter:   e.shared.limiter,
		BlockPage: e.reverseBlockPage(st),
		Log:       e.shared.accessLog(),
		Logger:    e.log.With("door", "reverse"),
	})
	if err != nil {
		return err
	}
	st.reverse = h
	if len(cfg.TLSListen) > 0 && e.opts.DryRun {
		if cfg.TLS.CARoot != "" {
			if _, err := os.Stat(cfg.TLS.CARoot); err != nil {
				return fmt.Errorf("reverse.tls.ca_root: %w", err)
			}
		}
		for _, c := range cfg.TLS.Certs {
			for _, f := range []string{c.CertFile, c.KeyFile} {
				if _, err := os.Stat(f); err != nil {
					return err
				}
			}
		}
	} else if len(cfg.TLSListen) > 0 {
		src, err := e.reverseCerts(st, &cfg)
		if err != nil {
			return fmt.Errorf("reverse.tls: %w", err)
		}
		st.reverseCerts = src
		st.reverseTLS = src.TLSConfig(reverse.NextProtos(&cfg)...)
		if src.HTTPChallenges() {
			st.reversePlain = src.HTTPHandler(h)
		}
		if p := src.CACertPath(); p != "" {
			e.log.Info("reverse TLS: certificates issued by the local CA; trust it to avoid warnings", "ca_cert", p)
		}
	}
	limit := func(ln net.Listener) net.Listener {
		return accept.LimitShared(ln, cfg.Limits.MaxConns, cfg.Limits.MaxConnsPerClient, "reverse", e.shared.connCounts)
	}
	pick := func(s *state) http.Handler {
		if s.reverse == nil {
			return nil // not a typed nil: httpListen answers 503
		}
		return s.reverse
	}
	tune := func(tlsOn bool) func(*h1.Server) {
		return func(srv *h1.Server) {
			reverse.ConfigureServer(srv, &cfg, tlsOn)
			if tlsOn {
				// The certificate set follows reloads: each handshake asks the current state.
				srv.TLSConfig = &tls.Config{
					MinVersion: tls.VersionTLS12,
					NextProtos: st.reverseTLS.NextProtos,
					GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
						if cur := e.cur.Load(); cur.reverseTLS != nil {
							return cur.reverseTLS, nil
						}
						return st.reverseTLS, nil
					},
				}
			}
		}
	}
	// Plain listeners answer ACME http-01 challenges before the door when the
	// certificates come from ACME.
	pickPlain := func(s *state) http.Handler {
		if s.reversePlain != nil {
			return s.reversePlain
		}
		return pick(s)
	}
	for _, addr := range cfg.Listen {
		st.listens = append(st.listens, httpListen("reverse", addr, pickPlain, limit, tune(false)))
	}
	for _, addr := range cfg.TLSListen {
		// The Alt-Svc hook and the HTTP/3 socket need the port the TLS listener is bound on.
		alt := &altSvc{}
		var bound net.Addr
		spec := httpListen("reverse-tls", addr, func(s *state) http.Handler {
			if h := pick(s); h != nil {
				return alt.handler(s, h)
			}
			return nil
		}, limit, tune(true))
		start := spec.start
		spec.start = func(e *Engine) (*listener, error) {
			l, err := start(e)
			if l != nil {
				bound = l.addr
				alt.bound(l.addr)
			}
			return l, err
		}
		st.listens = append(st.listens, spec)
		if cfg.HTTP3 {
			st.listens = append(st.listens, quicListen(addr, &cfg, func() net.Addr { return bound }, pick))
		}
	}
	return nil
}

// cacheWrap inserts the shared cache in front of each route's pool, with the route's
// cache policy.
func (e *Engine) cacheWrap(st *state, cfg *reverse.Config) func(route string, rt http.RoundTripper) http.RoundTripper {
	if st.cache == nil {
		return nil
	}
	policies := map[string]*cache.Policy{}
	for _, r := range cfg.Routes {
		if p := st.cachePolicy(r.Cache); p != nil {
			policies[r.Name] = p
		}
	}
	c := st.cache
	return func(route string, rt http.RoundTripper) http.RoundTripper {
		if p := policies[route]; p != nil {
			return c.WrapPolicy(p, rt)
		}
		return rt
	}
}

// defaultStateDir is where Portcullis keeps what it creates (the internal CA):
// $XDG_STATE_HOME/portcullis, else ~/.local/state/portcullis.
func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "portcullis")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "portcullis")
	}
	return filepath.Join(os.TempDir(), "portcullis-state")
}

// reverseBlockPage renders the same block page as forward mode for blocked reverse
// requests (naming the rule, category and reason, never an origin).
func (e *Engine) reverseBlockPage(st *state) func(http.ResponseWriter, *http.Request, *rules.Verdict) {
	bp, err := blockPage(st)
	if err != nil {
		return nil // the door's built-in page
	}
	return func(w http.ResponseWriter, r *http.Request, v *rules.Verdict) {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		bp.Serve(w, r, http.StatusForbidden, &filter.BlockInfo{
			URL: scheme + "://" + r.Host + r.URL.RequestURI(), Host: r.Host,
			Rule: v.Rule, Category: v.Category, Reason: v.Reason, Time: e.opts.Now(),
		})
	}
}
