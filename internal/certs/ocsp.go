package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"
)

// OCSP stapling for certificates loaded from files. (ACME certificates are
// stapled by certmagic, which also replaces a managed certificate found
// revoked.) certmagic staples unmanaged certificates too, but after a Good
// answer it keeps serving that staple when a later answer says Revoked, past
// the staple's NextUpdate, and it checks only once an hour; this stapler
// follows the responder's own times instead:
//
//   - a Good answer is stapled, and asked again from half its validity
//     (ThisUpdate + (NextUpdate-ThisUpdate)/2), an hour when it has no
//     NextUpdate;
//   - a Revoked or Unknown answer is never stapled: the staple is removed at
//     once, and the answer logged;
//   - when the responder fails, it is asked again after 1 min, 2, 4… (at most
//     1 h), and a staple is removed at its NextUpdate: an expired staple is
//     never served.
//
// A certificate is stapled when its leaf names a responder (OCSPServer) and
// the file's chain holds its issuer (the second certificate): the answer is
// checked against it.

// Stapling bounds.
const (
	ocspTimeout      = 10 * time.Second
	ocspRetryMin     = time.Minute
	ocspRetryMax     = time.Hour
	ocspNoNextUpdate = time.Hour
	ocspMaxResponse  = 1 << 20
)

// stapled is one certificate of a files source with its current staple.
type stapled struct {
	base   tls.Certificate // without a staple
	leaf   *x509.Certificate
	issuer *x509.Certificate // nil: not stapled
	cur    atomic.Pointer[tls.Certificate]

	// Owned by the stapler's goroutine.
	next    time.Time // when to ask the responder
	expires time.Time // the staple's NextUpdate (zero: none, or no staple)
	retry   time.Duration
}

// certificate returns the certificate to serve, stapled or not.
func (c *stapled) certificate() *tls.Certificate { return c.cur.Load() }

// newStapled prepares c for stapling when its leaf names a responder and its
// chain holds the issuer.
func newStapled(c tls.Certificate) (*stapled, error) {
	s := &stapled{base: c}
	s.base.OCSPStaple = nil
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return nil, err
	}
	s.leaf = leaf
	if len(leaf.OCSPServer) > 0 && len(c.Certificate) > 1 {
		if s.issuer, err = x509.ParseCertificate(c.Certificate[1]); err != nil {
			return nil, err
		}
	}
	s.cur.Store(&s.base)
	return s, nil
}

// stapler keeps the staples of a files source's certificates fresh, in one
// goroutine that Close stops.
type stapler struct {
	certs  []*stapled // those with a responder and an issuer
	client *http.Client
	log    *slog.Logger
	now    func() time.Time
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// startStapler starts stapling the certificates of list that can be stapled;
// nil when none can.
func startStapler(list []*stapled, log *slog.Logger, now func() time.Time) *stapler {
	var todo []*stapled
	for _, c := range list {
		if c.issuer != nil {
			todo = append(todo, c)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	tr := http.DefaultTransport.(*http.Transport).Clone()
	s := &stapler{certs: todo, client: &http.Client{Transport: tr, Timeout: ocspTimeout}, log: log, now: now, cancel: cancel, done: make(chan struct{})}
	go s.run(ctx)
	return s
}

// run asks each certificate's responder when it is due, until ctx ends.
func (s *stapler) run(ctx context.Context) {
	defer close(s.done)
	defer s.client.CloseIdleConnections()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		now := s.now()
		wake := now.Add(ocspRetryMax)
		for _, c := range s.certs {
			if !c.expires.IsZero() && !now.Before(c.expires) {
				c.cur.Store(&c.base)
				c.expires = time.Time{}
				s.log.Warn("ocsp: the staple expired before the responder answered again; serving the certificate without one", "names", c.leaf.DNSNames, "responder", c.leaf.OCSPServer[0])
			}
			if !now.Before(c.next) {
				s.refresh(ctx, c, now)
			}
			for _, t := range []time.Time{c.next, c.expires} {
				if !t.IsZero() && t.Before(wake) {
					wake = t
				}
			}
		}
		timer.Reset(max(wake.Sub(s.now()), 10*time.Millisecond))
	}
}

// refresh asks c's responder and staples, removes or keeps the staple.
func (s *stapler) refresh(ctx context.Context, c *stapled, now time.Time) {
	resp, raw, err := s.fetch(ctx, c)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		c.retry = min(max(2*c.retry, ocspRetryMin), ocspRetryMax)
		c.next = now.Add(c.retry)
		s.log.Warn("ocsp: no usable answer from the responder; the staple (if any) is kept until its NextUpdate", "names", c.leaf.DNSNames, "responder", c.leaf.OCSPServer[0], "retry_in", c.retry, "error", err)
		return
	}
	c.retry = 0
	c.next = now.Add(ocspNoNextUpdate)
	if !resp.NextUpdate.IsZero() {
		// Halfway through the answer's validity; an answer already past it
		// (a responder or CDN serving a cached one) is asked for again in a
		// minute at the most, never at once: the same cached answer would
		// come back and the loop would ask again and again.
		c.next = resp.ThisUpdate.Add(resp.NextUpdate.Sub(resp.ThisUpdate) / 2)
		if floor := now.Add(min(ocspRetryMin, resp.NextUpdate.Sub(now)/2)); c.next.Before(floor) {
			c.next = floor
		}
	}
	switch resp.Status {
	case ocsp.Good:
		staple := c.base
		staple.OCSPStaple = raw
		c.cur.Store(&staple)
		c.expires = resp.NextUpdate
	case ocsp.Revoked:
		c.cur.Store(&c.base)
		c.expires = time.Time{}
		s.log.Error("ocsp: the responder says the certificate is REVOKED: serving it without a staple; replace it", "names", c.leaf.DNSNames, "revoked_at", resp.RevokedAt, "reason", resp.RevocationReason)
	default:
		c.cur.Store(&c.base)
		c.expires = time.Time{}
		s.log.Warn("ocsp: the responder does not know the certificate: serving it without a staple", "names", c.leaf.DNSNames, "responder", c.leaf.OCSPServer[0])
	}
}

// fetch asks c's responder (POST, RFC 6960 A.1) and checks the answer: signed
// for c's issuer, about c, current.
func (s *stapler) fetch(ctx context.Context, c *stapled) (*ocsp.Response, []byte, error) {
	req, err := ocsp.CreateRequest(c.leaf, c.issuer, &ocsp.RequestOptions{Hash: 0})
	if err != nil {
		return nil, nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.leaf.OCSPServer[0], bytes.NewReader(req))
	if err != nil {
		return nil, nil, err
	}
	hr.Header.Set("Content-Type", "application/ocsp-request")
	hr.Header.Set("Accept", "application/ocsp-response")
	res, err := s.client.Do(hr)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("responder answered %s", res.Status)
	}
	raw, err := io.ReadAll(io.LimitReader(res.Body, ocspMaxResponse+1))
	if err != nil {
		return nil, nil, err
	}
	if len(raw) > ocspMaxResponse {
		return nil, nil, errors.New("response larger than 1 MiB")
	}
	resp, err := ocsp.ParseResponseForCert(raw, c.leaf, c.issuer)
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	if resp.ThisUpdate.After(now.Add(5 * time.Minute)) {
		return nil, nil, fmt.Errorf("response from the future (this update %v)", resp.ThisUpdate)
	}
	if !resp.NextUpdate.IsZero() && !resp.NextUpdate.After(now) {
		return nil, nil, fmt.Errorf("stale response (next update %v)", resp.NextUpdate)
	}
	return resp, raw, nil
}

// close stops the stapler and waits for its goroutine.
func (s *stapler) close() {
	s.once.Do(func() {
		s.cancel()
		<-s.done
	})
}
