package forward

import (
	"container/list"
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
	"sync"
	"time"

	"github.com/portcullis/portcullis/internal/certs"
)

// CA is the inspection certificate authority: it signs the leaf certificates the
// door presents to clients when it inspects HTTPS. Build it with CreateCA or
// LoadCA; it is immutable and safe for concurrent use.
type CA struct {
	cert    *x509.Certificate
	certDER []byte
	key     crypto.Signer
	leafKey *ecdsa.PrivateKey // one P-256 key for every leaf of this CA: signing is then the only per-host cost
	spki    [32]byte
}

// ErrCAExists is returned by CreateCA when a file it would write already exists.
var ErrCAExists = certs.ErrExists

// CreateCA generates an ECDSA P-256 CA valid for ten years and writes its
// certificate (PEM, mode 0644) to certPath and its key (PKCS#8 PEM, mode 0600) to
// keyPath. It never overwrites a file (ErrCAExists).
func CreateCA(certPath, keyPath string) (*CA, error) {
	der, key, err := certs.CreateCA(certPath, keyPath, "Portcullis inspection CA")
	if err != nil {
		return nil, err
	}
	return newCA(der, key)
}

// LoadCA reads a CA certificate and its private key (PEM; PKCS#8, SEC 1 or PKCS#1).
func LoadCA(certPath, keyPath string) (*CA, error) {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("forward: loading CA: %w", err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("forward: CA key cannot sign")
	}
	return newCA(pair.Certificate[0], signer)
}

func newCA(der []byte, key crypto.Signer) (*CA, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, errors.New("forward: certificate is not a CA")
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, certDER: der, key: key, leafKey: leafKey, spki: sha256.Sum256(cert.RawSubjectPublicKeyInfo)}, nil
}

// Certificate returns the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM returns the CA certificate in PEM, for the admin listener's download.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.certDER})
}

// SPKIHash returns the base64 SHA-256 of the CA's SubjectPublicKeyInfo, the form
// Chromium's --ignore-certificate-errors-spki-list takes.
func (ca *CA) SPKIHash() string { return base64.StdEncoding.EncodeToString(ca.spki[:]) }

// leafValidity is how long a generated leaf is valid; the cache renews it a day
// before it ends.
const leafValidity = 7 * 24 * time.Hour

// sign issues a leaf for name (a DNS name or an IP literal).
func (ca *CA) sign(name string, now time.Time) (*tls.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber: certs.Serial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafValidity),
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
	return &tls.Certificate{Certificate: [][]byte{der, ca.certDER}, PrivateKey: ca.leafKey, Leaf: leaf}, nil
}

// DefaultLeafCacheSize is the number of leaves NewLeaves(0) keeps.
const DefaultLeafCacheSize = 10000

// Leaves is a bounded LRU cache of leaf certificates with one signing in flight
// per name. Share one across reloads (it is keyed by CA, so a new CA never gets an
// old leaf). Safe for concurrent use.
type Leaves struct {
	mu       sync.Mutex
	max      int
	lru      *list.List // of *leafEntry, most recent first
	byKey    map[leafKey]*list.Element
	inflight map[leafKey]*leafCall
}

type leafKey struct {
	ca   [32]byte
	name string
}

type leafEntry struct {
	key  leafKey
	cert *tls.Certificate
}

type leafCall struct {
	done chan struct{}
	cert *tls.Certificate
	err  error
}

// NewLeaves returns a cache holding up to max leaves (0: DefaultLeafCacheSize).
func NewLeaves(max int) *Leaves {
	if max <= 0 {
		max = DefaultLeafCacheSize
	}
	return &Leaves{max: max, lru: list.New(), byKey: make(map[leafKey]*list.Element), inflight: make(map[leafKey]*leafCall)}
}

// Len returns the number of cached leaves.
func (l *Leaves) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// Get returns a leaf for name signed by ca, from the cache when it is valid for at
// least another day.
func (l *Leaves) Get(ca *CA, name string, now time.Time) (*tls.Certificate, error) {
	k := leafKey{ca: ca.spki, name: name}
	l.mu.Lock()
	if el, ok := l.byKey[k]; ok {
		e := el.Value.(*leafEntry)
		if now.Add(24 * time.Hour).Before(e.cert.Leaf.NotAfter) {
			l.lru.MoveToFront(el)
			l.mu.Unlock()
			return e.cert, nil
		}
	}
	if c, ok := l.inflight[k]; ok {
		l.mu.Unlock()
		<-c.done
		return c.cert, c.err
	}
	c := &leafCall{done: make(chan struct{})}
	l.inflight[k] = c
	l.mu.Unlock()

	c.cert, c.err = ca.sign(name, now)

	l.mu.Lock()
	delete(l.inflight, k)
	if c.err == nil {
		if el, ok := l.byKey[k]; ok {
			el.Value.(*leafEntry).cert = c.cert
			l.lru.MoveToFront(el)
		} else {
			l.byKey[k] = l.lru.PushFront(&leafEntry{key: k, cert: c.cert})
			for l.lru.Len() > l.max {
				old := l.lru.Remove(l.lru.Back()).(*leafEntry)
				delete(l.byKey, old.key)
			}
		}
	}
	l.mu.Unlock()
	close(c.done)
	return c.cert, c.err
}
