package h1

import (
	"bufio"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/fieldtext"
	"golang.org/x/net/http/httpguts"
)

// ours parses one head as the engine does.
func ours(raw string) (*http.Request, head, error) {
	br := bufio.NewReaderSize(strings.NewReader(raw), bufSize)
	s, err := readHead(br, http.DefaultMaxHeaderBytes+4096, 0)
	if err != nil {
		return nil, head{}, err
	}
	var r http.Request
	var u url.URL
	var vals [12]string
	var te [1]string
	h, perr := parseHead(s, &r, &u, vals[:], &te)
	if perr != nil {
		return nil, h, perr
	}
	return &r, h, nil
}

// theirs parses one head with net/http's ReadRequest and applies the checks
// net/http's server adds (Host for 1.1, version, Expect).
func theirs(raw string) (*http.Request, error) {
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		return nil, err
	}
	if r.ProtoMajor != 1 {
		return nil, fmt.Errorf("505")
	}
	// As net/http's server (conn.readRequest).
	// ReadRequest takes Host out of the header: count the lines.
	var hosts []string
	for _, l := range strings.Split(raw, "\n")[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "host") {
			hosts = append(hosts, fieldtext.TrimOWS(strings.TrimSuffix(v, "\r")))
		}
	}
	haveHost := len(hosts) > 0
	if r.ProtoAtLeast(1, 1) && (!haveHost || len(hosts) == 0) && r.Method != "CONNECT" {
		return nil, fmt.Errorf("missing host")
	}
	if len(hosts) > 1 {
		return nil, fmt.Errorf("too many hosts")
	}
	if len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]) {
		return nil, fmt.Errorf("bad host")
	}
	if e := r.Header.Get("Expect"); e != "" && !strings.EqualFold(e, "100-continue") {
		return nil, fmt.Errorf("417")
	}
	return r, nil
}

// stricter are the refusals the engine adds to net/http's, by the reason
// its parser gives.
var stricter = []*Error{errCLTE, errTE10, errFold, errSpace, errMultiCL, errBareCR, errNoTarget, errAuthority}

// TestConformance: the engine accepts what net/http's ReadRequest accepts
// and reads it the same, refuses what it refuses, and refuses more only
// for the reasons in stricter.
func TestConformance(t *testing.T) {
	for _, raw := range conformanceHeads {
		t.Run(strings.SplitN(raw, "\r", 2)[0], func(t *testing.T) { compare(t, raw) })
	}
}

func compare(t *testing.T, raw string) {
	t.Helper()
	got, gh, err := ours(raw)
	want, werr := theirs(raw)
	switch {
	case err != nil && werr != nil:
		return
	case err != nil:
		e, ok := err.(*Error)
		if !ok || !slices.Contains(stricter, e) {
			t.Fatalf("%q: refused (%v), net/http accepts", raw, err)
		}
		return
	case werr != nil:
		t.Fatalf("%q: accepted, net/http refuses: %v", raw, werr)
	}
	if got.Method != want.Method || got.RequestURI != want.RequestURI || got.Proto != want.Proto || got.Host != want.Host ||
		got.URL.String() != want.URL.String() || got.Close != want.Close {
		t.Fatalf("%q:\n ours  %s %s %s host=%q url=%s close=%v\n net/http %s %s %s host=%q url=%s close=%v", raw,
			got.Method, got.RequestURI, got.Proto, got.Host, got.URL, got.Close,
			want.Method, want.RequestURI, want.Proto, want.Host, want.URL, want.Close)
	}
	if gh.contentLength != want.ContentLength && !(want.ContentLength == 0 && gh.contentLength == 0) {
		t.Fatalf("%q: Content-Length %d, net/http %d", raw, gh.contentLength, want.ContentLength)
	}
	delete(want.Header, "Host")
	for k, v := range want.Header {
		if !slices.Equal(got.Header[k], v) {
			t.Fatalf("%q: %s = %q, net/http %q", raw, k, got.Header[k], v)
		}
	}
	if len(got.Header) != len(want.Header) {
		t.Fatalf("%q: header %v, net/http %v", raw, got.Header, want.Header)
	}
}

var conformanceHeads = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /p/a%20b?q=1&r=%2F HTTP/1.1\r\nHost: example.test:8080\r\nAccept: */*\r\nUser-Agent: x\r\n\r\n",
	"GET http://example.test/x?y HTTP/1.1\r\nHost: other\r\n\r\n",
	"CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
	"GET / HTTP/1.1\nHost: a\nX: b\n\n",
	"GET / HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n",
	"GET / HTTP/1.1\r\nhost: a\r\nx-lower: v\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Sp:   v  \r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
	"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4 4\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 4\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX\x01: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n",
	"GET / HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
	"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1x\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
	"GET /\r\n\r\n",
	"G ET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
	"G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET foo HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET http://[::1]:80/ HTTP/1.1\r\nHost: a\r\n\r\n",
	"CONNECT /path HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nExpect: bogus\r\nContent-Length: 1\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nTrailer: Content-Length\r\nTransfer-Encoding: chunked\r\n\r\n",
	"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n",
}

// FuzzParse: on any bytes, the engine never accepts a head net/http's
// ReadRequest refuses, reads what both accept the same, and refuses more
// only for the reasons in stricter.
func FuzzParse(f *testing.F) {
	for _, h := range conformanceHeads {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		// A complete head only: what follows its empty line is a body.
		end, _ := headEnd([]byte(raw), 0)
		if end <= 0 || strings.HasPrefix(raw, "\r") || strings.HasPrefix(raw, "\n") {
			return
		}
		compare(t, raw[:end])
	})
}

func BenchmarkParseHead(b *testing.B) {
	raw := "GET /index.html?q=1 HTTP/1.1\r\nHost: example.test\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-GB,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\n\r\n"
	b.Run("h1", func(b *testing.B) {
		sr := strings.NewReader(raw)
		br := bufio.NewReaderSize(sr, bufSize)
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			sr.Reset(raw)
			br.Reset(sr)
			s, err := readHead(br, 1<<20, 0)
			if err != nil {
				b.Fatal(err)
			}
			var st stream
			var r http.Request
			if _, err := parseHead(s, &r, &st.url, st.vals[:], &st.te); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("net-http", func(b *testing.B) {
		sr := strings.NewReader(raw)
		br := bufio.NewReaderSize(sr, bufSize)
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			sr.Reset(raw)
			br.Reset(sr)
			if _, err := http.ReadRequest(br); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestReadHeadKnownLength: a head whose length the connection found already
// (conn.headBuffered) is read as readHead finds it itself, and a known
// length over the limit is refused as the head would be.
func TestReadHeadKnownLength(t *testing.T) {
	for _, raw := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\nGET /next HTTP/1.1\r\n",
		"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
		"GET /" + strings.Repeat("x", 300) + " HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		for _, limit := range []int{1 << 20, 100} {
			br := bufio.NewReaderSize(strings.NewReader(raw), bufSize)
			buf, _ := br.Peek(len(raw))
			known, _ := headEnd(buf, 0)
			got, gerr := readHead(br, limit, known)
			rest, _ := br.Peek(br.Buffered())
			want, werr := readHead(bufio.NewReaderSize(strings.NewReader(raw), bufSize), limit, 0)
			if got != want || fmt.Sprint(gerr) != fmt.Sprint(werr) {
				t.Errorf("%q limit %d: known %d gives %q %v, unknown %q %v", raw, limit, known, got, gerr, want, werr)
			}
			if gerr == nil && string(rest) != raw[len(got):] {
				t.Errorf("%q: left %q", raw, rest)
			}
		}
	}
}

// TestAbsoluteTarget: an absolute-form target (a forward proxy's request)
// is read as url.ParseRequestURI reads it, every combination below, and the
// common ones (a plain name or address, port, path and query) without an
// allocation.
func TestAbsoluteTarget(t *testing.T) {
	schemes := []string{"http://", "https://", "HTTP://", "ftp://", "http:/", "http:"}
	hosts := []string{"127.0.0.1:18080", "example.test", "Example.TEST:8080", "a-b.c", "h:", ":80", "", "h:8x", "[::1]:80",
		"user@h", "h%41", "h_1", "h:80:90", "xn--bcher-kva.example", "h:0080"}
	rests := []string{"", "/", "/small", "/a/b.c?q=1&r=2", "?q", "/p?", "/p??", "/p?a?", "//x", "/a%20b", "/a b", "/p#f",
		"/p?q#f", "/caf\u00e9", "/~u/$&+,;=:@", "/p?q=%zz", "/a/../b"}
	for _, s := range schemes {
		for _, h := range hosts {
			for _, r := range rests {
				target := s + h + r
				if !validTarget(target) {
					continue
				}
				want, werr := url.ParseRequestURI(target)
				var got url.URL
				gerr := parseTarget(http.MethodGet, target, &got)
				if (werr != nil) != (gerr != nil) {
					t.Errorf("%q: error %v, url's %v", target, gerr, werr)
					continue
				}
				if werr == nil && !sameURL(&got, want) {
					t.Errorf("%q: got %#v, url's %#v", target, got, *want)
				}
			}
		}
	}
	for _, target := range []string{"http://127.0.0.1:18080/small", "https://example.test/a/b.c?q=1", "http://example.test", "http://h:80?q"} {
		var u url.URL
		if !plainAbsolute(target, &u) {
			t.Errorf("%q: not read without url.Parse", target)
		}
		if n := testing.AllocsPerRun(100, func() { _ = parseTarget(http.MethodGet, target, &u) }); n != 0 {
			t.Errorf("%q: %v allocations", target, n)
		}
	}
}

// FuzzAbsoluteTarget: whatever plainAbsolute takes, url.ParseRequestURI
// reads the same.
func FuzzAbsoluteTarget(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:18080/small", "https://h:1/p?q", "http://h?", "http://a-b.c//x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		if !validTarget(target) {
			return
		}
		var got url.URL
		if !plainAbsolute(target, &got) {
			return
		}
		want, err := url.ParseRequestURI(target)
		if err != nil {
			t.Fatalf("%q: taken, but url refuses it: %v", target, err)
		}
		if !sameURL(&got, want) {
			t.Fatalf("%q: got %#v, url's %#v", target, got, *want)
		}
	})
}

// sameURL reports whether a and b hold the same fields (user information
// compared by value).
func sameURL(a, b *url.URL) bool {
	ac, bc := *a, *b
	ac.User, bc.User = nil, nil
	return ac == bc && a.User.String() == b.User.String() && (a.User == nil) == (b.User == nil)
}

// BenchmarkParseTarget: a forward proxy's target (wrk's in peers.sh's
// scenario d) and an origin-form one.
func BenchmarkParseTarget(b *testing.B) {
	for _, target := range []string{"http://127.0.0.1:18080/small", "/small"} {
		b.Run(strings.TrimPrefix(target[:min(len(target), 7)], "/"), func(b *testing.B) {
			var u url.URL
			b.ReportAllocs()
			for b.Loop() {
				if err := parseTarget(http.MethodGet, target, &u); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
