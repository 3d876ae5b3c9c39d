//go:build unix

package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGUSR1ReopensAccessLog: after logrotate renames the access log and sends
// SIGUSR1, new lines go to a new file at the configured path.
func TestSIGUSR1ReopensAccessLog(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hi")
	}))
	defer origin.Close()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	policy := filepath.Join(dir, "p.yaml")
	os.WriteFile(policy, []byte(fmt.Sprintf(`forward: {listen: ["127.0.0.1:0"]}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
admin: {listen: "127.0.0.1:0", log: {format: squid, path: %q}}
`, logPath)), 0o644)
	p, proxyURL := launch(t, "run", "--config", policy)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), DisableKeepAlives: true}, Timeout: 10 * time.Second}
	get := func(path string) {
		t.Helper()
		if status, _ := send(t, client, proxyURL, "GET", origin.URL+path); status != 200 {
			t.Fatalf("GET %s: %d", path, status)
		}
	}
	get("/before-rotation")
	waitLines(t, logPath, 1)
	rotated := logPath + ".1"
	if err := os.Rename(logPath, rotated); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGUSR1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(logPath); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("SIGUSR1 did not create a new access log")
		}
		time.Sleep(20 * time.Millisecond)
	}
	get("/after-rotation")
	fresh := waitLines(t, logPath, 1)
	old := waitLines(t, rotated, 1)
	if len(fresh) != 1 || !strings.Contains(fresh[0], "/after-rotation") || len(strings.Fields(fresh[0])) != 10 {
		t.Fatalf("new file: %q", fresh)
	}
	if len(old) != 1 || !strings.Contains(old[0], "/before-rotation") {
		t.Fatalf("rotated file: %q", old)
	}
}
