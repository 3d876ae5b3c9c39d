package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// serveTLS serves tc on a loopback listener: each connection completes its
// handshake and is closed.
func serveTLS(t *testing.T, tc *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.(*tls.Conn).Handshake()
				_, _ = io.Copy(io.Discard, c)
				_ = c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// served returns the leaf a client asking for sni gets from addr, verified
// against roots for name verify.
func served(t *testing.T, addr, sni, verify string, roots *x509.CertPool) (*x509.Certificate, error) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, RootCAs: roots, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer func() { _ = c.Close() }()
	leaf := c.ConnectionState().PeerCertificates[0]
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: verify, Roots: roots})
	return leaf, err
}

func TestSourceInternal(t *testing.T) {
	dir := t.TempDir()
	leaves := NewLeaves(10)
	src, err := New(Config{Mode: ModeInternal}, Options{Dir: dir, DefaultNames: []string{"b.test", "a.test", "*.wild.test", "a.test"}, Leaves: leaves})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.CACertPath() != filepath.Join(dir, LocalCACertFile) {
		t.Fatalf("CA path %s", src.CACertPath())
	}
	ca, err := LoadCA(src.CACertPath(), filepath.Join(dir, LocalCAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, LocalCAKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("CA key file: %v %v, want mode 0600", fi, err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	addr := serveTLS(t, src.TLSConfig("http/1.1"))
	for sni, want := range map[string]string{"a.test": "a.test", "B.TEST.": "b.test", "x.wild.test": "*.wild.test", "": "*.wild.test", "other.test": "*.wild.test"} {
		leaf, err := served(t, addr, sni, want, roots)
		if err != nil || leaf.Subject.CommonName != want {
			t.Errorf("SNI %q: served %v (%v), want a leaf for %s", sni, leaf.Subject.CommonName, err, want)
		}
	}
	if leaves.Len() != 3 {
		t.Errorf("leaf cache holds %d, want 3 (one per name)", leaves.Len())
	}
	// A second source over the same folder keeps the CA.
	again, err := New(Config{Mode: ModeInternal, Names: []string{"c.test"}}, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if leaf, err := served(t, serveTLS(t, again.TLSConfig()), "c.test", "c.test", roots); err != nil {
		t.Errorf("second start: %v (leaf %v)", err, leaf.Issuer)
	}
}

func TestSourceFiles(t *testing.T) {
	dir := t.TempDir()
	ca, err := CreateCA(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key"), "Test CA")
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	for _, n := range []string{"one.test", "two.test"} {
		c, err := ca.Sign(n, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cf := CertFiles{CertFile: filepath.Join(dir, n+".pem"), KeyFile: filepath.Join(dir, n+".key")}
		if err := WritePair(c, cf.CertFile, cf.KeyFile); err != nil {
			t.Fatal(err)
		}
		cfg.Certs = append(cfg.Certs, cf)
	}
	src, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, src.TLSConfig())
	for sni, want := range map[string]string{"two.test": "two.test", "one.test": "one.test", "none.test": "one.test"} {
		leaf, err := served(t, addr, sni, want, nil)
		if leaf == nil || leaf.Subject.CommonName != want {
			t.Errorf("SNI %q: served %v (%v), want %s", sni, leaf, err, want)
		}
	}
	cfg.Certs[1].KeyFile = filepath.Join(dir, "missing.key")
	if _, err := New(cfg, Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing key file: %v", err)
	}
	if _, err := New(Config{}, Options{}); err == nil {
		t.Error("files mode without certificates accepted")
	}
	if errs := (&Config{Mode: "bogus", Names: []string{"Upper.test"}, Certs: []CertFiles{{}}}).Validate(true); len(errs) != 4 {
		t.Errorf("Validate: %v, want mode, certs[0].cert_file, certs[0].key_file, names[0]", errs)
	}
}
