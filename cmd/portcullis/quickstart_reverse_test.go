package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The README's reverse quick start, as a user types it. Keep these in step with the
// README ("Reverse proxy" section) and policies/site.yaml: the test checks that
// site.yaml names these addresses, then runs the same steps on free loopback ports
// (the fixed ones may be taken on a shared machine) by substituting them.
//
//	for p in 9101 9102 9103 9104; do mkdir -p /tmp/o$p && echo "member $p" > /tmp/o$p/index.html && \
//	  (cd /tmp/o$p && python3 -m http.server $p --bind 127.0.0.1 &) ; done
//	go run ./cmd/portcullis run --config policies/site.yaml
//	curl -i --resolve app.example.test:8080:127.0.0.1 http://app.example.test:8080/
//	curl -i --resolve static.example.test:8080:127.0.0.1 http://static.example.test:8080/
//	curl -s http://127.0.0.1:9090/pools
//	curl --cacert policies/state/reverse-ca.crt --resolve app.example.test:8443:127.0.0.1 https://app.example.test:8443/
var (
	quickStartPolicy      = "../../policies/site.yaml"
	quickStartOriginPorts = []int{9101, 9102, 9103, 9104} // app: the first three; static: the last
	quickStartOriginCmd   = "python3 -m http.server %d --bind 127.0.0.1"
	quickStartIndex       = "member %d\n" // each origin's index.html
	quickStartHTTP        = "127.0.0.1:8080"
	quickStartHTTPS       = "127.0.0.1:8443"
	quickStartAdmin       = "127.0.0.1:9090"
	quickStartCA          = "state/reverse-ca.crt" // relative to the policy file
)

// needPython returns python3's path, skipping (failing under CI=true) without it.
func needPython(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is required under CI=true")
		}
		t.Skip("python3 not installed")
	}
	return py
}

var pythonPortRE = regexp.MustCompile(`port (\d+)`)

// startPythonOrigin runs the quick start's origin command for readmePort on a free
// port (0) in a folder holding the quick start's index.html, and returns its address.
func startPythonOrigin(t *testing.T, readmePort int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), fmt.Sprintf("o%d", readmePort))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), fmt.Appendf(nil, quickStartIndex, readmePort), 0o644); err != nil {
		t.Fatal(err)
	}
	args := strings.Fields(fmt.Sprintf(quickStartOriginCmd, 0))
	cmd := exec.Command(needPython(t), args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := pythonPortRE.FindStringSubmatch(sc.Text()); m != nil {
				port <- m[1]
				break
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case p := <-port:
		return "127.0.0.1:" + p
	case <-time.After(30 * time.Second):
		t.Fatal("python3 -m http.server did not say which port it serves")
		return ""
	}
}

// quickStartPolicyCopy writes site.yaml, with the quick start's addresses replaced
// by free ones (listeners on port 0, members at the origins started), into a fresh
// folder and returns its path. edit, if not nil, changes the text further.
func quickStartPolicyCopy(t *testing.T, origins map[int]string, edit func(string) string) string {
	t.Helper()
	b, err := os.ReadFile(quickStartPolicy)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	repl := []string{}
	for _, a := range []string{quickStartHTTP, quickStartHTTPS, quickStartAdmin} {
		if !strings.Contains(text, `"`+a+`"`) {
			t.Fatalf("%s does not listen on %s as the README's quick start says", quickStartPolicy, a)
		}
		repl = append(repl, `"`+a+`"`, `"127.0.0.1:0"`)
	}
	for _, p := range quickStartOriginPorts {
		a := fmt.Sprintf("http://127.0.0.1:%d", p)
		if !strings.Contains(text, a) {
			t.Fatalf("%s has no member %s as the README's quick start says", quickStartPolicy, a)
		}
		if o, ok := origins[p]; ok {
			repl = append(repl, a, "http://"+o)
		}
	}
	text = strings.NewReplacer(repl...).Replace(text)
	if edit != nil {
		text = edit(text)
	}
	path := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var listenerRE = regexp.MustCompile(`([a-z-]+)=(127\.0\.0\.1:\d+)`)

// runReverse starts the binary on policy and returns its listeners by kind.
func runReverse(t *testing.T, policy string) (*proc, map[string]string) {
	t.Helper()
	p, addrs := runPolicy(t, policy)
	for _, k := range []string{"reverse", "reverse-tls", "admin"} {
		if addrs[k] == "" {
			t.Fatalf("no %s listener logged: %v", k, addrs)
		}
	}
	return p, addrs
}

// runPolicy starts `portcullis run --config policy` and returns the listeners its
// "portcullis running" line lists, by kind.
func runPolicy(t *testing.T, policy string) (*proc, map[string]string) {
	t.Helper()
	p, running := spawn(t, "run", "--config", policy)
	addrs := map[string]string{}
	for _, m := range listenerRE.FindAllStringSubmatch(running, -1) {
		addrs[m[1]] = m[2]
	}
	return p, addrs
}

// resolving is curl's --resolve: every connection goes to addr whatever the host.
func resolving(addr string, roots *x509.CertPool) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			DisableKeepAlives: true,
		},
	}
}

func fetch(t *testing.T, c *http.Client, u string) (int, http.Header, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

type memberView struct {
	URL       string    `json:"url"`
	Healthy   bool      `json:"healthy"`
	LastCheck time.Time `json:"last_check"`
	LastError string    `json:"last_error"`
}

// poolsView is /pools (and /status.json's pools) by pool name.
type poolsView map[string][]memberView

func (v *poolsView) UnmarshalJSON(b []byte) error {
	var list []struct {
		Name    string       `json:"name"`
		Members []memberView `json:"members"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	*v = poolsView{}
	for _, p := range list {
		(*v)[p.Name] = p.Members
	}
	return nil
}

func getPools(t *testing.T, admin string) poolsView {
	t.Helper()
	code, _, body := fetch(t, http.DefaultClient, "http://"+admin+"/pools")
	if code != http.StatusOK {
		t.Fatalf("/pools: %d %s", code, body)
	}
	var v poolsView
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("/pools: %v\n%s", err, body)
	}
	return v
}

// waitChecked polls /pools until every member of pool has been health-checked
// and cond holds for its URL and last check error.
func waitChecked(t *testing.T, admin, pool string, cond func(url, lastErr string) bool) poolsView {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		v := getPools(t, admin)
		done := len(v[pool]) > 0
		for _, m := range v[pool] {
			if m.LastCheck.IsZero() || !cond(m.URL, m.LastError) {
				done = false
			}
		}
		if done {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool %s never reached the expected state: %+v", pool, v[pool])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReverseQuickStart runs the README's reverse quick start: python3 -m
// http.server origins, the binary on policies/site.yaml, and the curl commands. Every
// request gets a 200 from a member, and the health checks pass on origins that
// serve nothing but files (site.yaml used to check /healthz, which they answer 404:
// every member went down and every request got a bare 503).
func TestReverseQuickStart(t *testing.T) {
	origins := map[int]string{}
	for _, p := range quickStartOriginPorts {
		origins[p] = startPythonOrigin(t, p)
	}
	policy := quickStartPolicyCopy(t, origins, nil)
	_, addrs := runReverse(t, policy)

	// Every member passes its check (the check ran: last_check is set).
	v := waitChecked(t, addrs["admin"], "app", func(_, _ string) bool { return true })
	for _, m := range v["app"] {
		if !m.Healthy || m.LastError != "" {
			t.Errorf("member %s after a health check: healthy %v, last error %q", m.URL, m.Healthy, m.LastError)
		}
	}

	plain := resolving(addrs["reverse"], nil)
	seen := map[string]bool{}
	for range 6 {
		code, _, body := fetch(t, plain, "http://app.example.test:8080/")
		if code != http.StatusOK {
			t.Fatalf("app: %d %q", code, body)
		}
		seen[strings.TrimSpace(body)] = true
	}
	for _, p := range quickStartOriginPorts[:3] {
		if want := fmt.Sprintf("member %d", p); !seen[want] {
			t.Errorf("round robin over the app pool never reached %q (saw %v)", want, seen)
		}
	}
	code, hdr, body := fetch(t, plain, "http://static.example.test:8080/")
	if want := fmt.Sprintf(strings.TrimSpace(quickStartIndex), quickStartOriginPorts[3]); code != http.StatusOK || strings.TrimSpace(body) != want {
		t.Errorf("static: %d %q, want 200 %q", code, body, want)
	}
	if hdr.Get("Cache-Status") == "" {
		t.Errorf("static: no Cache-Status header: %v", hdr)
	}

	// HTTPS with the local CA written to state_dir.
	pem, err := os.ReadFile(filepath.Join(filepath.Dir(policy), quickStartCA))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", quickStartCA)
	}
	code, _, body = fetch(t, resolving(addrs["reverse-tls"], roots), "https://app.example.test:8443/")
	if code != http.StatusOK || !strings.HasPrefix(body, "member 910") {
		t.Errorf("https app: %d %q", code, body)
	}

	// Still all up after more rounds of checks (fall: 2 would have taken them down).
	first := v["app"][0].LastCheck
	deadline := time.Now().Add(60 * time.Second)
	for checks := 0; checks < 2; {
		v = getPools(t, addrs["admin"])
		if v["app"][0].LastCheck.After(first) {
			first = v["app"][0].LastCheck
			checks++
		}
		if time.Now().After(deadline) {
			t.Fatal("no more health checks in 60 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, m := range v["app"] {
		if !m.Healthy || m.LastError != "" {
			t.Errorf("member %s after several checks: healthy %v, last error %q", m.URL, m.Healthy, m.LastError)
		}
	}
	if code, _, body := fetch(t, plain, "http://app.example.test:8080/"); code != http.StatusOK {
		t.Errorf("app after several checks: %d %q", code, body)
	}
}

// TestReversePoolDownSaysWhy runs site.yaml with health checks the origins fail
// (/healthz, which python's http.server answers 404, and a member nobody listens
// on): the 503's access-log line and the status page (/status, /status.json) say,
// per member, why it is down.
func TestReversePoolDownSaysWhy(t *testing.T) {
	origins := map[int]string{}
	for _, p := range quickStartOriginPorts[:2] {
		origins[p] = startPythonOrigin(t, p)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	origins[quickStartOriginPorts[2]] = l.Addr().String()
	l.Close() // refused from now on
	policy := quickStartPolicyCopy(t, origins, func(s string) string {
		s = strings.Replace(s, "health: {path: /,", "health: {path: /healthz,", 1)
		return s + "\n  log: {path: access.log}\n"
	})
	_, addrs := runReverse(t, policy)
	waitChecked(t, addrs["admin"], "app", func(_, lastErr string) bool { return lastErr != "" })
	// Down after fall (2) failed checks: poll until the pool answers 503.
	plain := resolving(addrs["reverse"], nil)
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, _, _ := fetch(t, plain, "http://app.example.test:8080/")
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("app still answers %d with every member failing its check", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	reasons := []string{
		"http://" + origins[9101] + ": health check failed: GET /healthz: status 404",
		"http://" + origins[9102] + ": health check failed: GET /healthz: status 404",
		"http://" + origins[9103] + ": health check failed: GET /healthz:",
		"connection refused",
	}

	// The access log is written in batches: poll until the 503 is in.
	var line string
	logPath := filepath.Join(filepath.Dir(policy), "access.log")
	deadline = time.Now().Add(30 * time.Second)
	for line == "" {
		b, _ := os.ReadFile(logPath)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, `"status":503`) {
				line = l
			}
		}
		if line == "" && time.Now().After(deadline) {
			t.Fatalf("no 503 in the access log:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var entry struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(line), &entry); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	for _, want := range reasons {
		if !strings.Contains(entry.Error, want) {
			t.Errorf("503 log line's error %q does not say %q", entry.Error, want)
		}
	}

	_, _, status := fetch(t, http.DefaultClient, "http://"+addrs["admin"]+"/status.json")
	var sj struct {
		Pools poolsView `json:"pools"`
	}
	if err := json.Unmarshal([]byte(status), &sj); err != nil {
		t.Fatalf("/status.json: %v\n%s", err, status)
	}
	var got []string
	for _, m := range sj.Pools["app"] {
		if m.Healthy {
			t.Errorf("/status.json: %s healthy", m.URL)
		}
		got = append(got, m.URL+": health check failed: "+m.LastError)
	}
	all := strings.Join(got, "\n")
	_, _, page := fetch(t, http.DefaultClient, "http://"+addrs["admin"]+"/")
	for _, want := range reasons {
		if !strings.Contains(all, want) {
			t.Errorf("/status.json does not say %q:\n%s", want, all)
		}
	}
	for _, want := range []string{"GET /healthz: status 404", "connection refused"} {
		if !strings.Contains(page, want) {
			t.Errorf("the status page does not say %q", want)
		}
	}
}
