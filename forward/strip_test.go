package forward

import (
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"testing"

	"github.com/elazarl/goproxy"
)

// TestStripProxyHeadersMatchesGoproxy checks that stripProxyHeaders (run in
// roundTrip, with goproxy's KeepHeader on) edits requests exactly as goproxy's
// RemoveProxyHeaders did with KeepAcceptEncoding on.
func TestStripProxyHeadersMatchesGoproxy(t *testing.T) {
	cases := []http.Header{
		{},
		{"Accept-Encoding": {"gzip"}, "Connection": {"keep-alive"}, "Proxy-Connection": {"keep-alive"}},
		{"Proxy-Authorization": {"Basic eDp5"}, "Proxy-Authenticate": {"Basic"}, "X-Other": {"1"}},
		{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}},
		{"Connection": {"keep-alive, UPGRADE"}, "Upgrade": {"WebSocket"}},
		{"Connection": {"Upgrade"}, "Upgrade": {"h2c"}},
		{"Connection": {"Upgrade"}},
		{"connection": {"upgrade"}, "upgrade": {"websocket"}, "Connection": {"close"}},
		{"Upgrade": {"websocket"}},
	}
	gp := &goproxy.ProxyCtx{Proxy: &goproxy.ProxyHttpServer{KeepAcceptEncoding: true, Logger: goproxyLogger{slog.New(slog.DiscardHandler)}}}
	for i, h := range cases {
		want := &http.Request{Header: h.Clone(), RequestURI: "http://example.com/", URL: &url.URL{Scheme: "http", Host: "example.com", Path: "/"}}
		goproxy.RemoveProxyHeaders(gp, want)
		got := &http.Request{Header: h.Clone(), RequestURI: "http://example.com/", URL: &url.URL{Scheme: "http", Host: "example.com", Path: "/"}}
		stripProxyHeaders(got)
		if !reflect.DeepEqual(got.Header, want.Header) || got.RequestURI != want.RequestURI {
			t.Errorf("case %d %v: got %v %q, goproxy %v %q", i, h, got.Header, got.RequestURI, want.Header, want.RequestURI)
		}
	}
}
