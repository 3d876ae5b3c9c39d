package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeGroups writes the auth group file beside the policy at p, and an empty
// htpasswd file (the policies here name both; users are not checked here).
func writeGroups(t *testing.T, p, content string) string {
	t.Helper()
	writeHtpasswd(t, p)
	g := filepath.Join(filepath.Dir(p), "groups")
	if err := os.WriteFile(g, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return g
}

func writeHtpasswd(t *testing.T, p string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(filepath.Dir(p), "htpasswd"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// wantProblems checks that Load reports exactly the problems want, each a whole
// line after FILE (":LINE:COL: path: message").
func wantProblems(t *testing.T, p string, want ...string) {
	t.Helper()
	_, err := Load(p)
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load error = %v (%T), want Errors", err, err)
	}
	text := err.Error()
	lines := strings.Split(text, "\n")
	for _, w := range want {
		if !slices.Contains(lines, p+w) {
			t.Errorf("missing %q in:\n%s", p+w, text)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(errs), len(want), text)
	}
}

const authGroupsPolicy = `forward:
  listen: ["127.0.0.1:0"]
  auth: {htpasswd_file: htpasswd, group_file: groups}
  safesearch_groups:
    teachers: {youtube: moderate}
    lab: {youtube: strict}
  phrase_thresholds: {staff: -1}
groups:
  lab: {clients: ["10.9.0.0/16"]}
dns:
  groups: {lab: {safesearch: {youtube: strict}}}
rules:
  - {name: teachers-only, group: [teachers], host: [grades.example], action: allow}
  - {name: lab-or-staff, group: [lab, staff], host: [games.example], action: block}
`

// TestGroupFromAuthFileAccepted: a group that only the auth group file declares
// (teachers with members, staff without) may be named by rules and by the forward
// door's per-group settings, next to a groups: group.
func TestGroupFromAuthFileAccepted(t *testing.T) {
	p := writePolicy(t, authGroupsPolicy)
	writeGroups(t, p, "# who teaches\nteachers: alice\nstaff:\n")
	f, err := Load(p)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := f.Policy.Rules[1].Group; len(got) != 2 || got[1] != "staff" {
		t.Fatalf("rules[1].group = %q", got)
	}
}

// TestUnknownGroupsReported: a name in neither groups: nor the auth group file is
// reported wherever it is used, with the same wording, its line and column, and
// the closest known name; the DNS door refuses a group of the file alone (DNS
// clients do not sign in).
func TestUnknownGroupsReported(t *testing.T) {
	p := writePolicy(t, `forward:
  listen: ["127.0.0.1:0"]
  auth: {htpasswd_file: htpasswd, group_file: groups}
  safesearch_groups:
    teacher: {youtube: moderate}
  phrase_thresholds: {stuff: -1, lab: 20}
groups:
  lab: {clients: ["10.9.0.0/16"]}
dns:
  groups:
    lab: {safesearch: {youtube: strict}}
    teachers: {safesearch: {youtube: strict}}
    visitors: {safesearch: {youtube: strict}}
rules:
  - {name: teachers-only, group: [teachers], host: [grades.example], action: allow}
  - name: typo
    group: [lab, Teachers]
    action: block
  - {name: scalar, group: nobody, action: block}
`)
	g := writeGroups(t, p, "teachers: alice\nstaff:\n")
	notIn := ` (not in groups: nor in the auth groups file ` + g + `)`
	wantProblems(t, p,
		`:5:5: forward.safesearch_groups.teacher: unknown group "teacher"`+notIn+` (did you mean "teachers"?)`,
		`:6:23: forward.phrase_thresholds.stuff: unknown group "stuff"`+notIn+` (did you mean "staff"?)`,
		`:12:5: dns.groups.teachers: group "teachers" is only in the auth groups file `+g+`, and DNS clients do not sign in: declare it under groups: with its clients' CIDRs`,
		`:13:5: dns.groups.visitors: unknown group "visitors"`+notIn,
		`:17:18: rules[1].group[1]: unknown group "Teachers"`+notIn+` (did you mean "teachers"?)`,
		`:19:27: rules[2].group[0]: unknown group "nobody"`+notIn,
	)
}

// TestUnknownGroupWithoutAuthFile: without an auth group file only groups: counts,
// and the message says there is no file.
func TestUnknownGroupWithoutAuthFile(t *testing.T) {
	p := writePolicy(t, `groups:
  students: {clients: ["10.1.0.0/16"]}
rules:
  - {name: r, group: [student], action: block}
`)
	wantProblems(t, p, `:4:23: rules[0].group[0]: unknown group "student" (not in groups:, and no auth groups file is configured) (did you mean "students"?)`)
}

// TestUnreadableGroupFile: a bad line of the group file is reported at
// forward.auth.group_file with the file's own line; when the file is missing or
// bad, the names only it could declare are not reported as unknown on top of it
// (a missing file is the auth files' check's to report).
func TestUnreadableGroupFile(t *testing.T) {
	p := writePolicy(t, authGroupsPolicy)
	writeHtpasswd(t, p)
	if _, err := Load(p); err != nil && strings.Contains(err.Error(), "unknown group") {
		t.Fatalf("missing group file: %v", err)
	}
	g := writeGroups(t, p, "teachers: alice\nmy staff: bob\n")
	wantProblems(t, p, `:3:47: forward.auth.group_file: `+g+`:2: group name "my staff" contains white space or a control character`)
}
