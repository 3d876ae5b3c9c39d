package resolver

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// FuzzTTLOffsets checks that the wire walker never reads out of bounds and that
// every offset it returns leaves room for a TTL.
func FuzzTTLOffsets(f *testing.F) {
	m := new(dns.Msg)
	m.SetQuestion("a.example.", dns.TypeA)
	m.Answer = append(m.Answer, &dns.CNAME{Hdr: dns.RR_Header{Name: "a.example.", Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: "b.example."})
	m.Compress = true
	if b, err := m.Pack(); err == nil {
		f.Add(b)
	}
	f.Add([]byte{0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xc0, 0x0c})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		offs, ok := ttlOffsets(b)
		if !ok {
			return
		}
		for _, o := range offs {
			if o+4 > len(b) {
				t.Fatalf("offset %d beyond %d bytes", o, len(b))
			}
			_ = binary.BigEndian.Uint32(b[o:])
		}
	})
}

// FuzzParseLiteral checks that whatever ParseLiteral accepts as an address is one
// net/netip reads the same way, and that it never lets an ambiguous form through
// as a name.
func FuzzParseLiteral(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "0x7f.1", "2130706433", "example.com", "[::1]", "1.2.3.04", "a.0x10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, lit, err := ParseLiteral(s)
		if lit && err == nil {
			if b, perr := netip.ParseAddr(a.String()); perr != nil || b != a {
				t.Fatalf("%q → %v does not round-trip", s, a)
			}
		}
		if !lit && err != nil {
			t.Fatalf("%q: error %v for a name", s, err)
		}
	})
}
