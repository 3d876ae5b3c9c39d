package forward

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/accept"
	"github.com/portcullis/portcullis/internal/accesslog"
	"github.com/portcullis/portcullis/internal/h1"
	"github.com/portcullis/portcullis/internal/tunnel"
	"github.com/portcullis/portcullis/rules"
)

// logRecorder is an accesslog.Logger that keeps every entry.
type logRecorder struct {
	mu      sync.Mutex
	entries []accesslog.Entry
	ch      chan accesslog.Entry
}

func newLogRecorder() *logRecorder { return &logRecorder{ch: make(chan accesslog.Entry, 1024)} }

func (l *logRecorder) Log(e *accesslog.Entry) {
	l.mu.Lock()
	l.entries = append(l.entries, *e)
	l.mu.Unlock()
	select {
	case l.ch <- *e:
	default:
	}
}

// next waits for the next entry.
func (l *logRecorder) next(t *testing.T) accesslog.Entry {
	t.Helper()
	select {
	case e := <-l.ch:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no access-log entry within 10s")
		return accesslog.Entry{}
	}
}

// testProxy is a Proxy served on a loopback listener.
type testProxy struct {
	*Proxy
	addr string // host:port
	url  *url.URL
	log  *logRecorder
	srv  *h1.Server
}

// startProxy serves New(opts) on 127.0.0.1:0 as the engine does: on the
// HTTP/1.1 engine (internal/h1) over internal/accept's listener. Zero Config
// means defaults plus the given connect ports.
func startProxy(t testing.TB, opts Options) *testProxy {
	t.Helper()
	rec := newLogRecorder()
	if opts.Log == nil {
		opts.Log = rec
	}
	if opts.Tunnels == nil {
		opts.Tunnels = tunnel.NewSet()
	}
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &h1.Server{Handler: p, ReadHeaderTimeout: p.ReadHeaderTimeout(), IdleTimeout: 2 * time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(accept.New(ln, "forward", nil, nil)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = opts.Tunnels.Shutdown(ctx)
		<-done
	})
	u := &url.URL{Scheme: "http", Host: ln.Addr().String()}
	return &testProxy{Proxy: p, addr: ln.Addr().String(), url: u, log: rec, srv: srv}
}

// client returns an http.Client that uses tp as its proxy, with its own transport
// (closed at cleanup) and no transparent compression.
func (tp *testProxy) client(t testing.TB) *http.Client {
	tr := &http.Transport{Proxy: http.ProxyURL(tp.url), DisableCompression: true, MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// dialRaw opens a raw client connection to the proxy.
func (tp *testProxy) dialRaw(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", tp.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c, bufio.NewReader(c)
}

// rawRequest sends raw over a new TCP connection to the proxy and reads one response.
func (tp *testProxy) rawRequest(t *testing.T, raw string) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	c, br := tp.dialRaw(t)
	if _, err := c.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	method := strings.SplitN(raw, " ", 2)[0]
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	return resp, c, br
}

// connectPorts returns a Config allowing CONNECT to the ports of the given URLs.
func connectPorts(t testing.TB, urls ...string) *Config {
	t.Helper()
	cfg := &Config{}
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		_, port := rules.SplitHostPort(u.Host)
		cfg.ConnectPorts = append(cfg.ConnectPorts, int(port))
	}
	return cfg
}

// hostPolicy blocks the hosts in blocked (and their subdomains) with the given rule.
func hostPolicy(rule string, blocked ...string) rules.Evaluator {
	return rules.EvaluatorFunc(func(f *rules.Facts) rules.Verdict {
		for _, b := range blocked {
			if f.Host == b || strings.HasSuffix(f.Host, "."+b) || (f.SNI != "" && (f.SNI == b || strings.HasSuffix(f.SNI, "."+b))) {
				return rules.Verdict{Action: rules.ActionBlock, Rule: rule, Category: "testing", Reason: "Blocked for the test <" + b + ">"}
			}
		}
		return rules.Verdict{Action: rules.ActionAllow, Rule: "default"}
	})
}

// needTool returns the path of a tool, skipping the test when it is missing unless
// CI=true, where a missing tool fails the test.
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed; skipping (set CI=true to make this a failure)", name)
	}
	return path
}

// needChromium is needTool for Chromium, which is also skipped under -short (it
// takes seconds per page on a loaded machine) unless CI=true.
func needChromium(t *testing.T) string {
	t.Helper()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("chromium tests skipped with -short")
	}
	return needTool(t, "chromium")
}

// freePort returns a loopback address nothing listens on.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
