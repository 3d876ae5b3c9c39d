package certs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/portcullis/portcullis/internal/config/field"
)

// Config says where a TLS door's certificates come from (the policy's
// reverse.tls): Mode "internal" issues leaves from a local CA kept in the state
// directory for Names; "acme" obtains them from an ACME CA for Names, at the
// first handshake that asks for one; "files" (or "") loads Certs and chooses by
// SNI.
type Config struct {
	// Mode is "internal", "acme", "files" or "" (use Certs).
	Mode string `yaml:"mode"`
	// Names for which certificates are issued; "*.example.test" issues a
	// wildcard leaf (internal) or one certificate per subdomain asked for
	// (acme). Default: the door's own names (every route host).
	Names []string `yaml:"names"`
	// Certs are certificate and key files; the certificate matching the
	// client's SNI is served (the first when none matches).
	Certs []CertFiles `yaml:"certs"`
	// Email is the ACME account's contact address (optional).
	Email string `yaml:"email"`
	// CA is the ACME directory URL (default: Let's Encrypt's production CA).
	CA string `yaml:"ca"`
	// CARoot is a PEM file of roots to trust for the ACME directory's HTTPS
	// (default: the system's roots).
	CARoot string `yaml:"ca_root"`
	// Storage is the folder of ACME accounts and certificates (default: "acme"
	// in the state directory). Certificates kept there survive restarts.
	Storage string `yaml:"storage"`
	// Challenges are the ACME challenge types offered: "http-01" (on the
	// door's first plain listener) and "tls-alpn-01" (on its first TLS
	// listener). Default: both.
	Challenges []string `yaml:"challenges"`
	// Profile is the ACME certificate profile to ask for ("" = the CA's
	// default; Let's Encrypt offers "classic", "tlsserver" and "shortlived").
	Profile string `yaml:"profile"`
}

// CertFiles is one PEM certificate chain and its key.
type CertFiles struct {
	// CertFile is the certificate chain file (PEM).
	CertFile string `yaml:"cert_file"`
	// KeyFile is the private key file (PEM).
	KeyFile string `yaml:"key_file"`
}

// Modes of Config.Mode.
const (
	ModeFiles    = "files"
	ModeInternal = "internal"
	ModeACME     = "acme"
)

// File names of the internal CA inside the state directory.
const (
	LocalCACertFile = "reverse-ca.crt"
	LocalCAKeyFile  = "reverse-ca.key"
)

// Validate reports every problem in c, with paths relative to c. A door that
// listens with TLS calls it with required true: then c must name a source.
func (c *Config) Validate(required bool) []field.Error {
	var errs []field.Error
	switch c.Mode {
	case "", ModeFiles, ModeInternal:
	case ModeACME:
		errs = append(errs, c.validateACME()...)
	default:
		errs = append(errs, field.Errorf("mode", "want internal, acme, files or empty, got %q", c.Mode))
	}
	if c.Mode != ModeACME {
		for k, set := range map[string]bool{"email": c.Email != "", "ca": c.CA != "", "ca_root": c.CARoot != "", "storage": c.Storage != "", "challenges": len(c.Challenges) > 0, "profile": c.Profile != ""} {
			if set {
				errs = append(errs, field.Errorf(k, "only with mode acme"))
			}
		}
	}
	if required && (c.Mode == "" || c.Mode == ModeFiles) && len(c.Certs) == 0 {
		errs = append(errs, field.Errorf("", "a TLS listener needs mode internal or certs"))
	}
	for i, cf := range c.Certs {
		p := fmt.Sprintf("certs[%d]", i)
		if cf.CertFile == "" {
			errs = append(errs, field.Errorf(field.Join(p, "cert_file"), "required"))
		}
		if cf.KeyFile == "" {
			errs = append(errs, field.Errorf(field.Join(p, "key_file"), "required"))
		}
	}
	for i, n := range c.Names {
		if err := CheckName(n); err != nil {
			errs = append(errs, field.Errorf(fmt.Sprintf("names[%d]", i), "%v", err))
		}
	}
	return errs
}

// CheckName accepts a lower-case host name or "*.domain".
func CheckName(h string) error {
	name := strings.TrimPrefix(h, "*.")
	if name == "" || strings.ContainsAny(name, "*/: ") || name != strings.ToLower(name) {
		return fmt.Errorf("want a lower-case host name or *.domain, got %q", h)
	}
	return nil
}

// Options are what a Source needs besides its Config.
type Options struct {
	// Dir is the state directory: the internal CA lives there.
	Dir string
	// DefaultNames are the names when Config.Names is empty (the reverse door:
	// every route host); "localhost" when both are empty.
	DefaultNames []string
	// Leaves caches the internal CA's leaves; nil: a private cache.
	Leaves *Leaves
	// Logger receives what the source does (nil: discarded).
	Logger *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// HTTPAddr and TLSAddr are the door's first plain and TLS listen addresses:
	// ACME's http-01 and tls-alpn-01 challenges are answered there ("": that
	// challenge is not offered).
	HTTPAddr, TLSAddr string
}

// Source gives a TLS listener its certificates, chosen by SNI, from files, the
// internal CA or an ACME CA. Build it with New; Close it when its policy is replaced.
// Safe for concurrent use.
type Source struct {
	mode   string
	files  []*stapled // mode files
	staple *stapler   // mode files: OCSP staples (nil: no certificate names a responder)
	ca     *CA        // mode internal
	caPath string
	names  []string // mode internal: sorted, exact names and "*.domain"
	leaves *Leaves
	now    func() time.Time
	acme   *acmeSource // mode acme
}

// New builds the source cfg describes. For mode internal it loads the local CA
// from opts.Dir, or creates it there.
func New(cfg Config, opts Options) (*Source, error) {
	s := &Source{mode: cfg.Mode, leaves: opts.Leaves, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if s.mode == "" {
		s.mode = ModeFiles
	}
	switch s.mode {
	case ModeFiles:
		if len(cfg.Certs) == 0 {
			return nil, errors.New("no certificates configured")
		}
		for _, cf := range cfg.Certs {
			c, err := tls.LoadX509KeyPair(cf.CertFile, cf.KeyFile)
			if err != nil {
				return nil, err
			}
			sc, err := newStapled(c)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", cf.CertFile, err)
			}
			s.files = append(s.files, sc)
		}
		log := opts.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		s.staple = startStapler(s.files, log, s.now)
	case ModeInternal:
		if opts.Dir == "" {
			return nil, errors.New("internal: no state directory")
		}
		s.caPath = LocalCAPath(opts.Dir)
		ca, err := LoadOrCreateCA(s.caPath, filepath.Join(opts.Dir, LocalCAKeyFile), LocalCAName)
		if err != nil {
			return nil, fmt.Errorf("internal: CA in %s: %w", opts.Dir, err)
		}
		s.ca = ca
		s.names = namesOf(cfg.Names, opts.DefaultNames)
		if s.leaves == nil {
			s.leaves = NewLeaves(0)
		}
	case ModeACME:
		a, err := newACME(cfg, opts)
		if err != nil {
			return nil, err
		}
		s.acme = a
	default:
		return nil, fmt.Errorf("unknown mode %q", cfg.Mode)
	}
	return s, nil
}

// LocalCAPath returns where the internal CA's certificate is kept in the state
// directory dir.
func LocalCAPath(dir string) string { return filepath.Join(dir, LocalCACertFile) }

// namesOf returns names, else defaults, else localhost: sorted, without repeats.
func namesOf(names, defaults []string) []string {
	if len(names) == 0 {
		names = defaults
	}
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) == 0 {
		names = []string{"localhost"}
	}
	return names
}

// CACertPath returns where the internal CA's certificate is kept (users add it
// to their trust store), "" for other modes.
func (s *Source) CACertPath() string { return s.caPath }

// GetCertificate is crypto/tls's hook: the certificate for the client's server
// name. A client naming no known name gets the first one.
func (s *Source) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	switch s.mode {
	case ModeInternal:
		return s.leaves.Get(s.ca, matchName(s.names, hello.ServerName), s.now())
	case ModeACME:
		return s.acme.getCertificate(hello)
	default:
		for _, c := range s.files {
			if hello.SupportsCertificate(&c.base) == nil {
				return c.certificate(), nil
			}
		}
		return s.files[0].certificate(), nil
	}
}

// matchName returns the entry of names (sorted) that serves server: itself, else
// the wildcard one label up, else names[0].
func matchName(names []string, server string) string {
	server = strings.ToLower(strings.TrimSuffix(server, "."))
	if server != "" {
		if _, ok := slices.BinarySearch(names, server); ok {
			return server
		}
		if _, parent, ok := strings.Cut(server, "."); ok {
			if _, ok := slices.BinarySearch(names, "*."+parent); ok {
				return "*." + parent
			}
		}
	}
	return names[0]
}

// TLSConfig returns a server configuration for TLS 1.2 and 1.3 offering
// nextProtos (ALPN, in order of preference), with this source's certificates.
// With ACME's tls-alpn-01 on, it offers "acme-tls/1" too (last), which only a
// CA validating a challenge asks for.
func (s *Source) TLSConfig(nextProtos ...string) *tls.Config {
	protos := slices.Clone(nextProtos)
	if s.acme != nil && s.acme.tlsALPN {
		protos = append(protos, acmeTLS1)
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     protos,
		GetCertificate: s.GetCertificate,
	}
}

// HTTPChallenges says the source answers ACME http-01 challenges: the door's
// plain listener must then serve HTTPHandler.
func (s *Source) HTTPChallenges() bool { return s.acme != nil && s.acme.http01 }

// HTTPHandler returns next behind the answer to ACME's http-01 challenges
// (/.well-known/acme-challenge/…) when this source obtains certificates by ACME
// with http-01; otherwise next itself. Install it on the door's plain listener.
func (s *Source) HTTPHandler(next http.Handler) http.Handler {
	if !s.HTTPChallenges() {
		return next
	}
	return s.acme.issuer.HTTPChallengeHandler(next)
}

// Status returns the certificates this source obtained, one per name (mode
// acme; nil for other modes).
func (s *Source) Status() []CertStatus {
	if s.acme == nil {
		return nil
	}
	return s.acme.status(s.now())
}

// Close stops what the source runs: for ACME its certificate cache and its
// renewals, for files the OCSP stapler. The source must not be used after.
func (s *Source) Close() {
	if s.acme != nil {
		s.acme.close()
	}
	if s.staple != nil {
		s.staple.close()
	}
}
