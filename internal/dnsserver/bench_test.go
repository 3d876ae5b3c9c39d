package dnsserver

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// packWriter is a dns.ResponseWriter that packs the reply as a real one would and
// keeps the last reply's bytes in buf.
type packWriter struct {
	remote *net.UDPAddr
	buf    []byte
}

func (w *packWriter) LocalAddr() net.Addr  { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (w *packWriter) RemoteAddr() net.Addr { return w.remote }
func (w *packWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.PackBuffer(w.buf)
	w.buf = b
	return err
}
func (w *packWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf[:0], b...)
	return len(b), nil
}
func (w *packWriter) Close() error        { return nil }
func (w *packWriter) TsigStatus() error   { return nil }
func (w *packWriter) TsigTimersOnly(bool) {}
func (w *packWriter) Hijack()             {}

// BenchmarkCachedQuery measures the server's path for a query answered from the
// resolver cache: policy evaluation, SafeSearch check, cache hit, reply packing.
func BenchmarkCachedQuery(b *testing.B) {
	up := testUpstream(b)
	srv, err := New(Options{Config: gslbConfig(), Policy: testPolicy(), Groups: testGroups, Resolver: newResolver(b, up)})
	if err != nil {
		b.Fatal(err)
	}
	q := new(dns.Msg)
	q.SetQuestion("a.test.", dns.TypeA)
	w := &packWriter{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}, buf: make([]byte, 0, 512)}
	srv.ServeDNS(w, q) // warm the cache
	if up.Total() != 1 {
		b.Fatalf("upstream saw %d queries", up.Total())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		srv.ServeDNS(w, q)
	}
	if up.Total() != 1 {
		b.Fatalf("upstream saw %d queries: not answered from cache", up.Total())
	}
}

// BenchmarkCachedQueryEDNSOption is BenchmarkCachedQuery for a query with an EDNS
// option (dig sends a cookie), which the wire-form path declines: the slow path's
// cache hit, which must not take an in-flight slot or get slower.
func BenchmarkCachedQueryEDNSOption(b *testing.B) {
	up := testUpstream(b)
	srv, err := New(Options{Config: gslbConfig(), Policy: testPolicy(), Groups: testGroups, Resolver: newResolver(b, up)})
	if err != nil {
		b.Fatal(err)
	}
	q := new(dns.Msg)
	q.SetQuestion("a.test.", dns.TypeA)
	q.SetEdns0(1232, false)
	q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
	w := &packWriter{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}, buf: make([]byte, 0, 512)}
	srv.ServeDNS(w, q) // warm the cache
	b.ReportAllocs()
	for b.Loop() {
		srv.ServeDNS(w, q)
	}
	if up.Total() != 1 {
		b.Fatalf("upstream saw %d queries: not answered from cache", up.Total())
	}
}

// BenchmarkCachedQueryUDP is the same through a real UDP socket and miekg client.
func BenchmarkCachedQueryUDP(b *testing.B) {
	up := testUpstream(b)
	_, addr := startServer(b, Options{Config: &Config{}, Policy: testPolicy(), Resolver: newResolver(b, up)})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
		conn, err := c.Dial(addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		q := new(dns.Msg)
		q.SetQuestion("a.test.", dns.TypeA)
		for pb.Next() {
			if _, _, err := c.ExchangeWithConn(q, conn); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkAnswerFast measures the UDP read loop's work per cached query: parse
// the datagram, decide, copy and patch the cached reply.
func BenchmarkAnswerFast(b *testing.B) {
	up := testUpstream(b)
	srv, err := New(Options{Config: gslbConfig(), Policy: testPolicy(), Groups: testGroups, Resolver: newResolver(b, up)})
	if err != nil {
		b.Fatal(err)
	}
	q := new(dns.Msg)
	q.SetQuestion("a.test.", dns.TypeA)
	srv.ServeDNS(&packWriter{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}}, q) // warm the cache
	pkt, err := q.Pack()
	if err != nil {
		b.Fatal(err)
	}
	from := netip.MustParseAddrPort("127.0.0.1:5353")
	out := make([]byte, 0, ednsSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, fate := srv.answerFast(pkt, from, out[:0]); fate != fastAnswered {
			b.Fatal("not answered from cache")
		}
	}
}
