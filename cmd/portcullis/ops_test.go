package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// launch runs the binary with args (a run command) and waits for its forward listener.
func launch(t *testing.T, args ...string) (*proc, *url.URL) {
	t.Helper()
	p, running := spawn(t, args...)
	m := listenRE.FindStringSubmatch(running)
	if m == nil {
		t.Fatal("no forward listener logged")
	}
	return p, &url.URL{Scheme: "http", Host: m[1]}
}

// spawn runs the binary with args (a run command), collecting its log lines, and
// returns once it logged "portcullis running", with that line. The process is
// killed when the test ends.
func spawn(t *testing.T, args ...string) (*proc, string) {
	t.Helper()
	p := startProc(t, args...)
	return p, p.waitFor(t, "portcullis running")
}

// startProc runs the binary with args and collects its log lines (killed when the
// test ends).
func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, lines: make(chan string, 1000)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return p
}

// waitLines polls path (written by the process) until it has n lines.
func waitLines(t *testing.T, path string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		var lines []string
		if s := strings.TrimRight(string(b), "\n"); s != "" {
			lines = strings.Split(s, "\n")
		}
		if len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d lines, want %d", path, len(lines), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var verdictRE = regexp.MustCompile(`(?m)^verdict: (\w+) \(rule ([^,)]+)`)

// TestExplainAgreesWithRunningProxy asks `portcullis policy explain` about a table of
// requests and sends the same requests through the running binary: the action and
// rule must agree with the access log's, and blocked HTTP requests must get a 403
// block page naming that rule.
func TestExplainAgreesWithRunningProxy(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "origin "+r.URL.Path)
	}))
	defer origin.Close()
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer secure.Close()
	tlsHost := strings.TrimPrefix(secure.URL, "https://")
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.json")
	os.WriteFile(filepath.Join(dir, "bad.txt"), []byte("blocked.test\n"), 0o644)
	policy := filepath.Join(dir, "p.yaml")
	os.WriteFile(policy, []byte(fmt.Sprintf(`
forward: {listen: ["127.0.0.1:0"], connect_ports: [443, %s]}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
admin: {listen: "127.0.0.1:0", log: {format: json, path: %q}}
lists: {bad: {format: domains, path: bad.txt, category: adult}}
groups: {staff: {clients: ["10.0.0.0/8"]}}
rules:
  - {name: staff-anything, group: [staff], action: allow}
  - {name: bad-list, list: [bad], action: block}
  - {name: no-admin, path: ["/admin/**"], action: block, reason: admin pages}
  - {name: lab-from-loopback, client: ["127.0.0.0/8"], path: ["/lab/*"], action: block}
  - {name: no-uploads, method: [POST], path: ["/upload"], action: block}
  - {name: tls-ok, method: [CONNECT], port: [%s], action: allow}
default: allow
`, secure.URL[strings.LastIndexByte(secure.URL, ':')+1:], logPath, secure.URL[strings.LastIndexByte(secure.URL, ':')+1:])), 0o644)
	_, proxyURL := launch(t, "run", "--config", policy)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), DisableKeepAlives: true}, Timeout: 10 * time.Second}

	cases := []struct{ method, target string }{
		{"GET", origin.URL + "/ok"},
		{"GET", "http://blocked.test/"},
		{"GET", "http://www.blocked.test/x?y=1"},
		{"GET", "http://BLOCKED.test./upper"},
		{"GET", origin.URL + "/admin/panel"},
		{"GET", origin.URL + "/admin"},
		{"GET", origin.URL + "/lab/1"},
		{"GET", origin.URL + "/lab/1/2"},
		{"POST", origin.URL + "/upload"},
		{"GET", origin.URL + "/upload"},
		{"CONNECT", "blocked.test:443"},
		{"CONNECT", tlsHost},
	}
	for i, c := range cases {
		args := []string{"policy", "explain", "--config", policy, c.target}
		if c.method != "GET" && c.method != "CONNECT" {
			args = append(args, "--method", c.method)
		}
		out, errOut, code := runCLI(t, args...)
		m := verdictRE.FindStringSubmatch(out)
		if code != 0 || m == nil {
			t.Fatalf("explain %s %s: exit %d\n%s%s", c.method, c.target, code, out, errOut)
		}
		action, rule := m[1], m[2]

		status, body := send(t, client, proxyURL, c.method, c.target)
		lines := waitLines(t, logPath, i+1)
		var entry struct{ Method, URL, Action, Rule string }
		if err := json.Unmarshal([]byte(lines[i]), &entry); err != nil {
			t.Fatalf("log line %q: %v", lines[i], err)
		}
		if entry.Method != c.method {
			t.Fatalf("log line %d is for %s %s, not %s %s", i, entry.Method, entry.URL, c.method, c.target)
		}
		if entry.Action != action || entry.Rule != rule {
			t.Errorf("%s %s: explain says %s by %s; the proxy logged %s by %s (status %d)", c.method, c.target, action, rule, entry.Action, entry.Rule, status)
		}
		t.Logf("%-7s %-40s explain: %s by %s; proxy: %d, logged %s by %s", c.method, c.target, action, rule, status, entry.Action, entry.Rule)
		switch {
		case action == "block" && (status != 403 || c.method != "CONNECT" && !strings.Contains(body, rule)):
			t.Errorf("%s %s: blocked by %s, but the proxy answered %d %.100q", c.method, c.target, rule, status, body)
		case action != "block" && status == 403:
			t.Errorf("%s %s: allowed by %s, but the proxy answered 403", c.method, c.target, rule)
		}
	}
}

// send makes one request through the proxy: CONNECT over a raw connection (only the
// proxy's answer matters), anything else with client. It returns status and body.
func send(t *testing.T, client *http.Client, proxy *url.URL, method, target string) (int, string) {
	t.Helper()
	if method == "CONNECT" {
		c, err := net.Dial("tcp", proxy.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "CONNECT"})
		if err != nil {
			t.Fatalf("CONNECT %s: %v", target, err)
		}
		return resp.StatusCode, ""
	}
	req, err := http.NewRequest(method, target, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// holdingOrigin answers /hold only when the test ends; arrived receives each /hold.
func holdingOrigin(t *testing.T) (*httptest.Server, <-chan struct{}) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial ")
		w.(http.Flusher).Flush()
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	return srv, arrived
}

// holdRequest starts a GET through the proxy that the origin holds, and returns once
// the origin has it; the result arrives on the returned channel.
func holdRequest(t *testing.T, proxyURL *url.URL, target string, arrived <-chan struct{}) <-chan error {
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	done := make(chan error, 1)
	go func() {
		resp, err := client.Get(target)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the held request never reached the origin")
	}
	return done
}

// waitExit waits for the process to exit and returns its exit code and how long it took.
func waitExit(t *testing.T, p *proc, limit time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	select {
	case err := <-exited:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), time.Since(start)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, time.Since(start)
	case <-time.After(limit):
		t.Fatalf("portcullis still running %v after the signal", limit)
	}
	return -1, 0
}

const drainPolicy = `forward: {listen: ["127.0.0.1:0"]}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
`

// TestDrainTimeoutCutsHeldRequests: with --drain-timeout 1s, SIGTERM waits about a
// second for a held response, then cuts it and exits 0.
func TestDrainTimeoutCutsHeldRequests(t *testing.T) {
	origin, arrived := holdingOrigin(t)
	policy := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(policy, []byte(drainPolicy), 0o644)
	p, proxyURL := launch(t, "run", "--config", policy, "--drain-timeout", "1s")
	held := holdRequest(t, proxyURL, origin.URL+"/hold", arrived)
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitFor(t, "draining")
	code, took := waitExit(t, p, 20*time.Second)
	if code != 0 {
		t.Fatalf("exit %d after the drain timeout", code)
	}
	if took < 900*time.Millisecond {
		t.Fatalf("exited after %v, before the 1s drain timeout", took)
	}
	if err := <-held; err == nil {
		t.Fatal("the held response completed; it should have been cut")
	}
	if _, _, code := runCLI(t, "run", "--config", policy, "--drain-timeout", "0s"); code != 2 {
		t.Fatalf("--drain-timeout 0s: exit %d, want 2", code)
	}
}

// TestSecondSignalExitsAtOnce: a second SIGTERM while a response is held (with the
// default 30s drain) exits at once with status 1.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	origin, arrived := holdingOrigin(t)
	policy := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(policy, []byte(drainPolicy), 0o644)
	p, proxyURL := launch(t, "run", "--config", policy)
	held := holdRequest(t, proxyURL, origin.URL+"/hold", arrived)
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitFor(t, "draining")
	p.cmd.Process.Signal(syscall.SIGTERM)
	code, took := waitExit(t, p, 10*time.Second)
	if code != 1 {
		t.Fatalf("exit %d after a second signal, want 1", code)
	}
	if err := <-held; err == nil {
		t.Fatal("the held response completed after the process exited")
	}
	t.Logf("exited %v after the second signal", took.Round(time.Millisecond))
}

// TestRunWatchReloadsChangedList: `run --watch` reloads by itself when a list file the
// policy names is replaced (polled every 2s), and the new list applies.
func TestRunWatchReloadsChangedList(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hi")
	}))
	defer origin.Close()
	dir := t.TempDir()
	list := filepath.Join(dir, "bad.txt")
	os.WriteFile(list, []byte("blocked.test\n"), 0o644)
	policy := filepath.Join(dir, "p.yaml")
	os.WriteFile(policy, []byte(drainPolicy+"lists: {bad: {format: domains, path: bad.txt}}\nrules: [{name: listed, list: [bad], action: block}]\n"), 0o644)
	p, proxyURL := launch(t, "run", "--config", policy, "--watch")
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), DisableKeepAlives: true}, Timeout: 10 * time.Second}
	if status, _ := send(t, client, proxyURL, "GET", origin.URL+"/"); status != 200 {
		t.Fatalf("before: %d", status)
	}
	tmp := list + ".new"
	os.WriteFile(tmp, []byte("blocked.test\n127.0.0.1\n"), 0o644)
	if err := os.Rename(tmp, list); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, "policy reloaded")
	if status, body := send(t, client, proxyURL, "GET", origin.URL+"/"); status != 403 || !strings.Contains(body, "listed") {
		t.Fatalf("after the list changed: %d %.100q", status, body)
	}
}
