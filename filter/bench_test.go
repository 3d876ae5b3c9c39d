package filter

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

// genDomains makes a deterministic list shaped like a category list:
// registered domains over a few suffixes, word-compound labels, and
// families of subdomains whose parent is sometimes listed too.
func genDomains(seed uint64, n int) []string {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	words := []string{"hot", "girls", "cam", "bet", "casino", "poker", "live", "free", "xxx", "tube", "sex",
		"shop", "deal", "win", "slot", "chat", "date", "teen", "porn", "video", "club", "star", "net", "web"}
	suffixes := []string{"com", "com", "com", "com", "net", "org", "ru", "de", "co.uk", "com.br", "xn--p1ai", "info"}
	out := make([]string, 0, n)
	for len(out) < n {
		var b strings.Builder
		for k := 1 + r.IntN(3); k > 0; k-- {
			b.WriteString(words[r.IntN(len(words))])
			if r.IntN(4) == 0 {
				b.WriteByte('-')
			}
		}
		b.WriteString(strings.Repeat(string(rune('a'+r.IntN(26))), r.IntN(3)))
		if r.IntN(2) == 0 {
			b.WriteString(string(rune('0' + r.IntN(10))))
		}
		base := strings.Trim(b.String(), "-") + "." + suffixes[r.IntN(len(suffixes))]
		switch x := r.IntN(100); {
		case x < 80:
			out = append(out, base)
		case x < 90: // a family: parent listed or not, and subdomains
			if r.IntN(2) == 0 {
				out = append(out, base)
			}
			for k := 1 + r.IntN(4); k > 0; k-- {
				out = append(out, words[r.IntN(len(words))]+"."+base)
			}
		default:
			out = append(out, "www."+base, "m."+base)
		}
	}
	return out[:n]
}

// TestDomainSetGeneratedList checks a 100k-entry generated list against the
// naive map for every entry, a subdomain of it, its parent and near misses.
func TestDomainSetGeneratedList(t *testing.T) {
	n := 100_000
	if testing.Short() || raceEnabled {
		n = 2 * parallelMin // still takes the two-goroutine build
	}
	list := genDomains(1, n)
	if testing.Short() || raceEnabled {
		// One-label entries: ancestors across the split of a parallel build.
		list = append(list, "com", "ru")
	}
	ref := naiveSet{}
	var b DomainSetBuilder
	for _, d := range list {
		ref[d] = true
		if err := b.Add(d); err != nil {
			t.Fatal(err)
		}
	}
	s := b.Build()
	if s.Len() != len(ref) {
		t.Fatalf("Len = %d, want %d", s.Len(), len(ref))
	}
	wrong := 0
	for _, d := range genDomains(2, n/2) { // mostly misses
		if s.Match(d) != ref.match(d) {
			wrong++
		}
	}
	for _, d := range list {
		parent := d[strings.IndexByte(d, '.')+1:]
		for _, q := range []string{d, "x." + d, parent, "a" + d, d[1:]} {
			if s.Match(q) != ref.match(q) || s.MatchExact(q) != ref[q] {
				wrong++
				if wrong < 10 {
					t.Errorf("wrong answer for %q", q)
				}
			}
		}
	}
	if wrong > 0 {
		t.Fatalf("%d wrong answers", wrong)
	}
}

func benchSet(b *testing.B, n int) (*DomainSet, []string) {
	b.Helper()
	list := genDomains(1, n)
	var bl DomainSetBuilder
	for _, d := range list {
		if err := bl.Add(d); err != nil {
			b.Fatal(err)
		}
	}
	return bl.Build(), benchQueries(list)
}

// benchQueries: 2048 hits (www. + a listed name) and 2048 misses.
func benchQueries(list []string) []string {
	queries := make([]string, 0, 4096)
	misses := genDomains(3, 2048)
	for i := 0; i < 2048; i++ {
		queries = append(queries, "www."+list[(i*7919)%len(list)], misses[i])
	}
	return queries
}

// BenchmarkDomainSetMatch: 1M generated entries, half hits (subdomains of
// listed names), half misses.
func BenchmarkDomainSetMatch(b *testing.B) {
	s, queries := benchSet(b, 1_000_000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s.Match(queries[i%len(queries)])
	}
}

// BenchmarkDomainSetBuild: Add and Build for 1M generated entries.
func BenchmarkDomainSetBuild(b *testing.B) {
	list := genDomains(1, 1_000_000)
	b.ReportAllocs()
	for b.Loop() {
		var bl DomainSetBuilder
		for _, d := range list {
			if err := bl.Add(d); err != nil {
				b.Fatal(err)
			}
		}
		bl.Build()
	}
}

func BenchmarkNormalizeHost(b *testing.B) {
	b.ReportAllocs()
	hosts := []string{"www.example.com", "WWW.Example.COM:443", "bücher.de", "[2001:db8::1]:80", "127.0.0.1:8080", "[::ffff:10.0.0.1]:443"}
	for _, h := range hosts {
		b.Run(h, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NormalizeHost(h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkGlobSetMatch(b *testing.B) {
	var patterns []string
	for _, w := range genDomains(5, 500) {
		patterns = append(patterns, "*."+w, "**."+strings.Replace(w, ".", "-cdn.", 1))
	}
	patterns = append(patterns, "*.tiktok.*", "ads?.*.net")
	s, err := NewGlobSet(patterns)
	if err != nil {
		b.Fatal(err)
	}
	hosts := []string{"www.tiktok.com", "a.b.example.org", "ads1.x.net", "www." + genDomains(5, 1)[0]}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Match(hosts[i%len(hosts)])
	}
}

func BenchmarkCIDRSetMatch(b *testing.B) {
	var cidrs []string
	for i := 0; i < 1000; i++ {
		cidrs = append(cidrs, netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}).String()+"/24")
	}
	s, err := ParseCIDRSet(append(cidrs, "2001:db8::/32"))
	if err != nil {
		b.Fatal(err)
	}
	addrs := []netip.Addr{netip.MustParseAddr("10.3.200.1"), netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::5")}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Match(addrs[i%len(addrs)])
	}
}

// BenchmarkMapMatch is the naive baseline (map + walk over parents) on
// BenchmarkDomainSetMatch's data and queries.
func BenchmarkMapMatch(b *testing.B) {
	list := genDomains(1, 1_000_000)
	m := mapSet{}
	for _, d := range list {
		m[d] = struct{}{}
	}
	queries := benchQueries(list)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		m.match(queries[i%len(queries)])
	}
}
