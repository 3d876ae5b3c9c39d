package anonymize

import (
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter"
)

var testNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func TestSessionOnly(t *testing.T) {
	tests := []struct{ in, want string }{
		{"id=1", "id=1"},
		{"id=1; Path=/; HttpOnly", "id=1; Path=/; HttpOnly"},
		{"id=1; Max-Age=3600; Path=/", "id=1; Path=/"},
		{"id=1; Expires=Wed, 21 Oct 2099 07:28:00 GMT; Secure", "id=1; Secure"},
		{"id=1;expires=Wed, 21 Oct 2099 07:28:00 GMT;max-age=60;path=/", "id=1;path=/"},
		{"Max-Age=5; Path=/", "Max-Age=5; Path=/"}, // a cookie named Max-Age is not an attribute
		{"id=; Max-Age=0; Path=/", "id=; Max-Age=0; Path=/"},
		{"id=; Max-Age=-1", "id=; Max-Age=-1"},
		{"id=; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "id=; Expires=Thu, 01 Jan 1970 00:00:00 GMT"},
		{"id=1; Max-Age=junk; Path=/", "id=1; Max-Age=junk; Path=/"}, // unparsable: left to the browser
		{"id=1; Expires=junk; Path=/", "id=1; Path=/"},
		{"id=a=b; SameSite=Lax; Max-Age=9", "id=a=b; SameSite=Lax"},
	}
	for _, tt := range tests {
		if got := sessionOnly(tt.in, testNow); got != tt.want {
			t.Errorf("sessionOnly(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// hostSet is a test filter.Matcher over exact hosts and their subdomains.
type hostSet []string

func (s hostSet) Match(host string) bool {
	for _, d := range s {
		if host == d || len(host) > len(d) && host[len(host)-len(d)-1] == '.' && host[len(host)-len(d):] == d {
			return true
		}
	}
	return false
}

func testLists(name string) (filter.Matcher, bool) {
	switch name {
	case "trackers":
		return hostSet{"tracker.example", "ads.example"}, true
	case "empty":
		return hostSet{}, true
	}
	return nil, false
}

func mustCompile(t testing.TB, cfg ProfileConfig) *Profile {
	t.Helper()
	p, err := Compile("test", cfg, testLists)
	if err != nil {
		t.Fatal(err)
	}
	p.now = func() time.Time { return testNow }
	return p
}

func TestRequestCookies(t *testing.T) {
	tests := []struct {
		mode   string
		target string
		header http.Header
		kept   bool
	}{
		{"keep", "https://tracker.example/", http.Header{"Sec-Fetch-Site": {"cross-site"}}, true},
		{"strip", "https://news.example/", http.Header{}, false},
		{"third-party", "https://tracker.example/p.gif", http.Header{"Referer": {"https://news.example/"}}, false},
		{"third-party", "https://news.example/next", http.Header{"Referer": {"https://www.news.example/"}}, true},
		{"third-party", "https://tracker.example/p.gif", http.Header{"Sec-Fetch-Site": {"cross-site"}}, false},
		{"third-party", "https://news.example/", http.Header{"Sec-Fetch-Site": {"none"}}, true},
	}
	for _, tt := range tests {
		p := mustCompile(t, ProfileConfig{Cookies: tt.mode})
		u, _ := url.Parse(tt.target)
		r := &http.Request{URL: u, Host: u.Host, Header: tt.header.Clone()}
		r.Header.Set("Cookie", "id=alice")
		p.Request(r, testClient)
		if got := r.Header.Get("Cookie") == "id=alice"; got != tt.kept {
			t.Errorf("%s to %s with %v: cookie kept = %v, want %v", tt.mode, tt.target, tt.header, got, tt.kept)
		}
	}
}

func TestResponseCookies(t *testing.T) {
	const long = "id=1; Max-Age=31536000; Path=/"
	tests := []struct {
		name   string
		cfg    ProfileConfig
		target string
		req    http.Header
		want   []string
	}{
		{"keep", ProfileConfig{}, "https://news.example/", nil, []string{long}},
		{"strip", ProfileConfig{Cookies: "strip"}, "https://news.example/", nil, nil},
		{"third-party response", ProfileConfig{Cookies: "third-party"}, "https://tracker.example/",
			http.Header{"Sec-Fetch-Site": {"cross-site"}}, nil},
		{"first-party response", ProfileConfig{Cookies: "third-party"}, "https://news.example/",
			http.Header{"Sec-Fetch-Site": {"same-origin"}}, []string{long}},
		{"blocked host", ProfileConfig{BlockSetCookieFrom: []string{"trackers"}}, "https://eu.ads.example/", nil, nil},
		{"unlisted host", ProfileConfig{BlockSetCookieFrom: []string{"trackers"}}, "https://news.example/", nil, []string{long}},
		{"session only", ProfileConfig{SessionCookies: true}, "https://news.example/", nil, []string{"id=1; Path=/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, tt.cfg)
			u, _ := url.Parse(tt.target)
			resp := &http.Response{
				Header:  http.Header{"Set-Cookie": {long}},
				Request: &http.Request{URL: u, Host: u.Host, Header: tt.req},
			}
			p.Response(resp)
			if got := resp.Header["Set-Cookie"]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Set-Cookie = %q, want %q", got, tt.want)
			}
		})
	}
}
