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

// TestConnectionCannotDropForwarding: a client naming the forwarding fields
// in Connection does not keep them from the origin: the door adds its own
// after removing the hop-by-hop ones.
func TestConnectionCannotDropForwarding(t *testing.T) {
	seen := make(chan http.Header, 1)
	o := newTestOrigin(t, "o", func(w http.ResponseWriter, r *http.Request) { seen <- r.Header.Clone() })
	pools := map[string]*pool.Pool{"app": newTestPool(t, pool.Config{}, o.url())}
	d := startDoor(t, Config{Routes: []Route{{Name: "app", Pool: "app"}}}, pools, Options{})
	req, _ := http.NewRequest("GET", "http://app.example.test/", nil)
	req.Header.Set("Connection", "X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host")
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	resp, err := client(t, d.plain, nil, false).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-seen
	if h.Get("X-Forwarded-For") != "127.0.0.1" || h.Get("X-Forwarded-Proto") != "http" || h.Get("X-Forwarded-Host") != "app.example.test" {
		t.Errorf("origin saw X-Forwarded-For %q, -Proto %q, -Host %q", h.Get("X-Forwarded-For"), h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-Host"))
	}
}
