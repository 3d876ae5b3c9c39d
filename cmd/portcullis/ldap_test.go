package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/slapdtest"
)

// TestExplainUserGroupsFromDirectory: `policy explain --user alice` reads
// alice's groups from the directory (a real slapd, over ldaps://), as the
// proxy would when she signs in, and a rule naming the directory group
// teachers matches; --group overrides the lookup. With the directory down,
// explain says the groups cannot be read.
func TestExplainUserGroupsFromDirectory(t *testing.T) {
	s := slapdtest.Start(t)
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(fmt.Sprintf(`forward:
  listen: ["127.0.0.1:0"]
  auth:
    ldap:
      url: %s
      ca_file: %s
      bind_dn: %s
      bind_password_file: %s
      base_dn: %s
      member_of: memberOf
      groups: [teachers, students]
rules:
  - {name: teachers-grades, group: [teachers], host: [grades.example], action: allow}
  - {name: others-grades, host: [grades.example], action: block}
`, s.LDAPS, s.CAFile, slapdtest.BindDN, s.BindPasswordFile, slapdtest.BaseDN)), 0o644); err != nil {
		t.Fatal(err)
	}
	explain := func(args ...string) string {
		t.Helper()
		out, errOut, code := runCLI(t, append([]string{"policy", "explain", "--config", policy, "http://grades.example/"}, args...)...)
		if code != 0 {
			t.Fatalf("explain %v: exit %d\n%s%s", args, code, out, errOut)
		}
		return out
	}
	for _, c := range []struct {
		args       []string
		says, rule string
	}{
		{[]string{"--user", "alice"}, "groups of alice (from the directory): teachers", "rule teachers-grades"},
		{[]string{"--user", "bob"}, "groups of bob (from the directory): students", "rule others-grades"},
		{[]string{"--user", "carol"}, "groups of carol (from the directory): none", "rule others-grades"},
		{[]string{"--user", "bob", "--group", "teachers"}, "", "rule teachers-grades"},
	} {
		out := explain(c.args...)
		if !strings.Contains(out, c.says) || !strings.Contains(out, c.rule) {
			t.Errorf("explain %v:\n%s\nwant %q and %q", c.args, out, c.says, c.rule)
		}
	}
	s.Stop()
	if out := explain("--user", "alice"); !strings.Contains(out, "groups of alice: cannot be read from the directory") || !strings.Contains(out, "rule others-grades") {
		t.Errorf("explain with the directory down:\n%s", out)
	}
}
