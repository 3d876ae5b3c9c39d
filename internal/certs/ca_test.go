package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestCreateCAAndLoadCA(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	ca, err := CreateCA(cert, key, InspectionCAName)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v %v", st.Mode(), err)
	}
	if _, err := CreateCA(cert, key, InspectionCAName); !errors.Is(err, ErrExists) || !errors.Is(err, os.ErrExist) {
		t.Fatalf("second CreateCA: %v", err)
	}
	loaded, err := LoadCA(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.SPKIHash() != ca.SPKIHash() || !bytes.Equal(loaded.CertPEM(), ca.CertPEM()) {
		t.Fatal("loaded CA differs")
	}
	if ca.Certificate().PublicKeyAlgorithm != x509.ECDSA || !ca.Certificate().IsCA {
		t.Fatalf("CA is %v, IsCA %v", ca.Certificate().PublicKeyAlgorithm, ca.Certificate().IsCA)
	}
	leaf, err := loaded.Sign("www.example.org", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: "www.example.org", Roots: pool}); err != nil {
		t.Fatalf("leaf does not verify against the created CA: %v", err)
	}
	ipLeaf, _ := loaded.Sign("192.0.2.7", time.Now())
	if _, err := ipLeaf.Leaf.Verify(x509.VerifyOptions{DNSName: "192.0.2.7", Roots: pool}); err != nil {
		t.Fatalf("IP leaf: %v", err)
	}
}

func TestLeavesBoundedSharedAndPerCA(t *testing.T) {
	dir := t.TempDir()
	ca1, _ := CreateCA(filepath.Join(dir, "1.pem"), filepath.Join(dir, "1.key"), InspectionCAName)
	ca2, _ := CreateCA(filepath.Join(dir, "2.pem"), filepath.Join(dir, "2.key"), InspectionCAName)
	l := NewLeaves(3)
	now := time.Now()
	var wg sync.WaitGroup
	certs := make([]*tls.Certificate, 8)
	for i := range certs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			certs[i], _ = l.Get(ca1, "a.example", now)
		}()
	}
	wg.Wait()
	for _, c := range certs {
		if c == nil || c != certs[0] {
			t.Fatal("concurrent Gets for one name signed more than once")
		}
	}
	other, _ := l.Get(ca2, "a.example", now)
	if other == certs[0] || other.Leaf.Issuer.String() != ca2.Certificate().Subject.String() {
		t.Fatal("a leaf of another CA was reused")
	}
	for _, n := range []string{"b", "c", "d", "e"} {
		_, _ = l.Get(ca1, n+".example", now)
	}
	if l.Len() != 3 {
		t.Fatalf("Len %d, want 3", l.Len())
	}
	// A leaf close to its end is renewed.
	renewed, _ := l.Get(ca1, "e.example", now.Add(LeafValidity-time.Hour))
	again, _ := l.Get(ca1, "e.example", now)
	if renewed == nil || renewed != again || !renewed.Leaf.NotAfter.After(now.Add(LeafValidity)) {
		t.Fatal("expiring leaf not renewed")
	}
}
