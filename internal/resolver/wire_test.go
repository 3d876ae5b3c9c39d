package resolver

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestAppendCached(t *testing.T) {
	up := testZone(t).Start(t)
	now := time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r := newTestResolver(t, Config{Upstreams: []string{up.Addr}}, WithClock(clock))

	if _, _, ok := r.AppendCached(nil, 7, "a.test.", dns.TypeA, false, false); ok {
		t.Fatal("hit before any lookup")
	}
	if _, err := r.Exchange(t.Context(), query("a.test", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Exchange(t.Context(), query("cname.test", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(100 * time.Second)
	mu.Unlock()

	prefix := []byte{0xde, 0xad}
	b, cnames, ok := r.AppendCached(prefix, 4242, "A.Test.", dns.TypeA, false, false)
	if !ok || cnames != nil || string(b[:2]) != "\xde\xad" {
		t.Fatalf("ok=%v cnames=%v", ok, cnames)
	}
	m := new(dns.Msg)
	if err := m.Unpack(b[2:]); err != nil {
		t.Fatal(err)
	}
	if m.Id != 4242 || m.Question[0].Name != "A.Test." || len(m.Answer) != 1 || m.IsEdns0() != nil {
		t.Fatalf("reply %v", m)
	}
	if a := m.Answer[0].(*dns.A); a.A.String() != "192.0.2.1" || a.Hdr.Ttl != 200 {
		t.Fatalf("answer %v, want 192.0.2.1 with TTL 300-100", a)
	}
	// The cached bytes themselves were not changed.
	b2, _, _ := r.AppendCached(nil, 1, "a.test.", dns.TypeA, false, false)
	m2 := new(dns.Msg)
	if err := m2.Unpack(b2); err != nil || m2.Answer[0].Header().Ttl != 200 || m2.Question[0].Name != "a.test." {
		t.Fatalf("second copy %v %v", m2, err)
	}
	_, cnames, ok = r.AppendCached(nil, 1, "cname.test.", dns.TypeA, false, false)
	if !ok || !slices.Equal(cnames, []string{"mid.test", "tracker.bad.test"}) {
		t.Fatalf("cnames %v ok %v", cnames, ok)
	}
	for _, name := range []string{"a.test", "a\\.test.", "b.test."} {
		if _, _, ok := r.AppendCached(nil, 1, name, dns.TypeA, false, false); ok {
			t.Errorf("%q: hit", name)
		}
	}
	if _, _, ok := r.AppendCached(nil, 1, "a.test.", dns.TypeA, true, false); ok {
		t.Error("DO query hit the non-DO entry")
	}
}

func TestTTLOffsetsRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, make([]byte, 11), {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, 'a'}, {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0x80}} {
		if _, ok := ttlOffsets(b); ok {
			t.Errorf("%v accepted", b)
		}
	}
}

func BenchmarkAppendCached(b *testing.B) {
	up := testZone(b).Start(b)
	r := newTestResolver(b, Config{Upstreams: []string{up.Addr}})
	if _, err := r.Exchange(b.Context(), query("a.test", dns.TypeA)); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := r.AppendCached(buf[:0], 1, "a.test.", dns.TypeA, false, false); !ok {
			b.Fatal("miss")
		}
	}
}

func BenchmarkExchangeCached(b *testing.B) {
	up := testZone(b).Start(b)
	r := newTestResolver(b, Config{Upstreams: []string{up.Addr}})
	q := query("a.test", dns.TypeA)
	if _, err := r.Exchange(b.Context(), q); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Exchange(b.Context(), q); err != nil {
			b.Fatal(err)
		}
	}
}
