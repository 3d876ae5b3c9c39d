package cluster_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/cluster/redistest"
	"github.com/portcullis/portcullis/reverse"
)

// BenchmarkRateLimit is the reverse door's per-request limit check for one client,
// on this node alone and with the cluster's shared limiter behind it (leases from
// a real Redis; the rate is high enough that nothing is refused).
func BenchmarkRateLimit(b *testing.B) {
	client := netip.MustParseAddr("192.0.2.7")
	b.Run("local", func(b *testing.B) {
		rl := reverse.NewRateLimiter(0)
		b.ReportAllocs()
		for b.Loop() {
			if ok, _ := rl.Allow("route", client, 1e9, 1e9, time.Now()); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("cluster", func(b *testing.B) {
		srv := redistest.Start(b)
		c := benchNode(b, srv.Addr)
		rl := reverse.NewRateLimiter(0)
		rl.SetShared(c.Limiter())
		b.ReportAllocs()
		for b.Loop() {
			rl.Allow("route", client, 1e9, 1e9, time.Now())
		}
	})
}
