package upstream

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"testing"
)

type splicer interface {
	SpliceTo(func([]byte, net.Conn, int64) (int64, bool, error)) (int64, bool, error, error)
}

// TestSpliceTo: a body of known length handed to a socket writer arrives
// whole (the buffered part as prefix, the rest from the socket) and the
// connection is kept; a writer that declines leaves the body to Read; a
// body the origin cuts is the upstream's failure (rerr) and one the writer
// fails on (a broken pipe) the client's (werr), neither connection kept; a
// chunked body is not handed over.
func TestSpliceTo(t *testing.T) {
	const size = 200 << 10
	body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	srv, accepts := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			w.Write(body)
			return
		case "/cut":
			w.Header().Set("Content-Length", strconv.Itoa(size))
			w.Write(body[:50<<10])
			w.(http.Flusher).Flush()
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(body)
	}))
	c := newClient(t, Config{})
	get := func(path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	var out bytes.Buffer
	var prefixes int
	copyTo := func(prefix []byte, src net.Conn, n int64) (int64, bool, error) {
		prefixes += len(prefix)
		out.Write(prefix)
		m, err := io.Copy(&out, &io.LimitedReader{R: src, N: n})
		return int64(len(prefix)) + m, true, err
	}

	resp := get("/ok")
	n, ok, rerr, werr := resp.Body.(splicer).SpliceTo(copyTo)
	if !ok || n != size || rerr != nil || werr != nil || !bytes.Equal(out.Bytes(), body) || prefixes == 0 {
		t.Fatalf("spliced %d (ok %v), rerr %v, werr %v, same body %v, %d bytes as prefix", n, ok, rerr, werr, bytes.Equal(out.Bytes(), body), prefixes)
	}
	if _, err := resp.Body.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("Read after the body was handed over: %v, want EOF", err)
	}
	resp.Body.Close()

	resp = get("/ok")
	_, ok, _, _ = resp.Body.(splicer).SpliceTo(func([]byte, net.Conn, int64) (int64, bool, error) { return 0, false, nil })
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ok || err != nil || !bytes.Equal(got, body) {
		t.Errorf("declined: ok %v, read %d bytes, %v", ok, len(got), err)
	}
	if a := accepts.Load(); a != 1 {
		t.Errorf("%d connections for two whole bodies, want 1 (kept)", a)
	}

	resp = get("/cut")
	out.Reset()
	_, ok, rerr, werr = resp.Body.(splicer).SpliceTo(copyTo)
	resp.Body.Close()
	if !ok || !errors.Is(rerr, io.ErrUnexpectedEOF) || werr != nil {
		t.Errorf("cut body: ok %v, rerr %v, werr %v; want the upstream's unexpected EOF", ok, rerr, werr)
	}

	resp = get("/ok")
	before := accepts.Load()
	_, ok, rerr, werr = resp.Body.(splicer).SpliceTo(func(prefix []byte, src net.Conn, n int64) (int64, bool, error) {
		return 0, true, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}
	})
	resp.Body.Close()
	if !ok || rerr != nil || !errors.Is(werr, syscall.EPIPE) {
		t.Errorf("client gone: ok %v, rerr %v, werr %v; want the client's broken pipe", ok, rerr, werr)
	}
	resp = get("/ok")
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if a := accepts.Load(); a != before+1 {
		t.Errorf("%d new connections after a body the client failed on, want 1 (not kept)", a-before)
	}

	resp = get("/chunked")
	_, ok, _, _ = resp.Body.(splicer).SpliceTo(copyTo)
	got, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if ok || err != nil || !bytes.Equal(got, body) || resp.ContentLength != -1 {
		t.Errorf("chunked: handed over %v, read %d bytes (length %d), %v", ok, len(got), resp.ContentLength, err)
	}
}
