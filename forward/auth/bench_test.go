package auth

import (
	"net/http"
	"net/netip"
	"testing"
)

// BenchmarkCheckCached is the per-request cost for a keep-alive browser: the
// credentials were checked once with bcrypt and are found in the cache.
func BenchmarkCheckCached(b *testing.B) {
	s := testStore(&testing.T{})
	if _, ok := s.Check("alice", "wonderland"); !ok {
		b.Fatal("check failed")
	}
	h := http.Header{"Proxy-Authorization": {"Basic YWxpY2U6d29uZGVybGFuZA=="}}
	b.ReportAllocs()
	for b.Loop() {
		u, p, _ := ParseProxyAuthorization(h)
		if _, ok := s.Check(u, p); !ok {
			b.Fatal("check failed")
		}
	}
}

// BenchmarkLimiterReserve is the limiter's cost for a sign-in check.
func BenchmarkLimiterReserve(b *testing.B) {
	l := NewLimiter(LimiterConfig{}, nil)
	a := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		at, _ := l.Reserve("alice", a)
		at.Succeed()
	}
}
