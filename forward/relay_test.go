package forward

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
)

// relayOrigin is an origin with the answers the plain relay must carry: a
// 103 before the page, trailers declared and not, and a body cut midway.
func relayOrigin(t *testing.T) *httptest.Server {
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hints":
			w.Header().Set("Link", "</a.css>; rel=preload; as=style")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			io.WriteString(w, "page")
		case "/trailers":
			w.Header().Set("Trailer", "X-Declared")
			io.WriteString(w, "body")
			w.Header().Set("X-Declared", "d")
			w.Header().Set(http.TrailerPrefix+"X-Late", "l")
		case "/cut":
			io.WriteString(w, "0123456789")
			w.(http.Flusher).Flush()
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
		}
	}))
	t.Cleanup(o.Close)
	return o
}

// TestPlainEarlyHints: a 103 Early Hints from the origin reaches the client
// of the forward door before the final response (goproxy dropped it).
func TestPlainEarlyHints(t *testing.T) {
	o := relayOrigin(t)
	tp := startProxy(t, Options{})
	var codes []int
	var link string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		codes = append(codes, code)
		link = h.Get("Link")
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", o.URL+"/hints", nil)
	resp, err := tp.client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(codes) != 1 || codes[0] != http.StatusEarlyHints || link != "</a.css>; rel=preload; as=style" {
		t.Errorf("1xx seen %v, Link %q", codes, link)
	}
	if resp.StatusCode != 200 || string(body) != "page" || resp.Header.Get("Link") != "" {
		t.Errorf("final %d %q, Link %q", resp.StatusCode, body, resp.Header.Get("Link"))
	}
}

// TestPlainTrailers: trailers announced in Trailer and trailers the origin
// sends undeclared both reach the client.
func TestPlainTrailers(t *testing.T) {
	o := relayOrigin(t)
	tp := startProxy(t, Options{})
	req, _ := http.NewRequest("GET", o.URL+"/trailers", nil)
	req.Header.Set("Te", "trailers")
	resp, err := tp.client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "body" || resp.Trailer.Get("X-Declared") != "d" || resp.Trailer.Get("X-Late") != "l" {
		t.Errorf("body %q %v, trailers %v", body, err, resp.Trailer)
	}
}

// TestPlainCutBodyAborts: an origin dying midway through a chunked body
// leaves the client with an error, not a complete-looking response, and the
// access log says why.
func TestPlainCutBodyAborts(t *testing.T) {
	o := relayOrigin(t)
	tp := startProxy(t, Options{})
	resp, err := tp.client(t).Get(o.URL + "/cut")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("read %q without error: the cut looked complete", body)
	}
	if e := tp.log.next(t); e.Status != 200 || !strings.Contains(e.Error, "upstream response body failed") {
		t.Errorf("log entry: status %d, error %q", e.Status, e.Error)
	}
}
