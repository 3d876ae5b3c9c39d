package main

import (
	"bufio"
	"crypto/tls"
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
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestListenersSurviveDescriptorExhaustion runs the binary under `ulimit -n
// 256` and opens far more idle connections than that on every listener kind
// (forward, reverse, reverse TLS, admin): accept fails with EMFILE. /readyz,
// asked on a connection opened before, must say not ready and name a
// listener; once the connections close, every listener must serve again and
// /readyz say ready. Before package accept, the first EMFILE ended the accept
// loop for good.
func TestListenersSurviveDescriptorExhaustion(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs sh and ulimit")
	}
	const limit, perListener = 256, 300
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "served")
	}))
	defer origin.Close()
	dir := t.TempDir()
	policy := filepath.Join(dir, "p.yaml")
	os.WriteFile(policy, []byte(fmt.Sprintf(`forward: {listen: ["127.0.0.1:0"], read_header_timeout: 2m}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
reverse:
  listen: ["127.0.0.1:0"]
  tls_listen: ["127.0.0.1:0"]
  tls: {mode: internal, names: [site.test]}
  state_dir: state
  limits: {header_timeout: 2m}
  routes: [{name: site, host: [site.test], pool: site}]
pools:
  site: {members: [{url: %q}]}
admin: {listen: "127.0.0.1:0", log: {path: %q}}
`, origin.URL, filepath.Join(dir, "access.log"))), 0o644)

	cmd := exec.Command("sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, limit), binary, "run", "--config", policy)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, lines: make(chan string, 1000)}
	var logged strings.Builder
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default:
				logged.WriteString(sc.Text() + "\n")
			}
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	running := p.waitFor(t, "portcullis running")
	addrs := map[string]string{}
	for _, m := range regexp.MustCompile(`([a-z-]+)=(127\.0\.0\.1:\d+)`).FindAllStringSubmatch(running, -1) {
		addrs[m[1]] = m[2]
	}
	kinds := []string{"forward", "reverse", "reverse-tls", "admin"}
	for _, k := range kinds {
		if addrs[k] == "" {
			t.Fatalf("no %s listener in %q", k, running)
		}
	}

	// A connection to the admin listener opened before: it stays served.
	adm, err := net.Dial("tcp", addrs["admin"])
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	admR := bufio.NewReader(adm)
	readyz := func() (int, string) {
		t.Helper()
		adm.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.WriteString(adm, "GET /readyz HTTP/1.1\r\nHost: admin\r\n\r\n"); err != nil {
			t.Fatalf("readyz: %v", err)
		}
		resp, err := http.ReadResponse(admR, nil)
		if err != nil {
			t.Fatalf("readyz: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	if code, body := readyz(); code != 200 {
		t.Fatalf("readyz before the burst: %d %q", code, body)
	}

	// The burst: perListener idle connections on each listener (the kernel
	// completes them into the backlog whether or not the process accepts).
	var burst []net.Conn
	defer func() {
		for _, c := range burst {
			c.Close()
		}
	}()
	for _, k := range kinds {
		for range perListener {
			c, err := net.DialTimeout("tcp", addrs[k], 10*time.Second)
			if err != nil {
				t.Fatalf("%s: dial %d: %v", k, len(burst), err)
			}
			burst = append(burst, c)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := readyz()
		if code == http.StatusServiceUnavailable && strings.Contains(body, "cannot accept") {
			t.Logf("during the burst: %d %s", code, strings.TrimSpace(body))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz during descriptor exhaustion: %d %q, want 503 naming the listener", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	for _, c := range burst {
		c.Close()
	}
	burst = nil

	// Every listener serves again, and /readyz says ready.
	proxyURL := &url.URL{Scheme: "http", Host: addrs["forward"]}
	checks := map[string]func() error{
		"forward": func() error {
			c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), DisableKeepAlives: true}, Timeout: 5 * time.Second}
			return expect(c, origin.URL+"/x", "served")
		},
		"reverse": func() error {
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
			return expectHost(c, "http://"+addrs["reverse"]+"/x", "site.test", "served")
		},
		"reverse-tls": func() error {
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
				TLSClientConfig: &tls.Config{ServerName: "site.test", InsecureSkipVerify: true}}, Timeout: 5 * time.Second}
			return expectHost(c, "https://"+addrs["reverse-tls"]+"/x", "site.test", "served")
		},
		"admin": func() error {
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
			return expect(c, "http://"+addrs["admin"]+"/readyz", "ready\n")
		},
	}
	deadline = time.Now().Add(60 * time.Second)
	for _, k := range kinds {
		for {
			err := checks[k]()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s listener after the burst: %v", k, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if code, body := readyz(); code != 200 {
		t.Fatalf("readyz after the burst: %d %q", code, body)
	}
	cmd.Process.Kill()
	cmd.Wait()
	<-logDone
	for line := range p.lines {
		logged.WriteString(line + "\n")
	}
	if !strings.Contains(logged.String(), "cannot accept connections") || !strings.Contains(logged.String(), "accepting connections again") {
		t.Errorf("no log lines for the accept failures and the recovery in:\n%s", logged.String())
	}
}

// expect GETs target with c and checks the body.
func expect(c *http.Client, target, want string) error {
	return expectHost(c, target, "", want)
}

// expectHost GETs target with c, Host host when set, and checks the body.
func expectHost(c *http.Client, target, host, want string) error {
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != want {
		return fmt.Errorf("status %d body %q", resp.StatusCode, b)
	}
	return nil
}
