package forward

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/filter/phrase"
)

// compressingOrigin ignores Accept-Encoding and sends every page in the
// encoding its path names: /gzip/…, /deflate/… (zlib), /rawdeflate/…,
// /br/… (bytes that are not decoded here: the proxy must not pass them).
func compressingOrigin(t *testing.T) *httptest.Server {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		enc, page, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		var buf bytes.Buffer
		var zw io.WriteCloser
		switch enc {
		case "gzip":
			zw = gzip.NewWriter(&buf)
		case "deflate":
			zw = zlib.NewWriter(&buf)
		case "rawdeflate":
			zw, _ = flate.NewWriter(&buf, flate.DefaultCompression)
			enc = "deflate"
		default:
			zw = nopWriteCloser{&buf}
		}
		_, _ = io.WriteString(zw, pages[page])
		_ = zw.Close()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Encoding", enc)
		_, _ = w.Write(buf.Bytes())
	}))
	t.Cleanup(origin.Close)
	return origin
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// TestSchoolPhraseScansCompressedPages: an origin that compresses although the
// proxy asked for identity does not get a page past the phrase filter. Through
// the forward door, a gzip, zlib or raw deflate page over the threshold gets
// the block page, one under it arrives decoded and whole, and a page in an
// encoding the filter cannot read (br) is blocked, never relayed unscanned.
// On bc21481 every compressed page passed unscored.
func TestSchoolPhraseScansCompressedPages(t *testing.T) {
	origin := compressingOrigin(t)
	list := writeTestFile(t, t.TempDir(), "phrases.txt", testPhrases)
	pc := phrase.Config{Lists: []string{list}}
	m, err := pc.Compile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{School: School{Phrase: phrase.Config{Threshold: 50}}}
	tp := startProxy(t, Options{Config: cfg, Phrases: m})
	c := tp.client(t)
	get := func(path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, origin.URL+path, nil)
		req.Header.Set("Accept", "text/html")
		req.Header.Set("Accept-Encoding", "gzip, deflate, br")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s: reading: %v", path, err)
		}
		return resp, string(b)
	}
	for _, enc := range []string{"gzip", "deflate", "rawdeflate"} {
		resp, body := get("/" + enc + "/bad")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "The page scored 55 (the limit is 50)") {
			t.Fatalf("%s bad page: %d %q", enc, resp.StatusCode, body)
		}
		if e := tp.log.next(t); e.Action != "block" || e.Rule != "phrase" {
			t.Fatalf("%s bad page log: %+v", enc, e)
		}
		resp, body = get("/" + enc + "/mild")
		if resp.StatusCode != http.StatusOK || body != pages["mild"] || resp.Header.Get("Content-Encoding") != "" {
			t.Fatalf("%s mild page: %d, Content-Encoding %q, %d bytes (want %d decoded)",
				enc, resp.StatusCode, resp.Header.Get("Content-Encoding"), len(body), len(pages["mild"]))
		}
		if e := tp.log.next(t); e.Action != "allow" || e.Status != http.StatusOK {
			t.Fatalf("%s mild page log: %+v", enc, e)
		}
	}
	for _, path := range []string{"/br/mild", "/br/bad"} {
		resp, body := get(path)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "compressed (br)") {
			t.Fatalf("%s: %d %q", path, resp.StatusCode, body)
		}
		if e := tp.log.next(t); e.Action != "block" || e.Rule != "phrase" || !strings.Contains(e.Error, `"br"`) {
			t.Fatalf("%s log: %+v", path, e)
		}
	}
}
