package anonymize

import (
	"net/http"
	"reflect"
	"testing"
)

func TestRemoveHeaders(t *testing.T) {
	p := mustCompile(t, ProfileConfig{RemoveHeaders: []string{"x-client-data", "X-Tracking-*", "x-?id"}})
	r := &http.Request{Header: http.Header{
		"X-Client-Data":    {"CIe2yQE="},
		"X-Tracking-Id":    {"1"},
		"X-Tracking-Event": {"2"},
		"X-Uid":            {"3"},
		"X-Tracking":       {"kept: the glob wants a dash"},
		"X-Guid":           {"kept: ? is one character"},
		"Accept":           {"*/*"},
	}}
	p.Request(r, testClient)
	want := http.Header{"X-Tracking": {"kept: the glob wants a dash"}, "X-Guid": {"kept: ? is one character"},
		"Accept": {"*/*"}, "User-Agent": nil}
	if !reflect.DeepEqual(r.Header, want) {
		t.Errorf("got  %v\nwant %v", r.Header, want)
	}
}

func TestHeaderSetMatchesAnyCase(t *testing.T) {
	s := compileHeaderSet([]string{"X-Powered-By*", "server"})
	for _, name := range []string{"X-Powered-By", "x-powered-by-plesk", "X-POWERED-BY", "Server", "SERVER"} {
		if !s.match(name) {
			t.Errorf("%q not matched", name)
		}
	}
	for _, name := range []string{"X-Powered", "Servers", "Xpowered-By"} {
		if s.match(name) {
			t.Errorf("%q matched", name)
		}
	}
}

func TestSetHeadersGPCDNTAcceptLanguage(t *testing.T) {
	p := mustCompile(t, ProfileConfig{
		GPC: true, DNT: true, AcceptLanguage: "en-US,en;q=0.9",
		SetHeaders: map[string]string{"x-via-profile": "yes", "Sec-GPC": "overridden-by-set_headers"},
	})
	r := &http.Request{Header: http.Header{"Accept-Language": {"de-CH,de;q=0.9,fr;q=0.4"}, "User-Agent": {"ua"}}}
	p.Request(r, testClient)
	want := http.Header{
		"Accept-Language": {"en-US,en;q=0.9"},
		"Sec-Gpc":         {"overridden-by-set_headers"},
		"Dnt":             {"1"},
		"X-Via-Profile":   {"yes"},
		"User-Agent":      {"ua"},
	}
	if !reflect.DeepEqual(r.Header, want) {
		t.Errorf("got  %v\nwant %v", r.Header, want)
	}
	// An absent Accept-Language stays absent: normalising must not add a field.
	r = &http.Request{Header: http.Header{}}
	p.Request(r, testClient)
	if _, ok := r.Header["Accept-Language"]; ok {
		t.Error("Accept-Language added to a request that had none")
	}
	// Values are not shared between requests: a caller editing one cannot change the profile.
	r.Header["Dnt"][0] = "edited"
	r = &http.Request{Header: http.Header{}}
	p.Request(r, testClient)
	if r.Header.Get("Dnt") != "1" {
		t.Error("a request's header value aliases the profile's")
	}
}

func TestHideOrigin(t *testing.T) {
	origin := func() http.Header {
		return http.Header{
			"Server":           {"Apache/2.4.58 (Ubuntu)"},
			"X-Powered-By":     {"PHP/8.3.6"},
			"X-Aspnet-Version": {"4.0.30319"},
			"X-Generator":      {"Drupal 10"},
			"X-Drupal-Cache":   {"HIT"},
			"Via":              {"1.1 varnish (Varnish/7.4)"},
			"X-Varnish":        {"32770 3"},
			"X-Backend-Server": {"web-03.internal"},
			"Content-Type":     {"text/html"},
			"Cache-Control":    {"max-age=60"},
		}
	}
	kept := http.Header{"Content-Type": {"text/html"}, "Cache-Control": {"max-age=60"}}
	tests := []struct {
		name string
		cfg  *HideOriginConfig
		want http.Header
	}{
		{"off", nil, origin()},
		{"defaults", &HideOriginConfig{}, kept},
		{"server name", &HideOriginConfig{Server: "portcullis"},
			http.Header{"Content-Type": {"text/html"}, "Cache-Control": {"max-age=60"}, "Server": {"portcullis"}}},
		{"own list", &HideOriginConfig{Remove: []string{"X-*"}},
			http.Header{"Server": {"Apache/2.4.58 (Ubuntu)"}, "Via": {"1.1 varnish (Varnish/7.4)"},
				"Content-Type": {"text/html"}, "Cache-Control": {"max-age=60"}}},
	}
	for _, tt := range tests {
		p := mustCompile(t, ProfileConfig{HideOrigin: tt.cfg})
		resp := &http.Response{Header: origin()}
		p.Response(resp)
		if !reflect.DeepEqual(resp.Header, tt.want) {
			t.Errorf("%s:\n got %v\nwant %v", tt.name, resp.Header, tt.want)
		}
	}
}
