package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCreateCA(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	der, _, err := CreateCA(certPath, keyPath, "Test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil || !cert.IsCA || cert.Subject.CommonName != "Test CA" {
		t.Fatalf("cert %+v, %v", cert, err)
	}
	if st, err := os.Stat(keyPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v, %v", st.Mode(), err)
	}
	if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
		t.Fatalf("files do not load as a pair: %v", err)
	}
	if _, _, err := CreateCA(certPath, keyPath, "Again"); !errors.Is(err, ErrExists) || !errors.Is(err, os.ErrExist) {
		t.Fatalf("second CreateCA: %v, want ErrExists", err)
	}
}

func TestSerialPositiveAndDistinct(t *testing.T) {
	a, b := Serial(), Serial()
	if a.Sign() <= 0 || b.Sign() <= 0 || a.Cmp(b) == 0 {
		t.Fatalf("serials %v %v", a, b)
	}
}
