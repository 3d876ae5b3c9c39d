package reverse

import (
	"crypto/tls"

	"github.com/portcullis/portcullis/internal/certs"
)

// TLSConfig selects the door's certificates (the policy's reverse.tls); see
// certs.Config.
type TLSConfig = certs.Config

// CertFiles is one PEM certificate chain and its key.
type CertFiles = certs.CertFiles

// File names of the internal CA inside the state directory.
const (
	CACertFile = certs.LocalCACertFile
	CAKeyFile  = certs.LocalCAKeyFile
)

// StateDir returns the folder of the internal CA: cfg.StateDir, else stateDir.
func StateDir(cfg *Config, stateDir string) string {
	if cfg.StateDir != "" {
		return cfg.StateDir
	}
	return stateDir
}

// NextProtos returns the ALPN protocols the door offers on TLS: h2 (unless http2
// is false) and http/1.1.
func NextProtos(cfg *Config) []string {
	if boolOr(cfg.HTTP2, true) {
		return []string{"h2", "http/1.1"}
	}
	return []string{"http/1.1"}
}

// CertOptions returns the options of the door's certificate source: the state
// directory (cfg.StateDir, else stateDir) and every route host as the default
// names.
func CertOptions(cfg *Config, stateDir string) certs.Options {
	var names []string
	for _, r := range cfg.Routes {
		names = append(names, r.Host...)
	}
	return certs.Options{Dir: StateDir(cfg, stateDir), DefaultNames: names}
}

// CACertPath returns where the internal CA's certificate is (or will be) kept;
// users add it to their trust store.
func CACertPath(cfg *Config, stateDir string) string {
	return certs.LocalCAPath(StateDir(cfg, stateDir))
}

// ServerTLSConfig returns the TLS configuration of a door with files or
// internal certificates (see certs.New), offering NextProtos(cfg).
func ServerTLSConfig(cfg *Config, stateDir string) (*tls.Config, error) {
	src, err := certs.New(cfg.TLS, CertOptions(cfg, stateDir))
	if err != nil {
		return nil, err
	}
	return src.TLSConfig(NextProtos(cfg)...), nil
}
