package dnsserver

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

// FuzzServeDNS feeds unpackable messages to the handler (GSLB zone, policy,
// SafeSearch, no resolver): it must answer without panicking, and the answer must
// pack.
func FuzzServeDNS(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"www.example.test.", dns.TypeA}, {"example.test.", dns.TypeSOA}, {"www.google.com.", dns.TypeA}, {"ads.test.", dns.TypeAAAA}} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		m.SetEdns0(1232, true)
		if b, err := m.Pack(); err == nil {
			f.Add(b)
		}
	}
	cfg := gslbConfig()
	cfg.SafeSearch.Google = true
	srv, err := New(Options{Config: cfg, Policy: testPolicy(), Health: &fakeHealth{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := new(dns.Msg)
		if r.Unpack(b) != nil {
			return
		}
		w := &packWriter{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 5353}}
		srv.ServeDNS(w, r)
		if len(w.buf) == 0 {
			t.Fatalf("no packed reply to %v", r)
		}
	})
}

// FuzzParseQuery checks the fast path's parser against miekg/dns: whatever it
// accepts, miekg unpacks to the same query.
func FuzzParseQuery(f *testing.F) {
	for _, edns := range []bool{false, true} {
		m := new(dns.Msg)
		m.SetQuestion("Host1.Bench.test.", dns.TypeAAAA)
		if edns {
			m.SetEdns0(4096, true)
		}
		if b, err := m.Pack(); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, size, ok := parseQuery(b)
		if !ok {
			return
		}
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatalf("parseQuery accepted what miekg rejects: %v", err)
		}
		o := m.IsEdns0()
		if m.Id != q.id || m.Question[0].Name != q.name || m.Question[0].Qtype != q.qtype || m.RecursionDesired != q.rd ||
			m.CheckingDisabled != q.cd || (o != nil) != q.edns || (o != nil && o.Do() != q.do) || size < dns.MinMsgSize {
			t.Fatalf("parseQuery %+v (size %d) vs miekg %v", q, size, m)
		}
	})
}
