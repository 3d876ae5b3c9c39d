package filter

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// naiveSet is the reference: a map and a walk over the host's parents.
type naiveSet map[string]bool

func (n naiveSet) match(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for {
		if n[host] {
			return true
		}
		i := strings.IndexByte(host, '.')
		if i < 0 {
			return false
		}
		host = host[i+1:]
	}
}

func buildSet(t testing.TB, domains ...string) *DomainSet {
	t.Helper()
	var b DomainSetBuilder
	for _, d := range domains {
		if err := b.Add(d); err != nil {
			t.Fatalf("Add(%q): %v", d, err)
		}
	}
	return b.Build()
}

func TestDomainSetSubdomainSemantics(t *testing.T) {
	s := buildSet(t, "example.com", "m.example.com", "EXAMPLE.com", "*.wild.org", ".dot.net",
		"deep.a.b.c.d.io", "a-b.com", "ab.com", "x.y", "1.2.3.4", "trailing.dot.")
	cases := []struct {
		host         string
		match, exact bool
	}{
		{"example.com", true, true},
		{"www.example.com", true, false},
		{"m.example.com", true, true},
		{"www.m.example.com", true, false},
		{"a.b.c.example.com", true, false},
		{"xample.com", false, false},
		{"example.co", false, false},
		{"example.com.evil", false, false},
		{"notexample.com", false, false},
		{"com", false, false},
		{"Example.COM", true, true},
		{"example.com.", true, true},
		{"wild.org", true, true},
		{"a.wild.org", true, false},
		{"dot.net", true, true},
		{"x.dot.net", true, false},
		{"a.b.c.d.io", false, false},
		{"deep.a.b.c.d.io", true, true},
		{"x.deep.a.b.c.d.io", true, false},
		{"b.com", false, false},
		{"a.com", false, false},
		{"z.a-b.com", true, false},
		{"z.ab.com", true, false},
		{"b-ab.com", false, false},
		{"x.y", true, true},
		{"y", false, false},
		{"1.2.3.4", true, true},
		{"2.3.4", false, false},
		{"trailing.dot", true, true},
		{"", false, false},
		{".", false, false},
		{"a..example.com", true, false},
		{"bad\x01.example.com", false, false},
	}
	for _, c := range cases {
		if got := s.Match(c.host); got != c.match {
			t.Errorf("Match(%q) = %v, want %v", c.host, got, c.match)
		}
		if got := s.MatchExact(c.host); got != c.exact {
			t.Errorf("MatchExact(%q) = %v, want %v", c.host, got, c.exact)
		}
	}
	if s.Len() != 10 {
		t.Errorf("Len = %d, want 10 (duplicates folded)", s.Len())
	}
}

func TestDomainSetAddRejects(t *testing.T) {
	for _, d := range []string{"", ".", "*", "*.", "a..b", "a b.com", "exa/mple.com", "é.com",
		"*x.com", "a.b..", strings.Repeat("a", 254)} {
		var b DomainSetBuilder
		if err := b.Add(d); !errors.Is(err, ErrInvalidDomain) {
			t.Errorf("Add(%q) = %v, want ErrInvalidDomain", d, err)
		}
		if b.Len() != 0 {
			t.Errorf("Add(%q) kept an entry", d)
		}
	}
}

func TestDomainSetEmptyAndNil(t *testing.T) {
	var nilSet *DomainSet
	if nilSet.Match("a.com") || nilSet.MatchExact("a.com") || nilSet.Len() != 0 {
		t.Fatal("nil set matched or has entries")
	}
	var b DomainSetBuilder
	s := b.Build()
	if s.Match("a.com") || s.Len() != 0 {
		t.Fatal("empty set matched")
	}
}

// randomDomains makes a list dense in overlaps and near misses: few label
// values, so parents, children, siblings and shared prefixes abound.
func randomDomains(r *rand.Rand, n int) []string {
	labels := []string{"a", "b", "ab", "a-b", "b-a", "aa", "com", "co", "m", "www", "x_y", "0", "a0", "z", "zz9"}
	out := make([]string, n)
	for i := range out {
		k := 1 + r.IntN(4)
		parts := make([]string, k)
		for j := range parts {
			parts[j] = labels[r.IntN(len(labels))]
		}
		out[i] = strings.Join(parts, ".")
	}
	return out
}

func TestDomainSetAgainstNaive(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		r := rand.New(rand.NewPCG(seed, seed*7))
		n := 1 + r.IntN(400)
		if seed%8 == 0 {
			n = 3000 + r.IntN(3000) // the radix sort path
		}
		entries := randomDomains(r, n)
		ref := naiveSet{}
		var b DomainSetBuilder
		for _, d := range entries {
			ref[d] = true
			if err := b.Add(d); err != nil {
				t.Fatal(err)
			}
		}
		s := b.Build()
		if s.Len() != len(ref) {
			t.Fatalf("seed %d: Len %d, want %d", seed, s.Len(), len(ref))
		}
		for _, q := range randomDomains(r, 3000) {
			if got, want := s.Match(q), ref.match(q); got != want {
				t.Fatalf("seed %d: Match(%q) = %v, want %v", seed, q, got, want)
			}
			if got, want := s.MatchExact(q), ref[q]; got != want {
				t.Fatalf("seed %d: MatchExact(%q) = %v, want %v", seed, q, got, want)
			}
		}
	}
}

// TestDomainSetLongSharedPrefixes puts many block heads under one 8-byte
// prefix so the full-key tie search is exercised.
func TestDomainSetLongSharedPrefixes(t *testing.T) {
	ref := naiveSet{}
	var b DomainSetBuilder
	for i := 0; i < 5000; i++ {
		d := fmt.Sprintf("h%d.sharedsuffix.example", i*3)
		ref[d] = true
		if err := b.Add(d); err != nil {
			t.Fatal(err)
		}
	}
	s := b.Build()
	for i := 0; i < 15000; i++ {
		for _, q := range []string{fmt.Sprintf("h%d.sharedsuffix.example", i), fmt.Sprintf("w.h%d.sharedsuffix.example", i),
			fmt.Sprintf("h%d.haredsuffix.example", i)} {
			if got, want := s.Match(q), ref.match(q); got != want {
				t.Fatalf("Match(%q) = %v, want %v", q, got, want)
			}
		}
	}
}

func TestDomainSetLookupDoesNotAllocate(t *testing.T) {
	s := buildSet(t, "example.com", "m.example.com", "other.org")
	allocs := testing.AllocsPerRun(100, func() {
		s.Match("www.m.example.com")
		s.Match("miss.example.net")
		s.MatchExact("other.org")
	})
	if allocs != 0 {
		t.Fatalf("lookup allocates %.1f times", allocs)
	}
}

// FuzzDomainSet builds a set from newline-separated entries and checks every
// answer against the naive map, for the entries, their subdomains, parents
// and near misses.
func FuzzDomainSet(f *testing.F) {
	f.Add("example.com\nm.example.com\nexample.co", "www.m.example.com")
	f.Add("a\na.a\na.a.a\nb-a\nab", "x.a.a")
	f.Add("*.x.y\n.z.y\n1.2.3.4", "w.x.y")
	f.Fuzz(func(t *testing.T, list, query string) {
		ref := naiveSet{}
		var b DomainSetBuilder
		for _, line := range strings.Split(list, "\n") {
			if b.Add(line) != nil {
				continue
			}
			d := strings.ToLower(strings.TrimSuffix(strings.TrimLeft(line, "*."), "."))
			ref[d] = true
		}
		s := b.Build()
		if s.Len() != len(ref) {
			t.Fatalf("Len %d, want %d", s.Len(), len(ref))
		}
		queries := []string{query, "www." + query}
		for d := range ref {
			queries = append(queries, d, "x."+d, d[1:], d+"x", "a-"+d)
		}
		for _, q := range queries {
			if strings.ContainsAny(q, "\x00\x01") {
				continue
			}
			if got, want := s.Match(q), ref.match(q); got != want {
				t.Fatalf("Match(%q) = %v, want %v (list %q)", q, got, want, list)
			}
			if got, want := s.MatchExact(q), ref[strings.ToLower(strings.TrimSuffix(q, "."))]; got != want {
				t.Fatalf("MatchExact(%q) = %v, want %v (list %q)", q, got, want, list)
			}
		}
	})
}

// TestDomainSetAnyHintIsSafe: scanFrom must find the same predecessor
// from any starting block, as a fingerprint collision can hand it any.
func TestDomainSetAnyHintIsSafe(t *testing.T) {
	list := genDomains(7, 3000)
	s := buildSet(t, list...)
	r := rand.New(rand.NewPCG(7, 7))
	for _, h := range append(list[:300], genDomains(8, 300)...) {
		for _, host := range []string{h, "www." + h, "zz." + h} {
			var buf [MaxDomainLen]byte
			q, _ := hostKey(&buf, host)
			want := s.scanFrom(s.searchBlock(q), q)
			for k := 0; k < 20; k++ {
				if got := s.scanFrom(r.IntN(s.blocks()), q); got != want {
					t.Fatalf("scanFrom for %q = %+v, want %+v", host, got, want)
				}
			}
		}
	}
}
