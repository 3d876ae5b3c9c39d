package upstream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func get(t testing.TB, rt http.RoundTripper, u string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("GET %s: body: %v", u, err)
	}
	return resp, string(b)
}

// N sequential requests to each of two destinations use one connection per
// destination, whatever the body's framing.
func TestSequentialRequestsReuseOneConnection(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			io.WriteString(w, "part one, ")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part two")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			io.WriteString(w, "hello "+r.URL.Path)
		}
	})
	a, na := countingServer(t, h)
	b, nb := countingServer(t, h)
	c := newClient(t, Config{})
	for i := range 30 {
		for _, srv := range []*httptest.Server{a, b} {
			path := []string{"/cl", "/chunked", "/empty"}[i%3]
			resp, body := get(t, c, srv.URL+path)
			want := map[string]string{"/cl": "hello /cl", "/chunked": "part one, part two", "/empty": ""}[path]
			if body != want {
				t.Fatalf("%s: body %q, want %q (status %d)", path, body, want, resp.StatusCode)
			}
		}
	}
	if na.Load() != 1 || nb.Load() != 1 {
		t.Fatalf("origins accepted %d and %d connections for 30 requests each, want 1 each", na.Load(), nb.Load())
	}
	// HEAD and a body closed after the last byte arrived keep it too.
	req, _ := http.NewRequest(http.MethodHead, a.URL+"/cl", nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ContentLength != int64(len("hello /cl")) {
		t.Errorf("HEAD ContentLength %d", resp.ContentLength)
	}
	if na.Load() != 1 {
		t.Fatalf("HEAD took a new connection")
	}
}

// The forward door's case: requests from many goroutines to one destination
// share at most MaxIdlePerHost kept connections once they are done.
func TestIdleBounds(t *testing.T) {
	release := make(chan struct{})
	srv, n := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "ok")
	}))
	c := newClient(t, Config{MaxIdlePerHost: 2, MaxIdle: 3})
	done := make(chan error)
	for range 4 {
		go func() {
			req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
			resp, err := c.RoundTrip(req)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			done <- err
		}()
	}
	eventually(t, "4 connections", func() bool { return n.Load() == 4 })
	close(release)
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := c.idle.len(); got != 2 {
		t.Fatalf("%d idle connections kept, want max_idle_per_host 2", got)
	}
	// A second destination: the total bound (3) closes the longest idle.
	other, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	get(t, c, other.URL)
	get(t, c, other.URL+"/again")
	if got := c.idle.len(); got != 3 {
		t.Fatalf("%d idle connections, want the total bound 3", got)
	}
	c.CloseIdleConnections()
	if got := c.idle.len(); got != 0 {
		t.Fatalf("%d idle connections after CloseIdleConnections", got)
	}
}

func TestIdleTimeoutClosesConnections(t *testing.T) {
	closed := make(chan struct{}, 2)
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for readRequest(br) != nil {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
		closed <- struct{}{}
	})
	c := newClient(t, Config{IdleTimeout: 50 * time.Millisecond})
	get(t, c, srv.url())
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("idle connection not closed after idle timeout")
	}
	if c.idle.len() != 0 {
		t.Fatal("expired connection still kept")
	}
	get(t, c, srv.url())
	if srv.accepts.Load() != 2 {
		t.Fatalf("accepts %d, want 2", srv.accepts.Load())
	}
}

// A kept connection the server closed while it was idle: every request
// succeeds on a fresh connection, sent once.
func TestStaleConnectionClosedWhileIdle(t *testing.T) {
	var requests atomic.Int64
	firstClosed := make(chan struct{})
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		req := readRequest(br)
		if req == nil {
			return
		}
		requests.Add(1)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		if req.URL.Path == "/first" {
			c.Close() // after a keep-alive answer: the client keeps a dead connection
			close(firstClosed)
			return
		}
		for readRequest(br) != nil {
			requests.Add(1)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	c := newClient(t, Config{})
	get(t, c, srv.url()+"/first")
	<-firstClosed
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		req, _ := http.NewRequest(method, srv.url()+"/next", strings.NewReader("body"))
		req.GetBody = nil // not replayable
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s after the server closed the idle connection: %v", method, err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if requests.Load() != 3 {
		t.Fatalf("origin saw %d requests, want 3 (each once)", requests.Load())
	}
}

// A kept connection the server drops as a request arrives (closing it
// without an answer): a GET is retried once on a fresh connection, a POST is
// not sent again and fails with an error that says why.
func TestStaleConnectionRetry(t *testing.T) {
	var gets, posts atomic.Int64
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for n := 0; ; n++ {
			req := readRequest(br)
			if req == nil {
				return
			}
			if req.Method == http.MethodPost {
				posts.Add(1)
			} else {
				gets.Add(1)
			}
			if n == 1 {
				return // the second request on a connection: dropped unanswered
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	c := newClient(t, Config{})
	get(t, c, srv.url()+"/1")
	_, body := get(t, c, srv.url()+"/2") // dropped, retried on a fresh connection
	if body != "ok" || gets.Load() != 3 || srv.accepts.Load() != 2 {
		t.Fatalf("GET: body %q, origin saw %d GETs on %d connections; want ok, 3 on 2", body, gets.Load(), srv.accepts.Load())
	}
	// The fresh connection is kept: the POST goes on it as its second request.
	req, _ := http.NewRequest(http.MethodPost, srv.url()+"/3", strings.NewReader("pay once"))
	_, err := c.RoundTrip(req)
	if err == nil {
		t.Fatal("POST on a dropped kept connection succeeded")
	}
	if !strings.Contains(err.Error(), "not retried") || !strings.Contains(err.Error(), "POST") {
		t.Errorf("error does not say the POST was not retried: %v", err)
	}
	if posts.Load() != 1 {
		t.Fatalf("origin saw the POST %d times, want once", posts.Load())
	}
	// A POST with an Idempotency-Key and a replayable body is retried.
	get(t, c, srv.url()+"/4") // a fresh connection, kept
	req, _ = http.NewRequest(http.MethodPost, srv.url()+"/5", strings.NewReader("again"))
	req.Header.Set("Idempotency-Key", "k1")
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatalf("POST with Idempotency-Key: %v", err)
	}
	resp.Body.Close()
	if posts.Load() != 3 {
		t.Fatalf("origin saw %d POSTs, want 3", posts.Load())
	}
}

func TestStrictResponseParser(t *testing.T) {
	cases := map[string]string{
		"CL and TE":        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"two CLs":          "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
		"bad CL":           "HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc",
		"gzip TE":          "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
		"space before :":   "HTTP/1.1 200 OK\r\nContent-Length : 3\r\n\r\nabc",
		"folded CL":        "HTTP/1.1 200 OK\r\nContent-Length: \r\n 3\r\n\r\nabc",
		"no colon":         "HTTP/1.1 200 OK\r\nfoo\r\n\r\n",
		"bad status":       "HTTP/1.1 20 OK\r\n\r\n",
		"bad version":      "HTTP/2.0 200 OK\r\n\r\n",
		"control in value": "HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n",
		"huge head":        "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 70<<10) + "\r\n\r\n",
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
				readRequest(br)
				io.WriteString(c, raw)
			})
			c := newClient(t, Config{MaxHeaderBytes: 64 << 10})
			req, _ := http.NewRequest(http.MethodGet, srv.url(), nil)
			resp, err := c.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("accepted: %d %v", resp.StatusCode, resp.Header)
			}
			var pe *ProtocolError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), srv.ln.Addr().String()) {
				t.Fatalf("error %v: want a *ProtocolError naming the origin", err)
			}
		})
	}
}

func TestBadChunking(t *testing.T) {
	cases := map[string]string{
		"non-hex size":   "zz\r\nabc\r\n0\r\n\r\n",
		"no CRLF":        "3\r\nabcX\r\n0\r\n\r\n",
		"bare LF size":   "3\nabc\r\n0\r\n\r\n",
		"huge size":      "fffffffffffffffff\r\n",
		"truncated data": "10\r\nabc",
		"no last chunk":  "3\r\nabc\r\n",
	}
	for name, chunks := range cases {
		t.Run(name, func(t *testing.T) {
			srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
				readRequest(br)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+chunks)
				c.(*net.TCPConn).CloseWrite()
				io.Copy(io.Discard, c)
			})
			c := newClient(t, Config{})
			req, _ := http.NewRequest(http.MethodGet, srv.url(), nil)
			resp, err := c.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Fatal("bad chunked body read without error")
			}
			if c.idle.len() != 0 {
				t.Fatal("connection kept after a bad body")
			}
		})
	}
}

// Informational answers reach httptrace's Got1xxResponse (103 Early Hints)
// and are skipped otherwise.
func TestInformationalResponses(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for readRequest(br) != nil {
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"+
				"HTTP/1.1 102 Processing\r\n\r\n"+
				"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")
		}
	})
	c := newClient(t, Config{})
	var got []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, fmt.Sprintf("%d %s", code, h.Get("Link")))
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, srv.url(), nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "done" {
		t.Fatalf("final response %d %q", resp.StatusCode, b)
	}
	if want := []string{"103 </style.css>; rel=preload", "102 "}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Got1xxResponse saw %q, want %q", got, want)
	}
	if _, body := get(t, c, srv.url()); body != "done" {
		t.Fatalf("without a trace: %q", body)
	}
	if srv.accepts.Load() != 1 {
		t.Fatalf("accepts %d", srv.accepts.Load())
	}
}

// A 101's body is the connection, readable and writable (WebSocket).
func TestSwitchingProtocols(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		req := readRequest(br)
		if req == nil || req.Header.Get("Upgrade") != "echo" {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhi:")
		io.Copy(c, br)
	})
	c := newClient(t, Config{})
	req, _ := http.NewRequest(http.MethodGet, srv.url(), nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if resp.StatusCode != 101 || !ok {
		t.Fatalf("status %d, body %T", resp.StatusCode, resp.Body)
	}
	defer rwc.Close()
	io.WriteString(rwc, "ping")
	buf := make([]byte, 7)
	if _, err := io.ReadFull(rwc, buf); err != nil || string(buf) != "hi:ping" {
		t.Fatalf("tunnel read %q, %v", buf, err)
	}
}

func TestTrailers(t *testing.T) {
	srv, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "data")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Checksum", "abc")
		w.Header().Set(http.TrailerPrefix+"X-Late", "undeclared")
	}))
	c := newClient(t, Config{})
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := resp.Trailer["X-Checksum"]; !ok {
		t.Fatalf("declared trailer not announced: %v", resp.Trailer)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Trailer.Get("X-Checksum") != "abc" || resp.Trailer.Get("X-Late") != "undeclared" {
		t.Fatalf("trailer %v", resp.Trailer)
	}
	// Request trailers reach the origin.
	var gotTrailer atomic.Value
	srv2, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		gotTrailer.Store(r.Trailer.Get("X-Sum"))
	}))
	req, _ = http.NewRequest(http.MethodPost, srv2.URL, io.NopCloser(strings.NewReader("payload")))
	req.Trailer = http.Header{"X-Sum": {"42"}}
	resp, err = c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if gotTrailer.Load() != "42" {
		t.Fatalf("origin saw request trailer %v", gotTrailer.Load())
	}
}

type countingReader struct {
	r    io.Reader
	read atomic.Bool
}

func (c *countingReader) Read(p []byte) (int, error) { c.read.Store(true); return c.r.Read(p) }

func TestExpectContinue(t *testing.T) {
	srv, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/deny" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %s", b)
	}))
	c := newClient(t, Config{ExpectContinueTimeout: 30 * time.Second})
	var got100 atomic.Bool
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{Got100Continue: func() { got100.Store(true) }})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, srv.URL+"/ok", io.NopCloser(strings.NewReader("payload")))
	req.ContentLength = 7
	req.Header.Set("Expect", "100-continue")
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "got payload" || !got100.Load() {
		t.Fatalf("body %q, 100 seen %v", b, got100.Load())
	}
	// A final answer instead of the 100: the body is never read.
	body := &countingReader{r: strings.NewReader("secret")}
	req, _ = http.NewRequest(http.MethodPut, srv.URL+"/deny", io.NopCloser(body))
	req.ContentLength = 6
	req.Header.Set("Expect", "100-continue")
	resp, err = c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || body.read.Load() {
		t.Fatalf("status %d, body read %v: want 401 and the body not sent", resp.StatusCode, body.read.Load())
	}
	// A server that never answers the Expect: the body goes after the timeout.
	raw := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if req := readRequest(br); req != nil {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	c2 := newClient(t, Config{ExpectContinueTimeout: 50 * time.Millisecond})
	req, _ = http.NewRequest(http.MethodPut, raw.url(), io.NopCloser(strings.NewReader("payload")))
	req.ContentLength = 7
	req.Header.Set("Expect", "100-continue")
	resp, err = c2.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestTimeoutsAndCancellation(t *testing.T) {
	// Servers hold their connection open until the client or the test's
	// cleanup closes it.
	hold := func(br *bufio.Reader) { io.Copy(io.Discard, br) }
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if req := readRequest(br); req == nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\n") // half a head, then nothing
		hold(br)
	})
	c := newClient(t, Config{ResponseHeaderTimeout: 100 * time.Millisecond})
	req, _ := http.NewRequest(http.MethodGet, srv.url(), nil)
	_, err := c.RoundTrip(req)
	var te interface{ Timeout() bool }
	if err == nil || !errors.As(err, &te) || !te.Timeout() || !strings.Contains(err.Error(), "response headers") {
		t.Fatalf("slow head: %v, want a response header timeout", err)
	}
	// The request's context ends the wait at once.
	c2 := newClient(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, srv.url(), nil)
	errc := make(chan error, 1)
	go func() {
		_, err := c2.RoundTrip(req)
		errc <- err
	}()
	eventually(t, "the second request to arrive", func() bool { return srv.accepts.Load() == 2 })
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelling the context did not end the round trip")
	}
	// And a body read.
	body := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if readRequest(br) != nil {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome")
			hold(br)
		}
	})
	ctx, cancel = context.WithCancel(context.Background())
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, body.url(), nil)
	resp, err := c2.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	cancel()
	_, err = io.ReadAll(resp.Body)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("body read after cancel: %v", err)
	}
}

// Closing a body before its end keeps the connection only when the rest was
// already buffered.
func TestEarlyClose(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	srv, n := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			io.WriteString(w, big)
			return
		}
		io.WriteString(w, "small")
	}))
	c := newClient(t, Config{})
	for range 3 {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/big", nil)
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Read(make([]byte, 10))
		resp.Body.Close()
	}
	if n.Load() != 3 {
		t.Fatalf("%d connections for 3 abandoned large bodies, want 3 (each closed)", n.Load())
	}
	for range 3 {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/small", nil)
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // unread, but all buffered
	}
	if n.Load() != 4 {
		t.Fatalf("%d connections, want one more for the small bodies", n.Load())
	}
}

func TestTLSOrigin(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Proto, r.Host)
	})
	for _, h2 := range []bool{false, true} {
		srv := httptest.NewUnstartedServer(h)
		srv.EnableHTTP2 = h2
		var n atomic.Int64
		srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				n.Add(1)
			}
		}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
		var d net.Dialer
		to := srv.Listener.Addr().String()
		dial := func(ctx context.Context, network, _ string) (net.Conn, error) { return d.DialContext(ctx, network, to) }
		c := newClient(t, Config{TLS: &tls.Config{RootCAs: roots}, HTTP2: true, Dial: dial})
		u, _ := url.Parse(srv.URL)
		u.Host = "example.com:" + u.Port() // the test certificate's name
		for range 5 {
			resp, body := get(t, c, u.String())
			want := "HTTP/1.1 " + u.Host
			if h2 {
				want = "HTTP/2.0 " + u.Host
			}
			if body != want || resp.TLS == nil {
				t.Fatalf("h2=%v: %q (TLS %v), want %q", h2, body, resp.TLS != nil, want)
			}
		}
		if n.Load() != 1 {
			t.Fatalf("h2=%v: %d connections for 5 requests", h2, n.Load())
		}
		// Without the origin's CA its certificate is refused.
		bad := newClient(t, Config{Dial: dial})
		req, _ := http.NewRequest(http.MethodGet, u.String(), nil)
		if _, err := bad.RoundTrip(req); err == nil {
			t.Fatal("unverifiable certificate accepted")
		}
	}
}

// Through a parent proxy: http requests in absolute form with the parent's
// credentials, https ones through a CONNECT.
func TestParentProxy(t *testing.T) {
	var seen atomic.Value
	origin, _ := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "origin") }))
	parent, np := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.RequestURI + " " + r.Header.Get("Proxy-Authorization") + " " + r.Host)
		io.WriteString(w, "via parent")
	}))
	pu, _ := url.Parse(parent.URL)
	pu.User = url.UserPassword("u", "p")
	c := newClient(t, Config{Proxy: pu})
	for _, host := range []string{"a.test", "b.test:8080"} {
		_, body := get(t, c, "http://"+host+"/x?y=1")
		want := "http://" + host + "/x?y=1 Basic dTpw " + host
		if body != "via parent" || seen.Load() != want {
			t.Fatalf("parent saw %q, want %q", seen.Load(), want)
		}
	}
	if np.Load() != 1 {
		t.Fatalf("%d connections to the parent, want 1 shared by every http destination", np.Load())
	}
	_ = origin

	// https through CONNECT to a TLS origin.
	tlsOrigin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secret origin") }))
	t.Cleanup(tlsOrigin.Close)
	var connectSeen atomic.Value
	tunnel := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		connectSeen.Store(req.Method + " " + req.Host + " " + req.Header.Get("Proxy-Authorization"))
		up, err := net.Dial("tcp", tlsOrigin.Listener.Addr().String())
		if err != nil {
			return
		}
		defer up.Close()
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() { io.Copy(up, br); up.Close() }()
		io.Copy(c, up)
	})
	tu, _ := url.Parse(tunnel.url())
	tu.User = url.UserPassword("u", "p")
	roots := tlsOrigin.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c2 := newClient(t, Config{Proxy: tu, TLS: &tls.Config{RootCAs: roots, ServerName: "example.com"}})
	_, body := get(t, c2, "https://localhost:4443/s")
	if body != "secret origin" || connectSeen.Load() != "CONNECT localhost:4443 Basic dTpw" {
		t.Fatalf("body %q, parent saw %q", body, connectSeen.Load())
	}
	// A refused CONNECT is a *ConnectError.
	refuse := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if readRequest(br) != nil {
			io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
		}
	})
	ru, _ := url.Parse(refuse.url())
	c3 := newClient(t, Config{Proxy: ru})
	req, _ := http.NewRequest(http.MethodGet, "https://example.test/", nil)
	_, err := c3.RoundTrip(req)
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Status != 403 {
		t.Fatalf("refused CONNECT: %v", err)
	}
}

func TestRequestBodies(t *testing.T) {
	srv, n := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d %v %q %v", r.ContentLength, r.TransferEncoding, b, err)
	}))
	c := newClient(t, Config{})
	big := strings.Repeat("b", 100<<10)
	for _, tc := range []struct {
		body   io.Reader
		length int64
		want   string
	}{
		{strings.NewReader("abc"), 3, `3 [] "abc" <nil>`},
		{io.NopCloser(strings.NewReader("stream")), -1, `-1 [chunked] "stream" <nil>`},
		{io.NopCloser(strings.NewReader(big)), int64(len(big)), fmt.Sprintf("%d [] %q <nil>", len(big), big)},
		{io.NopCloser(strings.NewReader(big)), 0, fmt.Sprintf("-1 [chunked] %q <nil>", big)},
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, tc.body)
		req.ContentLength = tc.length
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != tc.want {
			t.Fatalf("origin saw %.80q, want %.80q", b, tc.want)
		}
	}
	// A body shorter than its Content-Length is an error, and the connection
	// is not kept.
	req, _ := http.NewRequest(http.MethodPost, srv.URL, io.NopCloser(strings.NewReader("ab")))
	req.ContentLength = 5
	if _, err := c.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "ContentLength=5 with Body length 2") {
		t.Fatalf("short body: %v", err)
	}
	get(t, c, srv.URL)
	if n.Load() != 2 {
		t.Fatalf("connections %d, want 2", n.Load())
	}
}

// A body read from a closed-delimited response ends at the server's close.
func TestCloseDelimitedAndHTTP10(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if req := readRequest(br); req != nil {
			io.WriteString(c, "HTTP/1.0 200 OK\r\nX-A: 1\r\n\r\nuntil close")
		}
	})
	c := newClient(t, Config{})
	resp, body := get(t, c, srv.url())
	if body != "until close" || !resp.Close || resp.ContentLength != -1 {
		t.Fatalf("%q close=%v cl=%d", body, resp.Close, resp.ContentLength)
	}
	if c.idle.len() != 0 {
		t.Fatal("close-delimited connection kept")
	}
}

var _ = bytes.Equal

// A kept connection the server closed while it was idle, then GETs without
// a body (whose head is written as the response is first awaited): each is
// answered, on a fresh connection, and the origin sees each once.
func TestStaleConnectionBodilessGET(t *testing.T) {
	var requests atomic.Int64
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if readRequest(br) == nil {
			return
		}
		requests.Add(1)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		c.Close() // after a keep-alive answer: the client keeps a dead connection
	})
	c := newClient(t, Config{})
	for i := range 4 {
		if _, body := get(t, c, srv.url()+"/"+strconv.Itoa(i)); body != "ok" {
			t.Fatalf("GET %d: body %q", i, body)
		}
	}
	if requests.Load() != 4 {
		t.Fatalf("origin saw %d requests, want 4 (each once)", requests.Load())
	}
}

// The response header timeout bounds the head only: a body that takes longer
// is read whole, and a connection whose answer was complete is kept and
// reused (a POST, which is checked before it is sent, included) after the
// timeout would have passed.
func TestResponseHeaderTimeoutSpansTheHeadOnly(t *testing.T) {
	const timeout = 100 * time.Millisecond
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req := readRequest(br)
			if req == nil {
				return
			}
			if req.URL.Path == "/slow-body" {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nsl")
				time.Sleep(4 * timeout) // an origin slow to send its body
				io.WriteString(c, "ow")
				continue
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	c := newClient(t, Config{ResponseHeaderTimeout: timeout})
	if _, body := get(t, c, srv.url()+"/slow-body"); body != "slow" {
		t.Fatalf("slow body: %q", body)
	}
	if _, body := get(t, c, srv.url()+"/a"); body != "ok" {
		t.Fatalf("body %q", body)
	}
	time.Sleep(3 * timeout) // idle past the timeout the last exchange armed
	req, _ := http.NewRequest(http.MethodPost, srv.url()+"/post", strings.NewReader("once"))
	req.GetBody = nil // not replayable: the kept connection is checked first
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatalf("POST on the kept connection: %v", err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	time.Sleep(3 * timeout)
	if _, body := get(t, c, srv.url()+"/b"); body != "ok" {
		t.Fatalf("body %q", body)
	}
	if n := srv.accepts.Load(); n != 1 {
		t.Fatalf("%d connections, want 1 (kept throughout)", n)
	}
}

// hookCtx is a context with an AfterFunc of its own, as internal/h1's
// request context has: fire runs what was registered, as its end does.
type hookCtx struct {
	context.Context
	mu    sync.Mutex
	fns   []func()
	added int
}

func (c *hookCtx) AfterFunc(f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := len(c.fns)
	c.fns = append(c.fns, f)
	c.added++
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		ok := c.fns[i] != nil
		c.fns[i] = nil
		return ok
	}
}

// registered counts the functions registered and not stopped or run.
func (c *hookCtx) registered() (live, added int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.fns {
		if f != nil {
			live++
		}
	}
	return live, c.added
}

func (c *hookCtx) fire() {
	c.mu.Lock()
	var fns []func()
	for i, f := range c.fns {
		if f != nil {
			fns = append(fns, f)
			c.fns[i] = nil
		}
	}
	c.mu.Unlock()
	for _, f := range fns {
		f()
	}
}

// A request context with an AfterFunc of its own (internal/h1's, passed on
// by the doors and internal/relay) is asked to cut the exchange when it
// ends, instead of context.AfterFunc making a context and a goroutine
// watching it per exchange: the function is registered for the exchange,
// unregistered at its end, and running it ends a wait for the answer.
func TestContextAfterFunc(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req := readRequest(br)
			if req == nil {
				return
			}
			if req.URL.Path == "/hold" {
				io.Copy(io.Discard, br) // no answer
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	c := newClient(t, Config{})
	hc := &hookCtx{Context: context.Background()}
	req, _ := http.NewRequestWithContext(hc, http.MethodGet, srv.url()+"/ok", nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "ok" {
		t.Fatalf("body %q, %v", b, err)
	}
	resp.Body.Close()
	if live, added := hc.registered(); added != 1 || live != 0 {
		t.Fatalf("after an exchange: %d registered, %d left; want 1 registered with the context and stopped at the end", added, live)
	}

	ctx, cancel := context.WithCancel(context.Background())
	hc = &hookCtx{Context: ctx}
	req, _ = http.NewRequestWithContext(hc, http.MethodGet, srv.url()+"/hold", nil)
	errc := make(chan error, 1)
	go func() {
		_, err := c.RoundTrip(req)
		errc <- err
	}()
	eventually(t, "the exchange to register with the context", func() bool { live, _ := hc.registered(); return live == 1 })
	cancel()
	hc.fire()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("context ended: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the context's end did not end the round trip")
	}
}

// The field values of an exchange's heads each stay as read: those of a
// 1xx kept by the trace are not overwritten by the final head's, which
// holds more fields than the exchange keeps room for.
func TestHeadValuesKept(t *testing.T) {
	var final strings.Builder
	final.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n")
	for i := range 20 {
		fmt.Fprintf(&final, "X-F%d: v%d\r\n", i, i)
	}
	final.WriteString("\r\nok")
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		for readRequest(br) != nil {
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nX-Hint: 1\r\n\r\n"+final.String())
		}
	})
	c := newClient(t, Config{})
	for range 2 {
		var hints textproto.MIMEHeader
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			Got1xxResponse: func(code int, h textproto.MIMEHeader) error { hints = h; return nil },
		})
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.url(), nil)
		resp, err := c.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok" || len(resp.Header) != 21 {
			t.Fatalf("body %q, %d fields: %v", b, len(resp.Header), resp.Header)
		}
		for i := range 20 {
			if v := resp.Header[fmt.Sprintf("X-F%d", i)]; len(v) != 1 || v[0] != fmt.Sprintf("v%d", i) {
				t.Fatalf("X-F%d: %q", i, v)
			}
		}
		if len(hints) != 2 || hints.Get("Link") != "</a.css>; rel=preload" || hints.Get("X-Hint") != "1" {
			t.Fatalf("the 103's fields after the final head: %v", hints)
		}
	}
}
