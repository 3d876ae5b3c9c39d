package engine

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// keptGet sends a keep-alive absolute-form GET for u on c and reads the answer.
func keptGet(t *testing.T, c net.Conn, br *bufio.Reader, u string) (int, string) {
	t.Helper()
	host := strings.SplitN(strings.TrimPrefix(u, "http://"), "/", 2)[0]
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", u, host)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// TestForwardKeptConnEgressGuardAndReload: plain forward requests go
// through the resolver's egress guard (an internal address is refused with
// 403) and are decided by the policy current when each arrives, on the same
// keep-alive connection across a reload.
func TestForwardKeptConnEgressGuardAndReload(t *testing.T) {
	var hits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "hello")
	}))
	defer origin.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	writeFile(t, path, "forward: {listen: [\"127.0.0.1:0\"]}\n")
	e, proxy := startEngine(t, path)
	c, err := net.Dial("tcp", proxy.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	if status, body := keptGet(t, c, br, origin.URL+"/a"); status != http.StatusForbidden || !strings.Contains(body, "internal addresses") {
		t.Fatalf("loopback origin without an egress allowance: %d %q", status, body)
	}
	if hits.Load() != 0 {
		t.Fatal("the origin was reached through the egress guard")
	}
	writeFile(t, path, `
forward: {listen: ["127.0.0.1:0"]}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
`)
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if status, body := keptGet(t, c, br, origin.URL+"/b"); status != http.StatusOK || body != "hello" {
		t.Fatalf("after allowing loopback: %d %q", status, body)
	}
	writeFile(t, path, `
forward: {listen: ["127.0.0.1:0"]}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
rules:
  - {name: no-c, path: ["/c"], action: block}
`)
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if status, body := keptGet(t, c, br, origin.URL+"/c"); status != http.StatusForbidden || !strings.Contains(body, "no-c") {
		t.Fatalf("after the block rule: %d %q", status, body)
	}
	if status, _ := keptGet(t, c, br, origin.URL+"/d"); status != http.StatusOK || hits.Load() != 2 {
		t.Fatalf("after the block: %d, origin hits %d", status, hits.Load())
	}
}
