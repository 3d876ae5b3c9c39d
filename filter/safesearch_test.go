package filter

import "testing"

func TestSafeSearchTarget(t *testing.T) {
	all := SafeSearch{Google: true, YouTube: YouTubeStrict, Bing: true, DuckDuckGo: true}
	moderate := SafeSearch{YouTube: YouTubeModerate}
	cases := []struct {
		host   string
		s      SafeSearch
		target string
	}{
		{"www.google.com", all, GoogleSafeTarget},
		{"google.com", all, GoogleSafeTarget},
		{"www.google.de", all, GoogleSafeTarget},
		{"www.google.co.uk", all, GoogleSafeTarget},
		{"google.com.au", all, GoogleSafeTarget},
		{"www.google.co.zw", all, GoogleSafeTarget},
		{"www.google.cat", all, GoogleSafeTarget},
		{"www.google.com", SafeSearch{}, ""},
		{"mail.google.com", all, ""},
		{"www.google.example", all, ""},
		{"www.google.co.uk.evil.test", all, ""},
		{"google", all, ""},
		{"www.youtube.com", all, YouTubeStrictTarget},
		{"m.youtube.com", all, YouTubeStrictTarget},
		{"youtubei.googleapis.com", all, YouTubeStrictTarget},
		{"youtube.googleapis.com", all, YouTubeStrictTarget},
		{"www.youtube-nocookie.com", all, YouTubeStrictTarget},
		{"www.youtube.com", moderate, YouTubeModerateTarget},
		{"www.youtube.com", SafeSearch{Google: true, YouTube: YouTubeOff}, ""},
		{"music.youtube.com", all, ""},
		{"www.bing.com", all, BingSafeTarget},
		{"bing.com", all, BingSafeTarget},
		{"www.bing.com", moderate, ""},
		{"duckduckgo.com", all, DuckDuckGoSafeTarget},
		{"start.duckduckgo.com", all, DuckDuckGoSafeTarget},
		{"duckduckgo.com", moderate, ""},
		{"example.com", all, ""},
	}
	for _, c := range cases {
		got, ok := SafeSearchTarget(c.host, c.s)
		if got != c.target || ok != (c.target != "") {
			t.Errorf("SafeSearchTarget(%q, %+v) = %q, %v; want %q", c.host, c.s, got, ok, c.target)
		}
	}
}

func TestSafeSearchMergeAndValidate(t *testing.T) {
	a := SafeSearch{Google: true, YouTube: YouTubeModerate}
	b := SafeSearch{Bing: true, YouTube: YouTubeStrict}
	m := a.Merge(b)
	if !m.Google || !m.Bing || m.DuckDuckGo || m.YouTube != YouTubeStrict {
		t.Fatalf("merge = %+v", m)
	}
	if got := b.Merge(SafeSearch{YouTube: YouTubeModerate}).YouTube; got != YouTubeStrict {
		t.Fatalf("strict merged with moderate = %q", got)
	}
	if (SafeSearch{YouTube: YouTubeOff}).Enabled() || !m.Enabled() {
		t.Fatal("Enabled wrong")
	}
	bad := SafeSearch{YouTube: "lenient"}
	if errs := bad.Validate(); len(errs) != 1 || errs[0].Path != "youtube" {
		t.Fatalf("Validate = %v", errs)
	}
	if errs := m.Validate(); errs != nil {
		t.Fatalf("Validate(valid) = %v", errs)
	}
}

func TestSafeSearchTargetNoAlloc(t *testing.T) {
	s := SafeSearch{Google: true, YouTube: YouTubeStrict}
	n := testing.AllocsPerRun(100, func() {
		SafeSearchTarget("www.google.co.uk", s)
		SafeSearchTarget("example.org", s)
	})
	if n != 0 {
		t.Fatalf("allocs = %v", n)
	}
}

func BenchmarkSafeSearchTarget(b *testing.B) {
	s := SafeSearch{Google: true, YouTube: YouTubeStrict}
	b.ReportAllocs()
	for b.Loop() {
		SafeSearchTarget("www.google.co.uk", s)
		SafeSearchTarget("cdn.example.org", s)
	}
}
