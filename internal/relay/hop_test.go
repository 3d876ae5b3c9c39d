package relay

import (
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestRemoveHopByHop(t *testing.T) {
	tests := []struct {
		name        string
		in          http.Header
		keepUpgrade bool
		want        http.Header
	}{
		{
			name: "fixed list",
			in: http.Header{
				"Connection": {"keep-alive"}, "Keep-Alive": {"timeout=5"}, "Proxy-Connection": {"keep-alive"},
				"Proxy-Authenticate": {"Basic"}, "Proxy-Authorization": {"Basic Zm9vOmJhcg=="}, "Te": {"gzip"},
				"Trailer": {"X-Sum"}, "Transfer-Encoding": {"chunked"}, "Upgrade": {"websocket"},
				"Accept": {"*/*"},
			},
			want: http.Header{"Accept": {"*/*"}},
		},
		{
			name: "names listed in Connection, any case, repeated lines",
			in: http.Header{
				"Connection": {"X-Secret, close", " x-other ,,"}, "X-Secret": {"1"}, "X-Other": {"2"}, "X-Kept": {"3"},
			},
			want: http.Header{"X-Kept": {"3"}},
		},
		{
			name: "connection options close and keep-alive",
			in:   http.Header{"Connection": {"close, Keep-Alive"}, "Close": {"x"}, "Keep-Alive": {"timeout=5"}, "Accept": {"*/*"}},
			want: http.Header{"Accept": {"*/*"}},
		},
		{
			name: "a large header",
			in: func() http.Header {
				h := http.Header{"Connection": {"X-Secret"}, "X-Secret": {"1"}, "Te": {"trailers"}, "Transfer-Encoding": {"chunked"}, "Proxy-Authorization": {"Basic Zm9vOmJhcg=="}}
				for i := range 30 {
					h["X-Field-"+strconv.Itoa(i)] = []string{"v"}
				}
				return h
			}(),
			want: func() http.Header {
				h := http.Header{"Te": {"trailers"}}
				for i := range 30 {
					h["X-Field-"+strconv.Itoa(i)] = []string{"v"}
				}
				return h
			}(),
		},
		{
			name: "TE trailers survives as trailers only",
			in:   http.Header{"Te": {"gzip;q=0.5, trailers"}},
			want: http.Header{"Te": {"trailers"}},
		},
		{
			name:        "upgrade kept when relaying one",
			in:          http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}, "Keep-Alive": {"1"}, "Sec-Websocket-Key": {"k"}},
			keepUpgrade: true,
			want:        http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Key": {"k"}},
		},
		{
			name:        "upgrade without Connection token is still removed",
			in:          http.Header{"Upgrade": {"websocket"}},
			keepUpgrade: true,
			want:        http.Header{},
		},
		{
			name: "upgrade removed when not relaying one",
			in:   http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}},
			want: http.Header{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.in.Clone()
			if tt.keepUpgrade {
				RemoveHopByHopKeepUpgrade(h)
			} else {
				RemoveHopByHop(h)
			}
			if !reflect.DeepEqual(h, tt.want) {
				t.Errorf("got %v, want %v", h, tt.want)
			}
		})
	}
}

func TestRemoveHopByHopNil(t *testing.T) {
	RemoveHopByHop(nil) // must not panic
}

// FuzzRemoveHopByHop checks that no hop-by-hop field, and no field named in
// Connection, survives (TE aside, which may come back as exactly "trailers").
func FuzzRemoveHopByHop(f *testing.F) {
	f.Add("keep-alive, X-A", "X-A", "trailers")
	f.Add("Upgrade", "websocket", "gzip")
	f.Add(",,,", "", "")
	f.Fuzz(func(t *testing.T, connection, value, te string) {
		h := http.Header{"Connection": {connection}, "X-A": {value}, "Upgrade": {value}, "Te": {te}, "Accept": {"*/*"}}
		named := map[string]bool{}
		for name := range strings.SplitSeq(connection, ",") {
			if name = strings.TrimSpace(name); name != "" {
				named[http.CanonicalHeaderKey(name)] = true
			}
		}
		RemoveHopByHop(h)
		for name, vs := range h {
			if name == "Te" {
				if len(vs) != 1 || vs[0] != "trailers" {
					t.Fatalf("Te survived as %q", vs)
				}
				continue
			}
			if named[name] || name == "Connection" || name == "Upgrade" {
				t.Fatalf("%s survived: %v", name, h)
			}
		}
	})
}

// BenchmarkRemoveHopByHop: a request's and a response's usual fields, none
// hop-by-hop but a Connection naming nothing else.
func BenchmarkRemoveHopByHop(b *testing.B) {
	req := http.Header{"Accept": {"*/*"}, "User-Agent": {"curl/8"}, "X-Forwarded-For": {"127.0.0.1"}, "Accept-Encoding": {"gzip"}}
	resp := http.Header{"Content-Type": {"text/plain"}, "Content-Length": {"1024"}, "Date": {"Mon, 07 Dec 2026 14:15:40 GMT"}, "Connection": {"keep-alive"}}
	b.ReportAllocs()
	for b.Loop() {
		RemoveHopByHopKeepUpgrade(req)
		RemoveHopByHop(resp)
		resp["Connection"] = []string{"keep-alive"}
	}
}
