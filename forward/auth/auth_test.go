package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// hash returns a cheap bcrypt hash of pass for tests.
func hash(t *testing.T, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) add(d time.Duration)     { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)} }
func (s *Store) cached() int             { s.mu.Lock(); defer s.mu.Unlock(); return len(s.cache) }
func mustAddr(s string) netip.Addr       { return netip.MustParseAddr(s) }
func groupsOf(s *Store, u string) string { return strings.Join(s.Groups(u), ",") }

func testStore(t *testing.T, opts ...Option) *Store {
	t.Helper()
	dir := t.TempDir()
	hp := writeFile(t, dir, "htpasswd", "# staff and students\n\nalice:"+hash(t, "wonderland")+"\n"+
		"bob:"+hash(t, "builder")+"\r\ncarol:"+hash(t, "")+"\n")
	gp := writeFile(t, dir, "groups", "# groups\nstaff: alice\nstudents: bob carol\nall: alice bob\nstaff: alice\n")
	s, err := Load(hp, gp, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLoadAndCheck(t *testing.T) {
	s := testStore(t)
	if s.Len() != 3 {
		t.Fatalf("Len = %d, want 3", s.Len())
	}
	cases := []struct {
		user, pass string
		ok         bool
		groups     []string
	}{
		{"alice", "wonderland", true, []string{"staff", "all"}},
		{"bob", "builder", true, []string{"students", "all"}},
		{"carol", "", true, []string{"students"}},
		{"alice", "Wonderland", false, nil},
		{"alice", "", false, nil},
		{"bob", "wonderland", false, nil},
		{"mallory", "wonderland", false, nil},
		{"Alice", "wonderland", false, nil},
	}
	for _, c := range cases {
		g, ok := s.Check(c.user, c.pass)
		if ok != c.ok || !slices.Equal(g, c.groups) {
			t.Errorf("Check(%q, %q) = %v, %v; want %v, %v", c.user, c.pass, g, ok, c.groups, c.ok)
		}
	}
	// The groups returned are a copy.
	g, _ := s.Check("alice", "wonderland")
	g[0] = "mutated"
	if got := groupsOf(s, "alice"); got != "staff,all" {
		t.Errorf("groups changed through a returned slice: %s", got)
	}
}

func TestLoadWithoutGroupFile(t *testing.T) {
	hp := writeFile(t, t.TempDir(), "htpasswd", "dave:"+hash(t, "pw")+"\n")
	s, err := Load(hp, "")
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := s.Check("dave", "pw"); !ok || g != nil {
		t.Fatalf("Check = %v, %v; want nil, true", g, ok)
	}
}

// TestGroupNames: every group the file declares counts, members or not, once,
// sorted; members are not checked (no htpasswd file is read); a bad line is a
// ParseError naming FILE:LINE.
func TestGroupNames(t *testing.T) {
	dir := t.TempDir()
	gp := writeFile(t, dir, "groups", "# groups\nstudents: bob carol\nstaff:\nall: alice nobody\nstudents: dave\n")
	names, err := GroupNames(gp)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"all", "staff", "students"}; !slices.Equal(names, want) {
		t.Fatalf("GroupNames = %q, want %q", names, want)
	}
	bad := writeFile(t, dir, "bad", "staff: a\nmy staff: a\n")
	var pe *ParseError
	if _, err := GroupNames(bad); !errors.As(err, &pe) || pe.File != bad || pe.Line != 2 || !strings.Contains(pe.Msg, "white space") {
		t.Fatalf("bad line: err = %v", err)
	}
	if _, err := GroupNames(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: err = %v, want ErrNotExist", err)
	}
	var pathErr *fs.PathError
	if _, err := GroupNames(dir); !errors.As(err, &pathErr) || pathErr.Path != dir {
		t.Fatalf("folder: err = %v, want a PathError", err)
	}
}

func TestLoadRejects(t *testing.T) {
	good := hash(t, "x")
	cases := []struct {
		name, htpasswd, groups string
		file                   string // "htpasswd" or "groups"
		line                   int
		want                   string
	}{
		{"sha", "a:" + good + "\nb:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", "", "htpasswd", 2, "SHA-1"},
		{"apr1", "a:$apr1$abc$def\n", "", "htpasswd", 1, "Apache MD5"},
		{"md5crypt", "a:$1$salt$hash\n", "", "htpasswd", 1, "MD5-crypt"},
		{"sha512crypt", "a:$6$salt$hash\n", "", "htpasswd", 1, "SHA-crypt"},
		{"plain", "\n# c\na:secret\n", "", "htpasswd", 3, "crypt or plain text"},
		{"no colon", "alice\n", "", "htpasswd", 1, "want USER:HASH"},
		{"empty user", ":" + good + "\n", "", "htpasswd", 1, "empty user"},
		{"space in user", "al ice:" + good + "\n", "", "htpasswd", 1, "white space"},
		{"truncated bcrypt", "a:$2y$10$abc\n", "", "htpasswd", 1, "malformed bcrypt"},
		{"duplicate", "a:" + good + "\nb:" + good + "\na:" + good + "\n", "", "htpasswd", 3, "already defined on line 1"},
		{"group no colon", "a:" + good + "\n", "staff a\n", "groups", 1, "want GROUP"},
		{"group empty name", "a:" + good + "\n", "\n: a\n", "groups", 2, "want GROUP"},
		{"group unknown user", "a:" + good + "\n", "staff: a zed\n", "groups", 1, `user "zed" is not in the htpasswd file`},
		{"group space", "a:" + good + "\n", "my staff: a\n", "groups", 1, "white space"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			hp := writeFile(t, dir, "htpasswd", c.htpasswd)
			gp := ""
			if c.groups != "" {
				gp = writeFile(t, dir, "groups", c.groups)
			}
			_, err := Load(hp, gp)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *ParseError", err)
			}
			wantFile := hp
			if c.file == "groups" {
				wantFile = gp
			}
			if pe.File != wantFile || pe.Line != c.line || !strings.Contains(pe.Msg, c.want) {
				t.Fatalf("err = %v; want %s:%d: ...%s...", err, wantFile, c.line, c.want)
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("%s:%d: ", wantFile, c.line)) {
				t.Fatalf("message %q does not start with FILE:LINE", err)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing"), ""); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want ErrNotExist", err)
	}
}

func TestCheckCache(t *testing.T) {
	clk := newClock()
	s := testStore(t, WithClock(clk.now), WithCache(time.Minute, 2))
	if _, ok := s.Check("alice", "wrong"); ok || s.cached() != 0 {
		t.Fatalf("a failed check was accepted or cached (%d entries)", s.cached())
	}
	if _, ok := s.Check("alice", "wonderland"); !ok || s.cached() != 1 {
		t.Fatalf("success not cached: %d entries", s.cached())
	}
	// A cached success for alice:wonderland admits nothing else.
	if _, ok := s.Check("alice", "wonderlan"); ok {
		t.Fatal("wrong password accepted after a cached success")
	}
	if _, ok := s.Check("bob", "wonderland"); ok {
		t.Fatal("another user accepted with a cached password")
	}
	if g, ok := s.Check("alice", "wonderland"); !ok || strings.Join(g, ",") != "staff,all" {
		t.Fatalf("cached check = %v, %v", g, ok)
	}
	s.Check("bob", "builder")
	s.Check("carol", "")
	if n := s.cached(); n != 2 {
		t.Fatalf("cache holds %d entries, want at most 2", n)
	}
	clk.add(2 * time.Minute)
	if _, ok := s.Check("bob", "builder"); !ok {
		t.Fatal("check after expiry failed")
	}

	off := testStore(t, WithCache(0, 0))
	if _, ok := off.Check("alice", "wonderland"); !ok || off.cached() != 0 {
		t.Fatalf("disabled cache holds %d entries", off.cached())
	}
}

func TestCacheExpiry(t *testing.T) {
	clk := newClock()
	s := testStore(t, WithClock(clk.now), WithCache(time.Minute, 10))
	s.Check("alice", "wonderland")
	key := func() time.Time {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, exp := range s.cache {
			return exp
		}
		return time.Time{}
	}
	if got, want := key(), clk.now().Add(time.Minute); !got.Equal(want) {
		t.Fatalf("expiry = %v, want %v", got, want)
	}
	clk.add(61 * time.Second)
	s.Check("alice", "wonderland") // expired: bcrypt again, then cached anew
	if got, want := key(), clk.now().Add(time.Minute); !got.Equal(want) || s.cached() != 1 {
		t.Fatalf("after expiry: expiry = %v, want %v (%d entries)", got, want, s.cached())
	}
}

func TestSetPassword(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "htpasswd")
	if err := setPassword(p, "alice", "first", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	if err := os.WriteFile(p, append([]byte("# keep me\n"), mustRead(t, p)...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := setPassword(p, "bob", "builder", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	if err := setPassword(p, "alice", "second", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	body := string(mustRead(t, p))
	if !strings.HasPrefix(body, "# keep me\nalice:$2a$04$") || strings.Count(body, "alice:") != 1 || !strings.Contains(body, "\nbob:") {
		t.Fatalf("file after updates:\n%s", body)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after update = %v, want 0600", fi.Mode().Perm())
	}
	s, err := Load(p, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		u, p string
		ok   bool
	}{{"alice", "second", true}, {"alice", "first", false}, {"bob", "builder", true}} {
		if _, ok := s.Check(c.u, c.p); ok != c.ok {
			t.Errorf("Check(%q, %q) = %v, want %v", c.u, c.p, ok, c.ok)
		}
	}
	for _, bad := range []string{"", "a:b", "a b", "tab\there"} {
		if err := setPassword(p, bad, "x", bcrypt.MinCost); err == nil {
			t.Errorf("SetPassword accepted user %q", bad)
		}
	}
	if err := setPassword(filepath.Join(dir, "no", "such", "dir"), "a", "x", bcrypt.MinCost); err == nil {
		t.Error("SetPassword into a missing directory succeeded")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

// TestSetPasswordDefaultCost runs the exported SetPassword once (bcrypt at
// DefaultCost is slow under -race, hence in parallel with the rest).
func TestSetPasswordDefaultCost(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := SetPassword(p, "alice", "secret"); err != nil {
		t.Fatal(err)
	}
	_, h, _ := strings.Cut(strings.TrimSpace(string(mustRead(t, p))), ":")
	if cost, err := bcrypt.Cost([]byte(h)); err != nil || cost != bcrypt.DefaultCost {
		t.Errorf("SetPassword hash cost = %d, %v; want %d", cost, err, bcrypt.DefaultCost)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("stat: %v, %v; want mode 0600", fi, err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHtpasswdCompatibility checks both directions against Apache's htpasswd:
// a file it writes with -B loads and checks here, and a file SetPassword writes
// verifies with htpasswd -v.
func TestHtpasswdCompatibility(t *testing.T) {
	bin, err := exec.LookPath("htpasswd")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("htpasswd (apache2-utils) is required in CI")
		}
		t.Skip("htpasswd not installed (apt-get install apache2-utils)")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "htpasswd")
	run := func(args ...string) error {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("htpasswd %v: %v: %s", args, err, out)
		}
		return nil
	}
	if err := run("-B", "-C", "4", "-b", "-c", p, "erin", "s3cret pass"); err != nil {
		t.Fatal(err)
	}
	if err := run("-B", "-C", "5", "-b", p, "frank", "ünïcode"); err != nil {
		t.Fatal(err)
	}
	s, err := Load(p, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Check("erin", "s3cret pass"); !ok {
		t.Error("htpasswd -B entry for erin rejected")
	}
	if _, ok := s.Check("frank", "ünïcode"); !ok {
		t.Error("htpasswd -B entry for frank rejected")
	}
	if _, ok := s.Check("erin", "s3cret"); ok {
		t.Error("wrong password accepted")
	}
	if err := setPassword(p, "gina", "from-go", bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	if err := run("-v", "-b", p, "gina", "from-go"); err != nil {
		t.Errorf("htpasswd does not verify our hash: %v", err)
	}
	if err := run("-v", "-b", p, "gina", "other"); err == nil {
		t.Error("htpasswd verified a wrong password against our hash")
	}
	// htpasswd's default (MD5) is rejected with a clear message.
	if err := run("-m", "-b", p, "harry", "pw"); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p, ""); err == nil || !strings.Contains(err.Error(), "Apache MD5") {
		t.Errorf("MD5 entry: err = %v", err)
	}
}

func TestParseProxyAuthorization(t *testing.T) {
	cases := []struct {
		header, user, pass string
		ok                 bool
	}{
		{"Basic YWxpY2U6d29uZGVybGFuZA==", "alice", "wonderland", true},
		{"basic   YWxpY2U6d29uZGVybGFuZA==  ", "alice", "wonderland", true},
		{"BASIC YWxpY2U6", "alice", "", true},
		{"Basic YWxpY2U6d286bGQ=", "alice", "wo:ld", true},
		{"Basic OnBhc3M=", "", "", false}, // ":pass"
		{"Basic YWxpY2U=", "", "", false}, // no colon
		{"Basic !!!", "", "", false},      // not base64
		{"Bearer YWxpY2U6d29uZGVybGFuZA==", "", "", false},
		{"Basic", "", "", false},
		{"", "", "", false},
	}
	for _, c := range cases {
		h := http.Header{}
		if c.header != "" {
			h.Set("Proxy-Authorization", c.header)
		}
		u, p, ok := ParseProxyAuthorization(h)
		if u != c.user || p != c.pass || ok != c.ok {
			t.Errorf("%q: got %q, %q, %v; want %q, %q, %v", c.header, u, p, ok, c.user, c.pass, c.ok)
		}
	}
}

func TestChallenge(t *testing.T) {
	for realm, want := range map[string]string{
		"":                `Basic realm="Portcullis", charset="UTF-8"`,
		"School proxy":    `Basic realm="School proxy", charset="UTF-8"`,
		`a "b" \c` + "\n": `Basic realm="a \"b\" \\c", charset="UTF-8"`,
	} {
		if got := Challenge(realm).Get("Proxy-Authenticate"); got != want {
			t.Errorf("Challenge(%q) = %s, want %s", realm, got, want)
		}
	}
}

// TestProxyFlow runs the documented flow in a real loopback proxy with a real
// net/http client: 407 without or with wrong credentials, 200 with the right
// ones, 429 once the client failed too often.
func TestProxyFlow(t *testing.T) {
	store := testStore(t)
	clk := newClock()
	lim := NewLimiter(LimiterConfig{MaxFailures: 3, Window: time.Minute, Lockout: time.Minute}, clk.now)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil {
			http.Error(w, "bad peer", http.StatusInternalServerError)
			return
		}
		addr := ap.Addr()
		user, pass, ok := ParseProxyAuthorization(r.Header)
		if ok {
			attempt, d := lim.Reserve(user, addr)
			if attempt == nil {
				w.Header().Set("Retry-After", fmt.Sprint(int(d.Seconds())))
				http.Error(w, "too many attempts", http.StatusTooManyRequests)
				return
			}
			var groups []string
			if groups, ok = store.Check(user, pass); ok {
				attempt.Succeed()
				fmt.Fprintf(w, "%s %s %s", r.URL, user, strings.Join(groups, ","))
				return
			}
			attempt.Fail()
		}
		for k, v := range Challenge("School") {
			w.Header()[k] = v
		}
		w.WriteHeader(http.StatusProxyAuthRequired)
	}))
	defer proxy.Close()

	get := func(userinfo *url.Userinfo) *http.Response {
		t.Helper()
		pu, _ := url.Parse(proxy.URL)
		pu.User = userinfo
		c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
		defer c.CloseIdleConnections()
		resp, err := c.Get("http://school.test/page")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get(nil); r.StatusCode != 407 || !strings.HasPrefix(r.Header.Get("Proxy-Authenticate"), `Basic realm="School"`) {
		t.Fatalf("no credentials: %d %q", r.StatusCode, r.Header.Get("Proxy-Authenticate"))
	}
	if r := get(url.UserPassword("alice", "wonderland")); r.StatusCode != 200 {
		t.Fatalf("right credentials: %d", r.StatusCode)
	}
	for i := 0; i < 3; i++ {
		if r := get(url.UserPassword("alice", "guess")); r.StatusCode != 407 {
			t.Fatalf("wrong credentials #%d: %d", i+1, r.StatusCode)
		}
	}
	r := get(url.UserPassword("alice", "wonderland"))
	if r.StatusCode != 429 || r.Header.Get("Retry-After") != "60" {
		t.Fatalf("locked out: %d Retry-After %q; want 429 60", r.StatusCode, r.Header.Get("Retry-After"))
	}
	clk.add(time.Minute)
	if r := get(url.UserPassword("alice", "wonderland")); r.StatusCode != 200 {
		t.Fatalf("after lockout: %d", r.StatusCode)
	}
}
