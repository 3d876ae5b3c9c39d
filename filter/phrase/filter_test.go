package phrase

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// blockPage stands in for the project's block page.
const blockPage = "<html><body>blocked by phrase filter</body></html>"

// filteringProxy is a loopback reverse proxy to origin that applies Filter to
// scannable responses the way the forward door does: the block page for a
// blocked page, the original bytes otherwise. It aborts the response on a
// LateBlockError.
func filteringProxy(t *testing.T, origin string, m *Matcher, opts Options) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(origin + r.URL.Path)
		if err != nil {
			http.Error(w, "upstream", http.StatusBadGateway)
			return
		}
		body := resp.Body
		if Scannable(resp.Header) {
			d, passed, err := Filter(resp.Body, m, opts)
			if err != nil {
				http.Error(w, "upstream", http.StatusBadGateway)
				return
			}
			if d.Blocked {
				var names []string
				for _, h := range d.Hits {
					names = append(names, h.Phrase)
				}
				w.Header().Set("X-Phrases", strings.Join(names, ","))
				w.Header().Set("X-Score", strconv.Itoa(d.Score))
				w.WriteHeader(http.StatusForbidden)
				io.WriteString(w, blockPage)
				return
			}
			w.Header().Set("X-Scanned", strconv.Itoa(d.Scanned))
			body = passed
		}
		defer body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		if _, err := io.Copy(w, body); err != nil {
			var late *LateBlockError
			if errors.As(err, &late) {
				panic(http.ErrAbortHandler) // cut the response short
			}
		}
	}))
}

func TestFilterOverHTTP(t *testing.T) {
	filler := strings.Repeat("<p>An ordinary paragraph about school work and maths.</p>\n", 2000) // ~120 KB
	pages := map[string]string{
		"/clean":      "<html><body>" + filler + "</body></html>",
		"/under":      "<html><body>casino night at the science fair " + filler + "</body></html>",
		"/over":       "<html><body>" + filler + "CASINO and <b>free</b> spins, jackpot!</body></html>",
		"/banned":     "<html><body>forbidden word</body></html>",
		"/late":       "<html><body>" + filler + filler + filler + "casino jackpot free spins</body></html>", // beyond 256 KiB
		"/plain.js":   "var casino = 'jackpot free spins';",
		"/binary.bin": "casino jackpot free spins \x00\x01",
	}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		switch {
		case strings.HasSuffix(r.URL.Path, ".js"):
			w.Header().Set("Content-Type", "text/javascript")
		case strings.HasSuffix(r.URL.Path, ".bin"):
			w.Header().Set("Content-Type", "application/octet-stream")
		default:
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
		}
		io.WriteString(w, body)
	}))
	defer origin.Close()
	m := Compile(mustParse(t, "<casino><40>\n<free spins><30>\n<jackpot><50>\n<science><-20>\n<forbidden word>\n"))

	get := func(srv *httptest.Server, path string) (*http.Response, []byte, error) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	proxy := filteringProxy(t, origin.URL, m, Options{Threshold: 100})
	defer proxy.Close()
	for _, p := range []string{"/clean", "/under", "/late", "/plain.js", "/binary.bin"} {
		resp, b, err := get(proxy, p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if resp.StatusCode != 200 || !bytes.Equal(b, []byte(pages[p])) {
			t.Errorf("%s: %d, %d bytes; want the page byte for byte (%d bytes)", p, resp.StatusCode, len(b), len(pages[p]))
		}
	}
	if resp, _, _ := get(proxy, "/late"); resp.Header.Get("X-Scanned") != strconv.Itoa(DefaultMaxScan) {
		t.Errorf("/late scanned %s bytes, want %d", resp.Header.Get("X-Scanned"), DefaultMaxScan)
	}
	for p, phrases := range map[string]string{"/over": "jackpot,casino,free spins", "/banned": "forbidden word"} {
		resp, b, err := get(proxy, p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if resp.StatusCode != 403 || string(b) != blockPage || resp.Header.Get("X-Phrases") != phrases {
			t.Errorf("%s: %d %q phrases %q; want the block page naming %q", p, resp.StatusCode, b, resp.Header.Get("X-Phrases"), phrases)
		}
	}

	// With ScanTail the late phrases cut the stream: the client gets an error
	// and less than the page.
	tail := filteringProxy(t, origin.URL, m, Options{Threshold: 100, ScanTail: true})
	defer tail.Close()
	_, b, err := get(tail, "/late")
	if err == nil || len(b) >= len(pages["/late"]) || bytes.Contains(b, []byte("free spins")) {
		t.Errorf("ScanTail: err %v, %d of %d bytes; want a truncated page without the phrases", err, len(b), len(pages["/late"]))
	}
	if resp, b, err := get(tail, "/clean"); err != nil || resp.StatusCode != 200 || string(b) != pages["/clean"] {
		t.Errorf("ScanTail clean page: %v %d bytes", err, len(b))
	}
}

// countingBody records how much was read and whether it was closed.
type countingBody struct {
	r      io.Reader
	read   int
	closed bool
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += n
	return n, err
}

func (c *countingBody) Close() error { c.closed = true; return nil }

func TestFilterStopsEarly(t *testing.T) {
	m := Compile(mustParse(t, "<jackpot><500>\n"))
	body := &countingBody{r: io.MultiReader(strings.NewReader("jackpot "), strings.NewReader(strings.Repeat("x", 10<<20)))}
	d, rc, err := Filter(body, m, Options{Threshold: 100, MaxScan: 1 << 20})
	if err != nil || !d.Blocked || rc != nil || !body.closed {
		t.Fatalf("decision %+v rc %v err %v closed %v", d, rc, err, body.closed)
	}
	if body.read > 64<<10 {
		t.Fatalf("read %d bytes after the page was already blocked", body.read)
	}
}

func TestFilterPassesAndCloses(t *testing.T) {
	m := Compile(mustParse(t, "<jackpot><500>\n"))
	src := strings.Repeat("abcdefgh", 10000)
	body := &countingBody{r: strings.NewReader(src)}
	d, rc, err := Filter(body, m, Options{Threshold: 100, MaxScan: 1000})
	if err != nil || d.Blocked || d.Complete || d.Scanned != 1000 {
		t.Fatalf("decision %+v err %v", d, err)
	}
	got, err := io.ReadAll(rc)
	if err != nil || string(got) != src {
		t.Fatalf("passed body differs (%d bytes, err %v)", len(got), err)
	}
	rc.Close()
	if !body.closed {
		t.Fatal("Close did not close the upstream body")
	}
}

type failingBody struct{ n int }

func (f *failingBody) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("connection reset")
	}
	f.n--
	return copy(p, "data "), nil
}
func (f *failingBody) Close() error { return nil }

func TestFilterReadError(t *testing.T) {
	m := Compile(mustParse(t, "<jackpot><500>\n"))
	if _, rc, err := Filter(&failingBody{n: 3}, m, Options{Threshold: 100}); err == nil || rc != nil {
		t.Fatalf("read error not returned: %v", err)
	}
}

func TestScannable(t *testing.T) {
	cases := map[string]bool{
		"text/html; charset=utf-8|":   true,
		"TEXT/HTML|identity":          true,
		"application/json|":           true,
		"application/xhtml+xml|":      true,
		"text/plain|gzip":             false,
		"text/html|br":                false,
		"text/css|":                   false,
		"text/javascript|":            false,
		"image/png|":                  false,
		"|":                           false,
		"text/html; charset=\"utf-8|": true, // bad parameter, type still known
	}
	for k, want := range cases {
		ct, ce, _ := strings.Cut(k, "|")
		h := http.Header{}
		if ct != "" {
			h.Set("Content-Type", ct)
		}
		if ce != "" {
			h.Set("Content-Encoding", ce)
		}
		if got := Scannable(h); got != want {
			t.Errorf("Scannable(%q, %q) = %v, want %v", ct, ce, got, want)
		}
	}
}

func TestFilterNilMatcher(t *testing.T) {
	body := io.NopCloser(strings.NewReader("jackpot"))
	d, rc, err := Filter(body, nil, Options{})
	if err != nil || d.Blocked || rc != body {
		t.Fatalf("nil matcher: %+v %v", d, err)
	}
}
