package filter

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"slices"
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

// TestDomainSetSplitFamilies: families too large for one unit are split
// by their next label, recursively; their roots may be listed or not, and
// one-label entries cover everything below them.
func TestDomainSetSplitFamilies(t *testing.T) {
	ref := naiveSet{}
	var list []string
	add := func(d string) { ref[d] = true; list = append(list, d) }
	for i := 0; i < 3000; i++ {
		add(fmt.Sprintf("user%d.blogspot.com", i)) // split, root not listed
		if i%3 == 0 {
			add(fmt.Sprintf("w.user%d.blogspot.com", i))
		}
		add(fmt.Sprintf("u%d.narod.ru", i)) // split, root listed
	}
	add("narod.ru")
	for i := 0; i < 400; i++ { // split twice: deep.host.net, then one label below
		add(fmt.Sprintf("x%d.deep.host.net", i))
		add(fmt.Sprintf("y.x%d.deep.host.net", i))
	}
	add("host.net")
	add("deep.host.net")
	add(strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + ".big.org")
	add("xn--p1ai")
	add("xn--80ak6aa92e.com") // IDNA
	s := buildSet(t, list...)
	if s.Len() != len(ref) {
		t.Fatalf("Len = %d, want %d", s.Len(), len(ref))
	}
	if len(s.splits.slots) == 0 {
		t.Fatal("no family was split")
	}
	var queries []string
	for _, d := range list {
		queries = append(queries, d, "q."+d, d[strings.IndexByte(d, '.')+1:], "z"+d, d[1:])
	}
	queries = append(queries, "blogspot.com", "x.blogspot.com", "narod.ru", "a.narod.ru", "host.net", "a.host.net",
		"deep.host.net", "a.deep.host.net", "x5.deep.host.net", "q.x5.deep.host.net", "y.x5000.deep.host.net",
		"ru", "com", "xn--p1ai", "a.xn--p1ai", "a.b.xn--p1ai")
	for _, q := range queries {
		if got, want := s.Match(q), ref.match(q); got != want {
			t.Errorf("Match(%q) = %v, want %v", q, got, want)
		}
		if got, want := s.MatchExact(q), ref[q]; got != want {
			t.Errorf("MatchExact(%q) = %v, want %v", q, got, want)
		}
		// Upper case anywhere takes the lookup's other path.
		for _, u := range []string{strings.ToUpper(q), strings.ToUpper(q[:1]) + q[1:], q[:len(q)-1] + strings.ToUpper(q[len(q)-1:])} {
			if got, want := s.Match(u), ref.match(u); got != want {
				t.Errorf("Match(%q) = %v, want %v", u, got, want)
			}
			if got, want := s.MatchExact(u), ref[strings.ToLower(u)]; got != want {
				t.Errorf("MatchExact(%q) = %v, want %v", u, got, want)
			}
		}
	}
}

// TestDomainSetDifferential checks random lists dense in overlaps (one-label
// entries, long names, families at every size around the split threshold)
// against the map reference, for random hosts and for every entry's
// subdomains, parents and near misses.
func TestDomainSetDifferential(t *testing.T) {
	for seed := uint64(1); seed <= 12; seed++ {
		r := rand.New(rand.NewPCG(seed, 99))
		ref := naiveSet{}
		var b DomainSetBuilder
		var list []string
		add := func(d string) {
			if err := b.Add(d); err != nil {
				t.Fatalf("Add(%q): %v", d, err)
			}
			ref[strings.ToLower(d)] = true
			list = append(list, d)
		}
		fams := 1 + r.IntN(60)
		for f := 0; f < fams; f++ {
			base := fmt.Sprintf("f%d.%s", f, []string{"com", "org", "co.uk", "xn--p1ai"}[r.IntN(4)])
			if r.IntN(2) == 0 {
				add(base)
			}
			for k := r.IntN(1 + r.IntN(120)); k > 0; k-- {
				d := base
				for l := 1 + r.IntN(3); l > 0; l-- {
					d = []string{"a", "b", "www", "m", "a-b", "xn--d1a"}[r.IntN(6)] + fmt.Sprint(r.IntN(5)) + "." + d
				}
				add(d)
			}
		}
		if r.IntN(3) == 0 {
			add("org")
		}
		add(strings.Repeat("l", 58) + "." + strings.Repeat("m", 58) + "." + strings.Repeat("n", 58) + "." + strings.Repeat("o", 58) + ".com") // 239 bytes: "www.a0." + it still fits
		add("UPPER.Case.COM")
		s := b.Build()
		if s.Len() != len(ref) {
			t.Fatalf("seed %d: Len %d, want %d", seed, s.Len(), len(ref))
		}
		queries := randomDomains(r, 500)
		for _, d := range list {
			d = strings.ToLower(d)
			queries = append(queries, d, "x."+d, d[strings.IndexByte(d, '.')+1:], "a"+d, d[1:], d+".", "www.a0."+d)
		}
		for _, q := range queries {
			if got, want := s.Match(q), ref.match(q); got != want {
				t.Fatalf("seed %d: Match(%q) = %v, want %v", seed, q, got, want)
			}
			if got, want := s.MatchExact(q), ref[strings.TrimSuffix(q, ".")]; got != want {
				t.Fatalf("seed %d: MatchExact(%q) = %v, want %v", seed, q, got, want)
			}
		}
	}
}

// TestHostKeyLabels checks the eight-bytes-at-a-time query key against a
// byte loop, over every byte value and every length up to the limit.
func TestHostKeyLabels(t *testing.T) {
	ref := func(host string) (string, int, int, bool) {
		host = strings.TrimSuffix(host, ".")
		n := len(host)
		if n == 0 || n > MaxDomainLen {
			return "", 0, 0, false
		}
		key := make([]byte, n)
		tld, fam, seps := n, n, 0
		for i := range n {
			c := host[n-1-i]
			switch {
			case c == '.':
				c = keySep
				if seps++; seps == 1 {
					tld = i
				} else if seps == 2 {
					fam = i
				}
			case c <= keySep:
				return "", 0, 0, false
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			}
			key[i] = c
		}
		return string(key), tld, fam, true
	}
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := "aZz.-_:09AM.."
	for i := 0; i < 20000; i++ {
		b := make([]byte, r.IntN(MaxDomainLen+3))
		for j := range b {
			if r.IntN(50) == 0 {
				b[j] = byte(r.IntN(256))
			} else {
				b[j] = alphabet[r.IntN(len(alphabet))]
			}
		}
		host := string(b)
		var buf [MaxDomainLen]byte
		got, ok := hostKeyLabels(&buf, host)
		key, tld, fam, wantOK := ref(host)
		if ok != wantOK || ok && (string(got.key) != key || got.tld != tld || got.fam != fam) {
			t.Fatalf("hostKeyLabels(%q) = %q %d %d %v, want %q %d %d %v", host, got.key, got.tld, got.fam, ok, key, tld, fam, wantOK)
		}
	}
}

func TestLabelsStart(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 20000; i++ {
		b := make([]byte, r.IntN(40))
		for j := range b {
			b[j] = "ab.c"[r.IntN(4)]
		}
		host := string(b)
		want := 0
		if d1 := strings.LastIndexByte(host, '.'); d1 >= 0 {
			want = strings.LastIndexByte(host[:d1], '.') + 1
		}
		if got := labelsStart(host, 2); got != want {
			t.Fatalf("labelsStart(%q, 2) = %d, want %d", host, got, want)
		}
		want3 := 0
		if want > 0 {
			want3 = strings.LastIndexByte(host[:want-1], '.') + 1
		}
		if got := labelsStart(host, 3); got != want3 {
			t.Fatalf("labelsStart(%q, 3) = %d, want %d", host, got, want3)
		}
	}
}

// TestSectionOversizedBucket writes a whole list into a single bucket, far
// beyond what two-byte sub-bucket offsets reach, and finds every entry.
func TestSectionOversizedBucket(t *testing.T) {
	seed := maphash.MakeSeed()
	list := genDomains(9, 20000)
	var keys []byte
	var ents []pent
	for _, d := range list {
		var buf [MaxDomainLen]byte
		k, _ := hostKey(&buf, d)
		fam := labelsLen(k, 2)
		ents = append(ents, pent{h: prefixHash(seed, k[:fam]), off: uint32(len(keys)), n: uint8(len(k)), ul: uint8(fam)})
		keys = append(keys, k...)
	}
	slices.SortFunc(ents, func(x, y pent) int {
		if c := cmp.Compare(x.h, y.h); c != 0 {
			return c
		}
		return bytes.Compare(keys[x.off:x.off+uint32(x.n)], keys[y.off:y.off+uint32(y.n)])
	})
	starts := make([]uint32, 1)
	w := sectionWriter{starts: starts, end: 1, bucket: -1}
	skipped := map[string]bool{}
	for i := 0; i < len(ents); {
		e := ents[i]
		prefix := keys[e.off : e.off+uint32(e.ul)]
		j := i + 1
		for j < len(ents) && ents[j].h == e.h && underPrefix(keys[ents[j].off:ents[j].off+uint32(ents[j].n)], prefix) {
			j++
		}
		if !w.unit(e.h, keys, ents[i:j]) {
			skipped[string(prefix)] = true
		}
		i = j
	}
	w.finish()
	if len(w.data) < 4*0xffff {
		t.Fatalf("bucket of %d bytes: too small for the test", len(w.data))
	}
	sec := newSection([][]byte{w.data}, starts, 0, 0)
	for _, d := range list {
		var buf [MaxDomainLen]byte
		k, _ := hostKey(&buf, d)
		fam := labelsLen(k, 2)
		if skipped[string(k[:fam])] {
			continue
		}
		if !sec.find(prefixHash(seed, k[:fam]), k, fam, true) {
			t.Fatalf("%q not found", d)
		}
	}
}
