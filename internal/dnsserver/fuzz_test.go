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
