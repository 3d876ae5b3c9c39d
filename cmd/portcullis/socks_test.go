package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/portcullis/portcullis/internal/resolver/resolvertest"
)

// socksWorld is a TLS origin reachable by name through the proxy's resolver,
// a second one the egress guard refuses, and a policy with a SOCKS5 listener.
type socksWorld struct {
	dir, dns, port, guarded string // guarded: the refused origin's port
}

func newSocksWorld(t *testing.T) *socksWorld {
	t.Helper()
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "origin page for %s\n", r.Host)
	}))
	origin.Config.ErrorLog = log.New(io.Discard, "", 0) // the SNI-refused tunnel's handshake is cut on purpose
	origin.StartTLS()
	t.Cleanup(origin.Close)
	guarded := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the egress guard let a tunnel reach %s", r.Host)
	}))
	t.Cleanup(guarded.Close)
	dns := resolvertest.New(60, 60).Add(t,
		"allowed.test. 60 IN A 127.0.0.1", "blocked.test. 60 IN A 127.0.0.1", "sni-blocked.test. 60 IN A 127.0.0.1").Start(t)
	w := &socksWorld{dir: t.TempDir(), dns: dns.Addr, port: portOf(origin.URL), guarded: portOf(guarded.URL)}
	if err := os.WriteFile(filepath.Join(w.dir, "blocked.txt"), []byte("blocked.test\nsni-blocked.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

func portOf(u string) string { return u[strings.LastIndexByte(u, ':')+1:] }

// policy writes a policy with a SOCKS5 listener (sign-in with forward.auth
// when auth is true) and returns its path.
func (w *socksWorld) policy(t *testing.T, auth bool) string {
	t.Helper()
	signIn := ""
	if auth {
		hash, err := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(w.dir, "htpasswd"), []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		signIn = "  auth: {htpasswd_file: htpasswd, limiter: {max_failures: 3, window: 1m, lockout: 1m}}\n"
	}
	path := filepath.Join(w.dir, fmt.Sprintf("socks-%v.yaml", auth))
	if err := os.WriteFile(path, []byte(fmt.Sprintf(`
resolver:
  upstreams: ["udp://%s"]
  egress: {allow: ["127.0.0.1/32:%s"]}
lists:
  blocked: {format: domains, path: blocked.txt}
rules:
  - {name: no-blocked, list: [blocked], action: block}
forward:
  listen: ["127.0.0.1:0"]
  connect_ports: [%s, %s]
  socks: {listen: ["127.0.0.1:0"]}
%sadmin: {listen: "127.0.0.1:0", log: {format: json, path: access-%v.json}}
default: allow
`, w.dns, w.port, w.port, w.guarded, signIn, auth)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var socksRE = regexp.MustCompile(`socks=(\S+)`)

// socksEntry is what the tests read of an access-log line.
type socksEntry struct {
	Door, Method, URL, Action, Rule, Error, Proto, User string
	Status                                              int
	BytesOut                                            int64 `json:"bytes_out"`
}

// TestSOCKS5ThroughBinary: curl --socks5-hostname through the running binary
// with RFC 1929 sign-in: an allowed HTTPS site loads (the name resolved by
// the proxy); a site blocked by a domain rule is refused with "not allowed by
// ruleset"; a name allowed for the SOCKS request but blocked in the SNI is
// cut after the ClientHello; a destination the egress guard refuses is
// refused; a wrong password is rejected, and the sign-in limiter locks the
// user out after three failures. Each has its access-log entry (door socks,
// the rule), and the metrics count the door.
func TestSOCKS5ThroughBinary(t *testing.T) {
	curl := needCurl(t)
	w := newSocksWorld(t)
	policy := w.policy(t, true)
	_, running := spawn(t, "run", "--config", policy)
	socksAddr := socksRE.FindStringSubmatch(running)
	adminAddr := adminRE.FindStringSubmatch(running)
	if socksAddr == nil || adminAddr == nil {
		t.Fatalf("no socks or admin listener in %q", running)
	}
	logPath := filepath.Join(w.dir, "access-true.json")
	run := func(user string, args ...string) (string, string, error) {
		full := append([]string{"-sS", "-k", "--max-time", "30", "--socks5-hostname", socksAddr[1], "--proxy-user", user}, args...)
		cmd := exec.Command(curl, full...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	entries := 0
	entry := func() socksEntry {
		t.Helper()
		entries++
		lines := waitLines(t, logPath, entries)
		var e socksEntry
		if err := json.Unmarshal([]byte(lines[entries-1]), &e); err != nil {
			t.Fatalf("log line %q: %v", lines[entries-1], err)
		}
		if e.Door != "socks" || e.Method != "CONNECT" {
			t.Errorf("entry %+v: want door socks, method CONNECT", e)
		}
		return e
	}
	site := func(name, port string) string { return "https://" + name + ":" + port + "/" }

	// policy explain --door socks says what the door decides below
	for _, c := range []struct{ target, action, rule string }{
		{"allowed.test:" + w.port, "allow", "default"},
		{"blocked.test:" + w.port, "block", "no-blocked"},
		{"allowed.test:25", "block", "connect_ports"},
	} {
		out, errOut, code := runCLI(t, "policy", "explain", "--config", policy, "--door", "socks", "--user", "alice", c.target)
		m := verdictRE.FindStringSubmatch(out)
		if code != 0 || m == nil || m[1] != c.action || m[2] != c.rule {
			t.Errorf("explain --door socks %s: exit %d, want %s by %s:\n%s%s", c.target, code, c.action, c.rule, out, errOut)
		}
	}

	out, errOut, err := run("alice:right", site("allowed.test", w.port))
	if err != nil || out != "origin page for allowed.test:"+w.port+"\n" {
		t.Fatalf("allowed: %q, curl: %v %s", out, err, errOut)
	}
	if e := entry(); e.Action != "allow" || e.User != "alice" || e.URL != "allowed.test:"+w.port || e.Status != 200 || e.BytesOut == 0 {
		t.Errorf("allowed: entry %+v", e)
	}

	out, errOut, err = run("alice:right", site("blocked.test", w.port))
	if err == nil || out != "" || !strings.Contains(errOut, "(2)") {
		t.Errorf("blocked by domain: %q, curl: %v %s; want refused by ruleset", out, err, errOut)
	}
	if e := entry(); e.Action != "block" || e.Rule != "no-blocked" {
		t.Errorf("blocked by domain: entry %+v", e)
	}

	// curl shows the reply code: (2), connection not allowed by ruleset
	// the SOCKS request names allowed.test; the ClientHello names sni-blocked.test
	out, errOut, err = run("alice:right", "--connect-to", "sni-blocked.test:"+w.port+":allowed.test:"+w.port, site("sni-blocked.test", w.port))
	if err == nil || out != "" {
		t.Errorf("blocked by SNI: %q, curl: %v %s; want the connection cut", out, err, errOut)
	}
	if e := entry(); e.Action != "block" || e.Rule != "no-blocked" || e.URL != "allowed.test:"+w.port || e.BytesOut != 0 {
		t.Errorf("blocked by SNI: entry %+v", e)
	}

	out, errOut, err = run("alice:right", site("allowed.test", w.guarded))
	if err == nil || out != "" || !strings.Contains(errOut, "(2)") {
		t.Errorf("egress guard: %q, curl: %v %s; want refused", out, err, errOut)
	}
	if e := entry(); e.Action != "block" || e.Rule != "egress" || !strings.Contains(e.Error, "resolver.egress.allow") {
		t.Errorf("egress guard: entry %+v", e)
	}

	for i := range 3 {
		_, errOut, err = run("alice:wrong", site("allowed.test", w.port))
		if err == nil || !strings.Contains(errOut, "rejected") {
			t.Errorf("wrong password %d: curl: %v %s; want the user rejected", i, err, errOut)
		}
		if e := entry(); e.Rule != "proxy_auth" || e.Status != http.StatusProxyAuthRequired || e.Error != "bad credentials" {
			t.Errorf("wrong password %d: entry %+v", i, e)
		}
	}
	// locked out now: the right password is refused too, without a check
	if _, errOut, err = run("alice:right", site("allowed.test", w.port)); err == nil || !strings.Contains(errOut, "rejected") {
		t.Errorf("locked out: curl: %v %s; want the user rejected", err, errOut)
	}
	if e := entry(); e.Status != http.StatusTooManyRequests || e.Error != "authentication locked out" {
		t.Errorf("locked out: entry %+v", e)
	}

	resp, err := http.Get("http://" + adminAddr[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`portcullis_requests_total{action="allow",category="",code="2xx",door="socks",rule="default"} 1`,
		`portcullis_requests_total{action="block",category="blocked",code="4xx",door="socks",rule="no-blocked"} 2`,
		`portcullis_tunnel_duration_seconds_count{door="socks"}`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s in:\n%s", want, grepLines(string(metrics), `door="socks"`))
		}
	}

	// the status page's Doors card: the eight tunnels asked for, three
	// blocked (two rules, the egress guard), four refused at sign-in
	want := doorRow{Door: "socks", Proto: "SOCKS5", Requests: 8, Blocked: 3, Refused: 4}
	waitDoors(t, adminAddr[1], []doorRow{want})
	if page := getBody(t, "http://"+adminAddr[1]+"/"); !strings.Contains(page, `<td class="pool">socks</td><td class="mono">SOCKS5</td><td class="n">8</td>`) {
		t.Errorf("the status page does not show the socks door:\n%s", linesWith(page, "doors"))
	}
}

// waitDoors waits up to 30 s for the admin listener's /status.json to show
// exactly the door counts want, and no tunnel open.
func waitDoors(t *testing.T, admin string, want []doorRow) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var status doorsStatus
		err := json.Unmarshal([]byte(getBody(t, "http://"+admin+"/status.json")), &status)
		if err == nil && slices.Equal(status.Traffic.Doors, want) && status.TunnelsOpen == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/status.json: doors %+v, tunnels_open %d (%v); want %+v and 0", status.Traffic.Doors, status.TunnelsOpen, err, want)
		}
	}
}

// doorsStatus is what the tests read of /status.json's door counts.
type doorsStatus struct {
	Traffic     struct{ Doors []doorRow }
	TunnelsOpen int `json:"tunnels_open"`
}

// doorRow is one door and protocol of /status.json's traffic.doors.
type doorRow struct {
	Door, Proto                        string
	TLS                                bool
	Requests, Blocked, Refused, Errors uint64
}

// TestSOCKS5Chromium: headless Chromium with --proxy-server=socks5://… (no
// sign-in: Chromium does not speak RFC 1929) loads an allowed HTTPS page by a
// name only the proxy's resolver knows, and does not reach a blocked one.
func TestSOCKS5Chromium(t *testing.T) {
	chromium := "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil || testing.Short() {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is required in CI")
		}
		t.Skip("chromium not installed, or -short")
	}
	w := newSocksWorld(t)
	_, running := spawn(t, "run", "--config", w.policy(t, false))
	socksAddr := socksRE.FindStringSubmatch(running)
	if socksAddr == nil {
		t.Fatalf("no socks listener in %q", running)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dump := func(target string) string {
		args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--disable-dev-shm-usage", "--ignore-certificate-errors", "--user-data-dir=" + t.TempDir(),
			"--proxy-server=socks5://" + socksAddr[1], "--dump-dom", target}
		out, err := exec.CommandContext(ctx, chromium, args...).Output()
		if err != nil {
			t.Fatalf("chromium %s: %v", target, err)
		}
		return string(out)
	}
	if dom := dump("https://allowed.test:" + w.port + "/"); !strings.Contains(dom, "origin page for allowed.test:"+w.port) {
		t.Fatalf("allowed page not loaded through SOCKS5:\n%s", dom)
	}
	if dom := dump("https://blocked.test:" + w.port + "/"); strings.Contains(dom, "origin page") {
		t.Fatalf("blocked page loaded through SOCKS5:\n%s", dom)
	}
	lines := waitLines(t, filepath.Join(w.dir, "access-false.json"), 2)
	var blocked bool
	for _, l := range lines {
		var e socksEntry
		if err := json.Unmarshal([]byte(l), &e); err == nil && e.Door == "socks" && e.Rule == "no-blocked" && e.URL == "blocked.test:"+w.port {
			blocked = true
		}
	}
	if !blocked {
		t.Errorf("no socks entry blocking blocked.test in:\n%s", strings.Join(lines, "\n"))
	}
}

// TestSOCKS5PolicyErrors: a bad forward.socks is refused with file, line and
// field.
func TestSOCKS5PolicyErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(p, []byte(`forward:
  listen: ["127.0.0.1:0"]
  socks:
    listen: ["127.0.0.1", "127.0.0.1:99999"]
    auth: password
`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCLI(t, "validate", "--config", p)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, errOut)
	}
	for _, want := range []string{
		p + `:4:14: forward.socks.listen[0]: "127.0.0.1" is not host:port`,
		p + `:4:27: forward.socks.listen[1]: port "99999" is not a number from 0 to 65535`,
		p + `:5:11: forward.socks.auth: password needs forward.auth`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("missing %q in:\n%s", want, errOut)
		}
	}
}

// grepLines returns the lines of s containing sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
