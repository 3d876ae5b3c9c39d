package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/engine"
)

// proxy is one running engine, driven as the binary drives it.
type proxy struct {
	e      *engine.Engine
	dir    string // the policy's folder
	policy string // the policy file
	addrs  map[string]string
	stop   func() // stops the engine and waits for Run to return; idempotent
}

// startProxy writes policy (with $DIR replaced by its folder) and any extra files
// (relative to that folder) into a fresh folder, runs an engine on it and waits for every listener kind in wait.
// The engine is stopped when the test ends.
func startProxy(t testing.TB, policy string, files map[string]string, wait ...string) *proxy {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		writeFile(t, filepath.Join(dir, name), content)
	}
	p := &proxy{dir: dir, policy: filepath.Join(dir, "policy.yaml"), addrs: map[string]string{}}
	writeFile(t, p.policy, strings.ReplaceAll(policy, "$DIR", dir))
	e, err := engine.New(engine.Options{PolicyPath: p.policy, Logger: slog.New(slog.DiscardHandler), AccessLog: io.Discard, DrainTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	p.e = e
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	p.stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(p.stop)
	if len(wait) == 0 {
		wait = []string{"forward"}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, kind := range wait {
		for p.addrs[kind] == "" {
			if a := e.Addrs()[kind]; len(a) > 0 {
				p.addrs[kind] = a[0].String()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("listener %q never came up", kind)
			}
			select {
			case err := <-done:
				t.Fatalf("Run ended early: %v", err)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	return p
}

// fwd is the forward listener's address.
func (p *proxy) fwd() string { return p.addrs["forward"] }

// client returns an HTTP client that uses the forward door as its proxy.
func (p *proxy) client(t testing.TB) *http.Client {
	tr := &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: p.fwd()}), DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// loopbackPolicy is a forward-only policy whose origins may be on loopback.
const loopbackPolicy = `
forward:
  listen: ["127.0.0.1:0"]
  read_header_timeout: 2s
  response_header_timeout: 2s
  dial_timeout: 2s
resolver:
  egress: {allow: ["127.0.0.0/8"]}
admin:
  listen: "127.0.0.1:0"
  log: {path: $DIR/access.log}
default: allow
`

// received is one request as an origin parsed it.
type received struct {
	Method, Target, Host string
	Header               http.Header
	Body                 string
	Err                  string // set when the origin could not parse what followed
}

// origin is a raw HTTP/1.1 origin on loopback that records every request it parses,
// in order, and answers each with reply (a handler that may misbehave).
type origin struct {
	ln    net.Listener
	mu    sync.Mutex
	reqs  []received
	conns int
	wg    sync.WaitGroup
	reply func(conn net.Conn, r *http.Request) bool // false closes the connection
}

// okReply answers with a small 200 whose body names the request.
func okReply(conn net.Conn, r *http.Request) bool {
	body := "origin:" + r.Method + " " + r.URL.RequestURI()
	fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	return true
}

func startOrigin(t testing.TB, reply func(net.Conn, *http.Request) bool) *origin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if reply == nil {
		reply = okReply
	}
	o := &origin{ln: ln, reply: reply}
	var conns sync.Map
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			o.mu.Lock()
			o.conns++
			o.mu.Unlock()
			o.wg.Add(1)
			go func() {
				defer o.wg.Done()
				defer conns.Delete(c)
				defer c.Close()
				o.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		o.wg.Wait()
	})
	return o
}

func (o *origin) serve(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		r, err := http.ReadRequest(br)
		if err != nil {
			if err != io.EOF && !strings.Contains(err.Error(), "closed") && !strings.Contains(err.Error(), "reset") {
				o.mu.Lock()
				o.reqs = append(o.reqs, received{Err: err.Error()})
				o.mu.Unlock()
			}
			return
		}
		body, berr := io.ReadAll(r.Body)
		rec := received{Method: r.Method, Target: r.RequestURI, Host: r.Host, Header: r.Header, Body: string(body)}
		if berr != nil {
			rec.Err = berr.Error()
		}
		o.mu.Lock()
		o.reqs = append(o.reqs, rec)
		o.mu.Unlock()
		if berr != nil || !o.reply(c, r) {
			return
		}
	}
}

// addr is the origin's host:port.
func (o *origin) addr() string { return o.ln.Addr().String() }

// url is the origin's base URL.
func (o *origin) url() string { return "http://" + o.addr() }

// requests returns a copy of what the origin has received so far.
func (o *origin) requests() []received {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]received(nil), o.reqs...)
}

// connCount is the number of connections the origin accepted.
func (o *origin) connCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.conns
}

// rawExchange sends raw bytes to addr, half-closes nothing, and reads every response
// the proxy sends back until it closes the connection or the deadline passes.
func rawExchange(t testing.TB, addr string, raw string) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write: %v", err)
	}
	br := bufio.NewReader(c)
	var out []*http.Response
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		out = append(out, resp)
		if resp.Close {
			return out
		}
		// Anything more? Wait briefly only if bytes are already buffered or arrive.
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := br.Peek(1); err != nil {
			return out
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
	}
}

// bodyOf reads a response body as a string.
func bodyOf(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitFor polls cond until it holds or the deadline passes (for effects outside the
// test's control, such as goroutines ending).
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newReader wraps c in a bufio.Reader.
func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

// statMode returns a file's permission bits.
func statMode(path string) (os.FileMode, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Mode().Perm(), nil
}
