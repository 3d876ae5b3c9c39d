package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWarnsWhenNoUserCanSignIn: validate and run warn, naming the field, when the
// htpasswd file has no user (every sign-in would fail); a pipe still sets a
// password from one line, and the warning goes away.
func TestWarnsWhenNoUserCanSignIn(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(file, []byte("# users are added with portcullis passwd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(policy, []byte("forward:\n  listen: [\"127.0.0.1:0\"]\n  auth: {htpasswd_file: htpasswd}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := policy + ":3:25: forward.auth.htpasswd_file: warning: "
	out, errOut, code := runCLI(t, "validate", "--config", policy)
	if code != 0 || !strings.Contains(out, "OK") || !strings.Contains(errOut, want) || !strings.Contains(errOut, "has no user") {
		t.Fatalf("validate with an empty htpasswd file: exit %d\n%s%s", code, out, errOut)
	}
	run := exec.Command(binary, "run", "--config", policy)
	stderr, err := run.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run.Process.Kill(); run.Wait() })
	logged := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var lines []string
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.Contains(sc.Text(), "portcullis running") {
				break
			}
		}
		logged <- strings.Join(lines, "\n")
		io.Copy(io.Discard, stderr)
	}()
	select {
	case lines := <-logged:
		if !strings.Contains(lines, "level=WARN") || !strings.Contains(lines, want) {
			t.Errorf("run with an empty htpasswd file logged no warning before running:\n%s", lines)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not start")
	}
	cmd := exec.Command(binary, "passwd", file, "bob")
	cmd.Stdin = strings.NewReader("from-a-pipe\n")
	if b, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(b), "password set for bob") {
		t.Fatalf("passwd from a pipe: %v\n%s", err, b)
	}
	if _, errOut, code := runCLI(t, "validate", "--config", policy); code != 0 || strings.Contains(errOut, "warning") {
		t.Fatalf("validate after adding a user: exit %d\n%s", code, errOut)
	}
}
