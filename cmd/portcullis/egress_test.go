package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEgressRefusalNamesTheSetting (issue 17 item 3): a destination the egress
// guard refuses is shown as blocked by `policy explain` (rule egress, naming
// resolver.egress.allow and the entry to add) and logged by the running proxy as
// action block, rule egress with the setting's name, for HTTP and CONNECT; the
// page the user gets stays short and does not name settings. On bc21481 explain
// said allow and the log said action allow, rule default, status 403.
func TestEgressRefusalNamesTheSetting(t *testing.T) {
	allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer allowed.Close()
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the refused origin was reached: %s", r.URL)
	}))
	defer internal.Close()
	aport := allowed.URL[strings.LastIndexByte(allowed.URL, ':')+1:]
	iport := internal.URL[strings.LastIndexByte(internal.URL, ':')+1:]
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.json")
	policy := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(policy, []byte(fmt.Sprintf(`
forward: {listen: ["127.0.0.1:0"], connect_ports: [%s]}
resolver: {egress: {allow: ["127.0.0.1/32:%s"]}}
admin: {listen: "127.0.0.1:0", log: {format: json, path: %q}}
default: allow
`, iport, aport, logPath)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, proxyURL := launch(t, "run", "--config", policy)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), DisableKeepAlives: true}, Timeout: 10 * time.Second}
	hostOf := func(u string) string { return strings.TrimPrefix(u, "http://") }
	cases := []struct {
		method, target, action, rule string
	}{
		{"GET", allowed.URL + "/", "allow", "default"},
		{"GET", internal.URL + "/", "block", "egress"},
		{"CONNECT", hostOf(internal.URL), "block", "egress"},
	}
	for i, c := range cases {
		out, errOut, code := runCLI(t, "policy", "explain", "--config", policy, c.target)
		m := verdictRE.FindStringSubmatch(out)
		if code != 0 || m == nil {
			t.Fatalf("explain %s: exit %d\n%s%s", c.target, code, out, errOut)
		}
		if m[1] != c.action || m[2] != c.rule {
			t.Errorf("explain %s %s: %s by %s, want %s by %s\n%s", c.method, c.target, m[1], m[2], c.action, c.rule, out)
		}
		if c.rule == "egress" && !strings.Contains(out, `resolver.egress.allow: ["127.0.0.1/32:`+iport+`"]`) {
			t.Errorf("explain %s does not say which entry of resolver.egress.allow would allow it:\n%s", c.target, out)
		}

		status, body := send(t, client, proxyURL, c.method, c.target)
		lines := waitLines(t, logPath, i+1)
		var entry struct{ Method, URL, Action, Rule, Error string }
		if err := json.Unmarshal([]byte(lines[i]), &entry); err != nil {
			t.Fatalf("log line %q: %v", lines[i], err)
		}
		if entry.Action != c.action || entry.Rule != c.rule {
			t.Errorf("%s %s: logged %s by %s, want %s by %s (%s)", c.method, c.target, entry.Action, entry.Rule, c.action, c.rule, lines[i])
		}
		if c.rule != "egress" {
			if status != 200 {
				t.Errorf("%s %s: %d, want 200", c.method, c.target, status)
			}
			continue
		}
		if status != http.StatusForbidden {
			t.Errorf("%s %s: %d, want 403", c.method, c.target, status)
		}
		if !strings.Contains(entry.Error, "resolver.egress.allow") {
			t.Errorf("%s %s: the log line does not name resolver.egress.allow: %s", c.method, c.target, lines[i])
		}
		if c.method == "GET" && (!strings.Contains(body, "internal addresses") || strings.Contains(body, "resolver.") || len(body) > 4096) {
			t.Errorf("the page for a refused internal address: %d bytes %.300q", len(body), body)
		}
	}
}
