package rules

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"golang.org/x/net/idna"

	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/internal/resolver"
)

func TestCanonicalAuthority(t *testing.T) {
	for _, c := range []struct {
		in   string
		host string
		port uint16
		bad  bool
	}{
		{in: "example.com", host: "example.com"},
		{in: "Example.COM.:8080", host: "example.com", port: 8080},
		{in: "blocked.test..", bad: true},
		{in: "blocked.test..:80", bad: true},
		{in: "ｂｌｏｃｋｅｄ.test", host: "blocked.test"},
		{in: "ｂｌｏｃｋｅｄ.test:443", host: "blocked.test", port: 443},
		{in: "blocked。test", host: "blocked.test"},
		{in: "BÜCHER.example", host: "xn--bcher-kva.example"},
		{in: "[::ffff:1.2.3.4]", host: "1.2.3.4"},
		{in: "[::ffff:1.2.3.4]:8443", host: "1.2.3.4", port: 8443},
		{in: "[2001:DB8::0:1]:443", host: "2001:db8::1", port: 443},
		{in: "0x7f.1", bad: true},
		{in: "127.1", bad: true},
		{in: "a..b", bad: true},
		{in: "host:0", bad: true},
		{in: "host:x", bad: true},
		{in: "", bad: true},
	} {
		h, p, err := CanonicalAuthority(c.in)
		if c.bad {
			if err == nil || !errors.Is(err, filter.ErrInvalidHost) {
				t.Errorf("CanonicalAuthority(%q) = %q, %d, %v; want an ErrInvalidHost", c.in, h, p, err)
			}
			continue
		}
		if err != nil || h != c.host || p != c.port {
			t.Errorf("CanonicalAuthority(%q) = %q, %d, %v; want %q, %d", c.in, h, p, err, c.host, c.port)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _, _ = CanonicalAuthority("www.example.com:443") }); n != 0 {
		t.Fatalf("%v allocations for a canonical host", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = JoinAuthority("www.example.com:443", "www.example.com", 443) }); n != 0 {
		t.Fatalf("JoinAuthority: %v allocations for a canonical authority", n)
	}
}

// reachedName is the name the forward door's dial path reaches for an
// authority it is given, as net/http's Transport and the resolver read it:
// the Transport maps a non-ASCII host with idna.Lookup (keeping it as is when
// that fails), the resolver dials an IP literal as parsed (unmapped by the
// kernel) and otherwise drops one trailing dot, lowercases and asks DNS for
// the name, which ignores the dot a second trailing dot leaves. ok is false
// when the dial path refuses the authority, or would dial a non-ASCII name
// as raw bytes.
func reachedName(authority string) (string, bool) {
	u, err := url.Parse("http://" + authority + "/")
	if err != nil || u.Host != authority {
		return "", false
	}
	host := u.Hostname()
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			a, err := idna.Lookup.ToASCII(host)
			if err != nil {
				// net/http would dial the raw UTF-8 bytes, a name no
				// spelling maps to; the door never sends them (it sends
				// the canonical form, checked below).
				return "", false
			}
			host = a
			break
		}
	}
	a, lit, err := resolver.ParseLiteral(host)
	if err != nil {
		return "", false
	}
	if lit {
		return a.Unmap().String(), true
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if _, ok := dns.IsDomainName(name); !ok || name == "" {
		return "", false
	}
	return strings.TrimSuffix(dns.CanonicalName(name), "."), true
}

// FuzzCanonicalAuthority is the property behind "one canonical host": for any
// spelling the dial path would reach, the policy sees the same name (or the
// door refuses the request), and the authority the door sends upstream
// (JoinAuthority) reaches exactly that name.
func FuzzCanonicalAuthority(f *testing.F) {
	for _, s := range []string{
		"blocked.test", "blocked.test.", "blocked.test..", "BLOCKED.test:80", "ｂｌｏｃｋｅｄ.test",
		"blocked。test", "blocked．test", "blocked｡test", "[::ffff:1.2.3.4]", "[::ffff:1.2.3.4]:443",
		"1.2.3.4", "[::1]", "xn--bcher-kva.example", "bücher.example", "BÜCHER.EXAMPLE.:8080",
		"blocked.test\u00ad", "bl\u200bocked.test", "ᴮlocked.test", "ß.test", "a_b.test",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, port, err := CanonicalAuthority(s)
		if err != nil {
			return // refused by the door: nothing is dialed
		}
		if reached, ok := reachedName(s); ok && reached != host {
			t.Errorf("%q: the policy sees %q, the dial path would reach %q", s, host, reached)
		}
		sent := JoinAuthority(s, host, port)
		if reached, ok := reachedName(sent); !ok || reached != host {
			t.Errorf("%q: sent as %q, which reaches %q (ok %v), not %q", s, sent, reached, ok, host)
		}
		if h2, p2, err := CanonicalAuthority(sent); err != nil || h2 != host || p2 != port {
			t.Errorf("%q: sent as %q, which reads as %q, %d, %v", s, sent, h2, p2, err)
		}
	})
}

func BenchmarkCanonicalAuthority(b *testing.B) {
	for _, s := range []string{"www.example.com:443", "WWW.Example.COM", "ｂｌｏｃｋｅｄ.test", "[::ffff:1.2.3.4]:443"} {
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _, _ = CanonicalAuthority(s)
			}
		})
	}
}
