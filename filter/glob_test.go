package filter

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/gobwas/glob"
)

func TestGlobSet(t *testing.T) {
	s, err := NewGlobSet([]string{"*.tiktok.*", "**.Example.com", "cdn?.img.org", "*.{douyin,kuaishou}.com",
		"ad[0-9].net", "exact.host", "*-ads.*"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []hostCase{
		{"www.tiktok.com", true}, {"m.tiktok.de", true}, {"tiktok.com", false},
		{"a.b.tiktok.com", false}, {"www.tiktok.co.uk", false}, {"www.nottiktok.com", false},
		{"example.com", true}, {"a.example.com", true}, {"a.b.example.com", true}, {"badexample.com", false},
		{"cdn1.img.org", true}, {"cdn.img.org", false}, {"cdn12.img.org", false},
		{"v.douyin.com", true}, {"v.kuaishou.com", true}, {"douyin.com", false},
		{"ad7.net", true}, {"ada.net", false},
		{"exact.host", true}, {"a.exact.host", false},
		{"my-ads.net", true}, {"my-ads.a.net", false},
	}
	checkMatcher(t, s, cases)
	if s.Len() != 7 {
		t.Errorf("Len = %d", s.Len())
	}
}

func checkMatcher(t *testing.T, m Matcher, cases []hostCase) {
	t.Helper()
	for _, c := range cases {
		if got := m.Match(c.host); got != c.want {
			t.Errorf("Match(%q) = %v, want %v", c.host, got, c.want)
		}
	}
}

func TestPathGlobSet(t *testing.T) {
	s, err := NewPathGlobSet([]string{"/shorts/*", "/watch/**", "/**/x.mp4", "/api/v?/feed"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []hostCase{
		{"/shorts/abc", true}, {"/shorts/a/b", false}, {"/shorts", false}, {"/Shorts/abc", false},
		{"/watch/a", true}, {"/watch/a/b/c", true}, {"/x.mp4", true}, {"/a/b/x.mp4", true},
		{"/a/b/y.mp4", false}, {"/api/v2/feed", true}, {"/api/v22/feed", false}, {"/", false},
	} {
		if got := s.Match(c.host); got != c.want {
			t.Errorf("Match(%q) = %v, want %v", c.host, got, c.want)
		}
	}
}

func TestGlobSetErrorsNamePattern(t *testing.T) {
	for _, bad := range []string{"{a,b", "[a-", ""} {
		_, err := NewGlobSet([]string{"ok.com", bad})
		var ge *GlobError
		if !errors.As(err, &ge) || ge.Pattern != bad || !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("NewGlobSet(%q): err = %v, want a GlobError naming it", bad, err)
		}
		if _, err := NewPathGlobSet([]string{bad}); err == nil {
			t.Errorf("NewPathGlobSet(%q) accepted", bad)
		}
	}
	var nilSet *GlobSet
	var nilPaths *PathGlobSet
	if nilSet.Match("a") || nilSet.Len() != 0 || nilPaths.Match("/") || nilPaths.Len() != 0 {
		t.Error("nil sets match")
	}
}

func TestGlobSetIndexesCandidates(t *testing.T) {
	var patterns []string
	for _, w := range []string{"alpha", "beta", "gamma", "delta"} {
		patterns = append(patterns, "*."+w+".*", "**."+w+"-cdn.net")
	}
	patterns = append(patterns, "*.*")
	s, err := NewGlobSet(patterns)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(s.idx.byLiteral["alpha"]); got != 1 {
		t.Errorf("patterns under \"alpha\" = %d, want 1", got)
	}
	if got := len(s.idx.always); got != 1 {
		t.Errorf("unindexed patterns = %d, want 1 (*.*)", got)
	}
}

// FuzzGlobSet checks the index never changes an answer: the set must agree
// with trying every pattern.
func FuzzGlobSet(f *testing.F) {
	f.Add("*.tiktok.*", "www.tiktok.com")
	f.Add("**.example.com", "example.com")
	f.Add("a.{b,c.d}.e", "a.c.d.e")
	f.Add("[!x].y", "a.y")
	f.Add("tik\\.tok.com", "tik.tok.com")
	f.Fuzz(func(t *testing.T, pattern, host string) {
		s, err := NewGlobSet([]string{pattern})
		if err != nil {
			return
		}
		g, err := glob.Compiler{Separators: []rune{'.'}, Globstar: true}.Compile(strings.ToLower(pattern))
		if err != nil {
			t.Fatalf("set compiled %q, glob did not: %v", pattern, err)
		}
		if got, want := s.Match(host), g.Match(host); got != want {
			t.Fatalf("pattern %q host %q: set %v, glob %v", pattern, host, got, want)
		}
	})
}

func TestCIDRSet(t *testing.T) {
	s, err := ParseCIDRSet([]string{"10.0.0.0/8", "192.0.2.7", "10.1.2.3/16", "2001:db8::/32", " 198.51.100.0/31 ",
		"::ffff:203.0.113.0/120", "fe80::1", "0.0.0.0/32", "192.0.2.8/30"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		addr string
		want bool
	}{
		{"10.0.0.0", true}, {"10.255.255.255", true}, {"11.0.0.0", false}, {"9.255.255.255", false},
		{"192.0.2.7", true}, {"192.0.2.6", false}, {"192.0.2.8", true}, {"192.0.2.11", true}, {"192.0.2.12", false},
		{"::ffff:10.9.9.9", true}, {"2001:db8:ffff::1", true}, {"2001:db9::", false},
		{"198.51.100.1", true}, {"198.51.100.2", false}, {"203.0.113.77", true}, {"::ffff:203.0.113.1", true},
		{"fe80::1", true}, {"fe80::2", false}, {"0.0.0.0", true}, {"::", false},
	}
	for _, c := range cases {
		if got := s.Match(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("Match(%s) = %v, want %v", c.addr, got, c.want)
		}
	}
	if s.Match(netip.Addr{}) {
		t.Error("zero Addr matched")
	}
	if s.Len() != 7 { // 10/8 absorbs 10.1/16; 192.0.2.7 and .8/30 merge
		t.Errorf("Len = %d, want 7", s.Len())
	}
	all, err := ParseCIDRSet([]string{"0.0.0.0/0", "::/0"})
	if err != nil || !all.Match(netip.MustParseAddr("255.255.255.255")) || !all.Match(netip.MustParseAddr("ffff::1")) || all.Len() != 2 {
		t.Errorf("full ranges: %v", err)
	}
	for _, bad := range []string{"10.0.0.0/33", "nope", "fe80::1%eth0", "::ffff:1.2.3.4/64", ""} {
		_, err := ParseCIDRSet([]string{"10.0.0.0/8", bad})
		if err == nil || !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("ParseCIDRSet(%q): err = %v, want one naming it", bad, err)
		}
	}
	var nilSet *CIDRSet
	if nilSet.Match(netip.MustParseAddr("10.0.0.1")) || nilSet.Len() != 0 {
		t.Error("nil set matched")
	}
}

func TestMatchersDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under -race: allocation counts are meaningless")
	}
	g, err := NewGlobSet([]string{"*.tiktok.*", "**.example.com", "*.*.*.*.*"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCIDRSet([]string{"10.0.0.0/8", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	a4, a6 := netip.MustParseAddr("10.2.3.4"), netip.MustParseAddr("2001:db8::1")
	allocs := testing.AllocsPerRun(100, func() {
		g.Match("www.tiktok.com")
		g.Match("a.b.example.org")
		c.Match(a4)
		c.Match(a6)
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per match", allocs)
	}
}
