package anonymize

import (
	"net/http"
	"net/url"
	"reflect"
	"testing"
)

func targetOf(t *testing.T, rawURL string) target {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return requestTarget(&http.Request{URL: u, Host: u.Host})
}

func TestRequestTarget(t *testing.T) {
	tests := []struct {
		url  string
		want target
	}{
		{"http://Shop.Example/p", target{"http", "Shop.Example", "80"}},
		{"https://shop.example.:8443/p", target{"https", "shop.example", "8443"}},
		{"https://[2001:db8::1]/", target{"https", "2001:db8::1", "443"}},
		{"http://[2001:db8::1]:8080/", target{"http", "2001:db8::1", "8080"}},
	}
	for _, tt := range tests {
		if got := targetOf(t, tt.url); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.url, got, tt.want)
		}
	}
	// Origin-form request as a reverse proxy or server sees it.
	r := &http.Request{URL: &url.URL{Path: "/x"}, Host: "site.example:8080"}
	if got := requestTarget(r); got != (target{"http", "site.example", "8080"}) {
		t.Errorf("origin-form: %+v", got)
	}
}

func TestReferrer(t *testing.T) {
	const to = "https://shop.example/cart?id=1"
	tests := []struct {
		mode    mode
		referer string
		want    []string // nil: removed
	}{
		{modeKeep, "https://other.example/a?b", []string{"https://other.example/a?b"}},
		{modeStrip, "https://shop.example/a", nil},
		{modeSameOrigin, "https://shop.example/list?q=shoes", []string{"https://shop.example/list?q=shoes"}},
		{modeSameOrigin, "https://SHOP.example:443/list", []string{"https://SHOP.example:443/list"}},
		{modeSameOrigin, "http://shop.example/list", nil},      // other scheme
		{modeSameOrigin, "https://shop.example:444/list", nil}, // other port
		{modeSameOrigin, "https://www.shop.example/list", nil}, // same site, other origin
		{modeSameOrigin, "https://tracker.example/", nil},
		{modeSameOrigin, "not a url", nil},
		{modeOrigin, "https://news.example/story/42?utm=x#top", []string{"https://news.example/"}},
		{modeOrigin, "https://news.example:8443?x", []string{"https://news.example:8443/"}},
		{modeOrigin, "https://news.example", []string{"https://news.example/"}},
		{modeOrigin, "https://news.example/", []string{"https://news.example/"}},
		{modeOrigin, "https://user:pw@news.example/a", nil},
		{modeOrigin, "android-app://com.example.app/", nil},
	}
	tgt := targetOf(t, to)
	for _, tt := range tests {
		h := http.Header{"Referer": {tt.referer}}
		rewriteReferer(h, tt.mode, tgt)
		if got := h["Referer"]; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s %q: got %q, want %q", tt.mode, tt.referer, got, tt.want)
		}
	}
}

func TestThirdParty(t *testing.T) {
	tests := []struct {
		name   string
		target string
		header http.Header
		want   bool
	}{
		{"no context is first-party", "https://tracker.example/p", http.Header{}, false},
		{"Sec-Fetch-Site cross-site", "https://tracker.example/p", http.Header{"Sec-Fetch-Site": {"cross-site"}}, true},
		{"Sec-Fetch-Site same-site", "https://cdn.news.example/p", http.Header{"Sec-Fetch-Site": {"same-site"}}, false},
		{"Sec-Fetch-Site none (typed URL)", "https://tracker.example/p", http.Header{"Sec-Fetch-Site": {"none"}}, false},
		{"Sec-Fetch-Site wins over Referer", "https://tracker.example/p",
			http.Header{"Sec-Fetch-Site": {"same-origin"}, "Referer": {"https://news.example/"}}, false},
		{"Referer other site", "https://tracker.example/pixel", http.Header{"Referer": {"https://news.example/story"}}, true},
		{"Referer subdomain same site", "https://static.news.example/a.css", http.Header{"Referer": {"https://www.news.example/"}}, false},
		{"Referer public suffix boundary", "https://bob.github.io/", http.Header{"Referer": {"https://alice.github.io/"}}, true},
		{"Referer same registrable under co.uk", "https://img.shop.co.uk/", http.Header{"Referer": {"https://www.shop.co.uk/"}}, false},
		{"Referer other registrable under co.uk", "https://img.other.co.uk/", http.Header{"Referer": {"https://www.shop.co.uk/"}}, true},
		{"Referer IP literal same", "http://192.0.2.1:8080/", http.Header{"Referer": {"http://192.0.2.1/"}}, false},
		{"Referer IP literal other", "http://192.0.2.1/", http.Header{"Referer": {"http://192.0.2.2/"}}, true},
		{"Referer case and trailing dot", "https://Tracker.Example./", http.Header{"Referer": {"https://tracker.example/"}}, false},
		{"Referer unparsable", "https://tracker.example/", http.Header{"Referer": {"about:blank"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := thirdParty(tt.header, targetOf(t, tt.target)); got != tt.want {
				t.Errorf("thirdParty = %v, want %v", got, tt.want)
			}
		})
	}
}
