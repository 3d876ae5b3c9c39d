package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestExplainSignInExemptions: `policy explain` says when a request needs no
// sign-in (forward.auth.exempt, by client or by destination domain), and then
// evaluates it as the door does, with no user; otherwise it reads --user's
// groups from the group file.
func TestExplainSignInExemptions(t *testing.T) {
	dir := t.TempDir()
	h, err := bcrypt.GenerateFromPassword([]byte("alice-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"htpasswd": "alice:" + string(h) + "\n",
		"groups":   "teachers: alice\n",
		"policy.yaml": `forward:
  listen: ["127.0.0.1:0"]
  auth:
    htpasswd_file: htpasswd
    group_file: groups
    exempt:
      clients: ["10.9.0.0/16"]
      domains: [updates.school.test]
  intercept: {http: ["127.0.0.1:0"]}
rules:
  - {name: teachers-only, group: [teachers], path: ["/t/*"], action: block}
`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		args        []string
		says, not   string
		verdictRule string
	}{
		{[]string{"--client", "10.9.3.4", "--user", "alice", "http://www.school.test/t/x"},
			"sign-in: exempt, client 10.9.3.4 in forward.auth.exempt.clients 10.9.0.0/16: evaluated with no user", "groups of alice", "rule default"},
		{[]string{"--user", "alice", "http://dl.updates.school.test/t/x"},
			"sign-in: exempt, destination dl.updates.school.test under forward.auth.exempt.domains updates.school.test", "groups of alice", "rule default"},
		{[]string{"--user", "alice", "dl.updates.school.test:443"},
			"sign-in: exempt, destination dl.updates.school.test", "", "rule default"},
		{[]string{"--user", "alice", "http://www.school.test/t/x"},
			"groups of alice (from the group file): teachers", "exempt", "rule teachers-only"},
		{[]string{"--client", "10.8.0.1", "--user", "alice", "http://notupdates.school.test/t/x"},
			"groups of alice (from the group file): teachers", "exempt", "rule teachers-only"},
		// Intercepted connections are never asked to sign in: alice's group rule
		// cannot apply there.
		{[]string{"--intercept", "--user", "alice", "http://www.school.test/t/x"},
			"sign-in: none on intercepted connections", "groups of alice", "rule default"},
	} {
		out, errOut, code := runCLI(t, append([]string{"policy", "explain", "--config", filepath.Join(dir, "policy.yaml")}, c.args...)...)
		if code != 0 {
			t.Fatalf("explain %v: exit %d\n%s%s", c.args, code, out, errOut)
		}
		if !strings.Contains(out, c.says) || (c.not != "" && strings.Contains(out, c.not)) || !strings.Contains(out, c.verdictRule) {
			t.Errorf("explain %v:\n%s\nwant %q, %q and not %q", c.args, out, c.says, c.verdictRule, c.not)
		}
	}
}
