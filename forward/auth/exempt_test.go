package auth

import (
	"net/netip"
	"testing"
)

// TestExemptionsMatch: clients by prefix (IPv4, IPv4-mapped IPv6, IPv6) and
// destinations by domain and subdomain, as a rule's domain: matches.
func TestExemptionsMatch(t *testing.T) {
	x := (&Exempt{
		Clients: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16"), netip.MustParsePrefix("2001:db8:5::/64")},
		Domains: []string{"Updates.School.Example.", "*.captive.example"},
	}).Compile()
	for _, c := range []struct {
		client, host string
		want         bool
	}{
		{"10.9.200.1", "www.example.org", true},
		{"::ffff:10.9.0.1", "www.example.org", true},
		{"2001:db8:5::42", "www.example.org", true},
		{"10.10.0.1", "www.example.org", false},
		{"2001:db8:6::1", "www.example.org", false},
		{"10.10.0.1", "updates.school.example", true},
		{"10.10.0.1", "dl.updates.school.example", true},
		{"10.10.0.1", "notupdates.school.example", false},
		{"10.10.0.1", "school.example", false},
		{"10.10.0.1", "captive.example", true},
		{"10.10.0.1", "", false},
	} {
		if _, got := x.Match(netip.MustParseAddr(c.client), c.host); got != c.want {
			t.Errorf("Match(%s, %q) = %v, want %v", c.client, c.host, got, c.want)
		}
	}
	var none *Exemptions
	if _, ok := none.Match(netip.MustParseAddr("10.9.0.1"), "updates.school.example"); ok {
		t.Error("nil Exemptions matched")
	}
	if (&Exempt{}).Compile() != nil {
		t.Error("an empty exempt section should compile to nil")
	}
}
