package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// CA is a certificate authority Portcullis signs leaves with: the inspection CA or
// the reverse door's local CA. Build it with CreateCA, LoadCA or LoadOrCreateCA;
// it is immutable and safe for concurrent use.
type CA struct {
	cert    *x509.Certificate
	der     []byte
	key     crypto.Signer
	leafKey *ecdsa.PrivateKey // one P-256 key for every leaf of this CA: signing is then the only per-name cost
	spki    [32]byte
}

// NewCA returns the CA whose certificate is der and whose key is key.
func NewCA(der []byte, key crypto.Signer) (*CA, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, errors.New("certs: certificate is not a CA")
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, der: der, key: key, leafKey: leafKey, spki: sha256.Sum256(cert.RawSubjectPublicKeyInfo)}, nil
}

// LoadCA reads a CA certificate and its private key (PEM; PKCS#8, SEC 1 or PKCS#1).
func LoadCA(certPath, keyPath string) (*CA, error) {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("certs: loading CA: %w", err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("certs: CA key cannot sign")
	}
	return NewCA(pair.Certificate[0], signer)
}

// LoadOrCreateCA loads the CA from certPath and keyPath, or creates it there
// (and the folder, mode 0700) named commonName when certPath does not exist. Two
// processes racing both end up with the one CA written first.
func LoadOrCreateCA(certPath, keyPath, commonName string) (*CA, error) {
	if _, err := os.Stat(certPath); err == nil {
		return LoadCA(certPath, keyPath)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		return nil, err
	}
	if ca, err := CreateCA(certPath, keyPath, commonName); err == nil || !errors.Is(err, os.ErrExist) {
		return ca, err
	}
	return LoadCA(certPath, keyPath)
}

// Certificate returns the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM returns the CA certificate in PEM.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.der})
}

// SPKIHash returns the base64 SHA-256 of the CA's SubjectPublicKeyInfo, the form
// Chromium's --ignore-certificate-errors-spki-list takes.
func (ca *CA) SPKIHash() string { return base64.StdEncoding.EncodeToString(ca.spki[:]) }

// LeafValidity is how long a leaf from Sign is valid; Leaves renews it a day
// before it ends.
const LeafValidity = 7 * 24 * time.Hour

// Sign issues a leaf for name: a DNS name, a "*.domain" wildcard or an IP
// literal. The chain holds the leaf and the CA certificate.
func (ca *CA) Sign(name string, now time.Time) (*tls.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber: Serial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(LeafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		tmpl.NotAfter = ca.cert.NotAfter
	}
	if ip, err := netip.ParseAddr(name); err == nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
	} else {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, ca.leafKey.Public(), ca.key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der, ca.der}, PrivateKey: ca.leafKey, Leaf: leaf}, nil
}
