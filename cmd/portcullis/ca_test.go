package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCACreateSnippetValidates: the policy snippet `portcullis ca create`
// prints (bc21481 told the user to "set forward.inspect", a field that does
// not exist) validates when pasted into a policy file as it is, and a proxy
// run with it serves that very certificate on its forward port at /ca.pem.
func TestCACreateSnippetValidates(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	out, errOut, code := runCLI(t, "ca", "create", "--cert", cert, "--key", key)
	if code != 0 {
		t.Fatalf("ca create: %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out, "forward.inspect") {
		t.Fatalf("ca create still names forward.inspect:\n%s", out)
	}
	start := strings.Index(out, "\nforward:\n")
	if start < 0 {
		t.Fatalf("no forward: snippet in the output:\n%s", out)
	}
	snippet, _, _ := strings.Cut(out[start+1:], "\n\n")
	snippet += "\n"
	policy := filepath.Join(t.TempDir(), "policy.yaml") // elsewhere: the snippet's paths must not depend on it
	if err := os.WriteFile(policy, []byte(snippet), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runCLI(t, "validate", "--config", policy); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("the snippet does not validate (%d):\n%s\n%s%s", code, snippet, out, errOut)
	}

	run := snippet + "  listen: [\"127.0.0.1:0\"]\n"
	if err := os.WriteFile(policy, []byte(run), 0o644); err != nil {
		t.Fatal(err)
	}
	_, proxy := launch(t, "run", "--config", policy)
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get("http://" + proxy.Host + "/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want, _ := os.ReadFile(cert)
	if resp.StatusCode != http.StatusOK || string(got) != string(want) {
		t.Fatalf("forward port /ca.pem: %d, %d bytes; want the %d bytes of %s", resp.StatusCode, len(got), len(want), cert)
	}
}
