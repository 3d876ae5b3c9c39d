package forward

import (
	"net/http"
	"net/url"
	"reflect"
	"testing"
)

// TestStripProxyHeaders checks the edits stripProxyHeaders makes before a
// request is relayed (those goproxy's RemoveProxyHeaders made with
// KeepAcceptEncoding on, which an earlier version of this test compared it
// with): RequestURI cleared, Proxy-* fields dropped, Connection dropped unless
// the request is a WebSocket handshake.
func TestStripProxyHeaders(t *testing.T) {
	cases := []struct{ in, want http.Header }{
		{http.Header{}, http.Header{}},
		{http.Header{"Accept-Encoding": {"gzip"}, "Connection": {"keep-alive"}, "Proxy-Connection": {"keep-alive"}},
			http.Header{"Accept-Encoding": {"gzip"}}},
		{http.Header{"Proxy-Authorization": {"Basic eDp5"}, "Proxy-Authenticate": {"Basic"}, "X-Other": {"1"}},
			http.Header{"X-Other": {"1"}}},
		{http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}},
			http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}},
		{http.Header{"Connection": {"keep-alive, UPGRADE"}, "Upgrade": {"WebSocket"}},
			http.Header{"Connection": {"keep-alive, UPGRADE"}, "Upgrade": {"WebSocket"}}},
		{http.Header{"Connection": {"Upgrade"}, "Upgrade": {"h2c"}}, http.Header{"Upgrade": {"h2c"}}},
		{http.Header{"Connection": {"Upgrade"}}, http.Header{}},
		{http.Header{"connection": {"upgrade"}, "upgrade": {"websocket"}, "Connection": {"close"}},
			http.Header{"connection": {"upgrade"}, "upgrade": {"websocket"}, "Connection": {"close"}}},
		{http.Header{"Upgrade": {"websocket"}}, http.Header{"Upgrade": {"websocket"}}},
	}
	for i, c := range cases {
		r := &http.Request{Header: c.in.Clone(), RequestURI: "http://example.com/", URL: &url.URL{Scheme: "http", Host: "example.com", Path: "/"}}
		stripProxyHeaders(r)
		if !reflect.DeepEqual(r.Header, c.want) || r.RequestURI != "" {
			t.Errorf("case %d %v: got %v %q, want %v and no RequestURI", i, c.in, r.Header, r.RequestURI, c.want)
		}
	}
}
