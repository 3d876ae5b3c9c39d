package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/resolver/resolvertest"
)

// faultPolicy is loopbackPolicy with short upstream timeouts.
const faultPolicy = `
forward:
  listen: ["127.0.0.1:0"]
  response_header_timeout: 1s
  dial_timeout: 1s
resolver:
  egress: {allow: ["127.0.0.0/8"]}
admin:
  listen: "127.0.0.1:0"
  log: {path: $DIR/access.log}
`

// faultyOrigin misbehaves in the way mode names until mode is set back to "".
type faultyOrigin struct {
	*origin
	mode    atomic.Value // string
	release chan struct{}
}

func startFaultyOrigin(t *testing.T) *faultyOrigin {
	f := &faultyOrigin{release: make(chan struct{})}
	f.mode.Store("")
	f.origin = startOrigin(t, func(c net.Conn, r *http.Request) bool {
		switch f.mode.Load().(string) {
		case "reset-length": // promise 1000 bytes, send 100, reset
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"+strings.Repeat("x", 100))
			reset(c)
			return false
		case "reset-chunked": // a chunk, then reset before the last chunk
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n"+strings.Repeat("y", 100)+"\r\n")
			reset(c)
			return false
		case "hang":
			<-f.release
			return false
		case "garbage":
			io.WriteString(c, "HELLO THERE\r\n\x00\x01\x02\r\n\r\n")
			return false
		}
		return okReply(c, r)
	})
	t.Cleanup(func() { close(f.release) }) // runs before the origin's own cleanup waits
	return f
}

// reset closes c with an RST instead of a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// TestOriginFaults: a reset mid-body never reaches the client as a complete
// response, a hanging origin gives 504 at response_header_timeout, garbage gives 502;
// a healthy origin beside it is served throughout, and the faulty one is served again
// once it recovers.
func TestOriginFaults(t *testing.T) {
	p := startProxy(t, faultPolicy, nil)
	bad := startFaultyOrigin(t)
	good := startOrigin(t, nil)
	client := p.client(t)
	healthy := func() {
		t.Helper()
		resp, err := client.Get(good.url() + "/fine")
		if err != nil || resp.StatusCode != 200 || bodyOf(resp) != "origin:GET /fine" {
			t.Fatalf("healthy origin during a fault: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	for _, mode := range []string{"reset-length", "reset-chunked"} {
		bad.mode.Store(mode)
		resp, err := client.Get(bad.url() + "/" + mode)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil {
				t.Errorf("%s: status %d, %d bytes read as a complete body", mode, resp.StatusCode, len(b))
			}
		}
		healthy()
	}
	for _, c := range []struct {
		mode string
		want int
	}{{"hang", http.StatusGatewayTimeout}, {"garbage", http.StatusBadGateway}} {
		bad.mode.Store(c.mode)
		start := time.Now()
		resp, err := client.Get(bad.url() + "/" + c.mode)
		if err != nil {
			t.Fatalf("%s: %v", c.mode, err)
		}
		body := bodyOf(resp)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.mode, resp.StatusCode, c.want)
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("%s: answered after %v", c.mode, d)
		}
		if strings.Contains(body, "HELLO") || strings.Contains(body, "malformed") {
			t.Errorf("%s: error page echoes upstream details: %q", c.mode, body)
		}
		healthy()
	}
	bad.mode.Store("")
	resp, err := client.Get(bad.url() + "/recovered")
	if err != nil || resp.StatusCode != 200 || bodyOf(resp) != "origin:GET /recovered" {
		t.Fatalf("after the fault: %v %v", err, resp)
	}
	resp.Body.Close()
}

// TestResolverTimeout: a DNS upstream that never answers costs only the requests that
// need it (a prompt 502/504); names it can answer are served, and once it answers
// again so is the stalled name.
func TestResolverTimeout(t *testing.T) {
	o := startOrigin(t, nil)
	_, port, _ := net.SplitHostPort(o.addr())
	up := resolvertest.New(60, 60).Add(t, "slow.test. 60 IN A 127.0.0.1", "fast.test. 60 IN A 127.0.0.1")
	release := up.Gate("slow.test")
	up.Start(t)
	defer release()
	p := startProxy(t, fmt.Sprintf(`
forward:
  listen: ["127.0.0.1:0"]
resolver:
  upstreams: ["udp://%s"]
  timeout: 300ms
  cache: {max_entries: -1}
  egress: {allow: ["127.0.0.0/8"]}
`, up.Addr), nil)
	client := p.client(t)
	start := time.Now()
	resp, err := client.Get("http://slow.test:" + port + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("stalled name: %d, want 502/504", resp.StatusCode)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stalled name answered after %v", d)
	}
	resp, err = client.Get("http://fast.test:" + port + "/y")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("other name during the stall: %v %v", err, resp)
	}
	resp.Body.Close()
	release()
	resp, err = client.Get("http://slow.test:" + port + "/z")
	if err != nil || resp.StatusCode != 200 || bodyOf(resp) != "origin:GET /z" {
		t.Fatalf("after the stall: %v %v", err, resp)
	}
	resp.Body.Close()
}

// TestAccessLogOnFullDisk: an access log that cannot be written (/dev/full) does not
// stop the proxy serving.
func TestAccessLogOnFullDisk(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	o := startOrigin(t, nil)
	p := startProxy(t, `
forward: {listen: ["127.0.0.1:0"]}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
admin: {listen: "127.0.0.1:0", log: {path: /dev/full, buffer: 16}}
`, nil)
	client := p.client(t)
	for i := range 200 {
		resp, err := client.Get(fmt.Sprintf("%s/n%d", o.url(), i))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("request %d with the log on a full disk: %v %v", i, err, resp)
		}
		resp.Body.Close()
	}
}

// TestListVanishesBeforeReload: a reload whose list file is gone is refused and the
// running policy keeps blocking; when the file is back, the reload succeeds.
func TestListVanishesBeforeReload(t *testing.T) {
	o := startOrigin(t, nil)
	p := startProxy(t, `
forward: {listen: ["127.0.0.1:0"]}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
lists: {bl: {format: domains, path: block.txt}}
rules: [{name: listed, list: [bl], action: block}]
`, map[string]string{"block.txt": "127.0.0.1\n"})
	client := p.client(t)
	status := func() int {
		t.Helper()
		resp, err := client.Get(o.url() + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := status(); s != http.StatusForbidden {
		t.Fatalf("listed origin: %d", s)
	}
	list := filepath.Join(p.dir, "block.txt")
	if err := os.Remove(list); err != nil {
		t.Fatal(err)
	}
	if err := p.e.Reload(); err == nil || !strings.Contains(err.Error(), "block.txt") {
		t.Fatalf("reload without the list: %v", err)
	}
	if s := status(); s != http.StatusForbidden || p.e.Version() != 1 {
		t.Fatalf("after the refused reload: %d, version %d", s, p.e.Version())
	}
	writeFile(t, list, "other.test\n")
	if err := p.e.Reload(); err != nil {
		t.Fatalf("reload with the list back: %v", err)
	}
	if s := status(); s != http.StatusOK || p.e.Version() != 2 {
		t.Fatalf("after the good reload: %d, version %d", s, p.e.Version())
	}
	if err := p.e.LastReloadError(); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LastReloadError after success: %v", err)
	}
}
