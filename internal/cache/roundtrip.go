package cache

import "net/http"

// transport is the RoundTripper returned by Cache.Wrap.
type transport struct {
	c    *Cache
	next http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	cp := t.c.policy(req.Context())
	if cp == nil {
		return t.next.RoundTrip(req)
	}
	return t.next.RoundTrip(req)
}
