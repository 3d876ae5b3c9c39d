package reverse

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/portcullis/portcullis/internal/certs"
)

// File names of the internal CA inside the state directory.
const (
	CACertFile = "reverse-ca.crt"
	CAKeyFile  = "reverse-ca.key"
)

// CACertPath returns where the internal CA's certificate is (or will be) kept;
// users add it to their trust store.
func CACertPath(cfg *Config, stateDir string) string {
	return filepath.Join(stateDirOf(cfg, stateDir), CACertFile)
}

func stateDirOf(cfg *Config, stateDir string) string {
	if cfg.StateDir != "" {
		return cfg.StateDir
	}
	return stateDir
}

// ServerTLSConfig returns the TLS configuration for the HTTPS listeners: TLS
// 1.2 and 1.3, HTTP/2 offered unless http2 is false, and certificates chosen
// by SNI — loaded from tls.certs, or with tls.mode internal issued by a local
// ECDSA CA created once in the state directory (cfg.StateDir, else stateDir)
// for tls.names (default: every route host). The CA's certificate is at
// CACertPath. A client naming no configured host gets the first certificate.
func ServerTLSConfig(cfg *Config, stateDir string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if boolOr(cfg.HTTP2, true) {
		tc.NextProtos = []string{"h2", "http/1.1"}
	} else {
		tc.NextProtos = []string{"http/1.1"}
	}
	if cfg.TLS.Mode != "internal" {
		if len(cfg.TLS.Certs) == 0 {
			return nil, errors.New("reverse tls: no certificates configured")
		}
		for _, cf := range cfg.TLS.Certs {
			c, err := tls.LoadX509KeyPair(cf.CertFile, cf.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("reverse tls: %w", err)
			}
			tc.Certificates = append(tc.Certificates, c)
		}
		return tc, nil // crypto/tls picks the certificate matching SNI
	}
	dir := stateDirOf(cfg, stateDir)
	if dir == "" {
		return nil, errors.New("reverse tls internal: no state directory")
	}
	ca, err := loadOrCreateCA(dir)
	if err != nil {
		return nil, err
	}
	names := cfg.TLS.Names
	if len(names) == 0 {
		for _, r := range cfg.Routes {
			names = append(names, r.Host...)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) == 0 {
		names = []string{"localhost"}
	}
	for _, n := range names {
		leaf, err := ca.issue(n)
		if err != nil {
			return nil, err
		}
		tc.Certificates = append(tc.Certificates, leaf)
	}
	return tc, nil
}

// localCA is the internal CA.
type localCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

// loadOrCreateCA loads the CA from dir or creates it there. Files are created
// with O_EXCL so that two processes racing do not overwrite each other's CA.
func loadOrCreateCA(dir string) (*localCA, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	if ca, err := loadCA(certPath, keyPath); err == nil {
		return ca, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("reverse tls internal: %w", err)
	}
	if _, _, err := certs.CreateCA(certPath, keyPath, "Portcullis local CA"); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("reverse tls internal: %w", err)
	}
	return loadCA(certPath, keyPath)
}

func loadCA(certPath, keyPath string) (*localCA, error) {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		if _, statErr := os.Stat(certPath); errors.Is(statErr, os.ErrNotExist) {
			return nil, os.ErrNotExist
		}
		return nil, fmt.Errorf("reverse tls internal: CA in %s: %w", filepath.Dir(certPath), err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("reverse tls internal: CA key in %s is not ECDSA", keyPath)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	return &localCA{cert: cert, key: key, der: pair.Certificate[0]}, nil
}

// issue makes a leaf for name (a "*.domain" name gives a wildcard leaf), valid
// for 90 days; leaves are reissued at every start.
func (ca *localCA) issue(name string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: certs.Serial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(0, 0, 90),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{name},
	}
	if ip := parseIP(name); ip != nil {
		tmpl.DNSNames, tmpl.IPAddresses = nil, ip
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.der}, PrivateKey: key, Leaf: leaf}, nil
}

// parseIP returns name as an IP address list when it is an IP literal.
func parseIP(name string) []net.IP {
	if ip := net.ParseIP(name); ip != nil {
		return []net.IP{ip}
	}
	return nil
}
