package anonymize

import (
	"net/http"
	"net/url"
	"testing"
)

// benchFields is a typical browser request through the proxy: a third-party
// subresource with cookies, client hints and forwarding headers.
var benchFields = [][2]string{
	{"User-Agent", uaChromeWin},
	{"Accept", "image/avif,image/webp,*/*"},
	{"Accept-Language", "de-CH,de;q=0.9"},
	{"Accept-Encoding", "gzip, deflate, br, zstd"},
	{"Cookie", "_ga=GA1.2.3.4; session=abc"},
	{"Referer", "https://news.example/story/42?ref=home"},
	{"Sec-Fetch-Site", "cross-site"},
	{"Sec-Ch-Ua", `"Chromium";v="131", "Google Chrome";v="131", "Not_A Brand";v="24"`},
	{"Sec-Ch-Ua-Mobile", "?0"},
	{"Sec-Ch-Ua-Platform", `"Windows"`},
	{"X-Forwarded-For", "10.1.2.3"},
	{"Via", "1.1 corp-proxy"},
	{"X-Client-Data", "CIe2yQE="},
}

// benchRequest resets r to the benchmark request, reusing the value slices in buf
// so that the reset itself allocates nothing.
func benchRequest(r *http.Request, h http.Header, buf map[string][]string, u *url.URL) {
	clear(h)
	for _, f := range benchFields {
		v := append(buf[f[0]][:0], f[1])
		buf[f[0]] = v
		h[f[0]] = v
	}
	u.RawQuery = "id=42&utm_source=news&utm_medium=email&fbclid=IwAR0&lang=en"
	*r = http.Request{Method: "GET", URL: u, Host: u.Host, Header: h, ProtoMajor: 1, ProtoMinor: 1}
}

// benchProfile measures p.Request and p.Response on the benchmark request; with a
// nil p it measures the reset alone (BenchmarkReset), to subtract.
func benchProfile(b *testing.B, p *Profile) {
	u, _ := url.Parse("https://cdn.tracker.example/pixel.gif")
	h := make(http.Header, 24)
	buf := make(map[string][]string, len(benchFields))
	var r http.Request
	setCookie := []string{"id=1; Max-Age=31536000; Path=/"}
	setCookieBuf := make([]string, 0, 1)
	resp := &http.Response{Header: http.Header{}, Request: &r, ProtoMajor: 1, ProtoMinor: 1}
	b.ReportAllocs()
	for b.Loop() {
		benchRequest(&r, h, buf, u)
		clear(resp.Header)
		resp.Header["Set-Cookie"] = append(setCookieBuf[:0], setCookie...)
		if p != nil {
			p.Request(&r, testClient)
			p.Response(resp)
		}
	}
}

// BenchmarkReset measures the per-iteration reset the other benchmarks include.
func BenchmarkReset(b *testing.B) { benchProfile(b, nil) }

// BenchmarkElite measures the floor: the elite level alone, request and response.
func BenchmarkElite(b *testing.B) { benchProfile(b, Elite()) }

// BenchmarkPrivacy measures the strong preset: every request action and
// session-only cookies.
func BenchmarkPrivacy(b *testing.B) { benchProfile(b, Privacy()) }

// BenchmarkTransparent measures the level that appends to X-Forwarded-For and Via.
func BenchmarkTransparent(b *testing.B) { benchProfile(b, Transparent()) }

// BenchmarkStripParamsClean measures the query scan when nothing is removed.
func BenchmarkStripParamsClean(b *testing.B) {
	s := compileParamSet(DefaultStripParams())
	b.ReportAllocs()
	for b.Loop() {
		s.strip("id=42&page=3&sort=price%20asc&lang=en&q=caf%C3%A9")
	}
}
