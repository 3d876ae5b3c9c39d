package h1

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/accept"
	"github.com/portcullis/portcullis/internal/h2"
	"github.com/portcullis/portcullis/internal/park"
)

// testServer is a Server on 127.0.0.1:0, shut down at cleanup.
type testServer struct {
	*Server
	addr  string
	calls atomic.Int64
	done  chan struct{}
}

func start(t testing.TB, h http.HandlerFunc, tune func(*Server)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: ln.Addr().String(), done: make(chan struct{})}
	ts.Server = &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ts.calls.Add(1)
			h(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		Log:               slog.New(slog.DiscardHandler),
	}
	if tune != nil {
		tune(ts.Server)
	}
	go func() {
		defer close(ts.done)
		if err := ts.Serve(accept.New(ln, "test", nil, nil)); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ts.Shutdown(ctx)
		<-ts.done
	})
	return ts
}

func (ts *testServer) dial(t testing.TB) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c, bufio.NewReader(c)
}

func readResp(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading a body: %v", err)
	}
	return res, string(b)
}

func wantEOF(t *testing.T, br *bufio.Reader) {
	t.Helper()
	if b, err := br.ReadByte(); err == nil {
		rest, _ := br.Peek(br.Buffered())
		t.Fatalf("connection still open: read %q%q", b, rest)
	}
}

func TestKeepAliveAndFraming(t *testing.T) {
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			io.WriteString(w, "hello")
		case "/big":
			w.Write([]byte(strings.Repeat("x", 10000)))
		case "/cl":
			w.Header().Set("Content-Length", "3")
			io.WriteString(w, "abc")
		case "/empty":
			w.WriteHeader(204)
		case "/short":
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "abc")
		}
	}, nil)
	c, br := ts.dial(t)
	io.WriteString(c, "GET /small HTTP/1.1\r\nHost: a\r\n\r\n")
	res, b := readResp(t, br, "GET")
	if b != "hello" || res.ContentLength != 5 || res.Header.Get("Date") == "" || res.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("small: %v %q %v", res.ContentLength, b, res.Header)
	}
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
	res, b = readResp(t, br, "GET")
	if len(b) != 10000 || len(res.TransferEncoding) != 1 {
		t.Fatalf("big: %d bytes, %v", len(b), res.TransferEncoding)
	}
	io.WriteString(c, "HEAD /small HTTP/1.1\r\nHost: a\r\n\r\n")
	res, b = readResp(t, br, "HEAD")
	if b != "" || res.ContentLength != 5 {
		t.Fatalf("head: %v %q", res.ContentLength, b)
	}
	io.WriteString(c, "GET /cl HTTP/1.1\r\nHost: a\r\n\r\nGET /empty HTTP/1.1\r\nHost: a\r\n\r\n")
	if res, b = readResp(t, br, "GET"); b != "abc" {
		t.Fatalf("cl: %q", b)
	}
	if res, b = readResp(t, br, "GET"); res.StatusCode != 204 || b != "" || res.Header.Get("Content-Length") != "" {
		t.Fatalf("204: %v %q %v", res.StatusCode, b, res.Header)
	}
	// A body shorter than its Content-Length: the connection closes.
	io.WriteString(c, "GET /short HTTP/1.1\r\nHost: a\r\n\r\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(res.Body); err == nil {
		t.Fatal("a cut body read whole")
	}
	wantEOF(t, br)
}

func TestHTTP10(t *testing.T) {
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, "b")
	}, nil)
	c, br := ts.dial(t)
	io.WriteString(c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	res, b := readResp(t, br, "GET")
	if b != "b" || res.Close || res.Header.Get("Connection") != "keep-alive" {
		t.Fatalf("%q %v %v", b, res.Close, res.Header)
	}
	io.WriteString(c, "GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
	if res, b = readResp(t, br, "GET"); b != "ab" || len(res.TransferEncoding) != 0 {
		t.Fatalf("close-delimited: %q %v", b, res.TransferEncoding)
	}
	wantEOF(t, br)

	c, br = ts.dial(t)
	io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	if _, b = readResp(t, br, "GET"); b != "b" {
		t.Fatal(b)
	}
	wantEOF(t, br)
}

func TestChunkedBodyAndTrailers(t *testing.T) {
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Sum")
		w.WriteHeader(200)
		fmt.Fprintf(w, "%q %v te=%v trailer=%v", b, err, r.TransferEncoding, r.Trailer)
		w.Header().Set("X-Sum", "42")
		w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
	}, nil)
	c, br := ts.dial(t)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nTrailer: X-T\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: v\r\n\r\n")
	res, b := readResp(t, br, "POST")
	if b != `"hello world" <nil> te=[chunked] trailer=map[X-T:[v]]` {
		t.Fatalf("got %s", b)
	}
	if res.Trailer.Get("X-Sum") != "42" || res.Trailer.Get("X-Late") != "yes" {
		t.Fatalf("trailers %v", res.Trailer)
	}
}

func TestExpectContinue(t *testing.T) {
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" {
			w.WriteHeader(413)
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}, nil)
	c, br := ts.dial(t)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("%q %v", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, "body")
	if _, b := readResp(t, br, "POST"); b != "body" {
		t.Fatal(b)
	}
	// Refused without reading: no 100, and the connection closes (the body
	// was never sent).
	io.WriteString(c, "POST /refuse HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	if res, _ := readResp(t, br, "POST"); res.StatusCode != 413 || !res.Close {
		t.Fatalf("%v close=%v", res.StatusCode, res.Close)
	}
}

func TestPipelining(t *testing.T) {
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s%s", r.URL.Path, b)
	}, nil)
	c, br := ts.dial(t)
	io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyzGET /3 HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, want := range []string{"/1", "/2xyz", "/3"} {
		if _, b := readResp(t, br, "GET"); b != want {
			t.Fatalf("got %q want %q", b, want)
		}
	}
}

// TestRequestBeforeResponse: a client that sends its next request in a
// segment of its own while the previous one is served (its readiness comes
// before the engine waits for it) gets every response, in order, each
// time.
func TestRequestBeforeResponse(t *testing.T) {
	started, sent := make(chan string), make(chan struct{})
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/last" {
			started <- r.URL.Path
			<-sent // the next request is out before this answer
		}
		io.WriteString(w, r.URL.Path)
	}, nil)
	c, br := ts.dial(t)
	paths := []string{"/1", "/2", "/3", "/4", "/5", "/last"}
	io.WriteString(c, "GET "+paths[0]+" HTTP/1.1\r\nHost: a\r\n\r\n")
	for i, path := range paths[:len(paths)-1] {
		if got := <-started; got != path {
			t.Fatalf("handler for %q, want %q", got, path)
		}
		io.WriteString(c, "GET "+paths[i+1]+" HTTP/1.1\r\nHost: a\r\n\r\n")
		sent <- struct{}{}
		if _, b := readResp(t, br, "GET"); b != path {
			t.Fatalf("got %q want %q", b, path)
		}
	}
	if _, b := readResp(t, br, "GET"); b != "/last" {
		t.Fatalf("got %q want /last", b)
	}
}

// TestIdleTimeoutShorterThanWrite: with an idle timeout that has passed by
// the time the response is written, the response still goes out, then the
// connection closes.
func TestIdleTimeoutShorterThanWrite(t *testing.T) {
	ts := start(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") },
		func(s *Server) { s.IdleTimeout = time.Nanosecond })
	for range 20 {
		c, br := ts.dial(t)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if _, b := readResp(t, br, "GET"); b != "hello" {
			t.Fatalf("got %q", b)
		}
		wantEOF(t, br)
		c.Close()
	}
}

func TestUnreadBody(t *testing.T) {
	ts := start(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) }, nil)
	c, br := ts.dial(t)
	// A small unread body is drained: the next request is read.
	io.WriteString(c, "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789GET /b HTTP/1.1\r\nHost: a\r\n\r\n")
	readResp(t, br, "POST")
	if _, b := readResp(t, br, "GET"); b != "/b" {
		t.Fatal(b)
	}
	// A long one closes the connection.
	io.WriteString(c, "POST /c HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\n")
	go io.Copy(c, io.LimitReader(zeros{}, 1<<20))
	if res, b := readResp(t, br, "POST"); b != "/c" || ts.calls.Load() != 3 {
		t.Fatal(res.StatusCode, b)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestRefusals: each malformed or ambiguous head is answered with its status
// and Connection: close, the connection closes, and the handler never runs.
func TestRefusals(t *testing.T) {
	ts := start(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "served") }, func(s *Server) { s.MaxHeaderBytes = 1024 })
	for _, c := range []struct {
		name, raw string
		status    int
	}{
		{"cl-te", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"te-cl", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", 400},
		{"te-10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"space-before-colon", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 4\r\n\r\nabcd", 400},
		{"fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400},
		{"fold-te", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400},
		{"two-cl", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd", 400},
		{"cl-differ", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcd", 400},
		{"cl-list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 4\r\n\r\nabcd", 400},
		{"cl-plus", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\nabcd", 400},
		{"bare-cr", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400},
		{"nul", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400},
		{"no-host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two-hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"te-gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"te-twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501},
		{"http2", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"http09", "GET /\r\n\r\n", 400},
		{"bad-version", "GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400},
		{"space-in-method", "G ET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"expect", "POST / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\nx", 417},
		{"big-head", "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("a", 8000) + "\r\n\r\n", 431},
		{"big-target", "GET /" + strings.Repeat("a", 8000) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := ts.calls.Load()
			conn, br := ts.dial(t)
			io.WriteString(conn, c.raw)
			res, _ := readResp(t, br, "GET")
			if res.StatusCode != c.status || !res.Close {
				t.Fatalf("status %d close %v, want %d and close", res.StatusCode, res.Close, c.status)
			}
			wantEOF(t, br)
			if n := ts.calls.Load() - before; n != 0 {
				t.Fatalf("handler ran %d times", n)
			}
		})
	}
}

// TestBadChunks: a body that does not frame fails the handler's read and
// closes the connection after the response; nothing after it is read.
func TestBadChunks(t *testing.T) {
	for name, chunks := range map[string]string{
		"plus":     "+4\r\nabcd\r\n0\r\n\r\n",
		"overflow": "fffffffffffffffff1\r\nabcd\r\n0\r\n\r\n",
		"bare-lf":  "4\nabcd\n0\n\n",
		"no-crlf":  "4\r\nabcdX\r\n0\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			ts := start(t, func(w http.ResponseWriter, r *http.Request) {
				_, err := io.ReadAll(r.Body)
				fmt.Fprintf(w, "%s err=%v", r.URL.Path, err != nil)
			}, nil)
			c, br := ts.dial(t)
			io.WriteString(c, "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"+chunks+"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
			if _, b := readResp(t, br, "POST"); b != "/a err=true" {
				t.Fatal(b)
			}
			wantEOF(t, br)
		})
	}
}

func TestFlushStreams(t *testing.T) {
	release := make(chan struct{})
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Error(err)
		}
		<-release
		io.WriteString(w, "second")
	}, nil)
	c, br := ts.dial(t)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(res.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("%q %v", buf, err)
	}
	close(release)
	if rest, _ := io.ReadAll(res.Body); string(rest) != "second" {
		t.Fatal(string(rest))
	}
}

func TestHijack(t *testing.T) {
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n")
		line, _ := rw.ReadString('\n')
		io.WriteString(conn, "echo:"+line)
		if r.URL.Host == "late.test:443" { // bytes sent after the 200, through rw's reader and writer
			line, _ = rw.ReadString('\n')
			rw.WriteString("echo:" + line)
			rw.Flush()
		}
	}, nil)
	c, br := ts.dial(t)
	// The tunnel's first bytes come with the CONNECT: the hijacker gets them.
	io.WriteString(c, "CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\nhello\n")
	line, _ := br.ReadString('\n')
	br.ReadString('\n')
	if line != "HTTP/1.1 200 Connection established\r\n" {
		t.Fatal(line)
	}
	if got, _ := br.ReadString('\n'); got != "echo:hello\n" {
		t.Fatal(got)
	}
	wantEOF(t, br)
	// Nothing after the head: the hijacker reads and writes what comes later.
	c, br = ts.dial(t)
	io.WriteString(c, "CONNECT late.test:443 HTTP/1.1\r\nHost: late.test:443\r\n\r\n")
	br.ReadString('\n')
	br.ReadString('\n')
	for _, msg := range []string{"first", strings.Repeat("long", 300)} {
		io.WriteString(c, msg+"\n")
		if got, _ := br.ReadString('\n'); got != "echo:"+msg+"\n" {
			t.Fatalf("%.40q", got)
		}
	}
	wantEOF(t, br)
}

func TestInformational(t *testing.T) {
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "ok")
	}, nil)
	c, br := ts.dial(t)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	head, _ := br.ReadString('\n')
	if head != "HTTP/1.1 103 Early Hints\r\n" {
		t.Fatal(head)
	}
	for l, _ := br.ReadString('\n'); l != "\r\n"; l, _ = br.ReadString('\n') {
	}
	if _, b := readResp(t, br, "GET"); b != "ok" {
		t.Fatal(b)
	}
}

// TestClientGoneCancels: the request's context ends when the client closes.
func TestClientGoneCancels(t *testing.T) {
	cancelled := make(chan struct{})
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(20 * time.Second):
		}
	}, nil)
	c, _ := ts.dial(t)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	for ts.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	c.Close()
	select {
	case <-cancelled:
	case <-time.After(15 * time.Second):
		t.Fatal("the request's context did not end when the client left")
	}
}

// TestHeaderTimeout: a head sent slowly (slowloris) is cut at
// ReadHeaderTimeout; an idle connection at IdleTimeout.
func TestHeaderTimeout(t *testing.T) {
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {}, func(s *Server) {
		s.ReadHeaderTimeout = 300 * time.Millisecond
		s.IdleTimeout = 300 * time.Millisecond
	})
	c, br := ts.dial(t)
	begin := time.Now()
	io.WriteString(c, "GET / HTTP/1.1\r\n")
	for range 100 {
		if _, err := io.WriteString(c, "X: y\r\n"); err != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
		if _, err := c.Read(make([]byte, 0)); err != nil {
			break
		}
	}
	wantEOF(t, br)
	if d := time.Since(begin); d > 4*time.Second {
		t.Fatalf("closed after %v", d)
	}
	c, br = ts.dial(t)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	readResp(t, br, "GET")
	wantEOF(t, br) // idle timeout
}

func TestShutdown(t *testing.T) {
	inHandler := make(chan struct{})
	release := make(chan struct{})
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(inHandler)
			<-release
		}
		io.WriteString(w, "done")
	}, nil)
	parked, parkedBR := ts.dial(t)
	io.WriteString(parked, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	readResp(t, parkedBR, "GET")
	ts.waitIdle(t, 1)
	idle, idleBR := ts.dial(t)
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	readResp(t, idleBR, "GET")
	busy, busyBR := ts.dial(t)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-inHandler
	shut := make(chan error, 1)
	go func() { shut <- ts.Shutdown(context.Background()) }()
	wantEOF(t, idleBR)   // the idle connection is closed at once
	wantEOF(t, parkedBR) // and the parked one
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	default:
	}
	close(release)
	res, b := readResp(t, busyBR, "GET")
	if b != "done" || !res.Close {
		t.Fatalf("%q close=%v", b, res.Close)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	wantEOF(t, busyBR)
}

// TestStartShutdown: when StartShutdown returns, without waiting, a response
// not begun yet is to carry Connection: close (its handler releases after
// the call, not after a wait); a Shutdown afterwards waits for it.
func TestStartShutdown(t *testing.T) {
	inHandler := make(chan struct{})
	release := make(chan struct{})
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		close(inHandler)
		<-release
		io.WriteString(w, "done")
	}, nil)
	busy, busyBR := ts.dial(t)
	io.WriteString(busy, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	<-inHandler
	ts.StartShutdown()
	close(release)
	res, b := readResp(t, busyBR, "GET")
	if b != "done" || !res.Close {
		t.Fatalf("%q close=%v", b, res.Close)
	}
	wantEOF(t, busyBR)
	if err := ts.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestShutdownDeadline: Shutdown whose context ends closes what is left.
func TestShutdownDeadline(t *testing.T) {
	ts := start(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, nil)
	c, br := ts.dial(t)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	for ts.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	wantEOF(t, br)
}

func TestResponseControllerDeadline(t *testing.T) {
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
			t.Error(err)
		}
		_, err := io.ReadAll(r.Body)
		rc.SetReadDeadline(time.Time{})
		fmt.Fprintf(w, "timeout=%v", errors.Is(err, os.ErrDeadlineExceeded))
	}, nil)
	c, br := ts.dial(t)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
	if _, b := readResp(t, br, "POST"); b != "timeout=true" {
		t.Fatal(b)
	}
}

// TestTLS: HTTP/1.1 over TLS sets r.TLS; ALPN h2 goes to the H2 hook.
func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	h := func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s tls=%v local=%v", r.Proto, r.TLS != nil, r.Context().Value(http.LocalAddrContextKey) != nil)
	}
	ts := start(t, h, func(s *Server) {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
		s.H2 = (&h2.Server{Handler: s.Handler}).ServeTLS
	})
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		cl := &http.Client{Transport: tr, Timeout: 20 * time.Second}
		res, err := cl.Get("https://" + ts.addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		want := "HTTP/1.1 tls=true local=true"
		if h2 {
			want = "HTTP/2.0 tls=true local=true"
		}
		if string(b) != want {
			t.Fatalf("got %q want %q", b, want)
		}
		tr.CloseIdleConnections()
	}
}

func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// TestRefusalSurvivesUnsentBody: a refused request whose client goes on
// sending a large body still reads the refusal (the server lingers instead
// of resetting the connection under the client's writes).
func TestRefusalSurvivesUnsentBody(t *testing.T) {
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {}, nil)
	c, br := ts.dial(t)
	go func() {
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\nTransfer-Encoding: chunked\r\n\r\n")
		io.Copy(c, io.LimitReader(zeros{}, 1<<20))
	}()
	res, _ := readResp(t, br, "POST")
	if res.StatusCode != 400 || !res.Close {
		t.Fatalf("%d close=%v", res.StatusCode, res.Close)
	}
}

// idleConns counts the connections waiting for a request without a
// goroutine of their own (parked) or on one (idle), and those of them that
// hold a buffer.
func (ts *testServer) idleConns() (parked, idle, held int) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for cn := range ts.conns {
		switch cn.state.Load() {
		case stateParked:
			parked++
		case stateIdle:
			idle++
		default:
			continue
		}
		if cn.br != nil || cn.wb != nil {
			held++
		}
	}
	return parked, idle, held
}

// waitIdle polls until n connections wait for their next request without
// a buffer: parked (no goroutine) where sockets park, else idle.
func (ts *testServer) waitIdle(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		parked, idle, held := ts.idleConns()
		if held != 0 {
			t.Fatal("an idle connection holds its buffers")
		}
		if parked+idle == n {
			if park.CanPark && (parked != n || ts.parker.Len() != n) {
				t.Fatalf("%d idle connections of %d parked (%d in the parker)", parked, n, ts.parker.Len())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d parked and %d idle connections, want %d", parked, idle, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestIdleParks: a connection waiting for its next request has given its
// read and write buffers back and, where sockets park, its goroutine too;
// its next request wakes it, and its client's close ends it.
func TestIdleParks(t *testing.T) {
	ts := start(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) }, nil)
	c, br := ts.dial(t)
	for _, path := range []string{"/one", "/two"} {
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		if _, b := readResp(t, br, "GET"); b != path {
			t.Fatalf("got %q for %s", b, path)
		}
		ts.waitIdle(t, 1)
	}
	c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ts.mu.Lock()
		n := len(ts.conns)
		ts.mu.Unlock()
		if n == 0 && ts.parker.Len() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections left after the client closed (%d parked)", n, ts.parker.Len())
		}
	}
}

// TestRawHeader: fields a handler hands over rendered (SetRawHeader) are
// sent after Header()'s, the length frames the body (keep-alive goes on),
// a HEAD gets the length without the body, a Date among them is the only
// one, and after WriteHeader the call does nothing.
func TestRawHeader(t *testing.T) {
	type rawHeader interface {
		SetRawHeader(fields []byte, contentLength int64, withDate bool) bool
	}
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		rh, ok := w.(rawHeader)
		if !ok {
			t.Error("the engine's ResponseWriter has no SetRawHeader")
			return
		}
		w.Header().Set("Age", "3")
		fields := "Cache-Control: max-age=60\r\nX-Raw: yes\r\n"
		withDate := r.URL.Path == "/date"
		if withDate {
			fields = "Cache-Control: max-age=60\r\nDate: Mon, 07 Dec 2026 09:00:00 GMT\r\nX-Raw: yes\r\n"
		}
		if !rh.SetRawHeader([]byte(fields), 5, withDate) {
			t.Error("SetRawHeader refused before WriteHeader")
		}
		w.WriteHeader(http.StatusOK)
		if rh.SetRawHeader([]byte("X-Late: 1\r\n"), 5, false) {
			t.Error("SetRawHeader took fields after WriteHeader")
		}
		io.WriteString(w, "hello")
	}, nil)
	c, br := ts.dial(t)
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\nGET /date HTTP/1.1\r\nHost: x\r\n\r\n")
	res, body := readResp(t, br, "GET")
	if body != "hello" || res.ContentLength != 5 || res.Header.Get("X-Raw") != "yes" || res.Header.Get("Age") != "3" ||
		res.Header.Get("Cache-Control") != "max-age=60" || len(res.Header["Date"]) != 1 || res.Header.Get("X-Late") != "" {
		t.Fatalf("GET: %d %q %v", res.ContentLength, body, res.Header)
	}
	res, body = readResp(t, br, "HEAD")
	if body != "" || res.ContentLength != 5 || res.Header.Get("X-Raw") != "yes" {
		t.Fatalf("HEAD: %d %q %v", res.ContentLength, body, res.Header)
	}
	res, body = readResp(t, br, "GET")
	if body != "hello" || res.Header["Date"][0] != "Mon, 07 Dec 2026 09:00:00 GMT" || len(res.Header["Date"]) != 1 {
		t.Fatalf("GET with Date: %q %v", body, res.Header)
	}
}
