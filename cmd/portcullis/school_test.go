package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis/portcullis/forward/auth"
	"github.com/portcullis/portcullis/internal/engine"
	"github.com/portcullis/portcullis/internal/resolver/resolvertest"
)

// The school world: a test DNS server the proxy resolves through, an HTTP origin
// on 127.0.0.1 for the schoolNames, and two TLS listeners on one port, on
// 127.0.0.2 (www.google.com) and 127.0.0.3 (forcesafesearch.google.com), that
// report which of them a CONNECT reached.
type schoolWorld struct {
	dnsAddr  string
	httpPort string
	tlsPort  string
	roots    *x509.CertPool
	dir      string
	paris    *time.Location
	now      atomic.Int64 // unix nanoseconds the engine's clock reads
}

const (
	badPage  = "<html><body>" + "Tonight: casino jackpot, free spins and online betting! " + "</body></html>"
	mildPage = "<html><body><h1>Maths homework</h1><p>Probability: the casino example, chapter 4.</p></body></html>"
)

func newSchoolWorld(t *testing.T) *schoolWorld {
	t.Helper()
	w := &schoolWorld{dir: t.TempDir()}
	var err error
	if w.paris, err = time.LoadLocation("Europe/Paris"); err != nil {
		t.Fatal(err)
	}
	w.setTime(time.Date(2026, 11, 23, 10, 0, 0, 0, w.paris)) // a Monday in class

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(rw, "<!DOCTYPE html><title>%s</title><p id=msg>welcome to %s</p>", r.Host, r.Host)
	})
	mux.HandleFunc("/setup.exe", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/octet-stream")
		_, _ = rw.Write([]byte("MZ\x90\x00 not really a program"))
	})
	mux.HandleFunc("/bad.html", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(rw, badPage)
	})
	mux.HandleFunc("/mild.html", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(rw, mildPage)
	})
	w.httpPort = serve(t, "127.0.0.1:0", &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, nil)

	cert, roots := testCert(t, "www.google.com", "forcesafesearch.google.com")
	w.roots = roots
	for attempt := 0; ; attempt++ { // the same free port on both addresses
		ln2, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(ln2.Addr().String())
		ln3, err := net.Listen("tcp", "127.0.0.3:"+port)
		if err != nil {
			_ = ln2.Close()
			if attempt < 10 {
				continue
			}
			t.Fatal(err)
		}
		for _, ln := range []net.Listener{ln2, ln3} {
			who := strings.Split(ln.Addr().String(), ":")[0]
			h := http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(rw, "served by "+who) })
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
			serve(t, "", srv, tls.NewListener(ln, srv.TLSConfig))
		}
		w.tlsPort = port
		break
	}

	dnsUp := resolvertest.New(60, 60).Add(t, "www.google.com. 60 IN A 127.0.0.2", "forcesafesearch.google.com. 60 IN A 127.0.0.3")
	for _, name := range schoolNames {
		dnsUp.Add(t, name+". 60 IN A 127.0.0.1")
	}
	w.dnsAddr = dnsUp.Start(t).Addr
	return w
}

// schoolNames are the names the test DNS server maps to the HTTP origin.
var schoolNames = []string{"www.example.org", "www.instagram.com", "www.chatter.test", "downloads.example.org", "news.example.org"}

// serve runs srv on ln (or a new listener on addr) until the test ends and
// returns its port.
func serve(t *testing.T, addr string, srv *http.Server, ln net.Listener) string {
	t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// testCert is a self-signed ECDSA certificate for names, and a pool trusting it.
func testCert(t *testing.T, names ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func (w *schoolWorld) setTime(t time.Time) { w.now.Store(t.UnixNano()) }
func (w *schoolWorld) clock() time.Time    { return time.Unix(0, w.now.Load()) }

// policy writes the school test policy: with sign-in (students and staff from the
// group file alone) or, for browsers that cannot sign in headlessly, with every
// loopback client a student (and staff an empty group).
func (w *schoolWorld) policy(t *testing.T, signIn bool) string {
	t.Helper()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(w.dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("social.txt", "instagram.com\nchatter.test\n")
	write("phrases.txt", "< casino ><20>\n< jackpot ><20>\n< free spins ><30>\n< online betting ><40>\n")
	groups := "" // with sign-in, students and staff are the group file's
	authSection := ""
	if signIn {
		write("htpasswd", "")
		for user, pass := range map[string]string{"alice": "alice-pw", "bob": "bob-pw"} {
			if err := auth.SetPassword(filepath.Join(w.dir, "htpasswd"), user, pass); err != nil {
				t.Fatal(err)
			}
		}
		write("groups", "students: alice\nstaff: bob\n")
		authSection = "  auth: {htpasswd_file: htpasswd, group_file: groups, limiter: {max_failures: 50}}\n"
	} else {
		groups = "groups:\n  students: {clients: [\"127.0.0.0/8\"]}\n  staff: {}\n"
	}
	name := fmt.Sprintf("school-%t.yaml", signIn)
	write(name, `
forward:
  listen: ["127.0.0.1:0"]
  connect_ports: [`+w.tlsPort+`]
`+authSection+`  pac: {}
  safesearch_groups:
    students: {google: true, youtube: strict}
  file_types: {block_extensions: [".exe"]}
  phrase: {lists: [phrases.txt], threshold: 50}
  phrase_thresholds: {staff: -1}
resolver:
  upstreams: ["udp://`+w.dnsAddr+`"]
  egress: {allow: ["127.0.0.0/8"]}
lists:
  social: {format: domains, path: social.txt, category: social_networks}
`+groups+`schedules:
  school-hours:
    timezone: Europe/Paris
    windows: [{days: [mon-fri], from: "08:00", to: "15:30"}]
rules:
  - name: social-during-school-hours
    list: [social]
    group: [students]
    schedule: school-hours
    action: block
    reason: Social media is available after school hours.
default: allow
`)
	return filepath.Join(w.dir, name)
}

// start runs an engine in process on policy with the world's clock and returns
// the forward proxy's address.
func (w *schoolWorld) start(t *testing.T, policy string) string {
	t.Helper()
	e, err := engine.New(engine.Options{PolicyPath: policy, Logger: slog.New(slog.DiscardHandler),
		AccessLog: io.Discard, DrainTimeout: 5 * time.Second, Now: w.clock})
	if err != nil {
		t.Fatalf("engine: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if a := e.Addrs()["forward"]; len(a) > 0 {
			return a[0].String()
		}
		select {
		case err := <-done:
			t.Fatalf("Run ended early: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatal("forward listener never came up")
	return ""
}

// client is a Go client of the proxy at addr signed in as user (no user: none).
func (w *schoolWorld) client(t *testing.T, addr, user, pass string) *http.Client {
	u := &url.URL{Scheme: "http", Host: addr}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	tr := &http.Transport{Proxy: http.ProxyURL(u), TLSClientConfig: &tls.Config{RootCAs: w.roots}, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

func get(t *testing.T, c *http.Client, target string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", target, err)
	}
	return resp.StatusCode, string(b)
}

// TestSchoolDeploymentGoClients runs issue 7 through the engine with real Go
// clients: sign-in, a category blocked for a student in class and allowed after,
// staff allowed, SafeSearch by CONNECT redirection per group, an executable
// refused, phrase filtering over and under the threshold.
func TestSchoolDeploymentGoClients(t *testing.T) {
	w := newSchoolWorld(t)
	proxy := w.start(t, w.policy(t, true))
	alice := w.client(t, proxy, "alice", "alice-pw")
	bob := w.client(t, proxy, "bob", "bob-pw")
	site := func(host, path string) string { return "http://" + host + ":" + w.httpPort + path }

	t.Run("407 then success", func(t *testing.T) {
		resp, err := w.client(t, proxy, "", "").Get(site("www.example.org", "/"))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusProxyAuthRequired || resp.Header.Get("Proxy-Authenticate") == "" {
			t.Fatalf("without credentials: %d %q", resp.StatusCode, resp.Header.Get("Proxy-Authenticate"))
		}
		if code, _ := get(t, w.client(t, proxy, "alice", "wrong"), site("www.example.org", "/")); code != http.StatusProxyAuthRequired {
			t.Fatalf("wrong password: %d", code)
		}
		if code, body := get(t, alice, site("www.example.org", "/")); code != 200 || !strings.Contains(body, "welcome to www.example.org") {
			t.Fatalf("signed in: %d %q", code, body)
		}
	})
	t.Run("student blocked in class, allowed after; staff allowed", func(t *testing.T) {
		insta := site("www.instagram.com", "/")
		if code, body := get(t, alice, insta); code != http.StatusForbidden || !strings.Contains(body, "social-during-school-hours") {
			t.Fatalf("student in class: %d %q", code, body)
		}
		if code, _ := get(t, bob, insta); code != 200 {
			t.Fatalf("staff in class: %d", code)
		}
		w.setTime(time.Date(2026, 11, 23, 17, 0, 0, 0, w.paris))
		defer w.setTime(time.Date(2026, 11, 23, 10, 0, 0, 0, w.paris))
		if code, _ := get(t, alice, insta); code != 200 {
			t.Fatalf("student after school: %d", code)
		}
	})
	t.Run("CONNECT www.google.com goes to the SafeSearch address for students", func(t *testing.T) {
		google := "https://www.google.com:" + w.tlsPort + "/search?q=x"
		if code, body := get(t, alice, google); code != 200 || body != "served by 127.0.0.3" {
			t.Fatalf("student: %d %q", code, body)
		}
		if code, body := get(t, bob, google); code != 200 || body != "served by 127.0.0.2" {
			t.Fatalf("staff: %d %q", code, body)
		}
	})
	t.Run("executable download blocked", func(t *testing.T) {
		if code, body := get(t, bob, site("downloads.example.org", "/setup.exe")); code != http.StatusForbidden || !strings.Contains(body, ".exe is blocked") {
			t.Fatalf("exe: %d %q", code, body)
		}
	})
	t.Run("phrase threshold", func(t *testing.T) {
		code, body := get(t, alice, site("news.example.org", "/bad.html"))
		if code != http.StatusForbidden || !strings.Contains(body, "This page is blocked") || !strings.Contains(body, "online betting") {
			t.Fatalf("page over the threshold: %d %q", code, body)
		}
		if code, body := get(t, alice, site("news.example.org", "/mild.html")); code != 200 || body != mildPage {
			t.Fatalf("page under the threshold changed: %d %q", code, body)
		}
		if code, body := get(t, bob, site("news.example.org", "/bad.html")); code != 200 || body != badPage {
			t.Fatalf("staff (no phrase filtering): %d %q", code, body)
		}
	})
}

// TestSchoolCurlProxyUser: curl gets 407 without --proxy-user and the page with it.
func TestSchoolCurlProxyUser(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is required in CI")
		}
		t.Skip("curl not installed")
	}
	w := newSchoolWorld(t)
	proxy := w.start(t, w.policy(t, true))
	target := "http://www.example.org:" + w.httpPort + "/"
	run := func(args ...string) string {
		out, err := exec.Command(curl, append([]string{"-s", "-o", "-", "-w", "\n%{http_code}", "--proxy", "http://" + proxy}, args...)...).Output()
		if err != nil {
			t.Fatalf("curl %v: %v", args, err)
		}
		return string(out)
	}
	if out := run(target); !strings.HasSuffix(out, "\n407") {
		t.Fatalf("without --proxy-user: %q", out)
	}
	if out := run("--proxy-user", "alice:alice-pw", target); !strings.HasSuffix(out, "\n200") || !strings.Contains(out, "welcome to www.example.org") {
		t.Fatalf("with --proxy-user: %q", out)
	}
}

// TestSchoolChromiumPAC: headless Chromium configured only with the proxy's
// /proxy.pac loads an allowed page through the proxy, and a student sees the
// block page for a social site in class.
func TestSchoolChromiumPAC(t *testing.T) {
	chromium := "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil || testing.Short() {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is required in CI")
		}
		t.Skip("chromium not installed, or -short")
	}
	w := newSchoolWorld(t)
	proxy := w.start(t, w.policy(t, false))
	pacURL := "http://" + proxy + "/proxy.pac"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dump := func(target string) string {
		args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(), "--proxy-pac-url=" + pacURL, "--dump-dom", target}
		out, err := exec.CommandContext(ctx, chromium, args...).Output()
		if err != nil {
			t.Fatalf("chromium %s: %v", target, err)
		}
		return string(out)
	}
	if dom := dump("http://www.example.org:" + w.httpPort + "/"); !strings.Contains(dom, "welcome to www.example.org") {
		t.Fatalf("allowed page not loaded through the PAC's proxy:\n%s", dom)
	}
	dom := dump("http://www.chatter.test:" + w.httpPort + "/") // not instagram: Chromium's HSTS preload list would make it HTTPS
	for _, want := range []string{"This page is blocked", "social-during-school-hours", "Social media is available after school hours."} {
		if !strings.Contains(dom, want) {
			t.Errorf("block page lacks %q:\n%s", want, dom)
		}
	}
}
