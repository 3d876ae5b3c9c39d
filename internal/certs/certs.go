// Package certs owns every certificate Portcullis serves or signs: the
// HTTPS-inspection CA (`portcullis ca create`) and its leaves, the reverse door's
// local CA (`tls: internal`) and its leaves, certificates loaded from files, and
// certificates obtained by ACME. One way to make an ECDSA CA, one way to write its
// files (exclusively, the key with mode 0600), one leaf signer (CA.Sign), one
// bounded leaf cache (Leaves), one serial-number source; Source gives a TLS door
// its certificates from a Config.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"
)

// ErrExists is returned by CreateCA when a file it would write already exists; it
// wraps os.ErrExist.
var ErrExists = fmt.Errorf("certs: CA file already exists: %w", os.ErrExist)

// Serial returns a random positive 127-bit certificate serial number.
func Serial() *big.Int {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	b[0] &= 0x7f
	return new(big.Int).SetBytes(b)
}

// Names of the CAs Portcullis creates.
const (
	InspectionCAName = "Portcullis inspection CA"
	LocalCAName      = "Portcullis local CA"
)

// CreateCA generates an ECDSA P-256 CA named commonName, valid for ten years, and
// writes its certificate (PEM, mode 0644) to certPath and its key (PKCS#8 PEM, mode
// 0600) to keyPath. Files are created exclusively: it never overwrites one
// (ErrExists), so two processes racing cannot replace each other's CA.
func CreateCA(certPath, keyPath, commonName string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          Serial(),
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"Portcullis"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := writeNew(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	if err := writeNew(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		_ = os.Remove(keyPath)
		return nil, err
	}
	return NewCA(der, key)
}

// WritePair writes c's chain (PEM, mode 0644) to certPath and its key (PKCS#8
// PEM, mode 0600) to keyPath, replacing what is there.
func WritePair(c *tls.Certificate, certPath, keyPath string) error {
	var chain []byte
	for _, der := range c.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certPath, chain, 0o644)
}

// writeNew creates path exclusively with mode perm and writes b.
func writeNew(path string, b []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExists, path)
		}
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
