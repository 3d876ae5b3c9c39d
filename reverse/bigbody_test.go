package reverse

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/pool"
)

// TestLargeBodiesRelayed: bodies of known length larger than the relay's
// buffer (which go socket to socket on plain TCP, through the buffer over
// TLS) arrive whole, sent by the origin in pieces with a pause, and the
// access log counts every byte; the connection to the origin is kept for
// the next request. An origin that cuts such a body midway leaves the
// client with an error, not a complete-looking body, and the log with the
// error; a client that goes away midway is logged with an error too.
func TestLargeBodiesRelayed(t *testing.T) {
	const size = 1<<20 + 7
	body := make([]byte, size)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	o := newTestOrigin(t, "app", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Header().Set("Content-Type", "application/octet-stream")
		switch r.URL.Path {
		case "/big":
			w.Write(body[:100<<10])
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond) // a pause mid-body (not synchronisation)
			w.Write(body[100<<10:])
		case "/cut":
			w.Write(body[:300<<10])
			w.(http.Flusher).Flush()
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
		case "/slow":
			for off := 0; off < size; off += 64 << 10 {
				if _, err := w.Write(body[off:min(off+64<<10, size)]); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				time.Sleep(5 * time.Millisecond)
			}
		}
	})
	pools := map[string]*pool.Pool{"app": newTestPool(t, pool.Config{}, o.url())}
	log := &recordLog{}
	cfg := Config{TLS: TLSConfig{Mode: "internal"}, Routes: []Route{{Name: "app", Host: []string{"app.example.test"}, Pool: "app"}}}
	d := startDoor(t, cfg, pools, Options{Log: log})

	for _, c := range []struct {
		name, url string
		client    *http.Client
	}{
		{"plain", "http://app.example.test/big", client(t, d.plain, nil, false)},
		{"tls", "https://app.example.test/big", client(t, d.secure, d.caPool, false)},
	} {
		for i := range 2 {
			n := len(log.entries())
			resp, err := c.client.Get(c.url)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, body) || resp.ContentLength != size {
				t.Fatalf("%s #%d: status %d, Content-Length %d, %d bytes (same: %v), %v", c.name, i, resp.StatusCode, resp.ContentLength, len(got), bytes.Equal(got, body), err)
			}
			waitFor(t, "the log entry", func() bool { return len(log.entries()) > n })
			if e := log.entries()[n]; e.BytesOut != size || e.Status != 200 || e.Error != "" {
				t.Errorf("%s #%d: logged status %d, %d bytes, error %q", c.name, i, e.Status, e.BytesOut, e.Error)
			}
		}
	}
	if h := o.hits.Load(); h != 4 {
		t.Errorf("origin saw %d requests, want 4", h)
	}

	// The origin cuts the body.
	n := len(log.entries())
	resp, err := client(t, d.plain, nil, false).Get("http://app.example.test/cut")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || len(got) >= size {
		t.Errorf("cut body: %d bytes, error %v: it looked complete", len(got), err)
	}
	waitFor(t, "the cut's log entry", func() bool { return len(log.entries()) > n })
	if e := log.entries()[n]; e.Error == "" || e.BytesOut >= size {
		t.Errorf("cut body logged with %d bytes, error %q", e.BytesOut, e.Error)
	}

	// The client goes away.
	n = len(log.entries())
	conn, err := net.Dial("tcp", d.plain)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /slow HTTP/1.1\r\nHost: app.example.test\r\n\r\n")
	if _, err := io.ReadFull(conn, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	waitFor(t, "the gone client's log entry", func() bool { return len(log.entries()) > n })
	if e := log.entries()[n]; e.Error == "" || e.BytesOut >= size {
		t.Errorf("gone client logged with %d bytes, error %q", e.BytesOut, e.Error)
	}
}
