package anonymize

import (
	"net/http"
	"net/netip"
	"reflect"
	"testing"
)

// identifyingRequestHeader is what a client behind other proxies may send: every
// field that names it or a proxy, plus fields every level must keep.
func identifyingRequestHeader() http.Header {
	return http.Header{
		"X-Forwarded-For":          {"10.1.2.3"},
		"X-Forwarded-Host":         {"intranet.example"},
		"X-Forwarded-Proto":        {"https"},
		"X-Forwarded-Port":         {"8443"},
		"Forwarded":                {"for=10.1.2.3;proto=https"},
		"Via":                      {"1.1 corp-proxy"},
		"X-Real-Ip":                {"10.1.2.3"},
		"Client-Ip":                {"10.1.2.3"},
		"True-Client-Ip":           {"10.1.2.3"},
		"Cf-Connecting-Ip":         {"10.1.2.3"},
		"X-Client-Ip":              {"10.1.2.3"},
		"X-Cluster-Client-Ip":      {"10.1.2.3"},
		"X-Proxyuser-Ip":           {"10.1.2.3"},
		"X-Originating-Ip":         {"10.1.2.3"},
		"From":                     {"alice@example.org"},
		"Proxy-Foo":                {"bar"},
		"X_Forwarded_For":          {"10.1.2.3"},
		"X_real_ip":                {"10.1.2.3"},
		"Forwarded-For":            {"10.1.2.3"},
		"X-Envoy-External-Address": {"10.1.2.3"},
		"X_Custom":                 {"kept"},
		"Accept-Encoding":          {"br, zstd"},
		"User-Agent":               {"Mozilla/5.0 test"},
		"Accept":                   {"text/html"},
	}
}

func TestLevelsRequest(t *testing.T) {
	client := netip.MustParseAddr("::ffff:192.0.2.7")
	kept := http.Header{
		"X_Custom":        {"kept"},
		"Accept-Encoding": {"br, zstd"},
		"User-Agent":      {"Mozilla/5.0 test"},
		"Accept":          {"text/html"},
	}
	withVia := kept.Clone()
	withVia["Via"] = []string{"1.1 portcullis"}
	transparent := identifyingRequestHeader()
	transparent["X-Forwarded-For"] = []string{"10.1.2.3, 192.0.2.7"}
	transparent["Via"] = []string{"1.1 corp-proxy, 1.1 portcullis"}

	tests := []struct {
		p    *Profile
		want http.Header
	}{
		{Elite(), kept},
		{Anonymous(), withVia},
		{Transparent(), transparent},
	}
	for _, tt := range tests {
		t.Run(tt.p.Name(), func(t *testing.T) {
			r := &http.Request{Header: identifyingRequestHeader(), ProtoMajor: 1, ProtoMinor: 1}
			tt.p.Request(r, client)
			if !reflect.DeepEqual(r.Header, tt.want) {
				t.Errorf("got  %v\nwant %v", r.Header, tt.want)
			}
		})
	}
}

func TestLevelsResponse(t *testing.T) {
	for _, tt := range []struct {
		p   *Profile
		via []string
	}{
		{Elite(), nil},
		{Anonymous(), []string{"2 portcullis"}},
		{Transparent(), []string{"2 portcullis"}},
	} {
		resp := &http.Response{ProtoMajor: 2}
		tt.p.Response(resp)
		if got := resp.Header["Via"]; !reflect.DeepEqual(got, tt.via) {
			t.Errorf("%s: Via %q, want %q", tt.p.Name(), got, tt.via)
		}
	}
}

func TestParseLevel(t *testing.T) {
	for _, l := range []Level{LevelElite, LevelAnonymous, LevelTransparent} {
		got, ok := ParseLevel(l.String())
		if !ok || got != l {
			t.Errorf("ParseLevel(%q) = %v, %v", l.String(), got, ok)
		}
	}
	if l, ok := ParseLevel(""); !ok || l != LevelElite {
		t.Errorf(`ParseLevel("") = %v, %v; want elite`, l, ok)
	}
	if _, ok := ParseLevel("distorting"); ok {
		t.Error("ParseLevel accepted an unknown level")
	}
}

// testClient is the client address the unit tests pass to Profile.Request.
var testClient = netip.MustParseAddr("192.0.2.7")
