package engine

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"

	"github.com/portcullis/portcullis/forward"
	"github.com/portcullis/portcullis/internal/certs"
	"github.com/portcullis/portcullis/internal/config/field"
	"github.com/portcullis/portcullis/internal/h1"
	"github.com/portcullis/portcullis/internal/h2"
)

// forwardTLSListeners binds forward.tls_listen: the forward door over TLS (an
// HTTPS proxy), HTTP/1.1 and HTTP/2 by ALPN, with the door's connection limits.
// The certificates come from forward.tls through a certs.Source (files, the
// internal CA or ACME), and follow reloads: each handshake asks the current
// state.
func (e *Engine) forwardTLSListeners(st *state, full *forward.Config, p *forward.Proxy, limit func(net.Listener) net.Listener) error {
	if len(full.TLSListen) == 0 {
		return nil
	}
	tc, err := e.forwardTLSConfig(st, full, p)
	if err != nil {
		return err
	}
	st.forwardTLS, st.forwardTLSDoor = tc, p.TLSHandler()
	if tc == nil { // dry run: nothing is served
		return nil
	}
	tune := func(srv *h1.Server) {
		srv.ReadHeaderTimeout = full.ReadHeaderTimeout
		srv.H2 = (&h2.Server{Handler: srv.Handler, IdleTimeout: srv.IdleTimeout, Log: srv.Log}).ServeTLS
		srv.TLSConfig = &tls.Config{
			MinVersion: tls.VersionTLS12,
			NextProtos: tc.NextProtos,
			GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
				if cur := e.cur.Load(); cur != nil && cur.forwardTLS != nil {
					return cur.forwardTLS, nil
				}
				return tc, nil
			},
		}
	}
	pick := func(s *state) http.Handler {
		if s.forwardTLSDoor == nil {
			return nil // not a typed nil: httpListen answers 503
		}
		return s.forwardTLSDoor
	}
	for _, addr := range full.TLSListen {
		st.listens = append(st.listens, httpListen("forward-tls", addr, pick, limit, tune))
	}
	return nil
}

// forwardTLSConfig builds the TLS listeners' configuration from forward.tls
// with a certs.Source, as the reverse door does (paths relative to the policy
// file). The internal CA is the reverse door's, in reverse.state_dir or the
// default state directory; its leaves default to "localhost" and the IP
// addresses tls_listen names. Mode acme takes the engine's ACME source
// (useACME): the TLS listeners answer tls-alpn-01 themselves, and the plain
// listeners answer http-01 when forward.tls.challenges lists it
// (st.forwardPlain). In a dry run it only checks that the certificate files
// exist, and returns nil.
func (e *Engine) forwardTLSConfig(st *state, full *forward.Config, p *forward.Proxy) (*tls.Config, error) {
	cfg := full.TLS
	cfg.Certs = nil
	for i, c := range full.TLS.Certs {
		cf := certs.CertFiles{CertFile: st.file.Resolve(c.CertFile), KeyFile: st.file.Resolve(c.KeyFile)}
		if e.opts.DryRun {
			for _, f := range []struct{ name, path string }{{"cert_file", cf.CertFile}, {"key_file", cf.KeyFile}} {
				if _, err := os.Stat(f.path); err != nil {
					return nil, st.file.FieldErrors([]field.Error{field.Errorf(fmt.Sprintf("forward.tls.certs[%d].%s", i, f.name), "%v", err)})
				}
			}
		}
		cfg.Certs = append(cfg.Certs, cf)
	}
	if e.opts.DryRun {
		return nil, nil
	}
	if cfg.Mode == certs.ModeACME {
		src := st.acme["forward"]
		if src == nil { // useACME runs first
			return nil, st.file.FieldErrors([]field.Error{field.Errorf("forward.tls", "no ACME source")})
		}
		if len(full.Listen) > 0 && slices.Contains(cfg.Challenges, certs.ChallengeHTTP01) && src.HTTPChallenges() {
			st.forwardPlain = acmePlain(src, p)
		}
		return src.TLSConfig("h2", "http/1.1"), nil
	}
	opts := certs.Options{Dir: forwardStateDir(st), DefaultNames: []string{"localhost"}, Leaves: st.leaves, Logger: e.log.With("door", "forward")}
	for _, a := range full.TLSListen {
		host, _, _ := net.SplitHostPort(a)
		if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
			opts.DefaultNames = append(opts.DefaultNames, ip.String())
		}
	}
	var src *certs.Source
	var err error
	if cfg.Mode == "" || cfg.Mode == certs.ModeFiles {
		src, err = e.filesSource(st, cfg, opts)
	} else {
		src, err = certs.New(cfg, opts)
	}
	if err != nil {
		return nil, st.file.FieldErrors([]field.Error{field.Errorf("forward.tls", "%v", err)})
	}
	if p := src.CACertPath(); p != "" {
		e.log.Info("forward TLS: certificates issued by the local CA; clients trust it with --proxy-cacert or their trust store", "ca_cert", p)
	}
	return src.TLSConfig("h2", "http/1.1"), nil
}

// probeSite is the web site forward.tls_probe_resistance shows a client that
// has not signed in: the reverse door of the same policy version, or the
// page file (read once per policy version). Nil without probe resistance.
func probeSite(st *state, cfg *forward.Config) (http.Handler, error) {
	pr := cfg.TLSProbeResistance
	if pr == nil {
		return nil, nil
	}
	switch pr.Site {
	case forward.ProbeSiteReverse:
		if st.file.Policy.Reverse == nil {
			return nil, st.file.FieldErrors([]field.Error{field.Errorf("forward.tls_probe_resistance.site", "site: reverse needs a reverse section (the web site to show)")})
		}
		// st.reverse is built after the forward door; a request reads it.
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if st.reverse == nil {
				http.NotFound(w, r)
				return
			}
			st.reverse.ServeHTTP(w, r)
		}), nil
	default:
		path := st.file.Resolve(pr.PageFile)
		page, err := os.ReadFile(path)
		if err != nil {
			return nil, st.file.FieldErrors([]field.Error{field.Errorf("forward.tls_probe_resistance.page_file", "cannot read %s: %v", path, err)})
		}
		mod := st.loadedAt
		if fi, err := os.Stat(path); err == nil {
			mod = fi.ModTime()
		}
		return forward.StaticSite(page, mod), nil
	}
}
