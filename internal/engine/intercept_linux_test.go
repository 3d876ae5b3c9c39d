package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// interceptChildEnv marks the re-executed test binary running inside its own
// network namespace (unshare -n).
const interceptChildEnv = "PORTCULLIS_INTERCEPT_NETNS"

// TestInterceptInNamespace runs intercept mode for real: in a network namespace
// of its own, iptables REDIRECTs a client's connections to 127.0.0.2:80 and :443
// to the engine's intercept listeners, and curl, with no proxy setting at all,
// gets the origin's page for an allowed name, the block page for a blocked one,
// a closed connection for a blocked server name, 409 for a Host that lies about
// the address dialed, and 508 for a loop; never a 407, though the forward door
// asks for sign-in.
func TestInterceptInNamespace(t *testing.T) {
	if os.Getenv(interceptChildEnv) == "1" {
		interceptChild(t)
		return
	}
	missing := ""
	switch {
	case os.Geteuid() != 0:
		missing = "root (to create a network namespace and install iptables rules)"
	default:
		for _, tool := range []string{"unshare", "iptables", "ip6tables", "curl", "setpriv"} {
			if sbinTool(tool) == "" {
				missing = tool
				break
			}
		}
	}
	if missing == "" {
		if out, err := exec.Command(sbinTool("unshare"), "-n", "true").CombinedOutput(); err != nil {
			missing = fmt.Sprintf("a network namespace (unshare -n: %v %s)", err, bytes.TrimSpace(out))
		}
	}
	if missing != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("intercept test needs %s in CI", missing)
		}
		t.Skipf("intercept test needs %s", missing)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sbinTool("unshare"), "-n", os.Args[0], "-test.run=^TestInterceptInNamespace$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), interceptChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestInterceptInNamespace")) {
		t.Fatalf("in the namespace: %v\n%s", err, out)
	}
	t.Logf("in the namespace:\n%s", out)
}

// sbinTool finds a tool on PATH or in the sbin directories a non-root PATH
// lacks (iptables lives in /usr/sbin); "" when it is not installed.
func sbinTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return filepath.Join(dir, name)
		}
	}
	return ""
}

// syncBuffer is a log destination read while the engine writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// loopbackUp brings lo up in a fresh namespace (no ip(8) needed).
func loopbackUp(t *testing.T) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		t.Fatal(err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		t.Fatalf("bring lo up: %v", err)
	}
}

// namesUpstream is a DNS upstream on loopback answering A queries from names
// (NXDOMAIN otherwise).
func namesUpstream(t *testing.T, names map[string]string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		q := r.Question[0]
		a, ok := names[strings.TrimSuffix(q.Name, ".")]
		switch {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA && !strings.Contains(a, ":"):
			rr, _ := dns.NewRR(q.Name + " 300 IN A " + a)
			m.Answer = append(m.Answer, rr)
		case q.Qtype == dns.TypeAAAA && strings.Contains(a, ":"):
			rr, _ := dns.NewRR(q.Name + " 300 IN AAAA " + a)
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// interceptChild is the test proper, inside the namespace.
func interceptChild(t *testing.T) {
	loopbackUp(t)
	// origins on 127.0.0.2 (plain and TLS), answering with their name
	origin := func(addr string, tlsOn bool) *httptest.Server {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "origin page for %s (tls=%v)\n", r.Host, r.TLS != nil)
		}))
		srv.Listener.Close()
		srv.Listener = ln
		if tlsOn {
			srv.StartTLS()
		} else {
			srv.Start()
		}
		t.Cleanup(srv.Close)
		return srv
	}
	origin("127.0.0.2:80", false)
	origin("127.0.0.2:443", true)
	origin("[::1]:80", false)
	up := namesUpstream(t, map[string]string{
		"allowed.test": "127.0.0.2", "blocked.test": "127.0.0.2", "loop.test": "127.0.0.4", "six.test": "::1",
	})
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "blocked.txt"), "blocked.test\n")
	writeFile(t, filepath.Join(dir, "users.htpasswd"), "")
	policy := filepath.Join(dir, "policy.yaml")
	writeFile(t, policy, fmt.Sprintf(`
resolver:
  upstreams: ["udp://%s"]
  egress: {allow: ["127.0.0.0/8", "::1/128"]}
lists:
  blocked: {format: domains, path: %s/blocked.txt}
rules:
  - {name: no-blocked, list: [blocked], action: block}
forward:
  listen: ["127.0.0.1:0"]
  intercept: {http: ["127.0.0.1:0", "[::1]:0"], https: ["127.0.0.1:0"]}
  auth: {htpasswd_file: users.htpasswd}
`, up, dir))
	logs := &syncBuffer{}
	e, err := New(Options{PolicyPath: policy, Logger: slog.New(slog.NewTextHandler(logs, nil)), AccessLog: io.Discard, DrainTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(20 * time.Second)
	for e.ready() != nil || len(e.Addrs()["intercept-https"]) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("engine not ready; log:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	port := func(kind string, v6 bool) string {
		for _, a := range e.Addrs()[kind] {
			if ap, err := netip.ParseAddrPort(a.String()); err == nil && ap.Addr().Is6() == v6 {
				return strconv.Itoa(int(ap.Port()))
			}
		}
		t.Fatalf("no %s listener (IPv6 %v) in %v", kind, v6, e.Addrs())
		return ""
	}
	httpPort, httpsPort, fwdPort := port("intercept-http", false), port("intercept-https", false), port("forward", false)
	http6Port := port("intercept-http", true)
	// The client runs as nobody, so only its connections are redirected (the
	// proxy's own, made as root, go to the origins); 127.0.0.4 is redirected for
	// everyone, the proxy included: a forwarding loop.
	for _, rule := range [][]string{
		{"-m", "owner", "--uid-owner", "65534", "-d", "127.0.0.2/31", "--dport", "80", "-j", "REDIRECT", "--to-ports", httpPort},
		{"-m", "owner", "--uid-owner", "65534", "-d", "127.0.0.2/31", "--dport", "443", "-j", "REDIRECT", "--to-ports", httpsPort},
		{"-d", "127.0.0.4", "--dport", "80", "-j", "REDIRECT", "--to-ports", httpPort},
	} {
		args := append([]string{"-t", "nat", "-A", "OUTPUT", "-p", "tcp"}, rule...)
		if out, err := exec.Command(sbinTool("iptables"), args...).CombinedOutput(); err != nil {
			t.Fatalf("iptables %v: %v\n%s", args, err, out)
		}
	}
	args6 := []string{"-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-m", "owner", "--uid-owner", "65534", "-d", "::1", "--dport", "80", "-j", "REDIRECT", "--to-ports", http6Port}
	if out, err := exec.Command(sbinTool("ip6tables"), args6...).CombinedOutput(); err != nil {
		t.Fatalf("ip6tables %v: %v\n%s", args6, err, out)
	}
	// curl as nobody, without any proxy setting (its environment holds PATH only); returns status (0 when no
	// HTTP answer), body and curl's exit error.
	curl := func(args ...string) (int, string, error) {
		t.Helper()
		full := append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "curl", "-sS", "-k", "--max-time", "30",
			"-w", "\n%{http_code}"}, args...)
		cmd := exec.Command(sbinTool("setpriv"), full...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		out := stdout.String()
		i := strings.LastIndex(out, "\n")
		var code int
		fmt.Sscan(out[i+1:], &code)
		if err != nil {
			err = fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
		}
		return code, out[:max(i, 0)], err
	}
	check := func(name string, wantCode int, wantBody string, args ...string) {
		t.Helper()
		code, body, err := curl(args...)
		if code != wantCode || !strings.Contains(body, wantBody) {
			t.Errorf("%s: status %d (want %d), curl error %v, body:\n%s", name, code, wantCode, err, body)
		}
	}
	check("allowed HTTP", 200, "origin page for allowed.test (tls=false)",
		"--resolve", "allowed.test:80:127.0.0.2", "http://allowed.test/")
	check("allowed HTTP over IPv6", 200, "origin page for six.test (tls=false)",
		"--resolve", "six.test:80:[::1]", "http://six.test/")
	check("blocked HTTP", 403, "blocked.test",
		"--resolve", "blocked.test:80:127.0.0.2", "http://blocked.test/")
	check("allowed HTTPS", 200, "origin page for allowed.test (tls=true)",
		"--resolve", "allowed.test:443:127.0.0.2", "https://allowed.test/")
	if code, body, err := curl("--resolve", "blocked.test:443:127.0.0.2", "https://blocked.test/"); err == nil || code != 0 {
		t.Errorf("blocked HTTPS: status %d, curl error %v, body %q; want the connection closed", code, err, body)
	}
	check("Host lying about the address", 409, "does not match",
		"-H", "Host: allowed.test", "http://127.0.0.3/")
	if !strings.Contains(logs.String(), "the host does not match the original destination") {
		t.Errorf("no log line for the lying Host; log:\n%s", logs)
	}
	if code, body, err := curl("--resolve", "allowed.test:443:127.0.0.3", "https://allowed.test/"); err == nil || code != 0 {
		t.Errorf("SNI lying about the address: status %d, curl error %v, body %q; want the connection closed", code, err, body)
	}
	check("forwarding loop", 508, "loop",
		"--resolve", "loop.test:80:127.0.0.4", "http://loop.test/")
	check("connection not redirected", 508, "not redirected",
		"http://127.0.0.1:"+httpPort+"/")
	// the forward door does ask for sign-in: intercept mode never does
	check("proxy request", 407, "",
		"-x", "http://127.0.0.1:"+fwdPort, "http://allowed.test/")

	// Chromium, as nobody, with no proxy setting: the origin's page and the
	// block page, through the redirect.
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is required in CI: %v", err)
		}
		t.Logf("no /usr/bin/chromium: the Chromium part is skipped")
		return
	}
	home, err := os.MkdirTemp("", "intercept-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if err := os.Chmod(home, 0o777); err != nil {
		t.Fatal(err)
	}
	browse := func(url string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, sbinTool("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups",
			"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--disable-features=HttpsUpgrades", "--user-data-dir="+filepath.Join(home, "profile"),
			"--host-resolver-rules=MAP allowed.test 127.0.0.2, MAP blocked.test 127.0.0.2",
			"--dump-dom", url)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %s: %v\n%s", url, err, errOut.String())
		}
		return out.String()
	}
	if dom := browse("http://allowed.test/"); !strings.Contains(dom, "origin page for allowed.test") {
		t.Errorf("Chromium, allowed.test: no origin page:\n%s", dom)
	}
	if dom := browse("http://blocked.test/"); !strings.Contains(dom, "no-blocked") {
		t.Errorf("Chromium, blocked.test: no block page naming the rule:\n%s", dom)
	}
}
