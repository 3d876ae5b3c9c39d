package engine

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// lateFailure is a policy change that passes validation but fails after the pools,
// the resolver and the cache have been prepared: the forward door's htpasswd file
// holds a hash Portcullis refuses (or its directory's ca_file holds no
// certificate), the access log's folder does not exist (the
// admin part is built last), or a new listener's address is already taken (found
// only when binding, after the whole build).
type lateFailure struct {
	name      string
	fwdListen string // more forward listen addresses
	fwdAuth   string // a forward auth section
	adminLog  string // an admin log section
	errSays   string // what the reload error says
}

func lateFailures(t *testing.T, dir string) []lateFailure {
	t.Helper()
	writeFile(t, filepath.Join(dir, "md5-htpasswd"), "alice:$apr1$abc$defghijk\n")
	writeFile(t, filepath.Join(dir, "not-a-ca.pem"), "not a certificate\n")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	return []lateFailure{
		{name: "htpasswd", fwdAuth: ", auth: {htpasswd_file: md5-htpasswd}", errSays: "forward.auth.htpasswd_file: "},
		{name: "access log", adminLog: ", log: {path: no-such-folder/access.log}", errSays: "access log"},
		{name: "bind", fwdListen: fmt.Sprintf(", %q", taken.Addr().String()), errSays: "cannot listen for forward on " + taken.Addr().String()},
		{name: "ldap ca_file", fwdAuth: ", auth: {ldap: {url: \"ldaps://127.0.0.1:1\", base_dn: \"dc=school,dc=test\", ca_file: not-a-ca.pem}}", errSays: "forward.auth.ldap.ca_file: " + filepath.Join(dir, "not-a-ca.pem") + ": no PEM certificate in it"},
	}
}

// stagedPolicy is a policy with a forward door, an admin listener and section;
// fail, when not nil, adds one late failure.
func stagedPolicy(section string, fail *lateFailure) string {
	var f lateFailure
	if fail != nil {
		f = *fail
	}
	return fmt.Sprintf(`
forward: {listen: ["127.0.0.1:0"%s]%s}
admin: {listen: "127.0.0.1:0"%s}
%s`, f.fwdListen, f.fwdAuth, f.adminLog, section)
}

// checkStagedReloads runs the engine on section(1), then, for each late failure,
// reloads section(2) with that failure added: the reload must fail and before must
// still pass (the running behaviour is exactly as it was). Then a good reload of
// section(2) must make after pass.
func checkStagedReloads(t *testing.T, section func(v int) string, before, after func(t *testing.T, e *Engine)) {
	t.Helper()
	dir := t.TempDir()
	fails := lateFailures(t, dir)
	e := startOps(t, dir, stagedPolicy(section(1), nil), nil)
	policy := filepath.Join(dir, "policy.yaml")
	before(t, e)
	for _, f := range fails {
		writeFile(t, policy, stagedPolicy(section(2), &f))
		err := e.Reload()
		if err == nil || !strings.Contains(err.Error(), f.errSays) {
			t.Fatalf("reload failing on %s: error %v, want one saying %q", f.name, err, f.errSays)
		}
		if e.Version() != 1 {
			t.Fatalf("after the reload failing on %s the policy version is %d", f.name, e.Version())
		}
		t.Run("after failing on "+f.name, func(t *testing.T) { before(t, e) })
	}
	writeFile(t, policy, stagedPolicy(section(2), nil))
	if err := e.Reload(); err != nil {
		t.Fatalf("good reload: %v", err)
	}
	after(t, e)
}

// TestFailedReloadLeavesPoolAsItWas: a reload that moves a pool to another member
// and fails late sends no request to the new member; the good reload does.
func TestFailedReloadLeavesPoolAsItWas(t *testing.T) {
	a := newOrigin(t, "a", nil)
	b := newOrigin(t, "b", nil)
	section := func(v int) string {
		member, weight := a.URL, 1
		if v == 2 {
			member, weight = b.URL, 3
		}
		return fmt.Sprintf(`
reverse:
  listen: ["127.0.0.1:0"]
  routes: [{name: app, host: [app.test], pool: app}]
pools:
  app: {members: [{url: %q, weight: %d}]}
`, member, weight)
	}
	served := func(t *testing.T, e *Engine, want string) {
		t.Helper()
		c := &http.Client{Timeout: 5 * time.Second}
		for range 4 {
			code, body, err := do(c, mustReq(t, "GET", "http://"+addr(t, e, "reverse")+"/x", "app.test"))
			if err != nil || code != 200 || body != "from "+want {
				t.Fatalf("reverse request: %d %q %v, want 200 from %s", code, body, err, want)
			}
		}
	}
	checkStagedReloads(t, section, func(t *testing.T, e *Engine) {
		served(t, e, "a")
		if n := b.hits.Load(); n != 0 {
			t.Fatalf("the new pool member got %d requests", n)
		}
	}, func(t *testing.T, e *Engine) {
		served(t, e, "b")
	})
}

// TestFailedReloadLeavesCacheAsItWas: a reload that changes the cache's settings
// (here its largest stored object) and fails late keeps the running cache: its
// entries are still served, objects it allows are still stored, and the admin
// purge still purges the cache that serves. The good reload brings the new bound.
func TestFailedReloadLeavesCacheAsItWas(t *testing.T) {
	var origin atomic.Int64
	objects := newOrigin(t, "static", func(w http.ResponseWriter, r *http.Request) {
		origin.Add(1)
		w.Header().Set("Cache-Control", "public, max-age=600")
		io.WriteString(w, strings.Repeat("x", 4096))
	})
	section := func(v int) string {
		maxObject := 1 << 20
		if v == 2 {
			maxObject = 1024 // smaller than the 4 KiB objects
		}
		return fmt.Sprintf(`
reverse:
  listen: ["127.0.0.1:0"]
  routes: [{name: static, host: [static.test], pool: static, cache: static}]
pools:
  static: {members: [{url: %q}]}
cache: {max_bytes: 4194304, max_object_bytes: %d}
cache_policies:
  static: {enabled: true}
`, objects.URL, maxObject)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	// fetch GETs path through the reverse door and says whether the origin was asked.
	fetch := func(t *testing.T, e *Engine, path string) (fromOrigin bool) {
		t.Helper()
		n := origin.Load()
		code, body, err := do(c, mustReq(t, "GET", "http://"+addr(t, e, "reverse")+path, "static.test"))
		if err != nil || code != 200 || len(body) != 4096 {
			t.Fatalf("GET %s: %d (%d bytes) %v", path, code, len(body), err)
		}
		return origin.Load() != n
	}
	purge := func(t *testing.T, e *Engine, path string) {
		t.Helper()
		u := "http://" + addr(t, e, "admin") + "/cache/purge?url=" + url.QueryEscape("http://static.test"+path)
		code, body, err := do(c, mustReq(t, "POST", u, ""))
		if err != nil || code != 200 {
			t.Fatalf("purge %s: %d %q %v", path, code, body, err)
		}
	}
	round := 0
	checkStagedReloads(t, section, func(t *testing.T, e *Engine) {
		round++
		if round == 1 {
			if !fetch(t, e, "/kept") {
				t.Fatal("first GET of /kept did not reach the origin")
			}
		}
		if fetch(t, e, "/kept") {
			t.Fatal("/kept, stored before, was fetched from the origin again")
		}
		p := fmt.Sprintf("/new-%d", round)
		fetch(t, e, p)
		if fetch(t, e, p) {
			t.Fatalf("a 4 KiB object (%s) was not stored: the old cache's 1 MiB object bound is not in force", p)
		}
		purge(t, e, p)
		if !fetch(t, e, p) {
			t.Fatalf("%s purged through the admin listener was still served from the cache", p)
		}
	}, func(t *testing.T, e *Engine) {
		fetch(t, e, "/after")
		if !fetch(t, e, "/after") {
			t.Fatal("a 4 KiB object was stored by a cache bounded to 1 KiB objects")
		}
	})
}

// TestFailedReloadLeavesResolverAsItWas: a reload that moves the resolver to another
// upstream and fails late keeps resolving through the old one, for the forward
// door's dials and for the DNS door; the good reload moves both.
func TestFailedReloadLeavesResolverAsItWas(t *testing.T) {
	up1, q1 := fakeUpstream(t, "127.0.0.1")
	up2, q2 := fakeUpstream(t, "127.0.0.1")
	site := newOrigin(t, "site", nil)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(site.URL, "http://"))
	section := func(v int) string {
		up := up1
		if v == 2 {
			up = up2
		}
		return fmt.Sprintf(`
resolver: {upstreams: ["udp://%s"], egress: {allow: ["127.0.0.0/8"]}}
dns: {listen: ["127.0.0.1:0"]}
`, up)
	}
	n := 0
	// resolves sends, for a name never asked before, one request through the forward
	// door and one query to the DNS door, and says which upstreams were asked.
	resolves := func(t *testing.T, e *Engine) (first, second int64) {
		t.Helper()
		n++
		b1, b2 := q1.Load(), q2.Load()
		proxy := &url.URL{Scheme: "http", Host: addr(t, e, "forward")}
		c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}, Timeout: 5 * time.Second}
		defer c.CloseIdleConnections()
		code, body, err := do(c, mustReq(t, "GET", fmt.Sprintf("http://fwd-%d.example.test:%s/", n, port), ""))
		if err != nil || code != 200 || body != "from site" {
			t.Fatalf("forward request: %d %q %v", code, body, err)
		}
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("door-%d.example.test.", n), dns.TypeA)
		r, _, err := new(dns.Client).Exchange(m, addr(t, e, "dns"))
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("DNS door: %v %v", r, err)
		}
		return q1.Load() - b1, q2.Load() - b2
	}
	checkStagedReloads(t, section, func(t *testing.T, e *Engine) {
		if first, second := resolves(t, e); first == 0 || second != 0 {
			t.Fatalf("queries: %d to the old upstream, %d to the new one; want only the old one", first, second)
		}
	}, func(t *testing.T, e *Engine) {
		if first, second := resolves(t, e); first != 0 || second == 0 {
			t.Fatalf("queries: %d to the old upstream, %d to the new one; want only the new one", first, second)
		}
	})
}

// TestReloadReportsAuthFilesAtTheirField: a reload whose htpasswd file is missing
// (found by the policy check) or unusable (found when the forward door is built)
// is refused with the policy's file, line and column and the field's path.
func TestReloadReportsAuthFilesAtTheirField(t *testing.T) {
	dir := t.TempDir()
	e := startOps(t, dir, stagedPolicy("", nil), nil)
	policy := filepath.Join(dir, "policy.yaml")
	writeFile(t, filepath.Join(dir, "md5"), "alice:$apr1$abc$defghijk\n")
	for file, want := range map[string]string{
		"nowhere": ":2:73: forward.auth.htpasswd_file: cannot read " + filepath.Join(dir, "nowhere") + ": no such file or directory",
		"md5":     ":2:73: forward.auth.htpasswd_file: " + filepath.Join(dir, "md5") + ":1: user \"alice\": Apache MD5 ($apr1$) hash is not supported",
	} {
		writeFile(t, policy, "\nforward: {listen: [\"127.0.0.1:0\"], auth: {realm: School, htpasswd_file: "+file+"}}\n")
		if err := e.Reload(); err == nil || !strings.Contains(err.Error(), policy+want) {
			t.Errorf("reload with htpasswd_file %s: %v\nwant %q", file, err, policy+want)
		}
	}
}

// TestFailedReloadLeavesAccessLogAsItWas: a reload that moves the access log to
// another file and fails late (a listener that cannot bind) keeps writing to the
// old file; the good reload moves it.
func TestFailedReloadLeavesAccessLogAsItWas(t *testing.T) {
	site := newOrigin(t, "site", nil)
	dir := t.TempDir()
	bind := lateFailures(t, dir)[2]
	policy := func(log, extraListen string) string {
		return fmt.Sprintf(`
forward: {listen: ["127.0.0.1:0"%s]}
admin: {listen: "127.0.0.1:0", log: {path: %s}}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
`, extraListen, log)
	}
	e := startOps(t, dir, policy("a.log", ""), nil)
	proxy := &url.URL{Scheme: "http", Host: addr(t, e, "forward")}
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}, Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	get := func(path string) {
		t.Helper()
		if code, _, err := do(c, mustReq(t, "GET", site.URL+path, "")); err != nil || code != 200 {
			t.Fatalf("GET %s: %d %v", path, code, err)
		}
	}
	get("/one")
	readLog(t, filepath.Join(dir, "a.log"), 1)

	writeFile(t, filepath.Join(dir, "policy.yaml"), policy("b.log", bind.fwdListen))
	if err := e.Reload(); err == nil || !strings.Contains(err.Error(), bind.errSays) {
		t.Fatalf("reload failing on bind: %v", err)
	}
	get("/two")
	if lines := readLog(t, filepath.Join(dir, "a.log"), 2); !strings.Contains(lines[1], "/two") {
		t.Fatalf("a.log after the failed reload: %q", lines)
	}

	writeFile(t, filepath.Join(dir, "policy.yaml"), policy("b.log", ""))
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	get("/three")
	if lines := readLog(t, filepath.Join(dir, "b.log"), 1); !strings.Contains(lines[0], "/three") {
		t.Fatalf("b.log after the good reload: %q", lines)
	}
	readLog(t, filepath.Join(dir, "a.log"), 2)
}
