package anonymize

import (
	"net/http"
	"net/url"
	"reflect"
	"testing"
)

const (
	uaChromeWin   = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.86 Safari/537.36"
	uaEdgeWin     = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.70"
	uaFirefoxLin  = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	uaSafariMac   = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1.1 Safari/605.1.15"
	uaChromeAndr  = "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro Build/AP2A.240805.005) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.102 Mobile Safari/537.36"
	uaCriOS       = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/130.0.6723.90 Mobile/15E148 Safari/604.1"
	uaOperaMac    = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36 OPR/114.0.0.0"
	uaFirefoxAndr = "Mozilla/5.0 (Android 14; Mobile; LG-M255; rv:132.0) Gecko/132.0 Firefox/132.0"
	uaCurl        = "curl/8.5.0"
)

func TestGenericUserAgent(t *testing.T) {
	tests := []struct{ in, want string }{
		{uaChromeWin, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"},
		{uaEdgeWin, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"},
		{uaFirefoxLin, "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"},
		{uaSafariMac, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15"},
		{uaChromeAndr, "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36"},
		{uaCriOS, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"},
		{uaOperaMac, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36"},
		{uaFirefoxAndr, "Mozilla/5.0 (Android 10; Mobile; rv:132.0) Gecko/132.0 Firefox/132.0"},
		{uaCurl, uaCurl}, // a tool keeps its agent: dressed as Chrome it would stand out
		{"Wget/1.21.4", "Wget/1.21.4"},
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
		{"Mozilla/5.0 (Windows NT 10.0) Chrome/0123.0", DefaultUserAgent}, // a browser, no sane version
	}
	p := mustCompile(t, ProfileConfig{UserAgent: "generic"})
	for _, tt := range tests {
		r := &http.Request{Header: http.Header{"User-Agent": {tt.in}}}
		p.Request(r, testClient)
		if got := r.Header.Get("User-Agent"); got != tt.want {
			t.Errorf("generic(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestUserAgentModes(t *testing.T) {
	const custom = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	tests := []struct {
		name string
		cfg  ProfileConfig
		in   []string // nil: absent
		want []string // nil: sent as none
	}{
		{"keep", ProfileConfig{}, []string{uaCurl}, []string{uaCurl}},
		{"keep absent", ProfileConfig{}, nil, nil},
		{"replace default", ProfileConfig{UserAgent: "replace"}, []string{uaCurl}, []string{DefaultUserAgent}},
		{"replace custom", ProfileConfig{UserAgent: "replace", UserAgentString: custom}, []string{uaChromeWin}, []string{custom}},
		{"replace absent", ProfileConfig{UserAgent: "replace"}, nil, []string{DefaultUserAgent}},
		{"generic absent", ProfileConfig{UserAgent: "generic"}, nil, nil},
		{"generic tool kept", ProfileConfig{UserAgent: "generic", UserAgentString: custom}, []string{uaCurl}, []string{uaCurl}},
		{"generic unknown browser custom", ProfileConfig{UserAgent: "generic", UserAgentString: custom},
			[]string{"Mozilla/5.0 (Nintendo Switch; WifiWebAuthApplet) AppleWebKit/606.4"}, []string{custom}},
	}
	for _, tt := range tests {
		p := mustCompile(t, tt.cfg)
		r := &http.Request{Header: http.Header{}}
		if tt.in != nil {
			r.Header["User-Agent"] = tt.in
		}
		p.Request(r, testClient)
		got, present := r.Header["User-Agent"]
		if !present {
			t.Errorf("%s: User-Agent key missing: net/http would add its default", tt.name)
		}
		if len(got) == 0 {
			got = nil
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func chromeHints() http.Header {
	return http.Header{
		"User-Agent":                  {uaChromeAndr},
		"Sec-Ch-Ua":                   {`"Chromium";v="130", "Google Chrome";v="130", "Not?A_Brand";v="99"`},
		"Sec-Ch-Ua-Mobile":            {"?1"},
		"Sec-Ch-Ua-Platform":          {`"Android"`},
		"Sec-Ch-Ua-Model":             {`"Pixel 8 Pro"`},
		"Sec-Ch-Ua-Platform-Version":  {`"14.0.0"`},
		"Sec-Ch-Ua-Full-Version-List": {`"Chromium";v="130.0.6723.102"`},
		"Sec-Ch-Prefers-Color-Scheme": {"dark"},
	}
}

func TestClientHints(t *testing.T) {
	low := func(ua, mobile, platform string) http.Header {
		h := http.Header{"Sec-Ch-Prefers-Color-Scheme": {"dark"}}
		if ua != "" {
			h["Sec-Ch-Ua"] = []string{ua}
			h["Sec-Ch-Ua-Mobile"] = []string{mobile}
			h["Sec-Ch-Ua-Platform"] = []string{platform}
		}
		return h
	}
	tests := []struct {
		name string
		cfg  ProfileConfig
		want http.Header // the Sec-Ch-* fields after the profile
	}{
		{"keep", ProfileConfig{}, func() http.Header { h := chromeHints(); delete(h, "User-Agent"); return h }()},
		{"strip", ProfileConfig{ClientHints: "strip"}, low("", "", "")},
		{"keep agent, consistent: high entropy removed", ProfileConfig{ClientHints: "consistent"},
			low(chromeHints()["Sec-Ch-Ua"][0], "?1", `"Android"`)},
		{"generic agent: hints rebuilt", ProfileConfig{UserAgent: "generic"},
			low(`"Chromium";v="130", "Google Chrome";v="130", "Not_A Brand";v="99"`, "?1", `"Android"`)},
		{"replaced by the Windows default", ProfileConfig{UserAgent: "replace"},
			low(`"Chromium";v="156", "Google Chrome";v="156", "Not_A Brand";v="99"`, "?0", `"Windows"`)},
		{"replaced by Firefox: no hints", ProfileConfig{UserAgent: "replace", UserAgentString: uaFirefoxLin}, low("", "", "")},
	}
	for _, tt := range tests {
		p := mustCompile(t, tt.cfg)
		r := &http.Request{Header: chromeHints(), URL: &url.URL{Scheme: "https", Host: "example.com"}}
		p.Request(r, testClient)
		got := http.Header{}
		for k, v := range r.Header {
			if hasPrefixFold(k, "sec-ch-") {
				got[k] = v
			}
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %v\nwant %v", tt.name, got, tt.want)
		}
	}
}

// TestClientHintsOnlyToSecureOrigins: Chromium sends client hints only to
// potentially trustworthy origins, so a profile that rebuilds them sets them
// for https, loopback and localhost, and removes them for any other http://
// origin. On bc21481 a plain-http request gained Sec-CH-UA* (a tell).
func TestClientHintsOnlyToSecureOrigins(t *testing.T) {
	for _, tt := range []struct {
		url   string
		hints bool
	}{
		{"https://news.example/", true},
		{"http://news.example/", false},
		{"http://news.example:443/", false},
		{"http://127.0.0.1:8080/", true},
		{"http://[::1]/", true},
		{"http://localhost/", true},
		{"http://app.localhost/", true},
		{"http://10.0.0.1/", false},
	} {
		for _, p := range []*Profile{Privacy(), mustCompile(t, ProfileConfig{UserAgent: "replace"})} {
			u, _ := url.Parse(tt.url)
			for _, in := range []http.Header{chromeHints(), {"User-Agent": {uaChromeWin}}} {
				r := &http.Request{Header: in, URL: u}
				p.Request(r, testClient)
				_, got := r.Header["Sec-Ch-Ua"]
				if got != tt.hints || (!tt.hints && (r.Header["Sec-Ch-Ua-Mobile"] != nil || r.Header["Sec-Ch-Ua-Platform"] != nil)) {
					t.Errorf("%s (%s): hints sent %v, want %v: %v", tt.url, p.Name(), got, tt.hints, r.Header)
				}
			}
		}
	}
}
