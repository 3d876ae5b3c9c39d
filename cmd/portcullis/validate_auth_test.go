package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestValidateAuthFiles: validate reports the forward proxy's htpasswd and group
// files with the policy's file, line and column: a missing one (found by the
// config check), and one that is there but cannot be used (found when the policy
// is compiled: an MD5 hash, a group naming an unknown user).
func TestValidateAuthFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "policy.yaml")
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("policy.yaml", `forward:
  listen: ["127.0.0.1:0"]
  auth:
    htpasswd_file: nowhere/htpasswd
    group_file: missing-groups
`)
	_, errOut, code := runCLI(t, "validate", "--config", p)
	for _, want := range []string{
		p + ":4:20: forward.auth.htpasswd_file: cannot read " + filepath.Join(dir, "nowhere", "htpasswd") + ": no such file or directory",
		p + ":5:17: forward.auth.group_file: cannot read " + filepath.Join(dir, "missing-groups") + ": no such file or directory",
	} {
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("validate: exit %d, want 1 and %q in:\n%s", code, want, errOut)
		}
	}

	write("htpasswd", "alice:$apr1$abc$def\n")
	write("groups", "staff: alice\n")
	write("policy.yaml", "forward:\n  auth: {htpasswd_file: htpasswd, group_file: groups}\n")
	_, errOut, code = runCLI(t, "validate", "--config", p)
	want := p + ":2:25: forward.auth.htpasswd_file: " + filepath.Join(dir, "htpasswd") + ":1: user \"alice\": Apache MD5 ($apr1$) hash is not supported"
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("validate: exit %d, want 1 and %q in:\n%s", code, want, errOut)
	}

	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	write("htpasswd", "alice:"+string(hash)+"\n")
	write("groups", "staff: alice bob\n")
	_, errOut, code = runCLI(t, "validate", "--config", p)
	want = p + ":2:47: forward.auth.group_file: " + filepath.Join(dir, "groups") + ":1: group \"staff\": user \"bob\" is not in the htpasswd file"
	if code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("validate: exit %d, want 1 and %q in:\n%s", code, want, errOut)
	}
}
