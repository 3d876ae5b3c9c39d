package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// TestStaplerRefusesForeignAnswers: an OCSP answer that is not the issuer's
// (signed by another key), or is about another certificate, is never
// stapled; the responder is asked again later. A leaf without a responder, or
// a chain without its issuer, starts no stapler.
func TestStaplerRefusesForeignAnswers(t *testing.T) {
	ca, caDER, caKey := testIssuer()
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	var mode atomic.Int32 // 0: signed by another key, 1: about another serial
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		asked.Add(1)
		tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber, ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}
		key := caKey
		if mode.Load() == 0 {
			key = otherKey
		} else {
			tmpl.SerialNumber = big.NewInt(99)
		}
		der, err := ocsp.CreateResponse(ca, ca, tmpl, key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(der)
	}))
	defer srv.Close()

	leafDER, leafKey := testLeaf(ca, caKey, srv.URL)

	// Nothing to staple: no issuer in the chain, or no responder.
	alone, err := newStapled(tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey})
	if err != nil {
		t.Fatal(err)
	}
	if s := startStapler([]*stapled{alone}, slog.New(slog.DiscardHandler), time.Now); s != nil {
		s.close()
		t.Fatal("a chain without its issuer started a stapler")
	}

	c, err := newStapled(tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: leafKey})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []int32{0, 1} {
		mode.Store(m)
		logged := make(chan string, 10)
		s := startStapler([]*stapled{c}, slog.New(chanHandler(logged)), time.Now)
		select {
		case msg := <-logged:
			if !strings.Contains(msg, "no usable answer from the responder") {
				t.Fatalf("mode %d: logged %q", m, msg)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("mode %d: the refresh did not end in 30 s (responder asked %d times)", m, asked.Load())
		}
		s.close()
		if got := c.certificate().OCSPStaple; len(got) != 0 {
			t.Fatalf("mode %d: a foreign answer was stapled", m)
		}
		if c.retry != ocspRetryMin || c.next.IsZero() {
			t.Fatalf("mode %d: retry %v next %v, want a retry in a minute", m, c.retry, c.next)
		}
		c.retry, c.next = 0, time.Time{}
	}
}

// TestStaplerCachedAnswer: an answer already past the middle of its validity
// (a responder or CDN serving a cached one) is stapled, and the responder is
// asked again within a minute, not at once (which, answered the same, made
// the loop ask again and again).
func TestStaplerCachedAnswer(t *testing.T) {
	ca, caDER, caKey := testIssuer()
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		asked.Add(1)
		tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber, ThisUpdate: time.Now().Add(-50 * time.Minute), NextUpdate: time.Now().Add(10 * time.Minute)}
		der, err := ocsp.CreateResponse(ca, ca, tmpl, caKey)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(der)
	}))
	defer srv.Close()
	leafDER, leafKey := testLeaf(ca, caKey, srv.URL)
	c, err := newStapled(tls.Certificate{Certificate: [][]byte{leafDER, caDER}, PrivateKey: leafKey})
	if err != nil {
		t.Fatal(err)
	}
	s := startStapler([]*stapled{c}, slog.New(slog.DiscardHandler), time.Now)
	deadline := time.Now().Add(30 * time.Second)
	for len(c.certificate().OCSPStaple) == 0 {
		if time.Now().After(deadline) {
			s.close()
			t.Fatal("the cached answer was not stapled in 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.close()
	if wait := time.Until(c.next); wait < 30*time.Second || wait > time.Minute {
		t.Fatalf("next check in %v (responder asked %d times), want within a minute and not at once", wait, asked.Load())
	}
}

// testIssuer returns a CA certificate, its DER and its key.
func testIssuer() (*x509.Certificate, []byte, *ecdsa.PrivateKey) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	ca, _ := x509.ParseCertificate(der)
	return ca, der, key
}

// testLeaf returns a leaf for a.test issued by ca whose OCSP responder is
// responder, and its key.
func testLeaf(ca *x509.Certificate, caKey *ecdsa.PrivateKey, responder string) ([]byte, *ecdsa.PrivateKey) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), DNSNames: []string{"a.test"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), OCSPServer: []string{responder}}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	return der, key
}

// chanHandler is a slog.Handler sending each record's message to ch.
type chanHandler chan<- string

func (h chanHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h chanHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h <- r.Message:
	default:
	}
	return nil
}
func (h chanHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h chanHandler) WithGroup(string) slog.Handler      { return h }
