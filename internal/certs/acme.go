package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"golang.org/x/crypto/ocsp"

	"github.com/portcullis/portcullis/internal/config/field"
)

// ACME challenge types (Config.Challenges).
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// acmeTLS1 is the ALPN protocol of tls-alpn-01 (RFC 8737).
const acmeTLS1 = "acme-tls/1"

// validateACME checks the keys of mode acme.
func (c *Config) validateACME() []field.Error {
	var errs []field.Error
	if c.CA != "" {
		if u, err := url.Parse(c.CA); err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, field.Errorf("ca", "want the https URL of an ACME directory, got %q", c.CA))
		}
	}
	if c.Email != "" && !strings.Contains(c.Email, "@") {
		errs = append(errs, field.Errorf("email", "want an e-mail address, got %q", c.Email))
	}
	if len(c.Certs) > 0 {
		errs = append(errs, field.Errorf("certs", "not with mode acme (the certificates come from the ACME CA)"))
	}
	for i, ch := range c.Challenges {
		if ch != ChallengeHTTP01 && ch != ChallengeTLSALPN01 {
			errs = append(errs, field.Errorf(fmt.Sprintf("challenges[%d]", i), "want %s or %s, got %q", ChallengeHTTP01, ChallengeTLSALPN01, ch))
		}
	}
	return errs
}

// CertStatus is one name's certificate from an ACME source, for the status page
// and the metrics.
type CertStatus struct {
	// Name is the server name.
	Name string
	// Issuer is the issuing CA's common name ("" before the first certificate).
	Issuer string
	// NotAfter is when the certificate ends (zero before the first one).
	NotAfter time.Time
	// DaysLeft is the time to NotAfter in days.
	DaysLeft float64
	// OCSPStapled says an OCSP response is stapled to the certificate.
	OCSPStapled bool
	// OCSPNextUpdate is the stapled response's NextUpdate, when the
	// responder gave one (zero otherwise).
	OCSPNextUpdate time.Time
	// Error is the last failure to obtain or renew it ("" after a success).
	Error string
	// ErrorAt is when Error happened.
	ErrorAt time.Time
}

// acmeSource obtains and renews certificates with certmagic: its own Cache and
// Config (never certmagic's package defaults), file storage, on-demand issuance
// decided by the configured names.
type acmeSource struct {
	cache   *certmagic.Cache
	magic   *certmagic.Config
	issuer  *certmagic.ACMEIssuer
	names   []string // sorted: exact names and "*.domain"
	http01  bool
	tlsALPN bool
	log     *slog.Logger

	mu    sync.Mutex
	known map[string]*acmeName // names a certificate was asked for, obtained or loaded
}

// acmeName is what happened to one name's certificate.
type acmeName struct {
	err   string
	errAt time.Time
}

// newACME builds the ACME source of cfg. It loads certificates kept in storage
// for the exact names, so a restart serves them without a new order.
func newACME(cfg Config, opts Options) (*acmeSource, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &acmeSource{names: namesOf(cfg.Names, opts.DefaultNames), log: log, known: map[string]*acmeName{}}
	var roots *x509.CertPool
	if cfg.CARoot != "" {
		pem, err := os.ReadFile(cfg.CARoot)
		if err != nil {
			return nil, fmt.Errorf("acme: ca_root: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("acme: ca_root %s: no PEM certificate in it", cfg.CARoot)
		}
	}
	storage := cfg.Storage
	if storage == "" {
		if opts.Dir == "" {
			return nil, errors.New("acme: no storage folder and no state directory")
		}
		storage = filepath.Join(opts.Dir, "acme")
	}
	if err := os.MkdirAll(storage, 0o700); err != nil {
		return nil, fmt.Errorf("acme: storage: %w", err)
	}
	offer := cfg.Challenges
	if len(offer) == 0 {
		offer = []string{ChallengeHTTP01, ChallengeTLSALPN01}
	}
	httpHost, httpPort, err := challengeAddr(opts.HTTPAddr)
	if err != nil {
		return nil, err
	}
	tlsHost, tlsPort, err := challengeAddr(opts.TLSAddr)
	if err != nil {
		return nil, err
	}
	a.http01 = slices.Contains(offer, ChallengeHTTP01) && opts.HTTPAddr != ""
	a.tlsALPN = slices.Contains(offer, ChallengeTLSALPN01) && opts.TLSAddr != ""
	if !a.http01 && !a.tlsALPN {
		return nil, errors.New("acme: no challenge can be answered: http-01 needs a plain listener, tls-alpn-01 a TLS listener")
	}
	listenHost := tlsHost
	if a.http01 {
		listenHost = httpHost
	}
	ca := cfg.CA
	if ca == "" {
		ca = certmagic.LetsEncryptProductionCA
	}
	zl := zapLogger(log)
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return a.magic, nil },
		Logger:           zl,
	})
	a.magic = certmagic.New(a.cache, certmagic.Config{
		Storage:            &certmagic.FileStorage{Path: storage},
		Logger:             zl,
		KeySource:          certmagic.StandardKeyGenerator{KeyType: certmagic.P256},
		RenewalWindowRatio: certmagic.DefaultRenewalWindowRatio,
		OnDemand:           &certmagic.OnDemandConfig{DecisionFunc: a.decide},
		OnEvent:            a.event,
	})
	// The challenge listeners are the door's own: certmagic finds the address
	// taken and leaves the answers to HTTPHandler and GetCertificate.
	a.issuer = certmagic.NewACMEIssuer(a.magic, certmagic.ACMEIssuer{
		CA:                      ca,
		Email:                   cfg.Email,
		Agreed:                  true,
		Profile:                 cfg.Profile,
		TrustedRoots:            roots,
		DisableHTTPChallenge:    !a.http01,
		DisableTLSALPNChallenge: !a.tlsALPN,
		ListenHost:              listenHost,
		AltHTTPPort:             httpPort,
		AltTLSALPNPort:          tlsPort,
		Logger:                  zl,
	})
	a.magic.Issuers = []certmagic.Issuer{a.issuer}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range a.names {
		if strings.HasPrefix(n, "*.") {
			continue
		}
		if _, err := a.magic.CacheManagedCertificate(ctx, n); err == nil {
			a.note(n, nil)
		}
	}
	return a, nil
}

// challengeAddr returns the host and port of a listen address ("": none). A
// challenge needs a fixed port: the CA connects to it.
func challengeAddr(addr string) (string, int, error) {
	if addr == "" {
		return "", 0, nil
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("acme: listen address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("acme: listen address %q: ACME challenges need a fixed port", addr)
	}
	return host, port, nil
}

// decide is certmagic's on-demand decision: only the configured names (and one
// label under a "*.domain") get certificates.
func (a *acmeSource) decide(_ context.Context, name string) error {
	if m := matchName(a.names, name); m == name || (strings.HasPrefix(m, "*.") && strings.HasSuffix(name, m[1:]) && !strings.Contains(strings.TrimSuffix(name, m[1:]), ".")) {
		return nil
	}
	return fmt.Errorf("acme: %q is not one of the names the policy lists", name)
}

// event records and logs certmagic's certificate events.
func (a *acmeSource) event(_ context.Context, event string, data map[string]any) error {
	name, _ := data["identifier"].(string)
	renewal, _ := data["renewal"].(bool)
	switch event {
	case "cert_obtained":
		a.log.Info("acme: certificate obtained", "name", name, "renewal", renewal, "issuer", data["issuer"])
		a.note(name, nil)
	case "cert_failed":
		err, _ := data["error"].(error)
		if err == nil {
			err = errors.New("unknown error")
		}
		a.log.Error("acme: could not obtain a certificate", "name", name, "renewal", renewal, "error", err)
		a.note(name, err)
	case "cached_managed_cert":
		sans, _ := data["sans"].([]string)
		for _, n := range sans {
			a.note(n, nil)
		}
	}
	return nil
}

// note records that name has a certificate (err nil) or failed to get one.
func (a *acmeSource) note(name string, err error) {
	if name == "" {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.known[name]
	if n == nil {
		n = &acmeName{}
		a.known[name] = n
	}
	if err != nil {
		n.err, n.errAt = err.Error(), time.Now()
	} else {
		n.err, n.errAt = "", time.Time{}
	}
}

// getCertificate answers a handshake: a tls-alpn-01 challenge, a cached
// certificate, or one obtained now for a listed name.
func (a *acmeSource) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	c, err := a.magic.GetCertificate(hello)
	if err != nil && !slices.Contains(hello.SupportedProtos, acmeTLS1) {
		a.log.Debug("acme: no certificate for the handshake", "server_name", hello.ServerName, "error", err)
	}
	return c, err
}

// status returns the listed exact names and every name known so far with their
// newest certificate, sorted by name.
func (a *acmeSource) status(now time.Time) []CertStatus {
	a.mu.Lock()
	names := map[string]acmeName{}
	for n, st := range a.known {
		names[n] = *st
	}
	a.mu.Unlock()
	for _, n := range a.names {
		if _, ok := names[n]; !ok && !strings.HasPrefix(n, "*.") {
			names[n] = acmeName{}
		}
	}
	out := make([]CertStatus, 0, len(names))
	for n, st := range names {
		cs := CertStatus{Name: n, Error: st.err, ErrorAt: st.errAt}
		for _, c := range a.cache.AllMatchingCertificates(n) {
			if c.Leaf != nil && c.Leaf.NotAfter.After(cs.NotAfter) {
				cs.Issuer, cs.NotAfter, cs.OCSPStapled = c.Leaf.Issuer.CommonName, c.Leaf.NotAfter, len(c.OCSPStaple) > 0
				cs.OCSPNextUpdate = stapleNextUpdate(c.OCSPStaple)
			}
		}
		if !cs.NotAfter.IsZero() {
			cs.DaysLeft = cs.NotAfter.Sub(now).Hours() / 24
		}
		out = append(out, cs)
	}
	slices.SortFunc(out, func(x, y CertStatus) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// stapleNextUpdate is the NextUpdate of a stapled OCSP response (zero when
// there is no staple or it gives none). certmagic checked the response before
// stapling it; this only reads its dates.
func stapleNextUpdate(staple []byte) time.Time {
	if len(staple) == 0 {
		return time.Time{}
	}
	resp, err := ocsp.ParseResponse(staple, nil)
	if err != nil {
		return time.Time{}
	}
	return resp.NextUpdate
}

// close stops the certificate cache's maintenance.
func (a *acmeSource) close() { a.cache.Stop() }
