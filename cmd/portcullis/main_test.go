package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the portcullis binary built once for these tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "portcullis-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "portcullis")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building portcullis:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

func TestValidateExamplePolicies(t *testing.T) {
	files, _ := filepath.Glob("../../policies/*.yaml")
	if len(files) < 3 {
		t.Fatalf("expected the example policies, found %v", files)
	}
	for _, f := range files {
		out, errOut, code := runCLI(t, "validate", "--config", f)
		if code != 0 || !strings.Contains(out, "OK") {
			t.Errorf("validate %s: exit %d\n%s%s", f, code, out, errOut)
		}
	}
	if out, errOut, code := runCLI(t, "validate"); code != 0 {
		t.Errorf("validate (embedded default): exit %d\n%s%s", code, out, errOut)
	}
}

func TestValidateBadPolicy(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.yaml")
	os.WriteFile(p, []byte(`forward:
  listen: ["127.0.0.1:0"]
  colour: blue
lists:
  l: {format: domains, path: nowhere.txt}
rules:
  - name: a
    glob: ["[x"]
    action: block
  - name: a
    list: [missing]
    client: [300.1.1.1/8]
    action: allow
`), 0o644)
	_, errOut, code := runCLI(t, "validate", "--config", p)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errOut)
	}
	for _, want := range []string{
		p + ":3:3: forward.colour: unknown field",
		p + ":5:30: lists.l.path: cannot read",
		p + ":8:12: rules[0].glob[0]: invalid glob",
		p + ":10:11: rules[1].name: duplicate rule name",
		p + ":11:12: rules[1].list[0]: unknown list \"missing\"",
		p + ":12:14: rules[1].client[0]: invalid CIDR",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("missing %q in:\n%s", want, errOut)
		}
	}
	// run refuses it with the same messages.
	_, runErr, code := runCLI(t, "run", "--config", p)
	if code != 1 || !strings.Contains(runErr, p+":8:12: rules[0].glob[0]: invalid glob") {
		t.Fatalf("run: exit %d\n%s", code, runErr)
	}
}

// proc is a running portcullis.
type proc struct {
	cmd   *exec.Cmd
	lines chan string
}

var listenRE = regexp.MustCompile(`forward=(\S+)`)

// start runs `portcullis run --config policy` and waits for its forward listener.
func start(t *testing.T, policy string) (*proc, *url.URL) {
	t.Helper()
	return launch(t, "run", "--config", policy)
}

// waitFor returns the first log line containing s (or fails after 20 s).
func (p *proc) waitFor(t *testing.T, s string) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("portcullis exited before logging %q", s)
			}
			if strings.Contains(line, s) {
				return line
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %q", s)
		}
	}
}

func TestRunReloadAndDrain(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			io.WriteString(w, "origin says ")
			w.(http.Flusher).Flush()
			<-release
			io.WriteString(w, "hi")
			return
		}
		io.WriteString(w, "origin says hi")
	}))
	defer origin.Close()
	defer unblock()
	dir := t.TempDir()
	policy := filepath.Join(dir, "p.yaml")
	list := filepath.Join(dir, "block.txt")
	os.WriteFile(list, []byte("blocked.test\n"), 0o644)
	good := `forward: {listen: ["127.0.0.1:0"]}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
lists: {bl: {format: domains, path: block.txt}}
rules: [{name: listed, list: [bl], action: block, reason: on the list}]
`
	os.WriteFile(policy, []byte(good), 0o644)
	p, proxyURL := start(t, policy)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}, Timeout: 10 * time.Second}
	status := func(u string) int {
		resp, err := client.Get(u)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := status(origin.URL + "/"); s != 200 {
		t.Fatalf("allowed: %d", s)
	}
	if s := status("http://www.blocked.test/"); s != 403 {
		t.Fatalf("blocked subdomain: %d", s)
	}
	// SIGHUP with a broken policy: reported, old policy keeps serving.
	os.WriteFile(policy, []byte(good+"rules_: x\n"), 0o644)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitFor(t, "reload failed")
	if s := status("http://blocked.test/"); s != 403 {
		t.Fatalf("after bad reload: %d", s)
	}
	// SIGHUP with a good policy that also blocks the origin's address.
	os.WriteFile(list, []byte("blocked.test\n127.0.0.1\n"), 0o644)
	os.WriteFile(policy, []byte(good), 0o644)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitFor(t, "policy reloaded")
	if s := status(origin.URL + "/"); s != 403 {
		t.Fatalf("after good reload: %d", s)
	}
	os.WriteFile(list, []byte("blocked.test\n"), 0o644)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitFor(t, "policy reloaded")

	// SIGTERM while a response is in flight: it completes, then the process exits 0.
	resp, err := client.Get(origin.URL + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitFor(t, "draining")
	unblock()
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "origin says hi" {
		t.Fatalf("in-flight body %q, err %v", body, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	waitErr := make(chan error, 1)
	go func() { waitErr <- p.cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("portcullis did not exit after SIGTERM")
	}
}

func TestPasswdAndCACreate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "htpasswd")
	cmd := exec.Command(binary, "passwd", file, "alice")
	cmd.Stdin = strings.NewReader("s3cret\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("passwd: %v\n%s", err, out)
	}
	b, err := os.ReadFile(file)
	if err != nil || !strings.HasPrefix(string(b), "alice:$2") {
		t.Fatalf("htpasswd file = %q, %v", b, err)
	}
	cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	if out, errOut, code := runCLI(t, "ca", "create", "--cert", cert, "--key", key); code != 0 {
		t.Fatalf("ca create: %d\n%s%s", code, out, errOut)
	}
	st, err := os.Stat(key)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode = %v, %v", st.Mode(), err)
	}
	if b, _ := os.ReadFile(cert); !strings.Contains(string(b), "BEGIN CERTIFICATE") {
		t.Fatalf("cert = %q", b)
	}
}
