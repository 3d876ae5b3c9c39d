package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestExplainUserAgreesWithSignedInProxy (issue 17 item 4): `policy explain
// --user U` gives the verdict the running proxy gives U once signed in, groups
// taken from the sign-in group file; an unknown --group is refused with a
// suggestion. On bc21481 explain ignored the group file and said allow where the
// proxy blocked the student.
func TestExplainUserAgreesWithSignedInProxy(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "origin") }))
	defer origin.Close()
	dir := t.TempDir()
	var htpasswd strings.Builder
	for _, u := range []string{"student", "teacher"} {
		h, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&htpasswd, "%s:%s\n", u, h)
	}
	logPath := filepath.Join(dir, "access.json")
	policy := filepath.Join(dir, "p.yaml")
	for name, body := range map[string]string{
		"htpasswd": htpasswd.String(),
		"groups":   "students: student\nstaff: teacher\n",
		"p.yaml": fmt.Sprintf(`
forward:
  listen: ["127.0.0.1:0"]
  auth: {htpasswd_file: htpasswd, group_file: groups}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
admin: {listen: "127.0.0.1:0", log: {format: json, path: %q}}
rules:
  - {name: students-no-games, group: [students], path: ["/games/**"], action: block}
default: allow
`, logPath),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, proxyURL := launch(t, "run", "--config", policy)
	target := origin.URL + "/games/chess"
	for i, user := range []string{"student", "teacher"} {
		out, errOut, code := runCLI(t, "policy", "explain", "--config", policy, "--user", user, target)
		m := verdictRE.FindStringSubmatch(out)
		if code != 0 || m == nil {
			t.Fatalf("explain --user %s: exit %d\n%s%s", user, code, out, errOut)
		}
		pu := *proxyURL
		pu.User = url.UserPassword(user, user+"-pw")
		client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&pu), DisableKeepAlives: true}, Timeout: 10 * time.Second}
		status, _ := send(t, client, &pu, "GET", target)
		lines := waitLines(t, logPath, i+1)
		var entry struct{ User, Action, Rule string }
		if err := json.Unmarshal([]byte(lines[i]), &entry); err != nil {
			t.Fatalf("log line %q: %v", lines[i], err)
		}
		if entry.User != user || entry.Action != m[1] || entry.Rule != m[2] {
			t.Errorf("--user %s: explain says %s by %s; the proxy answered %d and logged %s by %s for user %q\n%s", user, m[1], m[2], status, entry.Action, entry.Rule, entry.User, out)
		}
		if want := map[string]string{"student": "block", "teacher": "allow"}[user]; m[1] != want {
			t.Errorf("--user %s: %s, want %s", user, m[1], want)
		}
	}
	_, errOut, code := runCLI(t, "policy", "explain", "--config", policy, "--group", "studnets", target)
	if code != 2 || !strings.Contains(errOut, `unknown group "studnets"`) || !strings.Contains(errOut, `did you mean "students"?`) {
		t.Errorf("--group studnets: exit %d, %q", code, errOut)
	}
}
