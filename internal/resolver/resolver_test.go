package resolver

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/portcullis/portcullis/internal/resolver/resolvertest"
)

func testZone(t testing.TB) *resolvertest.Upstream {
	t.Helper()
	return resolvertest.New(3600, 60).Add(t,
		"a.test. 300 IN A 192.0.2.1",
		"a.test. 300 IN AAAA 2001:db8::1",
		"short.test. 1 IN A 192.0.2.2",
		"long.test. 86400 IN A 192.0.2.3",
		"cname.test. 300 IN CNAME mid.test.",
		"mid.test. 300 IN CNAME tracker.bad.test.",
		"tracker.bad.test. 300 IN A 192.0.2.9",
		"partial.test. 300 IN CNAME elsewhere.other.",
		"rebind.test. 300 IN A 127.0.0.1",
		"private.test. 300 IN A 10.0.0.1",
		"metadata.test. 300 IN A 169.254.169.254",
		"mixed.test. 300 IN A 10.0.0.1",
		"mixed.test. 300 IN A 127.0.0.1",
		"big.test. 300 IN A 192.0.2.10",
		"big.test. 300 IN A 192.0.2.11",
	).NXDomain("nx.test", true).NXDomain("nosoa.test", false).Truncate("big.test")
}

func newTestResolver(t testing.TB, cfg Config, opts ...Option) *Resolver {
	t.Helper()
	r, err := New(cfg, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	return m
}

func TestExchangeCachesPositiveAnswers(t *testing.T) {
	up := testZone(t).Start(t)
	r := newTestResolver(t, Config{Upstreams: []string{"udp://" + up.Addr}})
	ctx := t.Context()
	for i := range 3 {
		q := query("A.test", dns.TypeA)
		q.Id = uint16(100 + i)
		m, err := r.Exchange(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if m.Id != q.Id || m.Question[0].Name != "A.test." || len(m.Answer) != 1 {
			t.Fatalf("reply %d: %v", i, m)
		}
		if a := m.Answer[0].(*dns.A).A.String(); a != "192.0.2.1" {
			t.Fatalf("answer %s", a)
		}
		m.Answer[0].Header().Ttl = 1 // a caller's change must not reach the cache
	}
	if n := up.Count("a.test", dns.TypeA, ""); n != 1 {
		t.Fatalf("upstream saw %d queries, want 1", n)
	}
	m, _ := r.Exchange(ctx, query("a.test", dns.TypeA))
	if ttl := m.Answer[0].Header().Ttl; ttl < 299 {
		t.Fatalf("cached TTL %d: a caller modified the cache", ttl)
	}
	hits, misses, entries := r.CacheStats()
	if hits != 3 || misses != 1 || entries != 1 {
		t.Fatalf("stats hits=%d misses=%d entries=%d", hits, misses, entries)
	}
}

func TestTTLFloorCeilingAndAging(t *testing.T) {
	up := testZone(t).Start(t)
	now := time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	r := newTestResolver(t, Config{
		Upstreams: []string{up.Addr},
		Cache:     CacheConfig{MinTTL: 60 * time.Second, MaxTTL: 600 * time.Second},
	}, WithClock(clock))
	ctx := t.Context()

	m, _ := r.Exchange(ctx, query("short.test", dns.TypeA))
	if ttl := m.Answer[0].Header().Ttl; ttl != 60 {
		t.Fatalf("short TTL = %d, want the 60 s floor", ttl)
	}
	m, _ = r.Exchange(ctx, query("long.test", dns.TypeA))
	if ttl := m.Answer[0].Header().Ttl; ttl != 600 {
		t.Fatalf("long TTL = %d, want the 600 s ceiling", ttl)
	}
	advance(45 * time.Second)
	m, _ = r.Exchange(ctx, query("short.test", dns.TypeA))
	if ttl := m.Answer[0].Header().Ttl; ttl != 15 {
		t.Fatalf("aged TTL = %d, want 15", ttl)
	}
	if n := up.Count("short.test", dns.TypeA, ""); n != 1 {
		t.Fatalf("upstream saw %d, want 1 (cached under the floor)", n)
	}
	advance(16 * time.Second)
	r.Exchange(ctx, query("short.test", dns.TypeA))
	if n := up.Count("short.test", dns.TypeA, ""); n != 2 {
		t.Fatalf("upstream saw %d after expiry, want 2", n)
	}
}

func TestNegativeCaching(t *testing.T) {
	up := testZone(t).Start(t)
	now := time.Date(2026, 11, 26, 4, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	r := newTestResolver(t, Config{Upstreams: []string{up.Addr}}, WithClock(clock))
	ctx := t.Context()
	for range 3 {
		m, err := r.Exchange(ctx, query("nx.test", dns.TypeA))
		if err != nil || m.Rcode != dns.RcodeNameError {
			t.Fatalf("nx: %v %v", m, err)
		}
		// RFC 2308: min(SOA TTL 3600, MINIMUM 60)
		if ttl := m.Ns[0].Header().Ttl; ttl != 60 {
			t.Fatalf("negative TTL %d, want 60", ttl)
		}
		// NODATA: a.test exists but has no MX.
		m, err = r.Exchange(ctx, query("a.test", dns.TypeMX))
		if err != nil || m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 {
			t.Fatalf("nodata: %v %v", m, err)
		}
		// Without an SOA a negative answer is not cached (RFC 2308 §5).
		r.Exchange(ctx, query("nosoa.test", dns.TypeA))
	}
	if n := up.Count("nx.test", dns.TypeA, ""); n != 1 {
		t.Fatalf("nxdomain asked %d times, want 1", n)
	}
	if n := up.Count("a.test", dns.TypeMX, ""); n != 1 {
		t.Fatalf("nodata asked %d times, want 1", n)
	}
	if n := up.Count("nosoa.test", dns.TypeA, ""); n != 3 {
		t.Fatalf("nxdomain without SOA asked %d times, want 3", n)
	}
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	r.Exchange(ctx, query("nx.test", dns.TypeA))
	if n := up.Count("nx.test", dns.TypeA, ""); n != 2 {
		t.Fatalf("nxdomain asked %d times after expiry, want 2", n)
	}
	if _, err := r.LookupNetIP(ctx, "nx.test"); !isNotFound(err) {
		t.Fatalf("LookupNetIP(nx) err = %v, want not found", err)
	}
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

func TestTruncationFallsBackToTCP(t *testing.T) {
	up := testZone(t).Start(t)
	r := newTestResolver(t, Config{Upstreams: []string{"udp://" + up.Addr}})
	addrs, err := r.LookupNetIP(t.Context(), "big.test")
	if err != nil || len(addrs) != 2 {
		t.Fatalf("addrs %v err %v", addrs, err)
	}
	if u, c := up.Count("big.test", dns.TypeA, "udp"), up.Count("big.test", dns.TypeA, "tcp"); u != 1 || c != 1 {
		t.Fatalf("udp=%d tcp=%d, want 1 and 1", u, c)
	}
}

func TestFailover(t *testing.T) {
	bad := resolvertest.New(60, 60).ServFail("a.test").Start(t)
	good := testZone(t).Start(t)
	// A UDP port nobody listens on answers "connection refused" at once on loopback.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	r := newTestResolver(t, Config{Upstreams: []string{"udp://" + dead, "udp://" + bad.Addr, "tcp://" + good.Addr}, Cache: CacheConfig{MaxEntries: -1}})
	for range 2 {
		m, err := r.Exchange(t.Context(), query("a.test", dns.TypeA))
		if err != nil || len(m.Answer) != 1 {
			t.Fatalf("reply %v err %v", m, err)
		}
	}
	if n := bad.Count("a.test", dns.TypeA, ""); n != 1 {
		t.Fatalf("failing upstream asked %d times, want 1 (then moved last)", n)
	}
	if n := good.Count("a.test", dns.TypeA, "tcp"); n != 2 {
		t.Fatalf("good upstream asked %d times over tcp, want 2", n)
	}
	// When every upstream fails the error says so.
	r2 := newTestResolver(t, Config{Upstreams: []string{"udp://" + dead}, Timeout: time.Second})
	if _, err := r2.Exchange(t.Context(), query("a.test", dns.TypeA)); !errors.Is(err, ErrUpstreams) {
		t.Fatalf("err = %v, want ErrUpstreams", err)
	}
	// SERVFAIL everywhere is returned as the reply.
	r3 := newTestResolver(t, Config{Upstreams: []string{bad.Addr}})
	if m, err := r3.Exchange(t.Context(), query("a.test", dns.TypeA)); err != nil || m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("servfail: %v %v", m, err)
	}
}

func TestDNSOverTLS(t *testing.T) {
	up := testZone(t)
	ca := up.StartTLS(t)
	r := newTestResolver(t, Config{Upstreams: []string{"tls://" + up.TLSAddr}, TLSCAFile: ca, Cache: CacheConfig{MaxEntries: -1}})
	for range 3 {
		addrs, err := r.LookupNetIP(t.Context(), "a.test")
		if err != nil || len(addrs) != 2 {
			t.Fatalf("addrs %v err %v", addrs, err)
		}
	}
	if n := up.Count("a.test", dns.TypeA, "tls"); n != 3 {
		t.Fatalf("DoT upstream saw %d A queries, want 3", n)
	}
	// Verifying a name the certificate carries, on an IP.
	_, port, _ := net.SplitHostPort(up.TLSAddr)
	r2 := newTestResolver(t, Config{Upstreams: []string{"tls://127.0.0.1:" + port + "#dot.test"}, TLSCAFile: ca})
	if _, err := r2.LookupNetIP(t.Context(), "a.test"); err != nil {
		t.Fatal(err)
	}
	// Without the CA the handshake fails.
	r3 := newTestResolver(t, Config{Upstreams: []string{"tls://" + up.TLSAddr}, Timeout: time.Second})
	if _, err := r3.Exchange(t.Context(), query("a.test", dns.TypeA)); !errors.Is(err, ErrUpstreams) {
		t.Fatalf("untrusted DoT: err = %v", err)
	}
}

func TestInFlightDeduplication(t *testing.T) {
	up := testZone(t)
	up.Add(t, "slow.test. 300 IN A 192.0.2.5")
	release := up.Gate("slow.test")
	up.Start(t)
	r := newTestResolver(t, Config{Upstreams: []string{up.Addr}})
	joined := make(chan struct{}, 16)
	r.flights.joined = joined

	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			m, err := r.Exchange(t.Context(), query("slow.test", dns.TypeA))
			if err == nil && len(m.Answer) != 1 {
				err = errors.New("no answer")
			}
			errs <- err
		})
	}
	<-up.Arrived()
	for range n - 1 {
		<-joined
	}
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if c := up.Count("slow.test", dns.TypeA, ""); c != 1 {
		t.Fatalf("upstream saw %d queries for %d concurrent callers, want 1", c, n)
	}
}

func TestLookupChain(t *testing.T) {
	up := testZone(t).Start(t)
	r := newTestResolver(t, Config{Upstreams: []string{up.Addr}})
	c, err := r.LookupChain(t.Context(), "Cname.test.")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"cname.test", "mid.test", "tracker.bad.test"}; !slices.Equal(c.Names, want) {
		t.Fatalf("names %v, want %v", c.Names, want)
	}
	if len(c.Addrs) != 1 || c.Addrs[0] != netip.MustParseAddr("192.0.2.9") {
		t.Fatalf("addrs %v", c.Addrs)
	}
	// An answer that stops at a CNAME is followed by a query for its target.
	names, err := r.Names(t.Context(), "partial.test")
	if want := []string{"partial.test", "elsewhere.other"}; !slices.Equal(names, want) {
		t.Fatalf("names %v err %v, want %v", names, err, want)
	}
	if up.Count("elsewhere.other", dns.TypeA, "") != 1 {
		t.Fatal("the CNAME target was not asked for")
	}
}

func TestConfigValidate(t *testing.T) {
	bad := Config{
		Upstreams: []string{"system", "udp://127.0.0.1", "ftp://x", "udp://name.example:53", "tls://dns.example#x", "udp://1.2.3.4:0", "udp://1.2.3.4#n"},
		Timeout:   -1,
		Cache:     CacheConfig{MinTTL: time.Hour, MaxTTL: time.Minute, MaxEntries: -2},
		TLSCAFile: "/nonexistent/ca.pem",
	}
	var paths []string
	for _, e := range bad.Validate() {
		paths = append(paths, e.Path)
	}
	want := []string{"upstreams[2]", "upstreams[3]", "upstreams[5]", "upstreams[6]", "timeout", "cache.min_ttl", "cache.max_entries", "tls_ca_file"}
	if !slices.Equal(paths, want) {
		t.Fatalf("paths %v, want %v", paths, want)
	}
	if _, err := New(bad, nil); err == nil {
		t.Fatal("New accepted an invalid config")
	}
	if errs := (&Config{}).Validate(); errs != nil {
		t.Fatalf("zero config: %v", errs)
	}
}

func TestSystemUpstream(t *testing.T) {
	// "system" goes through net.Resolver, which answers localhost from /etc/hosts
	// without any network traffic.
	r := newTestResolver(t, Config{})
	addrs, err := r.LookupNetIP(t.Context(), "localhost")
	if err != nil {
		t.Skipf("no localhost entry in this system's resolver: %v", err)
	}
	if !slices.ContainsFunc(addrs, netip.Addr.IsLoopback) {
		t.Fatalf("localhost = %v", addrs)
	}
	if _, err := r.DialContext(t.Context(), "tcp", "localhost:1"); !errors.Is(err, ErrEgressDenied) {
		t.Fatalf("dial localhost: %v, want egress denied", err)
	}
}

func TestReplyToAnotherQuestionIsRejected(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Question[0].Name = "other.test."
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: "other.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 99)})
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan struct{})
	go func() { defer close(done); srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { srv.Shutdown(); <-done })
	r := newTestResolver(t, Config{Upstreams: []string{pc.LocalAddr().String()}})
	if _, err := r.Exchange(t.Context(), query("a.test", dns.TypeA)); !errors.Is(err, errMismatch) {
		t.Fatalf("err = %v, want errMismatch", err)
	}
}
