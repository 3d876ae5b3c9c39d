package forward

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// bigBody is a body over relay's copy buffer, with a Content-Length: the
// size relay moves socket to socket when both sides can.
func bigBody() []byte {
	b := make([]byte, 1<<20+7)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// bigOrigin serves body with its length at /big, cuts it after 300 KiB at
// /cut, and sends it in 64 KiB pieces with pauses at /slow.
func bigOrigin(t *testing.T, body []byte) *httptest.Server {
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		switch r.URL.Path {
		case "/big":
			w.Write(body)
		case "/cut":
			w.Write(body[:300<<10])
			w.(http.Flusher).Flush()
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
		case "/slow":
			for off := 0; off < len(body); off += 64 << 10 {
				if _, err := w.Write(body[off:min(off+64<<10, len(body))]); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				time.Sleep(5 * time.Millisecond) // the origin's pace, not synchronisation
			}
		}
	}))
	t.Cleanup(o.Close)
	return o
}

// spliceWriter is an engine's ResponseWriter that can take a body socket to
// socket (as internal/h1's on plain TCP): it counts the calls and copies
// what it is handed.
type spliceWriter struct {
	h      http.Header
	status int
	buf    bytes.Buffer
	calls  int
}

func (w *spliceWriter) Header() http.Header { return w.h }

func (w *spliceWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *spliceWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.buf.Write(p)
}

func (w *spliceWriter) ReadFromConn(prefix []byte, src net.Conn, n int64) (int64, bool, error) {
	w.calls++
	w.buf.Write(prefix)
	m, err := io.CopyN(&w.buf, src, n)
	return int64(len(prefix)) + m, true, err
}

// A large plain response of known length is handed to the engine's writer
// socket to socket (internal/h1 splices it), not copied through the door's
// buffers; the log counts its bytes.
func TestLargeBodyHandedSocketToSocket(t *testing.T) {
	body := bigBody()
	o := bigOrigin(t, body)
	log := newLogRecorder()
	p, err := New(Options{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, o.URL+"/big", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	w := &spliceWriter{h: make(http.Header)}
	p.ServeHTTP(w, req)
	if w.status != 200 || !bytes.Equal(w.buf.Bytes(), body) {
		t.Fatalf("status %d, %d bytes (same: %v), want 200 and %d", w.status, w.buf.Len(), bytes.Equal(w.buf.Bytes(), body), len(body))
	}
	if w.calls != 1 {
		t.Fatalf("the body went to the writer's ReadFromConn %d times, want 1 (socket to socket)", w.calls)
	}
	if e := log.next(t); e.Status != 200 || e.BytesOut != int64(len(body)) || e.Error != "" {
		t.Fatalf("logged status %d, %d bytes, error %q", e.Status, e.BytesOut, e.Error)
	}
}

// Through the engine's HTTP/1.1 server (which splices on plain TCP): a
// large body arrives whole and logged, twice on one connection; a body the
// origin cuts reaches the client cut, never complete, and is logged with
// an error; a client that goes away mid-body is logged with an error.
func TestLargeBodiesRelayed(t *testing.T) {
	body := bigBody()
	o := bigOrigin(t, body)
	tp := startProxy(t, Options{})
	c := tp.client(t)
	for i := range 2 {
		resp, err := c.Get(o.URL + "/big")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, body) || resp.ContentLength != int64(len(body)) {
			t.Fatalf("#%d: status %d, Content-Length %d, %d bytes (same: %v), %v", i, resp.StatusCode, resp.ContentLength, len(got), bytes.Equal(got, body), err)
		}
		if e := tp.log.next(t); e.Status != 200 || e.BytesOut != int64(len(body)) || e.Error != "" {
			t.Fatalf("#%d: logged status %d, %d bytes, error %q", i, e.Status, e.BytesOut, e.Error)
		}
	}

	resp, err := c.Get(o.URL + "/cut")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || len(got) >= len(body) {
		t.Errorf("cut body: %d bytes, error %v: it looked complete", len(got), err)
	}
	if e := tp.log.next(t); e.Error == "" || e.BytesOut >= int64(len(body)) {
		t.Errorf("cut body logged with %d bytes, error %q", e.BytesOut, e.Error)
	}

	conn, br := tp.dialRaw(t)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET "+o.URL+"/slow HTTP/1.1\r\nHost: "+o.Listener.Addr().String()+"\r\n\r\n")
	if _, err := io.ReadFull(br, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if e := tp.log.next(t); e.Error == "" || e.BytesOut >= int64(len(body)) {
		t.Errorf("gone client logged with %d bytes, error %q", e.BytesOut, e.Error)
	}
}
