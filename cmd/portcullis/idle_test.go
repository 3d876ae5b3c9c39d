package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rssKiB reads a process's resident set size from /proc.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestTenThousandIdleConnections holds 10,000 idle client connections on the real
// binary's forward port: a well-behaved client is still served promptly, and the
// process stays within a stated memory bound (64 KiB per idle connection, far above
// the ~22 KiB measured, so the test fails only on a real leak or blow-up).
func TestTenThousandIdleConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const n = 10000
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "served")
	}))
	defer origin.Close()
	dir := t.TempDir()
	policy := filepath.Join(dir, "p.yaml")
	// max_conns: the default cap under this process's 20000 descriptors is
	// 9872 (two per forwarded connection); idle ones hold only their own.
	os.WriteFile(policy, []byte(`forward: {listen: ["127.0.0.1:0"], read_header_timeout: 2m, max_conns: 12000}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
admin: {listen: "off", log: {path: `+filepath.Join(dir, "access.log")+`}}
`), 0o644)
	p, proxyURL := start(t, policy)
	before := rssKiB(t, p.cmd.Process.Pid)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for len(conns) < n {
		c, err := net.DialTimeout("tcp", proxyURL.Host, 5*time.Second)
		if err != nil {
			t.Fatalf("after %d connections: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}, Timeout: 5 * time.Second}
	for i := range 20 {
		resp, err := client.Get(origin.URL + "/x" + strconv.Itoa(i))
		if err != nil {
			t.Fatalf("a well-behaved client with %d idle connections open: %v", n, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "served" {
			t.Fatalf("status %d body %q", resp.StatusCode, b)
		}
	}
	after := rssKiB(t, p.cmd.Process.Pid)
	perConn := float64(after-before) / n
	t.Logf("RSS %d KiB -> %d KiB with %d idle connections: %.1f KiB per connection", before, after, n, perConn)
	if perConn > 64 {
		t.Fatalf("%.1f KiB per idle connection, bound is 64", perConn)
	}
	// Every idle connection is still open (none was dropped to make room).
	alive := 0
	for _, c := range conns[:100] {
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				alive++
			}
		}
	}
	if alive != 100 {
		t.Fatalf("%d of 100 sampled idle connections still open", alive)
	}
}
