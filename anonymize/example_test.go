package anonymize_test

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"

	"github.com/portcullis/portcullis/anonymize"
	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/forward"
)

func ExampleElite() {
	r, _ := http.NewRequest("GET", "http://news.example/", nil)
	r.Header.Set("X-Forwarded-For", "10.0.0.7")
	r.Header.Set("Via", "1.1 corp-proxy")
	r.Header.Set("From", "alice@example.org")
	r.Header.Set("Accept-Encoding", "br")

	anonymize.Elite().Request(r, netip.MustParseAddr("192.0.2.1"))
	fmt.Println(r.Header)
	// Output: map[Accept-Encoding:[br] User-Agent:[]]
}

func ExampleTransparent() {
	r, _ := http.NewRequest("GET", "http://news.example/", nil)
	r.Header.Set("X-Forwarded-For", "10.0.0.7")

	anonymize.Transparent().Request(r, netip.MustParseAddr("192.0.2.1"))
	fmt.Println(r.Header.Get("X-Forwarded-For"))
	fmt.Println(r.Header.Get("Via"))
	// Output:
	// 10.0.0.7, 192.0.2.1
	// 1.1 portcullis
}

func ExampleCompile() {
	trackers := func(name string) (filter.Matcher, bool) {
		if name != "easyprivacy" {
			return nil, false
		}
		return hosts{"tracker.example": true}, true
	}
	p, err := anonymize.Compile("shop", anonymize.ProfileConfig{
		Level:       "elite",
		Referrer:    "origin",
		Cookies:     "third-party",
		GPC:         true,
		StripParams: []string{"utm_*", "fbclid"},
		Trackers:    []string{"easyprivacy"},
	}, trackers)
	if err != nil {
		fmt.Println(err)
		return
	}
	r, _ := http.NewRequest("GET", "http://shop.example/item?id=7&utm_source=mail&q=a%20b+c&fbclid=x", nil)
	r.Header.Set("Referer", "https://mail.example/inbox/42")
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	r.Header.Set("Cookie", "id=alice")
	p.Request(r, netip.Addr{})

	fmt.Println(r.URL)
	fmt.Println(r.Header.Get("Referer"), r.Header.Get("Sec-Gpc"), r.Header["Cookie"] == nil)
	fmt.Println(p.TrackerLists(), p.Tracker("tracker.example"))
	// Output:
	// http://shop.example/item?id=7&q=a%20b+c
	// https://mail.example/ 1 true
	// [easyprivacy] true
}

func ExampleCompile_invalid() {
	_, err := anonymize.Compile("p", anonymize.ProfileConfig{Level: "distorting", Trackers: []string{"nope"}}, nil)
	fmt.Println(err)
	// Output: anonymize profile "p": level: unknown level "distorting" (want transparent, anonymous or elite); trackers[0]: unknown list "nope"
}

func ExampleProfile_Response() {
	p, _ := anonymize.Compile("site", anonymize.ProfileConfig{
		SessionCookies: true,
		HideOrigin:     &anonymize.HideOriginConfig{},
	}, nil)
	u, _ := url.Parse("https://www.example/")
	resp := &http.Response{
		Header: http.Header{
			"Server":       {"Apache/2.4.58 (Ubuntu)"},
			"X-Powered-By": {"PHP/8.3.6"},
			"Set-Cookie":   {"sid=1; Max-Age=31536000; Path=/; Secure"},
			"Content-Type": {"text/html"},
		},
		Request: &http.Request{URL: u, Header: http.Header{}},
	}
	p.Response(resp)
	fmt.Println(resp.Header)
	// Output: map[Content-Type:[text/html] Set-Cookie:[sid=1; Path=/; Secure]]
}

// hosts is a filter.Matcher over exact host names.
type hosts map[string]bool

func (h hosts) Match(host string) bool { return h[host] }

// ExampleCompileProfiles shows the wiring: compile the policy's profiles once per
// reload and hand the forward door a lookup that never returns a typed nil.
func ExampleCompileProfiles() {
	profiles, err := anonymize.CompileProfiles(map[string]anonymize.ProfileConfig{
		"school": {Level: "anonymous", Referrer: "strip"},
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	lookup := func(name string) forward.Anonymizer {
		if p := profiles.Get(name); p != nil {
			return p
		}
		return nil // an unknown name: no *Profile(nil) inside the interface
	}
	fmt.Println(profiles.Names())
	fmt.Println(lookup("") != nil, lookup("school") != nil, lookup("nope") == nil)
	// Output:
	// [anonymous elite privacy school transparent]
	// true true true
}
