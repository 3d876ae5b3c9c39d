package engine

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestRuleGroupsFromAuthFile runs a forward proxy with sign-in on 127.0.0.1 and
// [::1]: rules name a group of the auth group file only (teachers), a groups:
// group by address only (lab: [::1]) and a group in both (staff: [::1] and alice
// in the file). A request is in a group when its client address is in the
// group's CIDRs or its signed-in user is in the group in the file. A reload of a
// changed group file changes who is in; a group file that drops a group a rule
// names is refused and the running policy keeps serving.
func TestRuleGroupsFromAuthFile(t *testing.T) {
	if ln, err := net.Listen("tcp", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "origin "+r.URL.Path)
	}))
	defer origin.Close()
	dir := t.TempDir()
	var htpasswd strings.Builder
	for _, user := range []string{"alice", "bob"} {
		h, err := bcrypt.GenerateFromPassword([]byte(user+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd.WriteString(user + ":" + string(h) + "\n")
	}
	writeFile(t, filepath.Join(dir, "htpasswd"), htpasswd.String())
	groups := filepath.Join(dir, "groups")
	writeFile(t, groups, "teachers: alice\nstaff: alice\nstudents: bob\n")
	e := startOps(t, dir, `
forward:
  listen: ["127.0.0.1:0", "[::1]:0"]
  allow_clients: ["127.0.0.0/8", "::1/128"]
  auth: {htpasswd_file: htpasswd, group_file: groups}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
groups:
  lab: {clients: ["::1/128"]}
  staff: {clients: ["::1/128"]}
rules:
  - {name: teachers-only, group: [teachers], path: ["/t/*"], action: block}
  - {name: lab-only, group: [lab], path: ["/l/*"], action: block}
  - {name: staff-only, group: [staff], path: ["/s/*"], action: block}
`, nil)
	proxies := map[string]string{} // "v4"/"v6" → proxy address
	for _, a := range e.Addrs()["forward"] {
		if tcp, ok := a.(*net.TCPAddr); ok && tcp.IP.To4() != nil {
			proxies["v4"] = a.String()
		} else {
			proxies["v6"] = a.String()
		}
	}
	if len(proxies) != 2 {
		t.Fatalf("forward listeners: %v", e.Addrs()["forward"])
	}
	get := func(via, user, path string) (int, string) {
		t.Helper()
		pu := &url.URL{Scheme: "http", Host: proxies[via], User: url.UserPassword(user, user+"-pw")}
		c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), DisableKeepAlives: true}}
		resp, err := c.Get(origin.URL + path)
		if err != nil {
			t.Fatalf("GET %s as %s via %s: %v", path, user, via, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	type want struct {
		via, user, path string
		blockedBy       string // "": the origin answers
	}
	check := func(stage string, wants []want) {
		t.Helper()
		for _, w := range wants {
			code, body := get(w.via, w.user, w.path)
			switch {
			case w.blockedBy == "" && (code != http.StatusOK || body != "origin "+w.path):
				t.Errorf("%s: %s via %s, %s: %d %.80q, want the origin", stage, w.user, w.via, w.path, code, body)
			case w.blockedBy != "" && (code != http.StatusForbidden || !strings.Contains(body, w.blockedBy)):
				t.Errorf("%s: %s via %s, %s: %d %.80q, want blocked by %s", stage, w.user, w.via, w.path, code, body, w.blockedBy)
			}
		}
	}
	check("file groups", []want{
		{"v4", "alice", "/t/x", "teachers-only"}, // teachers by the file
		{"v4", "bob", "/t/x", ""},
		{"v6", "bob", "/t/x", ""},             // teachers has no address
		{"v4", "alice", "/l/x", ""},           // lab is by address only
		{"v6", "bob", "/l/x", "lab-only"},     // ::1 is in lab
		{"v4", "alice", "/s/x", "staff-only"}, // staff by the file
		{"v6", "bob", "/s/x", "staff-only"},   // staff by address
		{"v4", "bob", "/s/x", ""},             // neither
	})

	// bob becomes the teacher; alice leaves staff (which groups: still declares).
	writeFile(t, groups, "teachers: bob\nstudents: alice\n")
	if err := e.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	check("after reload", []want{
		{"v4", "alice", "/t/x", ""},
		{"v4", "bob", "/t/x", "teachers-only"},
		{"v4", "alice", "/s/x", ""},
		{"v6", "alice", "/s/x", "staff-only"},
	})

	// A group file without teachers leaves the rule naming an unknown group.
	writeFile(t, groups, "students: alice bob\n")
	err := e.Reload()
	if err == nil || !strings.Contains(err.Error(), `rules[0].group[0]: unknown group "teachers" (not in groups: nor in the auth groups file `+groups+`)`) {
		t.Fatalf("reload without teachers: %v", err)
	}
	check("after the refused reload", []want{{"v4", "bob", "/t/x", "teachers-only"}})
}
