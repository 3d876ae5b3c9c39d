package config

import (
	"os"
	"path/filepath"
	"testing"
)

const ldapPolicy = `forward:
  listen: ["127.0.0.1:0"]
  auth:
    ldap:
      url: ldaps://dc.school.example
      bind_dn: cn=portcullis,dc=school,dc=example
      bind_password_file: bind.pw
      base_dn: ou=people,dc=school,dc=example
      user_filter: "(sAMAccountName={user})"
      member_of: memberOf
      groups: [teachers, students]
    exempt:
      clients: ["10.9.0.0/16"]
      domains: [updates.school.example]
  safesearch_groups:
    teachers: {youtube: moderate}
  phrase_thresholds: {students: 40}
rules:
  - {name: teachers-only, group: [teachers], host: [grades.example], action: allow}
`

// TestLDAPGroupsAccepted: a group that only the directory knows, declared
// under forward.auth.ldap.groups, may be named by rules, safesearch_groups and
// phrase_thresholds.
func TestLDAPGroupsAccepted(t *testing.T) {
	p := writePolicy(t, ldapPolicy)
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), "bind.pw"), []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err != nil {
		t.Fatalf("Load: %v", err)
	}
}

// TestLDAPProblems: every bad field of forward.auth.ldap and exempt is
// reported at its FILE:LINE:COL, and a group the directory section does not
// declare is unknown.
func TestLDAPProblems(t *testing.T) {
	p := writePolicy(t, `forward:
  listen: ["127.0.0.1:0"]
  auth:
    htpasswd_file: htpasswd
    ldap:
      url: http://dc.school.example
      bind_dn: cn=portcullis,dc=school,dc=example
      bind_password_file: missing.pw
      base_dn: ou=people,dc=school,dc=example
      user_filter: "(sAMAccountName=alice)"
      group_filter: "(member={dn}"
      ca_file: missing-ca.pem
      groups: [teachers]
    exempt:
      domains: ["bad domain"]
rules:
  - {name: staff-only, group: [staff], host: [grades.example], action: allow}
`)
	writeHtpasswd(t, p)
	dir := filepath.Dir(p)
	wantProblems(t, p,
		":6:7: forward.auth.ldap: choose htpasswd_file or ldap, not both: one place decides a user's password",
		":6:12: forward.auth.ldap.url: scheme \"http\": want ldap:// or ldaps://",
		":10:20: forward.auth.ldap.user_filter: \"(sAMAccountName=alice)\" does not contain {user}",
		":11:21: forward.auth.ldap.group_filter: \"(member={dn}\" is not a valid LDAP filter: unexpected end of filter",
		":8:27: forward.auth.ldap.bind_password_file: cannot read "+filepath.Join(dir, "missing.pw")+": no such file or directory",
		":12:16: forward.auth.ldap.ca_file: cannot read "+filepath.Join(dir, "missing-ca.pem")+": no such file or directory",
		":15:17: forward.auth.exempt.domains[0]: invalid domain \"bad domain\"",
		":17:32: rules[0].group[0]: unknown group \"staff\" (not in groups: nor in forward.auth.ldap.groups)",
	)
}
