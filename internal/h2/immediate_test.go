package h2

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// immediateHandler answers /hit* at once (the size of the body from the
// path's length, "x" repeated), panics at once on /panic, declines the rest,
// which ServeHTTP answers "slow".
type immediateHandler struct {
	at, slow atomic.Int32
	body     []byte
}

func (h *immediateHandler) ServeImmediate(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case r.URL.Path == "/panic":
		panic("immediate handler panic")
	case strings.HasPrefix(r.URL.Path, "/hit"):
		h.at.Add(1)
		w.Header().Set("X-Answer", "at once")
		w.Write(h.body)
		w.(http.Flusher).Flush() // sends nothing before the handler returns
		return true
	}
	return false
}

func (h *immediateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.slow.Add(1)
	io.Copy(io.Discard, r.Body)
	io.WriteString(w, "slow")
}

// A handler that answers at once does so on the connection's read loop:
// streams it answers start no worker; those it declines, and requests with
// a body, go to ServeHTTP on a worker; a panic resets its stream only.
func TestImmediateAnswers(t *testing.T) {
	h := &immediateHandler{body: []byte("fast")}
	srv := &Server{Handler: h}
	c := dialRaw(t, srv)
	id := uint32(1)
	for i := 0; i < 50; i++ {
		c.get(id, "/hit")
		r := c.response(id)
		if r.status != "200" || r.get("x-answer") != "at once" || string(r.body) != "fast" || r.get("content-length") != "4" {
			t.Fatalf("answer at once: %s %v %q", r.status, r.fields, r.body)
		}
		id += 2
	}
	if n := srv.workers.Load(); n != 0 {
		t.Fatalf("%d workers started for streams answered at once", n)
	}
	c.get(id, "/miss")
	if r := c.response(id); r.status != "200" || string(r.body) != "slow" {
		t.Fatalf("declined: %s %q", r.status, r.body)
	}
	id += 2
	// A request with a body is not offered to ServeImmediate.
	c.headers(id, false, ":method", "POST", ":scheme", "https", ":authority", "h2.test", ":path", "/hit")
	_ = c.fr.WriteData(id, true, []byte("body"))
	if r := c.response(id); string(r.body) != "slow" {
		t.Fatalf("request with a body: %s %q", r.status, r.body)
	}
	id += 2
	c.get(id, "/panic")
	c.wantRST(id, http2.ErrCodeInternal)
	id += 2
	c.get(id, "/hit")
	if r := c.response(id); string(r.body) != "fast" {
		t.Fatalf("after a panic: %s %q", r.status, r.body)
	}
	if at, slow := h.at.Load(), h.slow.Load(); at != 51 || slow != 2 {
		t.Fatalf("answered at once %d, by ServeHTTP %d; want 51, 2", at, slow)
	}
	// The worker that ran ServeHTTP ends with the server's last connection.
	if srv.workers.Load() == 0 {
		t.Fatal("no worker ran ServeHTTP")
	}
	c.nc.Close()
	if !eventually(t, 20*time.Second, func() bool { return srv.workers.Load() == 0 }) {
		t.Fatalf("%d workers left after the last connection ended", srv.workers.Load())
	}
}

// An answer given at once that the client's window cannot take leaves from
// a worker as the window opens, and the read loop keeps reading meanwhile
// (a PING is answered while the answer waits).
func TestImmediateAnswerBeyondWindow(t *testing.T) {
	body := bytes.Repeat([]byte("w"), 1000)
	c := dialRaw(t, &Server{Handler: &immediateHandler{body: body}}, setting(http2.SettingInitialWindowSize, 100))
	c.get(1, "/hit")
	c.want(http2.FrameHeaders)
	if d := c.want(http2.FrameData).(*http2.DataFrame); len(d.Data()) != 100 || d.StreamEnded() {
		t.Fatalf("first DATA %d bytes", len(d.Data()))
	}
	_ = c.fr.WritePing(false, [8]byte{7})
	if p := c.want(http2.FramePing).(*http2.PingFrame); p.Data[0] != 7 {
		t.Fatal("wrong PING")
	}
	// Another stream is answered at once while the first waits.
	c.get(3, "/hit-too")
	c.want(http2.FrameHeaders)
	if d := c.want(http2.FrameData).(*http2.DataFrame); d.Header().StreamID != 3 || len(d.Data()) != 100 {
		t.Fatalf("second stream's DATA: stream %d, %d bytes", d.Header().StreamID, len(d.Data()))
	}
	_ = c.fr.WriteWindowUpdate(1, 900)
	got := 100
	for got < 1000 {
		d := c.want(http2.FrameData).(*http2.DataFrame)
		if d.Header().StreamID != 1 {
			t.Fatalf("DATA on stream %d", d.Header().StreamID)
		}
		got += len(d.Data())
		if got == 1000 && !d.StreamEnded() {
			t.Fatal("no END_STREAM")
		}
	}
	if got != 1000 {
		t.Fatalf("%d bytes", got)
	}
}
