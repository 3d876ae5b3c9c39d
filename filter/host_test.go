package filter

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestNormalizeHost(t *testing.T) {
	cases := []struct{ in, want string }{
		{"example.com", "example.com"},
		{"Example.COM", "example.com"},
		{"example.com.", "example.com"},
		{"example.com:8080", "example.com"},
		{"EXAMPLE.com.:443", "example.com"},
		{"bücher.de", "xn--bcher-kva.de"},
		{"BÜCHER.de", "xn--bcher-kva.de"},
		{"xn--bcher-kva.de", "xn--bcher-kva.de"},
		{"пример.рф", "xn--e1afmkfd.xn--p1ai"},
		{"under_score.example.com", "under_score.example.com"},
		{"-edge-.blogspot.com", "-edge-.blogspot.com"},
		{"192.0.2.1", "192.0.2.1"},
		{"192.0.2.1:80", "192.0.2.1"},
		{"[2001:DB8::0:1]", "2001:db8::1"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"2001:db8:0::1", "2001:db8::1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"[::ffff:c000:201]:80", "192.0.2.1"},
		{"localhost", "localhost"},
		{"exa\u200bmple.com", "example.com"}, // UTS #46 maps U+200B to nothing, as browsers do
	}
	for _, c := range cases {
		got, err := NormalizeHost(c.in)
		if err != nil || got != c.want {
			t.Errorf("NormalizeHost(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestNormalizeHostRejects(t *testing.T) {
	for _, in := range []string{
		"", ".", "..", "a..b", ".example.com", "example.com..", "exa mple.com", "exa/mple.com",
		"example.com:", "example.com:0", "example.com:65536", "example.com:http", "example.com:-1",
		"[::1", "[::1]x", "[192.0.2.1]", "[fe80::1%eth0]", "fe80::1%eth0", "127.1", "0x7f.0.0.1",
		"1.2.3.256", "example.123", "01.2.3.4", strings.Repeat("a", 64) + ".com",
		strings.Repeat("a.", 127) + "com", "xn--zz.com", "a\x00b.com", "xn--a.xn--zz.com",
		"*.example.com", "example.com/path", "user@example.com",
	} {
		got, err := NormalizeHost(in)
		if !errors.Is(err, ErrInvalidHost) {
			t.Errorf("NormalizeHost(%q) = %q, %v; want ErrInvalidHost", in, got, err)
		}
	}
}

func TestNormalizeHostCanonicalDoesNotAllocate(t *testing.T) {
	for _, host := range []string{"www.example.com", "127.0.0.1:8080", "192.0.2.1", "[2001:db8::1]:443"} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := NormalizeHost(host); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("canonical host %s: %.1f allocations", host, allocs)
		}
	}
}

// FuzzNormalizeHost checks that NormalizeHost never panics, that its output
// is a fixed point, and that it is a host name or a canonical IP literal.
func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"example.com", "Bücher.DE.:443", "[::1]:80", "127.1", "a..b", "xn--p1ai", "::ffff:1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := NormalizeHost(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidHost) {
				t.Fatalf("error %v does not wrap ErrInvalidHost", err)
			}
			return
		}
		again, err := NormalizeHost(h)
		if err != nil || again != h {
			t.Fatalf("NormalizeHost(%q) = %q, but NormalizeHost(%q) = %q, %v", s, h, h, again, err)
		}
		if a, err := netip.ParseAddr(h); err == nil {
			if a.String() != h || a.Is4In6() {
				t.Fatalf("IP %q not canonical", h)
			}
			return
		}
		if !isCanonicalASCII(h) {
			t.Fatalf("NormalizeHost(%q) = %q: not a canonical host name", s, h)
		}
		var b DomainSetBuilder
		if err := b.Add(h); err != nil {
			t.Fatalf("normalized host %q refused by DomainSetBuilder: %v", h, err)
		}
		if !b.Build().MatchExact(h) {
			t.Fatalf("normalized host %q not found after Add", h)
		}
	})
}
