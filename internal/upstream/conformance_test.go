package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// recorder is an origin that records the bytes of each request it reads.
type recorder struct {
	*rawServer
	mu   sync.Mutex
	got  []string
	resp string
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{resp: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"}
	r.rawServer = newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			var buf bytes.Buffer
			req, err := http.ReadRequest(bufio.NewReader(io.TeeReader(br, &buf)))
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			r.mu.Lock()
			r.got = append(r.got, buf.String())
			r.mu.Unlock()
			io.WriteString(c, r.resp)
		}
	})
	return r
}

func (r *recorder) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[len(r.got)-1]
}

// The origin receives the same bytes from this client as from net/http's
// Transport (with compression off, as every door configures it) for every
// request a door sends: the doors set User-Agent (empty when the client sent
// none), so net/http's default never applies.
func TestConformanceRequestBytes(t *testing.T) {
	rec := newRecorder(t)
	type mk func(base string) *http.Request
	withUA := func(r *http.Request) *http.Request {
		if _, ok := r.Header["User-Agent"]; !ok {
			r.Header["User-Agent"] = []string{""}
		}
		return r
	}
	newReq := func(method, u string, body io.Reader) *http.Request {
		r, err := http.NewRequest(method, u, body)
		if err != nil {
			t.Fatal(err)
		}
		return withUA(r)
	}
	cases := map[string]mk{
		"get with fields": func(b string) *http.Request {
			r := newReq("GET", b+"/p/a%20th?q=1&r=%2F", nil)
			r.Header.Set("User-Agent", "Mozilla/5.0 test")
			r.Header.Add("Accept", "text/html")
			r.Header.Add("Accept", "*/*")
			r.Header.Set("X-Forwarded-For", "192.0.2.1")
			r.Header["Cookie"] = []string{"a=1; b=2"}
			r.Header.Set("Zz-Last", "  padded  ")
			return r
		},
		"no user agent": func(b string) *http.Request { return newReq("GET", b+"/", nil) },
		"host override": func(b string) *http.Request {
			r := newReq("GET", b+"/x", nil)
			r.Host = "site.example:8443"
			return r
		},
		"post in memory": func(b string) *http.Request {
			return newReq("POST", b+"/form", strings.NewReader("a=1&b=2"))
		},
		"post streamed": func(b string) *http.Request {
			r := newReq("POST", b+"/up", io.NopCloser(strings.NewReader("streamed body")))
			r.ContentLength = -1
			return r
		},
		"post streamed with length": func(b string) *http.Request {
			r := newReq("POST", b+"/up", io.NopCloser(strings.NewReader("streamed body")))
			r.ContentLength = 13
			return r
		},
		"put empty": func(b string) *http.Request { return newReq("PUT", b+"/e", http.NoBody) },
		"delete":    func(b string) *http.Request { return newReq("DELETE", b+"/d", nil) },
		"close": func(b string) *http.Request {
			r := newReq("GET", b+"/c", nil)
			r.Close = true
			return r
		},
		"trailers": func(b string) *http.Request {
			r := newReq("POST", b+"/t", io.NopCloser(strings.NewReader("data")))
			r.ContentLength = -1
			r.Trailer = http.Header{"X-Sum": {"9"}, "X-Other": {"o"}}
			return r
		},
		"expect": func(b string) *http.Request {
			r := newReq("GET", b+"/x", nil)
			r.Header.Set("Expect", "100-continue") // no body: sent as is, no wait
			return r
		},
	}
	c := newClient(t, Config{})
	ref := &http.Transport{DisableCompression: true}
	t.Cleanup(ref.CloseIdleConnections)
	for name, build := range cases {
		if _, err := ref.RoundTrip(build(rec.url())); err != nil {
			t.Fatalf("%s: net/http: %v", name, err)
		}
		want := rec.last()
		resp, err := c.RoundTrip(build(rec.url()))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		resp.Body.Close()
		if got := rec.last(); got != want {
			t.Errorf("%s: origin received\n%q\nnet/http sends\n%q", name, got, want)
		}
	}
	// Through a parent proxy: absolute form and Proxy-Authorization.
	pu, _ := url.Parse(rec.url())
	pu.User = url.UserPassword("user", "pw")
	c = newClient(t, Config{Proxy: pu})
	ref = &http.Transport{DisableCompression: true, Proxy: http.ProxyURL(pu)}
	t.Cleanup(ref.CloseIdleConnections)
	build := func() *http.Request {
		r := newReq("GET", "http://origin.test/path?x=y", nil)
		r.Header.Set("Accept", "*/*")
		return r
	}
	if _, err := ref.RoundTrip(build()); err != nil {
		t.Fatal(err)
	}
	want := rec.last()
	resp, err := c.RoundTrip(build())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := rec.last(); got != want {
		t.Errorf("via parent: origin received\n%q\nnet/http sends\n%q", got, want)
	}
}

// On the responses both accept, this client and net/http's Transport give
// the same *http.Response (status, fields, framing, body, trailer).
func TestConformanceResponses(t *testing.T) {
	cases := map[string]struct{ method, raw string }{
		"length":          {"GET", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"},
		"chunked+trailer": {"GET", "HTTP/1.1 200 OK\r\nTrailer: X-A, x-b\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\n\r\n"},
		"http/1.0 close":  {"GET", "HTTP/1.0 200 OK\r\nX-Y: z\r\n\r\nuntil the end"},
		"http/1.0 keep":   {"GET", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"},
		"no content":      {"GET", "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"},
		"not modified":    {"GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\nEtag: \"e\"\r\n\r\n"},
		"head":            {"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"},
		"head no length":  {"HEAD", "HTTP/1.1 200 OK\r\nX: y\r\n\r\n"},
		"conn close":      {"GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"},
		"dup length":      {"GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"},
		"pragma":          {"GET", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n"},
		"folded":          {"GET", "HTTP/1.1 200 OK\r\nX-Long: one\r\n  two\r\nContent-Length: 0\r\n\r\n"},
		"repeated":        {"GET", "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 0\r\n\r\n"},
		"no reason":       {"GET", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"},
		"odd status":      {"GET", "HTTP/1.1 299 Custom  Thing\r\nContent-Length: 0\r\n\r\n"},
		"bare LF":         {"GET", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok"},
		"no length 1.1":   {"GET", "HTTP/1.1 200 OK\r\nX: y\r\n\r\nto close"},
		"early hints":     {"GET", "HTTP/1.1 103 Early Hints\r\nLink: <a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
				if readRequest(br) != nil {
					io.WriteString(c, tc.raw)
				}
			})
			ref := &http.Transport{DisableCompression: true}
			t.Cleanup(ref.CloseIdleConnections)
			want := fetch(t, ref, tc.method, srv.url())
			got := fetch(t, newClient(t, Config{}), tc.method, srv.url())
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

type summary struct {
	Status           string
	Code             int
	Proto            string
	Major, Minor     int
	Header, Trailer  http.Header
	ContentLength    int64
	TransferEncoding []string
	Close            bool
	Body             string
}

func fetch(t *testing.T, rt http.RoundTripper, method, u string) summary {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("%T: %v", rt, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%T: body: %v", rt, err)
	}
	return summary{resp.Status, resp.StatusCode, resp.Proto, resp.ProtoMajor, resp.ProtoMinor, resp.Header, resp.Trailer,
		resp.ContentLength, resp.TransferEncoding, resp.Close, string(b)}
}
