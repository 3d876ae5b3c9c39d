package reverse

import (
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"testing"

	"github.com/portcullis/portcullis/internal/pool"
)

// TestRelayedAnswers: through the reverse door, a 103 reaches the client
// before the page, declared and undeclared trailers arrive, and a body the
// origin cuts midway leaves the client with an error.
func TestRelayedAnswers(t *testing.T) {
	o := newTestOrigin(t, "o", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hints":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			io.WriteString(w, "page")
		case "/trailers":
			w.Header().Set("Trailer", "X-Declared")
			io.WriteString(w, "body")
			w.Header().Set("X-Declared", "d")
			w.Header().Set(http.TrailerPrefix+"X-Late", "l")
		case "/cut":
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "0123456789")
			w.(http.Flusher).Flush()
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
		}
	})
	pools := map[string]*pool.Pool{"app": newTestPool(t, pool.Config{}, o.url())}
	d := startDoor(t, Config{Routes: []Route{{Name: "app", Pool: "app"}}}, pools, Options{})
	c := client(t, d.plain, nil, false)

	var codes []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		if h.Get("Link") == "</a.css>; rel=preload" {
			codes = append(codes, code)
		}
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", "http://app.example.test/hints", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(codes) != 1 || codes[0] != http.StatusEarlyHints || string(body) != "page" {
		t.Errorf("1xx with Link %v, page %q", codes, body)
	}

	req, _ = http.NewRequest("GET", "http://app.example.test/trailers", nil)
	req.Header.Set("Te", "trailers")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "body" || resp.Trailer.Get("X-Declared") != "d" || resp.Trailer.Get("X-Late") != "l" {
		t.Errorf("body %q %v, trailers %v", body, err, resp.Trailer)
	}

	resp, err = c.Get("http://app.example.test/cut")
	if err != nil {
		t.Fatal(err)
	}
	body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Errorf("read %q without error: the cut looked complete", body)
	}
}
