package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/config"
)

// startEngine runs an engine on the policy in dir/policy.yaml and returns it with the
// forward proxy's URL. The engine is stopped when the test ends.
func startEngine(t *testing.T, policyPath string) (*Engine, *url.URL) {
	t.Helper()
	e, err := New(Options{PolicyPath: policyPath, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AccessLog: io.Discard, DrainTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	var addr string
	deadline := time.Now().Add(5 * time.Second)
	for addr == "" && time.Now().Before(deadline) {
		if a := e.Addrs()["forward"]; len(a) > 0 {
			addr = a[0].String()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Run ended early: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if addr == "" {
		t.Fatal("forward listener never came up")
	}
	return e, &url.URL{Scheme: "http", Host: addr}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const policyV1 = `
forward:
  listen: ["127.0.0.1:0"]
resolver:
  egress: {allow: ["127.0.0.0/8"]}   # the test origins are on loopback
lists:
  bad: {format: domains, path: bad.txt}
rules:
  - name: bad-sites
    list: [bad]
    action: block
    reason: listed
default: allow
`

func TestReloadSwapsPolicyAndBadReloadKeepsOld(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from "+r.Host)
	}))
	defer origin.Close()
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	writeFile(t, filepath.Join(dir, "bad.txt"), "blocked.test\n")
	writeFile(t, policy, policyV1)
	e, proxyURL := startEngine(t, policy)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}

	get := func(u string) (int, string) {
		t.Helper()
		resp, err := client.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(origin.URL + "/x"); code != 200 || !strings.HasPrefix(body, "hello from") {
		t.Fatalf("allowed request: %d %q", code, body)
	}
	// The list names 127.0.0.1 after the reload: the origin becomes blocked.
	writeFile(t, filepath.Join(dir, "bad.txt"), "blocked.test\n127.0.0.1\n")
	if err := e.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if code, body := get(origin.URL + "/x"); code != http.StatusForbidden || !strings.Contains(body, "bad-sites") {
		t.Fatalf("after reload: %d %q", code, body)
	}
	if e.Version() != 2 {
		t.Fatalf("version = %d, want 2", e.Version())
	}
	// A broken policy is refused and the running one keeps serving.
	writeFile(t, policy, policyV1+"\nrules_typo: 1\n")
	err := e.Reload()
	var errs config.Errors
	if !errors.As(err, &errs) || !strings.Contains(err.Error(), "rules_typo: unknown field") {
		t.Fatalf("bad reload error = %v", err)
	}
	if code, _ := get(origin.URL + "/x"); code != http.StatusForbidden {
		t.Fatalf("after bad reload: %d, want the old policy's 403", code)
	}
	if e.Version() != 2 || e.LastReloadError() == nil {
		t.Fatalf("version %d, last error %v", e.Version(), e.LastReloadError())
	}
}

func TestNewReportsPolicyProblems(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	writeFile(t, policy, "rules:\n  - name: x\n    list: [nope]\n    action: block\n")
	_, err := New(Options{PolicyPath: policy, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), policy+":3:12: rules[0].list[0]: unknown list") {
		t.Fatalf("err = %v", err)
	}
}
