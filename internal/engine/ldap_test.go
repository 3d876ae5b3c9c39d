package engine

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis/portcullis/internal/slapdtest"
)

// lockedBuffer is a bytes.Buffer safe for a logger and a test to share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDirectorySignIn runs the forward door with sign-in against a real slapd,
// once over StartTLS and once over ldaps:// (the test CA): the right password
// gets the page, a wrong one 407, a member of the directory group Teachers is
// matched by a rule naming teachers, and "ALICE" is alice for a rule by user; with slapd stopped a sign-in that is not
// cached gets 503 "Sign-in unavailable" (not 407), a log line, and counts no
// failed guess (more 503s than the limiter allows failures, and sign-in still
// works); with slapd back, sign-in works again.
func TestDirectorySignIn(t *testing.T) {
	s := slapdtest.Start(t)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "origin "+r.URL.Path)
	}))
	defer origin.Close()
	for _, tc := range []struct{ name, url string }{{"start_tls", s.URL + "\n      start_tls: true"}, {"ldaps", s.LDAPS}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			logs := &lockedBuffer{}
			e := startOps(t, dir, fmt.Sprintf(`
forward:
  listen: ["127.0.0.1:0"]
  auth:
    limiter: {max_failures: 3}
    ldap:
      url: %s
      ca_file: %s
      bind_dn: %s
      bind_password_file: %s
      base_dn: %s
      user_filter: "(&(objectClass=inetOrgPerson)(uid={user}))"
      group_filter: "(&(objectClass=groupOfNames)(member={dn}))"
      groups: [teachers, students]
resolver: {egress: {allow: ["127.0.0.0/8"]}}
rules:
  - {name: teachers-only, group: [teachers], path: ["/t/*"], action: block}
  - {name: not-alice, user: [alice], path: ["/a/*"], action: block}
`, tc.url, s.CAFile, slapdtest.BindDN, s.BindPasswordFile, slapdtest.BaseDN), func(o *Options) {
				o.Logger = slog.New(slog.NewTextHandler(logs, nil))
			})
			proxy := e.Addrs()["forward"][0].String()
			get := func(user, pass, path string) (int, string) {
				t.Helper()
				pu := &url.URL{Scheme: "http", Host: proxy}
				if user != "" {
					pu.User = url.UserPassword(user, pass)
				}
				c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu), DisableKeepAlives: true}}
				resp, err := c.Get(origin.URL + path)
				if err != nil {
					t.Fatalf("GET %s as %s: %v", path, user, err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			want := func(user, pass, path string, code int, body string) {
				t.Helper()
				if c, b := get(user, pass, path); c != code || !strings.Contains(b, body) {
					t.Errorf("%s:%s %s: %d %.120q, want %d with %q", user, pass, path, c, b, code, body)
				}
			}
			want("", "", "/x", http.StatusProxyAuthRequired, "sign in")
			want("alice", "alice-pw", "/x", http.StatusOK, "origin /x")
			want("alice", "bob-pw", "/x", http.StatusProxyAuthRequired, "sign in")
			want("alice", "", "/x", http.StatusProxyAuthRequired, "sign in")
			want("alice", "alice-pw", "/t/x", http.StatusForbidden, "teachers-only")
			want("bob", "bob-pw", "/t/x", http.StatusOK, "origin /t/x")
			// The directory finds Alice by any case; rules by user see her one name.
			want("Alice", "alice-pw", "/a/x", http.StatusForbidden, "not-alice")
			want("ALICE", "alice-pw", "/a/x", http.StatusForbidden, "not-alice")

			s.Stop()
			for range 4 { // more than the limiter's max_failures
				want("carol", "carol-pw", "/x", http.StatusServiceUnavailable, "Sign-in unavailable")
			}
			if !strings.Contains(logs.String(), "sign-in unavailable") {
				t.Errorf("no log line for the outage:\n%s", logs.String())
			}
			want("alice", "alice-pw", "/x", http.StatusOK, "origin /x") // cached, and not locked out
			s.Restart(t)
			want("carol", "carol-pw", "/x", http.StatusOK, "origin /x")
		})
	}
}
