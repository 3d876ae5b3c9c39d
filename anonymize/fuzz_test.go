package anonymize

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzStripParams checks the two-pass, allocation-free strip against the obvious
// split-filter-join.
func FuzzStripParams(f *testing.F) {
	for _, seed := range []string{"", "a=1", "utm_source=x&a", "&&utm_x=1&&", "a=%zz&fbclid", "utm%5Fa=1&b=%2B+", "=&=&"} {
		f.Add(seed)
	}
	s := compileParamSet(append(DefaultStripParams(), "x?y", "[ab]c"))
	f.Fuzz(func(t *testing.T, q string) {
		var kept []string
		for _, seg := range strings.Split(q, "&") {
			if !s.match(seg) {
				kept = append(kept, seg)
			}
		}
		want := strings.Join(kept, "&")
		got, changed := s.strip(q)
		if got != want {
			t.Fatalf("strip(%q) = %q, want %q", q, got, want)
		}
		if changed != (len(kept) != strings.Count(q, "&")+1) {
			t.Fatalf("strip(%q) changed = %v", q, changed)
		}
	})
}

// FuzzSessionOnly checks that sessionOnly keeps the cookie pair, removes every
// lifetime attribute unless the cookie is a deletion, and is idempotent.
func FuzzSessionOnly(f *testing.F) {
	for _, seed := range []string{"a=1", "a=1; Max-Age=60", "a=; Max-Age=0", "a=1;expires=Wed, 21 Oct 2099 07:28:00 GMT",
		"a=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=5", ";;;", "max-age=1; max-age=2"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, sc string) {
		got := sessionOnly(sc, testNow)
		if again := sessionOnly(got, testNow); again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q", sc, got, again)
		}
		if got == sc {
			return
		}
		pair, _, _ := strings.Cut(sc, ";")
		if !strings.HasPrefix(got, pair) || len(got) >= len(sc) {
			t.Fatalf("sessionOnly(%q) = %q", sc, got)
		}
		_, attrs, _ := strings.Cut(got, ";")
		for attr := range strings.SplitSeq(attrs, ";") {
			if name, _ := attribute(attr); strings.EqualFold(name, "max-age") || strings.EqualFold(name, "expires") {
				t.Fatalf("sessionOnly(%q) = %q still has %q", sc, got, attr)
			}
		}
	})
}

// FuzzGenericUserAgent checks that a reduced agent is stable: reducing it again
// gives the same string, and it is a valid header value.
func FuzzGenericUserAgent(f *testing.F) {
	for _, seed := range []string{uaChromeWin, uaEdgeWin, uaFirefoxLin, uaSafariMac, uaChromeAndr, uaCriOS, uaOperaMac, uaCurl, "Windows Chrome/9999", "iPad OS 1"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ua string) {
		a, ok := classify(ua)
		if !ok {
			return
		}
		s := a.String()
		if !validValue(s) {
			t.Fatalf("generic(%q) = %q is not a valid header value", ua, s)
		}
		b, ok := classify(s)
		if !ok || b != a || b.String() != s {
			t.Fatalf("generic(%q) = %q reduces again to %+v (%v)", ua, s, b, ok)
		}
	})
}

// FuzzRefererOrigin checks that the origin mode never lets a path, query,
// fragment or userinfo through.
func FuzzRefererOrigin(f *testing.F) {
	for _, seed := range []string{"https://a.example/p?q#f", "http://u:p@a.example/", "https://a.example", "https://[::1]:8443?x", "ftp://a/b", "https://", "https:///x"} {
		f.Add(seed)
	}
	tgt := target{"https", "shop.example", "443"}
	f.Fuzz(func(t *testing.T, ref string) {
		h := http.Header{"Referer": {ref}}
		rewriteReferer(h, modeOrigin, tgt)
		vs, ok := h["Referer"]
		if !ok {
			return
		}
		got := vs[0]
		scheme, _, end, ok := urlOrigin(got)
		if !ok || end != len(got)-1 || got[end] != '/' || strings.ContainsAny(got[:end], "@?#") ||
			!(strings.EqualFold(scheme, "http") || strings.EqualFold(scheme, "https")) {
			t.Fatalf("origin(%q) = %q", ref, got)
		}
	})
}
