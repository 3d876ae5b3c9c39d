package relay

import (
	"bufio"
	"context"
	"errors"
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
	"testing"
	"time"
)

// origin starts a loopback origin serving h.
func origin(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// front is a loopback proxy relaying every request to its origin with Serve.
type front struct {
	*httptest.Server
	mu      sync.Mutex
	results []Result
	errs    []error
}

// startFront starts a proxy in front of o; opts.Transport defaults to a
// transport of its own, and opts.Upgrade is set.
func startFront(t testing.TB, o *httptest.Server, opts Options) *front {
	t.Helper()
	u, _ := url.Parse(o.URL)
	if opts.Transport == nil {
		tr := &http.Transport{MaxIdleConnsPerHost: 64}
		t.Cleanup(tr.CloseIdleConnections)
		opts.Transport = tr
	}
	opts.Upgrade = true
	rl := New()
	f := &front{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Prepare(r, opts.Upgrade)
		r.URL.Scheme, r.URL.Host = "http", u.Host
		res, err := rl.Serve(w, r, &opts)
		if err != nil && res.Status == 0 {
			http.Error(w, "bad gateway", http.StatusBadGateway)
		}
		f.mu.Lock()
		f.results = append(f.results, res)
		f.errs = append(f.errs, err)
		f.mu.Unlock()
	}))
	t.Cleanup(f.Close)
	f.Client().Timeout = 20 * time.Second // a held byte fails the test, not the run
	return f
}

func (f *front) last(t *testing.T) (Result, error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		n := len(f.results)
		var res Result
		var err error
		if n > 0 {
			res, err = f.results[n-1], f.errs[n-1]
		}
		f.mu.Unlock()
		if n > 0 {
			return res, err
		}
		if time.Now().After(deadline) {
			t.Fatal("no result recorded")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHopByHopAndHeaders(t *testing.T) {
	var seen http.Header
	o := origin(t, func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		w.Header().Set("Connection", "X-Origin-Hop")
		w.Header().Set("X-Origin-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Kept", "yes")
		io.WriteString(w, "ok")
	})
	f := startFront(t, o, Options{})
	req, _ := http.NewRequest("GET", f.URL+"/p?q=1", nil)
	req.Header.Set("Connection", "X-Secret")
	req.Header.Set("X-Secret", "s")
	req.Header.Set("Te", "trailers, gzip")
	req.Header.Set("Proxy-Authorization", "Basic eDp5")
	req.Header.Set("X-Client", "c")
	resp, err := f.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" || resp.StatusCode != 200 {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	for _, name := range []string{"X-Secret", "Proxy-Authorization"} {
		if v, ok := seen[name]; ok {
			t.Errorf("origin saw %s: %q", name, v)
		}
	}
	if seen.Get("Te") != "trailers" || seen.Get("X-Client") != "c" {
		t.Errorf("origin saw Te %q, X-Client %q", seen.Get("Te"), seen.Get("X-Client"))
	}
	if _, ok := seen["User-Agent"]; ok && seen.Get("User-Agent") != "Go-http-client/1.1" {
		t.Errorf("User-Agent %q", seen.Get("User-Agent"))
	}
	for _, name := range []string{"X-Origin-Hop", "Keep-Alive"} {
		if v := resp.Header.Get(name); v != "" {
			t.Errorf("client got %s: %q", name, v)
		}
	}
	if resp.Header.Get("X-Kept") != "yes" {
		t.Errorf("X-Kept lost: %v", resp.Header)
	}
	res, err := f.last(t)
	if err != nil || res.Status != 200 || res.BytesOut != 2 || res.Upstream == nil {
		t.Errorf("result %+v, %v", res, err)
	}
}

// TestNoUserAgentAdded: a client without User-Agent reaches the origin without one.
func TestNoUserAgentAdded(t *testing.T) {
	var ua []string
	var had bool
	o := origin(t, func(w http.ResponseWriter, r *http.Request) { ua, had = r.Header["User-Agent"] })
	f := startFront(t, o, Options{})
	conn, err := net.Dial("tcp", f.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatal(resp, err)
	}
	if had && len(ua) > 0 && ua[0] != "" {
		t.Errorf("origin saw User-Agent %q", ua)
	}
}

// TestEventStreamFlushedPerEvent: each server-sent event reaches the client
// while the origin holds the stream open.
func TestEventStreamFlushedPerEvent(t *testing.T) {
	next := make(chan struct{})
	o := origin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			io.WriteString(w, "data: "+strconv.Itoa(i)+"\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	})
	f := startFront(t, o, Options{})
	resp, err := f.Client().Get(f.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil || line != "data: "+strconv.Itoa(i)+"\n" {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		br.ReadString('\n')
		next <- struct{}{} // the origin sends the next event only now
	}
}

// TestKnownLengthFlushedOnPause: part of a body with a Content-Length reaches
// the client while the origin waits before sending the rest.
func TestKnownLengthFlushedOnPause(t *testing.T) {
	release := make(chan struct{})
	o := origin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "-rest")
	})
	f := startFront(t, o, Options{})
	resp, err := f.Client().Get(f.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("first part %q %v", buf, err)
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "-rest" || resp.ContentLength != 10 {
		t.Errorf("rest %q %v, length %d", rest, err, resp.ContentLength)
	}
}

func TestTrailers(t *testing.T) {
	o := origin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Declared")
		io.WriteString(w, "body")
		w.Header().Set("X-Declared", "d")
		w.Header().Set(http.TrailerPrefix+"X-Undeclared", "u")
	})
	f := startFront(t, o, Options{})
	req, _ := http.NewRequest("GET", f.URL, nil)
	req.Header.Set("Te", "trailers")
	resp, err := f.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "body" {
		t.Fatalf("body %q %v", body, err)
	}
	if resp.Trailer.Get("X-Declared") != "d" || resp.Trailer.Get("X-Undeclared") != "u" {
		t.Errorf("trailers %v", resp.Trailer)
	}
}

// TestEarlyHints: a 103 from the origin reaches a Go client's Got1xxResponse
// with its Link field, and does not leak into the final response.
func TestEarlyHints(t *testing.T) {
	o := origin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "final")
	})
	f := startFront(t, o, Options{})
	var codes []int
	var link string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		codes = append(codes, code)
		link = h.Get("Link")
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", f.URL, nil)
	resp, err := f.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(codes) != 1 || codes[0] != 103 || link != "</style.css>; rel=preload; as=style" {
		t.Errorf("1xx %v, Link %q", codes, link)
	}
	if string(body) != "final" || resp.Header.Get("Link") != "" {
		t.Errorf("final %q, Link %q", body, resp.Header.Get("Link"))
	}
}

// TestExpectContinue: a client that waits for 100 Continue before its body
// gets it and the exchange completes.
func TestExpectContinue(t *testing.T) {
	o := origin(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})
	f := startFront(t, o, Options{})
	tr := &http.Transport{ExpectContinueTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	got100 := false
	trace := &httptrace.ClientTrace{Got100Continue: func() { got100 = true }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "POST", f.URL, strings.NewReader("payload"))
	req.Header.Set("Expect", "100-continue")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !got100 || string(body) != "payload" {
		t.Errorf("100 continue %v, body %q", got100, body)
	}
	res, _ := f.last(t)
	if res.BytesIn != 7 {
		t.Errorf("BytesIn %d", res.BytesIn)
	}
}

// TestWebSocketUpgrade: a raw client's upgrade is relayed (101, then bytes
// both ways, including bytes sent right behind the request head).
func TestWebSocketUpgrade(t *testing.T) {
	o := origin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || !strings.EqualFold(r.Header.Get("Connection"), "upgrade") {
			http.Error(w, "want upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-Websocket-Accept: acc\r\n\r\n")
		brw.Flush()
		buf := make([]byte, 64)
		for {
			n, err := brw.Read(buf)
			if n > 0 {
				conn.Write([]byte(strings.ToUpper(string(buf[:n]))))
			}
			if err != nil {
				return
			}
		}
	})
	f := startFront(t, o, Options{})
	conn, err := net.Dial("tcp", f.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\nhello")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "websocket" || resp.Header.Get("Sec-Websocket-Accept") != "acc" {
		t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "HELLO" {
		t.Fatalf("echo %q %v", buf, err)
	}
	io.WriteString(conn, "world")
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "WORLD" {
		t.Fatalf("echo %q %v", buf, err)
	}
	conn.Close()
	res, err := f.last(t)
	if err != nil || res.Status != 101 || res.BytesIn != 10 || res.BytesOut != 10 {
		t.Errorf("result %+v %v", res, err)
	}
}

// TestUnaskedUpgradeRefused: a 101 the request did not ask for is an error,
// and the client gets the door's page.
func TestUnaskedUpgradeRefused(t *testing.T) {
	o := origin(t, func(w http.ResponseWriter, r *http.Request) {
		conn, brw, _ := http.NewResponseController(w).Hijack()
		defer conn.Close()
		io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		brw.Flush()
	})
	f := startFront(t, o, Options{})
	resp, err := f.Client().Get(f.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d", resp.StatusCode)
	}
	if _, err := f.last(t); !errors.Is(err, ErrUpgrade) {
		t.Errorf("err %v", err)
	}
}

// TestCutBodyAborts: an origin that dies midway through a body (with a
// length, or chunked) leaves the client with an error, never a complete-looking response.
func TestCutBodyAborts(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		t.Run("chunked="+strconv.FormatBool(chunked), func(t *testing.T) {
			o := origin(t, func(w http.ResponseWriter, r *http.Request) {
				if !chunked {
					w.Header().Set("Content-Length", "100")
				}
				io.WriteString(w, "0123456789")
				w.(http.Flusher).Flush()
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close()
				}
			})
			f := startFront(t, o, Options{})
			resp, err := f.Client().Get(f.URL)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Errorf("client read %q with no error: the cut looked complete", body)
			}
			res, rerr := f.last(t)
			if !res.Aborted || !errors.Is(rerr, ErrBodyCut) {
				t.Errorf("result %+v %v", res, rerr)
			}
		})
	}
}

func TestHugeHeaders(t *testing.T) {
	big := strings.Repeat("v", 60<<10)
	var seen string
	o := origin(t, func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Get("X-Big")
		w.Header().Set("X-Big-Back", big)
	})
	f := startFront(t, o, Options{})
	req, _ := http.NewRequest("GET", f.URL, nil)
	req.Header.Set("X-Big", big)
	resp, err := f.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if seen != big || resp.Header.Get("X-Big-Back") != big {
		t.Errorf("header lost: origin saw %d bytes, client got %d", len(seen), len(resp.Header.Get("X-Big-Back")))
	}
}

// TestBodyless: HEAD keeps its Content-Length and has no body; 204 and 304
// have none either.
func TestBodyless(t *testing.T) {
	o := origin(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/head":
			w.Header().Set("Content-Length", "1234")
		case "/204":
			w.WriteHeader(204)
		case "/304":
			w.Header().Set("Etag", `"e"`)
			w.WriteHeader(304)
		}
	})
	f := startFront(t, o, Options{})
	for _, c := range []struct {
		method, path string
		status       int
		length       string
	}{{"HEAD", "/head", 200, "1234"}, {"GET", "/204", 204, ""}, {"GET", "/304", 304, ""}} {
		conn, err := net.Dial("tcp", f.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		// Two requests on one connection: a body where none belongs would
		// be read as the second response's head.
		io.WriteString(conn, c.method+" "+c.path+" HTTP/1.1\r\nHost: x\r\n\r\n"+c.method+" "+c.path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(conn)
		for i := range 2 {
			resp, err := http.ReadResponse(br, &http.Request{Method: c.method})
			if err != nil {
				t.Fatalf("%s %s #%d: %v", c.method, c.path, i, err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != c.status || n != 0 || resp.Header.Get("Content-Length") != c.length {
				t.Errorf("%s %s: %d, %d body bytes, Content-Length %q", c.method, c.path, resp.StatusCode, n, resp.Header.Get("Content-Length"))
			}
		}
		conn.Close()
	}
}

// TestRoundTripErrorWritesNothing: a failed dial returns the error and
// leaves the answer to the door.
func TestRoundTripErrorWritesNothing(t *testing.T) {
	o := origin(t, func(http.ResponseWriter, *http.Request) {})
	f := startFront(t, o, Options{})
	o.Close()
	resp, err := f.Client().Get(f.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 || !strings.Contains(string(body), "bad gateway") {
		t.Errorf("%d %q", resp.StatusCode, body)
	}
	if res, err := f.last(t); err == nil || res.Status != 0 {
		t.Errorf("result %+v %v", res, err)
	}
}

// TestModifyResponseReplacesBody: a hook that replaces the body frames the
// response from ContentLength.
func TestModifyResponseReplacesBody(t *testing.T) {
	o := origin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "8")
		io.WriteString(w, "original")
	})
	f := startFront(t, o, Options{ModifyResponse: func(resp *http.Response) error {
		if resp.Request.URL.Path == "/fail" {
			return errors.New("refused")
		}
		resp.Body.Close()
		resp.StatusCode = 403
		resp.Body = io.NopCloser(strings.NewReader("blocked!!"))
		resp.ContentLength = 9
		return nil
	}})
	resp, err := f.Client().Get(f.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || string(body) != "blocked!!" || resp.ContentLength != 9 {
		t.Errorf("%d %q %d", resp.StatusCode, body, resp.ContentLength)
	}
	resp, err = f.Client().Get(f.URL + "/fail")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 {
		t.Errorf("failing hook: %d", resp.StatusCode)
	}
}

// TestStreamHeadBeforeBody: an origin that sends its head (no length) and then
// holds the body back: the client gets the status and fields while it waits,
// as from nginx or HAProxy (long polling, slow starts).
func TestStreamHeadBeforeBody(t *testing.T) {
	release := make(chan struct{})
	o := origin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Held", "yes")
		w.WriteHeader(http.StatusAccepted)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "done")
	})
	f := startFront(t, o, Options{})
	resp, err := f.Client().Get(f.URL) // returns once the head is in
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Held") != "yes" || string(body) != "done" || err != nil {
		t.Fatalf("got %d %q %q %v", resp.StatusCode, resp.Header.Get("X-Held"), body, err)
	}
}
