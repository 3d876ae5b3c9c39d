package engine

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/portcullis/portcullis/internal/admin"
	"github.com/portcullis/portcullis/internal/certs"
	"github.com/portcullis/portcullis/internal/config/field"
	"github.com/portcullis/portcullis/reverse"
)

// ACME sources are the engine's: each holds a certmagic cache, its
// maintenance (renewals, OCSP staples) and a storage folder, so two doors
// with the same ACME settings (reverse.tls and forward.tls) share one source,
// and a source is kept across reloads while its settings and challenge
// listeners stay the same. useACME plans them before the doors are built:
// the doors take theirs from state.acme.

// acmeDoor is one door's ACME settings, paths resolved.
type acmeDoor struct {
	door  string       // "reverse" or "forward": the policy section
	cfg   certs.Config // its tls section
	opts  certs.Options
	plain string // the plain listener that answers http-01 ("": none)
	tls   string // the first TLS listener (tls-alpn-01)
	names []acmeName
}

// acmeName is a name a door's ACME source manages and the policy field that
// gives it: tls.names, or a route's host when the reverse door lists none.
type acmeName struct {
	name, field string
	route       bool // a route's host, reverse.tls.names being empty
}

// settings identifies the certificates a door's source manages: doors with the
// same settings share one source.
func (d *acmeDoor) settings() string {
	defaults := d.opts.DefaultNames
	if len(d.cfg.Names) > 0 {
		defaults = nil // not used
	}
	return fmt.Sprintf("%#v|%q|%q", d.cfg, d.opts.Dir, defaults)
}

// acmeDoors returns the doors of st's policy whose certificates come from ACME
// (the reverse door first).
func (e *Engine) acmeDoors(st *state) []*acmeDoor {
	var out []*acmeDoor
	p := st.file.Policy
	if r := p.Reverse; r != nil && len(r.TLSListen) > 0 && r.TLS.Mode == certs.ModeACME {
		cfg := *r
		cfg.StateDir = st.file.Resolve(cfg.StateDir)
		d := &acmeDoor{door: "reverse", cfg: resolveACME(st, cfg.TLS), opts: reverse.CertOptions(&cfg, defaultStateDir()), tls: r.TLSListen[0]}
		if len(r.Listen) > 0 {
			d.plain = r.Listen[0]
		}
		d.names = listedNames("reverse", r.TLS.Names)
		if len(r.TLS.Names) == 0 { // the routes' hosts, as reverse.CertOptions gives them
			for i, rt := range r.Routes {
				for j, h := range rt.Host {
					d.names = append(d.names, acmeName{name: h, field: fmt.Sprintf("reverse.routes[%d].host[%d]", i, j), route: true})
				}
			}
		}
		out = append(out, d)
	}
	if f := p.Forward; f != nil && len(f.TLSListen) > 0 && f.TLS.Mode == certs.ModeACME {
		d := &acmeDoor{door: "forward", cfg: resolveACME(st, f.TLS), opts: certs.Options{Dir: forwardStateDir(st)}, tls: f.TLSListen[0], names: listedNames("forward", f.TLS.Names)}
		// The forward door's plain listener is a proxy's (3128, 8080…), not
		// the port 80 a CA validates http-01 on: it answers only when the
		// policy asks for http-01 by name.
		if slices.Contains(f.TLS.Challenges, certs.ChallengeHTTP01) && len(f.Listen) > 0 {
			d.plain = f.Listen[0]
		}
		out = append(out, d)
	}
	return out
}

// listedNames are the names of door.tls.names.
func listedNames(door string, names []string) []acmeName {
	out := make([]acmeName, len(names))
	for i, n := range names {
		out[i] = acmeName{name: n, field: door + ".tls.names"}
	}
	return out
}

// resolveACME returns cfg with its paths relative to the policy file.
func resolveACME(st *state, cfg certs.Config) certs.Config {
	cfg.CARoot = st.file.Resolve(cfg.CARoot)
	cfg.Storage = st.file.Resolve(cfg.Storage)
	cfg.Names = slices.Clone(cfg.Names)
	cfg.Challenges = slices.Clone(cfg.Challenges)
	return cfg
}

// forwardStateDir is the forward door's state directory: the reverse door's
// (reverse.state_dir) or the default one.
func forwardStateDir(st *state) string {
	if r := st.file.Policy.Reverse; r != nil && r.StateDir != "" {
		return st.file.Resolve(r.StateDir)
	}
	return defaultStateDir()
}

// useACME gives every door whose certificates come from ACME its source
// (st.acme): the live one with the same settings and challenge listeners, one
// built by this policy for another door with the same settings, or a new one.
// The new set replaces the live one when st is committed (sources it no longer
// uses are closed then); a new source is closed if the build is discarded.
func (e *Engine) useACME(st *state) error {
	doors := e.acmeDoors(st)
	if err := overlappingNames(st, doors); err != nil {
		return err
	}
	if e.opts.DryRun {
		for _, d := range doors {
			if d.cfg.CARoot != "" {
				if _, err := os.Stat(d.cfg.CARoot); err != nil {
					return fmt.Errorf("%s.tls.ca_root: %w", d.door, err)
				}
			}
		}
		return nil
	}
	st.stage.sourcesSet = true // even empty: the live sources this policy does not use go
	st.stage.sources = map[string]*certs.Source{}
	if len(doors) == 0 {
		return nil
	}
	// Group the doors by settings; each group's challenges are answered on the
	// first door's listeners that has them.
	type group struct {
		doors      []*acmeDoor
		plain, tls string
		first      string
	}
	var order []string
	groups := map[string]*group{}
	for _, d := range doors {
		k := d.settings()
		g := groups[k]
		if g == nil {
			g = &group{first: d.door}
			groups[k] = g
			order = append(order, k)
		}
		g.doors = append(g.doors, d)
		if g.plain == "" {
			g.plain = d.plain
		}
		if g.tls == "" {
			g.tls = d.tls
		}
	}
	st.acme = map[string]*certs.Source{}
	for _, k := range order {
		g := groups[k]
		d := g.doors[0]
		src, err := e.keptSource(st, "acme|"+k+fmt.Sprintf("|%q|%q", g.plain, g.tls), func() (*certs.Source, error) {
			opts := d.opts
			opts.HTTPAddr, opts.TLSAddr, opts.Logger = g.plain, g.tls, e.log.With("door", g.first)
			return certs.New(d.cfg, opts)
		})
		if err != nil {
			return fmt.Errorf("%s.tls: %w", d.door, err)
		}
		for _, d := range g.doors {
			st.acme[d.door] = src
		}
	}
	return nil
}

// keptSource returns the certificate source for key: the one this policy
// already uses, else the live one, else one build makes (closed if the build is
// discarded). The commit keeps the sources the policy uses and closes the
// others once the new state serves.
func (e *Engine) keptSource(st *state, key string, build func() (*certs.Source, error)) (*certs.Source, error) {
	if src := st.stage.sources[key]; src != nil {
		return src, nil
	}
	s := e.shared
	s.mu.Lock()
	src := s.sources[key]
	s.mu.Unlock()
	if src == nil {
		var err error
		if src, err = build(); err != nil {
			return nil, err
		}
		st.stage.sourcesNew = append(st.stage.sourcesNew, src)
	}
	st.stage.sources[key] = src
	return src, nil
}

// filesSource returns the source of a door's certificate files: a files
// source staples OCSP answers in the background, so it is kept across reloads
// while the files' contents are the same (a reload after the files were
// replaced reads them again).
func (e *Engine) filesSource(st *state, cfg certs.Config, opts certs.Options) (*certs.Source, error) {
	h := sha256.New()
	for _, cf := range cfg.Certs {
		for _, f := range []string{cf.CertFile, cf.KeyFile} {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(h, "%q %d %x\n", f, len(b), sha256.Sum256(b))
		}
	}
	return e.keptSource(st, fmt.Sprintf("files|%x", h.Sum(nil)), func() (*certs.Source, error) { return certs.New(cfg, opts) })
}

// overlappingNames refuses two ACME sources that manage the same name: both
// would order and renew its certificate in the same storage. Doors with the
// same settings share one source and may. A door's names are its tls.names or,
// for the reverse door without them, its routes' hosts.
func overlappingNames(st *state, doors []*acmeDoor) error {
	type owner struct {
		door *acmeDoor
		at   acmeName
	}
	seen := map[string]owner{}
	for _, d := range doors {
		for _, n := range d.names {
			other, ok := seen[n.name]
			if !ok {
				seen[n.name] = owner{d, n}
				continue
			}
			if other.door == d || other.door.settings() == d.settings() {
				continue
			}
			msg := fmt.Sprintf("%s is also listed by %s.tls with other ACME settings: give both doors the same tls settings to share one certificate source", n.name, other.door.door)
			if other.at.route || n.route {
				route := other.at
				if n.route {
					route = n
				}
				msg = fmt.Sprintf("%s is also a name of %s.tls, with other ACME settings (reverse.tls.names is empty, so the reverse door's ACME names are its routes' hosts: %s): list the names in reverse.tls.names and give both doors the same tls settings to share one certificate source, or drop %s from one of them",
					n.name, other.door.door, route.field, n.name)
			}
			return st.file.FieldErrors([]field.Error{field.Errorf(n.field, "%s", msg)})
		}
	}
	return nil
}

// reverseCerts returns the certificate source of the reverse door's TLS
// listeners: the ACME source useACME chose, the kept files source, or an
// internal one built for this policy.
func (e *Engine) reverseCerts(st *state, cfg *reverse.Config) (*certs.Source, error) {
	if cfg.TLS.Mode == certs.ModeACME {
		if src := st.acme["reverse"]; src != nil {
			return src, nil
		}
		return nil, fmt.Errorf("no ACME source") // useACME runs first
	}
	opts := reverse.CertOptions(cfg, defaultStateDir())
	opts.Leaves, opts.Logger = st.leaves, e.log.With("door", "reverse")
	if cfg.TLS.Mode == "" || cfg.TLS.Mode == certs.ModeFiles {
		return e.filesSource(st, cfg.TLS, opts)
	}
	return certs.New(cfg.TLS, opts)
}

// acmePlain returns door behind the answers to ACME http-01 challenges of src
// for a forward proxy's plain listener: only a request in origin form
// (GET /.well-known/acme-challenge/TOKEN with Host the name being validated,
// as a CA sends it) is a challenge; a proxy request in absolute form for the
// same path is the door's, so a client of the proxy reaches the real site.
func acmePlain(src *certs.Source, door http.Handler) http.Handler {
	challenges := src.HTTPHandler(door)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.IsAbs() || r.Method == http.MethodConnect || !strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			door.ServeHTTP(w, r)
			return
		}
		challenges.ServeHTTP(w, r)
	})
}

// certStatus is the current policy's ACME certificates, for the status page and
// the metrics: every source once, each name once.
func (e *Engine) certStatus() []admin.CertStatus {
	st := e.cur.Load()
	if st == nil {
		return nil
	}
	var out []admin.CertStatus
	var srcs []*certs.Source
	seen := map[string]bool{}
	for _, door := range []string{"reverse", "forward"} {
		src := st.acme[door]
		if src == nil || slices.Contains(srcs, src) {
			continue
		}
		srcs = append(srcs, src)
		for _, s := range src.Status() {
			if !seen[s.Name] {
				seen[s.Name] = true
				out = append(out, admin.CertStatus(s))
			}
		}
	}
	slices.SortFunc(out, func(x, y admin.CertStatus) int { return strings.Compare(x.Name, y.Name) })
	return out
}
