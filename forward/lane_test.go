package forward

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter"
	"github.com/portcullis/portcullis/internal/admin"
	"github.com/portcullis/portcullis/rules"
)

// scriptOrigin is a raw HTTP/1.1 origin on loopback: it records every request
// head byte for byte and answers with the raw response its script gives for
// the request's path, closing the connection after it when close is set.
type scriptOrigin struct {
	ln     net.Listener
	addr   string
	script func(path string) (resp string, close bool)

	mu    sync.Mutex
	heads []string
	live  map[net.Conn]bool
	hold  chan struct{} // when set, the origin waits for it after answering (and then closes)
	conns atomic.Int64  // connections accepted
	open  atomic.Int64  // connections not closed yet
	wg    sync.WaitGroup
}

func startScriptOrigin(t *testing.T, script func(path string) (string, bool)) *scriptOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &scriptOrigin{ln: ln, addr: ln.Addr().String(), script: script, live: map[net.Conn]bool{}}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.conns.Add(1)
			o.open.Add(1)
			o.mu.Lock()
			o.live[c] = true
			o.mu.Unlock()
			o.wg.Add(1)
			go o.serve(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		o.mu.Lock()
		for c := range o.live {
			c.Close() // idle connections a net/http transport keeps
		}
		o.mu.Unlock()
		o.wg.Wait()
	})
	return o
}

func (o *scriptOrigin) serve(c net.Conn) {
	defer o.wg.Done()
	defer func() {
		c.Close()
		o.mu.Lock()
		delete(o.live, c)
		o.mu.Unlock()
		o.open.Add(-1)
	}()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	for {
		var head strings.Builder
		path := ""
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if head.Len() == 0 {
				if f := strings.Fields(line); len(f) > 1 {
					path = f[1]
				}
			}
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		if req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head.String()))); err == nil {
			switch {
			case len(req.TransferEncoding) > 0:
				if _, err := io.Copy(io.Discard, httputil.NewChunkedReader(br)); err != nil {
					return
				}
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						break
					}
				}
			case req.ContentLength > 0:
				if _, err := io.CopyN(io.Discard, br, req.ContentLength); err != nil {
					return
				}
			}
		}
		o.mu.Lock()
		o.heads = append(o.heads, head.String())
		o.mu.Unlock()
		resp, closeAfter := o.script(path)
		if strings.HasPrefix(head.String(), "HEAD ") && !strings.HasPrefix(resp, "HTTP/1.1 1") {
			// A HEAD response has no body, as any origin answers: bytes after
			// the head would sit on the connection and make net/http's
			// transport fail the next request that picks it (a flake).
			if end := strings.Index(resp, "\r\n\r\n"); end >= 0 {
				resp = resp[:end+4]
			}
		}
		if _, err := io.WriteString(c, resp); err != nil || closeAfter {
			return
		}
		if o.hold != nil {
			go func() { <-o.hold; c.Close() }()
			_, _ = br.ReadByte() // until the proxy closes the connection
			return
		}
	}
}

// last returns the last request head the origin saw ("" for none) and forgets them all.
func (o *scriptOrigin) last() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.heads) == 0 {
		return ""
	}
	h := o.heads[len(o.heads)-1]
	o.heads = nil
	return h
}

// waitOpen waits until the origin has n connections open.
func (o *scriptOrigin) waitOpen(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for o.open.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("origin has %d connections open, want %d", o.open.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// differentialScript is the origin's answers for the differential test.
func differentialScript(path string) (string, bool) {
	switch strings.TrimPrefix(strings.SplitN(path, "?", 2)[0], "/") {
	case "cl":
		return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-Origin: a\r\nX-Origin: b\r\nDate: Mon, 02 Jan 2006 15:04:05 GMT\r\n\r\nhello", false
	case "sniff":
		return "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n<html>hi</html>", false
	case "chunked":
		return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", false
	case "trailer":
		return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nContent-Type: text/plain\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 42\r\n\r\n", false
	case "empty-chunked":
		return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n0\r\n\r\n", false
	case "eof":
		return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nuntil the end", true
	case "http10":
		return "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nold!", true
	case "hop":
		return "HTTP/1.1 200 OK\r\nConnection: X-Secret, keep-alive\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nUpgrade: foo\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok", false
	case "204":
		return "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n", false
	case "304":
		return "HTTP/1.1 304 Not Modified\r\nContent-Type: text/plain\r\nContent-Length: 10\r\nEtag: \"x\"\r\n\r\n", false
	case "103":
		return "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok", false
	case "599":
		return "HTTP/1.1 599 Whatever\r\nContent-Length: 1\r\nContent-Type: text/plain\r\n\r\nx", false
	case "reason":
		return "HTTP/1.1 404 Gone Fishing\r\nContent-Length: 1\r\nContent-Type: text/plain\r\n\r\nx", false
	case "garbage":
		return "HTTP/1.1 2x0 Nope\r\n\r\n", true
	case "cl-te":
		return "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n2\r\nok\r\n0\r\n\r\n", false
	case "two-cl":
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok", true
	case "nolen":
		return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nbody without length", true
	}
	return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\ndefault", false
}

// rawExchange sends raw on a new connection to addr and returns what came
// back until the connection closed or went quiet: the raw response bytes.
func rawExchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	// Read one response (HEAD-aware) and stop: the connection may stay open.
	method := strings.SplitN(raw, " ", 2)[0]
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &got))
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		return "ERROR " + err.Error() + ": " + got.String()
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	out := got.String()[:len(got.String())-br.Buffered()]
	if err != nil {
		out += "\nBODY ERROR " + err.Error()
	}
	_ = body
	return out
}

// withoutDate drops the Date line of a raw response (the second may turn between the runs).
func withoutDate(s string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\r\n") {
		if !strings.HasPrefix(line, "Date: ") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// TestLaneSameAsNetHTTP sends the same ordinary, odd and hostile requests
// through the lane and through net/http+goproxy alone, to an origin giving
// ordinary, odd and broken answers: the origin must see the same request
// heads and the client the same responses, byte for byte (but the Date).
func TestLaneSameAsNetHTTP(t *testing.T) {
	o := startScriptOrigin(t, differentialScript)
	fa := &fakeAnonymizer{}
	opts := func() Options {
		return Options{Anonymizer: fa.get, Config: &Config{Profile: "p1"}, Policy: hostPolicy("no-blocked", "blocked.test"),
			Now: func() time.Time { return time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC) }} // block pages show the time
	}
	lane := startProxyLane(t, opts(), true)
	plain := startProxyLane(t, opts(), false)
	u := "http://" + o.addr
	reqs := []string{}
	for _, path := range []string{"/cl", "/sniff", "/chunked", "/trailer", "/empty-chunked", "/eof", "/http10", "/hop", "/204", "/304",
		// Not /cl-te: internal/upstream (the net/http path's client) refuses a
		// response with both Content-Length and Transfer-Encoding (502); the
		// lane, which goes with the h1 engine, still reads it as chunked.
		"/103", "/599", "/reason", "/garbage", "/two-cl", "/nolen", "/q?a=1&b=%20x", "/p%41th/..;x"} {
		reqs = append(reqs, "GET "+u+path+" HTTP/1.1\r\nHost: "+o.addr+"\r\nUser-Agent: t/1\r\nAccept: */*\r\n\r\n")
	}
	reqs = append(reqs,
		"HEAD "+u+"/cl HTTP/1.1\r\nHost: "+o.addr+"\r\n\r\n",
		"HEAD "+u+"/chunked HTTP/1.1\r\nHost: "+o.addr+"\r\n\r\n",
		// Hop-by-hop and proxy fields, duplicates, Pragma, case.
		"GET "+u+"/cl HTTP/1.1\r\nhost: "+o.addr+"\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eDp5\r\nTE: trailers\r\nx-dup: 1\r\nX-Dup: 2\r\nPragma: no-cache\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
		"GET "+u+"/cl HTTP/1.1\r\nHost: "+o.addr+"\r\nConnection: close\r\n\r\n",
		"GET "+u+"/cl HTTP/1.1\r\nHost: other.example\r\n\r\n", // the URL decides
		"GET "+u+"/cl HTTP/1.1\r\nHost: "+o.addr+"\r\nAccept: text/html\r\nUser-Agent:\r\n\r\n",
		"GET http://blocked.test/x HTTP/1.1\r\nHost: blocked.test\r\nAccept: text/html\r\n\r\n",
		"HEAD http://blocked.test/x HTTP/1.1\r\nHost: blocked.test\r\n\r\n",
		"GET http://127.0.0.1:1/refused HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n",
		"GET ftp://"+o.addr+"/x HTTP/1.1\r\nHost: "+o.addr+"\r\n\r\n",
		// Declined by the lane: net/http answers both.
		"GET "+u+"/cl HTTP/1.0\r\nHost: "+o.addr+"\r\n\r\n",
		"GET "+u+"/cl HTTP/1.1\r\nHost: "+o.addr+"\r\nContent-Length: 0\r\n\r\n",
		"GET "+u+"/cl HTTP/1.1\r\nHost: "+o.addr+"\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET "+u+"/cl HTTP/1.1\r\nHost: "+o.addr+"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"GET "+u+"/cl HTTP/1.1\r\nHost: "+o.addr+"\r\nExpect: 100-continue\r\n\r\n",
		"GET "+u+"/cl HTTP/1.1\r\nHost: "+o.addr+"\r\nConnection: X-Drop\r\nX-Drop: 1\r\n\r\n",
		"GET "+u+"/cl HTTP/1.1\r\nHost: "+o.addr+"\r\nX-Fold: a\r\n b\r\n\r\n",
		"GET "+u+"/cl HTTP/1.1\r\nHost: "+o.addr+"\r\nX-Sp : a\r\n\r\n",
		"GET "+u+"/cl HTTP/1.1\r\nHost: "+o.addr+"\r\nHost: "+o.addr+"\r\n\r\n",
		"GET "+u+"/cl HTTP/1.1\r\n\r\n",
		"GET "+u+"/cl HTTP/1.1\nHost: "+o.addr+"\n\n",
		"GET "+u+"/cl HTTP/1.1\r\nHost: "+o.addr+"\r\nX-Ctl: a\x01b\r\n\r\n",
		"GET http://user:pw@"+o.addr+"/cl HTTP/1.1\r\nHost: "+o.addr+"\r\n\r\n",
		"GET /relative HTTP/1.1\r\nHost: "+o.addr+"\r\n\r\n",
		"POST "+u+"/cl HTTP/1.1\r\nHost: "+o.addr+"\r\nContent-Length: 3\r\n\r\nabc",
		"GET "+u+"/cl#frag HTTP/1.1\r\nHost: "+o.addr+"\r\n\r\n",
		"GET "+u+"/c l HTTP/1.1\r\nHost: "+o.addr+"\r\n\r\n",
		"GET http://"+o.addr+"\x00/cl HTTP/1.1\r\nHost: "+o.addr+"\r\n\r\n",
		"GET http://[::1/cl HTTP/1.1\r\nHost: "+o.addr+"\r\n\r\n",
		"GET http://b\xc3\xbccher.invalid/ HTTP/1.1\r\nHost: b\xc3\xbccher.invalid\r\n\r\n",
	)
	for _, raw := range reqs {
		o.last()
		start := time.Now()
		gotLane := withoutDate(rawExchange(t, lane.addr, raw))
		headLane := o.last()
		gotPlain := withoutDate(rawExchange(t, plain.addr, raw))
		headPlain := o.last()
		if d := time.Since(start); d > time.Second {
			t.Logf("request %q took %v", raw, d)
		}
		if gotLane != gotPlain {
			t.Errorf("request %q:\nlane answered  %q\nnet/http answered %q", raw, gotLane, gotPlain)
		}
		if headLane != headPlain {
			t.Errorf("request %q:\norigin saw from lane  %q\norigin saw from net/http %q", raw, headLane, headPlain)
		}
	}
	if answered, _ := lane.lane.Stats(); answered < 20 {
		t.Errorf("the lane served %d requests: the comparison did not exercise it", answered)
	}
	// The same access-log entries (but times and the wording of errors).
	deadline := time.Now().Add(10 * time.Second)
	for {
		lane.log.mu.Lock()
		nl := len(lane.log.entries)
		lane.log.mu.Unlock()
		plain.log.mu.Lock()
		np := len(plain.log.entries)
		plain.log.mu.Unlock()
		if nl == np || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	lane.log.mu.Lock()
	defer lane.log.mu.Unlock()
	plain.log.mu.Lock()
	defer plain.log.mu.Unlock()
	if len(lane.log.entries) != len(plain.log.entries) {
		t.Fatalf("%d access-log entries from the lane, %d from net/http", len(lane.log.entries), len(plain.log.entries))
	}
	// Both doors log after the answer is written, so the order may differ.
	a, b := comparableEntries(lane.log.entries), comparableEntries(plain.log.entries)
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("access-log entries differ:\nlane     %s\nnet/http %s", a[i], b[i])
		}
	}
}

// comparableEntries returns the entries as sorted strings without what
// differs between two runs of the same requests: times, and the wording of
// an error (kept: whether there was one).
func comparableEntries(entries []admin.Entry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		e.Time, e.Duration = time.Time{}, 0
		if e.Error != "" {
			e.Error = "error"
		}
		out[i] = fmt.Sprintf("%+v", e)
	}
	slices.Sort(out)
	return out
}

// laneClient is a raw keep-alive client connection to a proxy.
type laneClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialLane(t *testing.T, tp *testProxy) *laneClient {
	c, br := tp.dialRaw(t)
	return &laneClient{t: t, c: c, br: br}
}

// get sends a GET for url (with extra header lines) and reads the response
// and its body; err is the body's read error.
func (lc *laneClient) get(url, extra string) (*http.Response, string, error) {
	lc.t.Helper()
	host := strings.SplitN(strings.TrimPrefix(url, "http://"), "/", 2)[0]
	if _, err := io.WriteString(lc.c, "GET "+url+" HTTP/1.1\r\nHost: "+host+"\r\n"+extra+"\r\n"); err != nil {
		lc.t.Fatal(err)
	}
	resp, err := http.ReadResponse(lc.br, nil)
	if err != nil {
		lc.t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

func TestLaneReusesUpstreamConnectionsSafely(t *testing.T) {
	script := func(path string) (string, bool) {
		switch path {
		case "/close": // the origin says close but leaves the connection open
			return "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", false
		case "/eof":
			return "HTTP/1.1 200 OK\r\n\r\nuntil eof", true
		case "/http10": // likewise
			return "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false
		case "/extra": // more than the response
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad", false
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false
	}
	a := startScriptOrigin(t, script)
	b := startScriptOrigin(t, script)
	tp := startProxy(t, Options{})
	c := dialLane(t, tp)
	steps := []struct {
		origin *scriptOrigin
		path   string
		conns  int64 // the origin's connections so far
	}{
		{a, "/1", 1}, {a, "/2", 1}, {a, "/3", 1}, // kept
		{a, "/close", 1}, {a, "/4", 2}, // the origin said close: a new one
		{a, "/eof", 2}, {a, "/5", 3}, // a body ending with the connection
		{a, "/http10", 3}, {a, "/6", 4}, // HTTP/1.0 without keep-alive
		{a, "/extra", 4}, {a, "/6b", 5}, // bytes past the response
		{b, "/1", 1}, {b, "/2", 1}, // another origin: its own connection
		{a, "/7", 6}, // one kept at a time: back to a dials again
	}
	for _, s := range steps {
		resp, body, err := c.get("http://"+s.origin.addr+s.path, "")
		if err != nil || resp.StatusCode != 200 || (body != "ok" && body != "until eof") {
			t.Fatalf("%s: status %d body %q err %v", s.path, resp.StatusCode, body, err)
		}
		if got := s.origin.conns.Load(); got != s.conns {
			t.Fatalf("after %s the origin had %d connections, want %d", s.path, got, s.conns)
		}
	}
	a.waitOpen(t, 1) // only the kept one: the others were closed when left

	b.waitOpen(t, 0)
	// The client asks to close: the response says so, and both legs end.
	resp, _, _ := c.get("http://"+a.addr+"/8", "Connection: close\r\n")
	if !resp.Close {
		t.Fatal("no Connection: close on the response to a closing request")
	}
	if _, err := c.br.ReadByte(); err != io.EOF {
		t.Fatalf("client connection still open after Connection: close (%v)", err)
	}
	a.waitOpen(t, 0)
	if answered, handed := tp.lane.Stats(); answered != uint64(len(steps)+1) || handed != 0 {
		t.Fatalf("lane stats %d answered, %d handed off", answered, handed)
	}
}

func TestLaneClosesUpstreamWhenClientLeaves(t *testing.T) {
	a := startScriptOrigin(t, differentialScript)
	tp := startProxy(t, Options{})
	c := dialLane(t, tp)
	if resp, _, err := c.get("http://"+a.addr+"/cl", ""); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d err %v", resp.StatusCode, err)
	}
	a.waitOpen(t, 1)
	c.c.Close()
	a.waitOpen(t, 0)
}

func TestLaneRetriesAConnectionTheOriginClosedWhileIdle(t *testing.T) {
	// The origin closes every connection after answering, without saying so.
	o := startScriptOrigin(t, func(string) (string, bool) { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true })
	tp := startProxy(t, Options{})
	c := dialLane(t, tp)
	for i := range 3 {
		o.waitOpen(t, 0) // the kept connection is dead before it is reused
		resp, body, err := c.get("http://"+o.addr+"/x", "")
		if err != nil || resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: status %d body %q err %v", i, resp.StatusCode, body, err)
		}
	}
	if n := o.conns.Load(); n != 3 {
		t.Fatalf("origin saw %d connections, want 3", n)
	}
	for range 3 {
		if e := tp.log.next(t); e.Status != 200 || e.Error != "" {
			t.Fatalf("log entry %+v", e)
		}
	}
}

func TestLaneUpstreamDyingMidBodyCutsTheClient(t *testing.T) {
	for _, tc := range []struct{ name, resp string }{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("x", 40000)},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9c40\r\n" + strings.Repeat("x", 40000) + "\r\n1000\r\nshort"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := startScriptOrigin(t, func(string) (string, bool) { return tc.resp, true })
			tp := startProxy(t, Options{})
			c := dialLane(t, tp)
			resp, body, err := c.get("http://"+o.addr+"/big", "")
			if resp.StatusCode != 200 || err == nil {
				t.Fatalf("status %d, %d bytes, err %v: want a truncated body", resp.StatusCode, len(body), err)
			}
			if len(body) < 40000 {
				t.Fatalf("only %d bytes relayed before the cut", len(body))
			}
			if _, err := c.br.ReadByte(); err == nil {
				t.Fatal("client connection still open after a cut body")
			}
			e := tp.log.next(t)
			if e.Status != 200 || e.BytesOut < 40000 || !strings.Contains(e.Error, "reading the response body") {
				t.Fatalf("log entry %+v", e)
			}
			if answered, handed := tp.lane.Stats(); answered != 1 || handed != 0 {
				t.Fatalf("lane stats %d answered, %d handed off", answered, handed)
			}
		})
	}
}

func TestLaneBlocksWithTheBlockPage(t *testing.T) {
	o := startScriptOrigin(t, differentialScript)
	tp := startProxy(t, Options{Policy: hostPolicy("no-test", "blocked.test")})
	c := dialLane(t, tp)
	resp, body, err := c.get("http://blocked.test/page", "Accept: text/html\r\n")
	if err != nil || resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "no-test") || resp.Close {
		t.Fatalf("status %d close %v body %q err %v", resp.StatusCode, resp.Close, body, err)
	}
	e := tp.log.next(t)
	if e.Action != "block" || e.Rule != "no-test" || e.Status != 403 || e.URL != "http://blocked.test/page" || e.BytesOut != int64(len(body)) {
		t.Fatalf("log entry %+v", e)
	}
	// The connection goes on serving.
	if resp, body, err := c.get("http://"+o.addr+"/cl", ""); err != nil || resp.StatusCode != 200 || body != "hello" {
		t.Fatalf("after the block: status %d body %q err %v", resp.StatusCode, body, err)
	}
	if answered, handed := tp.lane.Stats(); answered != 2 || handed != 0 {
		t.Fatalf("lane stats %d answered, %d handed off", answered, handed)
	}
	if n := o.conns.Load(); n != 1 {
		t.Fatalf("origin saw %d connections", n)
	}
}

func TestLaneHandsOffMidConnectionWithPipelining(t *testing.T) {
	o := startScriptOrigin(t, func(path string) (string, bool) {
		body := "answer " + path
		return "HTTP/1.1 200 OK\r\nContent-Length: " + itoa(uint16(len(body))) + "\r\n\r\n" + body, false
	})
	tp := startProxy(t, Options{})
	c, br := tp.dialRaw(t)
	u := "http://" + o.addr
	host := "Host: " + o.addr + "\r\n"
	// Two lane requests, then one the lane declines (a body), then one it
	// would take: all sent in one write; net/http serves the last two.
	raw := "GET " + u + "/1 HTTP/1.1\r\n" + host + "\r\n" +
		"HEAD " + u + "/2 HTTP/1.1\r\n" + host + "\r\n" +
		"POST " + u + "/3 HTTP/1.1\r\n" + host + "Content-Length: 4\r\n\r\nbody" +
		"GET " + u + "/4 HTTP/1.1\r\n" + host + "\r\n"
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ method, body string }{{"GET", "answer /1"}, {"HEAD", ""}, {"POST", "answer /3"}, {"GET", "answer /4"}} {
		resp, err := http.ReadResponse(br, &http.Request{Method: want.method})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(b) != want.body {
			t.Fatalf("%s: status %d body %q err %v", want.method, resp.StatusCode, b, err)
		}
	}
	if answered, handed := tp.lane.Stats(); answered != 2 || handed != 1 {
		t.Fatalf("lane stats %d answered, %d handed off", answered, handed)
	}
}

func TestLaneLeavesNonLanePoliciesToNetHTTP(t *testing.T) {
	o := startScriptOrigin(t, differentialScript)
	for name, opts := range map[string]Options{
		"custom transport": {Transport: &http.Transport{}},
		"safesearch":       {Config: &Config{School: School{SafeSearch: filter.SafeSearch{Google: true}}}},
		"cache verdict": {Policy: rules.EvaluatorFunc(func(*rules.Facts) rules.Verdict {
			return rules.Verdict{Action: rules.ActionAllow, Rule: "cached", Cache: "static"}
		})},
	} {
		t.Run(name, func(t *testing.T) {
			tp := startProxy(t, opts)
			c := dialLane(t, tp)
			if resp, body, err := c.get("http://"+o.addr+"/cl", ""); err != nil || resp.StatusCode != 200 || body != "hello" {
				t.Fatalf("status %d body %q err %v", resp.StatusCode, body, err)
			}
			if answered, handed := tp.lane.Stats(); answered != 0 || handed != 1 {
				t.Fatalf("lane stats %d answered, %d handed off", answered, handed)
			}
		})
	}
}

func TestLaneNoticesClientGoneWhileWaitingForOrigin(t *testing.T) {
	for _, tc := range []struct{ name, resp string }{
		{"head", ""}, // the origin never answers
		{"body", "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\n"}, // a stream that goes quiet
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release)
			o := startScriptOrigin(t, func(string) (string, bool) { return tc.resp, false })
			o.hold = release
			tp := startProxy(t, Options{})
			c, br := tp.dialRaw(t)
			if _, err := io.WriteString(c, "GET http://"+o.addr+"/wait HTTP/1.1\r\nHost: "+o.addr+"\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			o.waitOpen(t, 1)
			if tc.resp != "" {
				if _, err := http.ReadResponse(br, nil); err != nil {
					t.Fatal(err)
				}
			}
			c.Close()
			o.waitOpen(t, 0) // the lane closed the origin connection
			if e := tp.log.next(t); e.Error == "" {
				t.Fatalf("log entry %+v: no error", e)
			}
		})
	}
}

func TestLaneShutdownClosesIdleConnections(t *testing.T) {
	o := startScriptOrigin(t, differentialScript)
	tp := startProxy(t, Options{})
	c := dialLane(t, tp)
	if resp, _, err := c.get("http://"+o.addr+"/cl", ""); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d err %v", resp.StatusCode, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := tp.lane.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("shutdown took %v with one idle connection", d)
	}
	if _, err := c.br.ReadByte(); err != io.EOF {
		t.Fatalf("idle client connection not closed by shutdown (%v)", err)
	}
	o.waitOpen(t, 0)
}

func TestLaneHeaderTimeout(t *testing.T) {
	tp := startProxy(t, Options{Config: &Config{ReadHeaderTimeout: 200 * time.Millisecond}})
	c, br := tp.dialRaw(t)
	if _, err := io.WriteString(c, "GET http://example.com/ HTTP/1.1\r\nHost: exa"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("stalled head: %v, want the connection closed", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("closed after %v", d)
	}
	if answered, handed := tp.lane.Stats(); answered != 0 || handed != 0 {
		t.Fatalf("lane stats %d answered, %d handed off", answered, handed)
	}
}

// TestLaneDropsUpstreamThatSpokeWhileIdle: bytes an origin sends on a kept
// connection while no request is outstanding are not the answer to the next
// request: the lane drops that connection and asks on a fresh one.
func TestLaneDropsUpstreamThatSpokeWhileIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	poison, written, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var conns atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var live []net.Conn
	t.Cleanup(func() {
		close(done)
		ln.Close()
		mu.Lock()
		for _, c := range live {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	serve := func(c net.Conn, n int64) {
		defer c.Close()
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			body := fmt.Sprintf("conn%d", n)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			if n == 1 && i == 0 {
				select {
				case <-poison:
				case <-done:
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON")
				close(written)
			}
		}
	}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			live = append(live, c)
			mu.Unlock()
			n := conns.Add(1)
			wg.Go(func() { serve(c, n) })
		}
	})
	tp := startProxy(t, Options{})
	c := dialLane(t, tp)
	url := "http://" + ln.Addr().String()
	if _, body, err := c.get(url+"/1", ""); err != nil || body != "conn1" {
		t.Fatalf("first request: body %q err %v", body, err)
	}
	close(poison) // the origin speaks on the idle connection the lane keeps
	<-written
	_, body, err := c.get(url+"/2", "")
	if err != nil || body != "conn2" {
		t.Fatalf("second request: body %q err %v, want conn2 (answered on a fresh connection)", body, err)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("origin saw %d connections, want 2", n)
	}
}
