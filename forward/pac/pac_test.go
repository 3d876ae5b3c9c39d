package pac

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	c := Config{
		Proxy:         "proxy.school.lan",
		DirectDomains: []string{"ok.lan", "", "bad domain", "a..b", "ünï.lan", ".fine.lan."},
		DirectCIDRs:   []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), {}},
	}
	var got []string
	for _, e := range c.Validate() {
		got = append(got, e.Path)
	}
	want := "proxy direct_domains[1] direct_domains[2] direct_domains[3] direct_domains[4] direct_cidrs[1]"
	if strings.Join(got, " ") != want {
		t.Fatalf("Validate paths = %v, want %s", got, want)
	}
	for _, hp := range []string{"10.0.0.1:3128", "[fd00::1]:8080", "proxy.school.lan:3128"} {
		if errs := (&Config{Proxy: hp}).Validate(); len(errs) != 0 {
			t.Errorf("proxy %q rejected: %v", hp, errs)
		}
	}
	for _, hp := range []string{"10.0.0.1:0", "10.0.0.1:70000", "a b:1", "x\";alert(1);\":80", "[fe80::1%eth0]:80", "*.lan:80", ":80"} {
		if errs := (&Config{Proxy: hp}).Validate(); len(errs) != 1 {
			t.Errorf("proxy %q: errors %v, want one", hp, errs)
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	if _, err := Generate(Config{}, ""); err == nil {
		t.Error("no proxy address accepted")
	}
	if _, err := Generate(Config{}, "not a host port"); err == nil {
		t.Error("bad derived proxy address accepted")
	}
	if _, err := Generate(Config{DirectDomains: []string{"a b"}}, "10.0.0.1:3128"); err == nil {
		t.Error("invalid config accepted")
	}
	a, _ := Generate(schoolPAC, "ignored:1")
	b, _ := Generate(schoolPAC, "ignored:2")
	if string(a) != string(b) || !strings.Contains(string(a), `"PROXY 10.0.0.1:3128"`) {
		t.Error("cfg.Proxy does not take precedence over the derived address, or output is not deterministic")
	}
}

func TestHandler(t *testing.T) {
	body := []byte("function FindProxyForURL(u, h) { return \"DIRECT\"; }\n")
	srv := httptest.NewServer(Handler(body))
	defer srv.Close()
	for _, p := range []string{"/proxy.pac", "/wpad.dat"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ContentType || string(got) != string(body) {
			t.Fatalf("%s: %d %q %q", p, resp.StatusCode, resp.Header.Get("Content-Type"), got)
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL+p, nil)
		req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
		resp2, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp2.Body.Close()
		if resp2.StatusCode != http.StatusNotModified {
			t.Errorf("%s revalidation: %d, want 304", p, resp2.StatusCode)
		}
	}
	head, err := http.Head(srv.URL + "/proxy.pac")
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != 200 || head.ContentLength != int64(len(body)) {
		t.Errorf("HEAD: %d length %d", head.StatusCode, head.ContentLength)
	}
	for _, c := range []struct {
		method, path string
		status       int
	}{{"GET", "/", 404}, {"GET", "/proxy.pac.bak", 404}, {"POST", "/proxy.pac", 405}} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.status)
		}
	}
}

// TestChromiumUsesPAC points headless Chromium at a generated PAC file and
// loads a page on a host outside the direct domains, which must come from the
// loopback proxy the PAC names; the page's image is on a direct domain (mapped
// to a loopback origin by --host-resolver-rules) and must be fetched direct.
// Every other name fails to resolve and the proxy forwards nothing, so nothing
// leaves the machine.
func TestChromiumUsesPAC(t *testing.T) {
	t.Parallel()
	const chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is required in CI")
		}
		t.Skip("chromium not installed")
	}
	var mu sync.Mutex
	var direct, proxied []string // hosts seen by the origin and by the proxy
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		direct = append(direct, r.Host+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "image/gif")
		w.Write([]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"))
	}))
	defer origin.Close()
	originPort := origin.URL[strings.LastIndexByte(origin.URL, ':')+1:]
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.IsAbs() {
			http.Error(w, "not a proxy request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		proxied = append(proxied, r.URL.Host+r.URL.Path)
		mu.Unlock()
		if r.URL.Host != "www.outside.test" { // the browser's own background traffic
			http.Error(w, "not forwarded", http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, `<html><body><p>served-by-proxy %s</p><img src="http://www.school.test:%s/pixel.gif"></body></html>`, r.URL.Host, originPort)
	}))
	defer proxy.Close()
	body, err := Generate(Config{DirectDomains: []string{"school.test"}}, strings.TrimPrefix(proxy.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	var fetched atomic.Int32
	pacHandler := Handler(body)
	pacSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		pacHandler.ServeHTTP(w, r)
	}))
	defer pacSrv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(),
		"--proxy-pac-url="+pacSrv.URL+"/proxy.pac",
		"--host-resolver-rules=MAP www.school.test 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--dump-dom", "http://www.outside.test/page").Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(string(out), "served-by-proxy www.outside.test") {
		t.Errorf("page not fetched through the PAC's proxy; DOM:\n%s", out)
	}
	if !slices.Contains(direct, "www.school.test:"+originPort+"/pixel.gif") {
		t.Errorf("image on the direct domain not fetched direct; origin saw %v", direct)
	}
	for _, p := range proxied {
		if strings.Contains(p, "school.test") {
			t.Errorf("direct domain went through the proxy: %s", p)
		}
	}
	if fetched.Load() == 0 {
		t.Error("the PAC file was never fetched")
	}
}

func TestDerivedHandler(t *testing.T) {
	h, err := DerivedHandler(Config{DirectDomains: []string{"school.lan"}}, 3128)
	if err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{"tcp4", "tcp6"} {
		addr := "127.0.0.1:0"
		if network == "tcp6" {
			addr = "[::1]:0"
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			t.Logf("%s: %v (no loopback of this family)", network, err)
			continue
		}
		srv := httptest.NewUnstartedServer(h)
		srv.Listener.Close()
		srv.Listener = ln
		srv.Start()
		resp, err := http.Get(srv.URL + "/proxy.pac")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		host := ln.Addr().(*net.TCPAddr).IP.String()
		want := `"PROXY ` + net.JoinHostPort(host, "3128") + `"`
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d, body lacks %s", network, resp.StatusCode, want)
		}
	}
	if _, err := DerivedHandler(Config{}, 0); err == nil {
		t.Error("port 0 accepted")
	}
	if _, err := DerivedHandler(Config{DirectDomains: []string{"a b"}}, 3128); err == nil {
		t.Error("invalid config accepted")
	}
	fixed, err := DerivedHandler(Config{Proxy: "proxy.school.lan:8080"}, 3128)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(fixed)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/wpad.dat")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"PROXY proxy.school.lan:8080"`) {
		t.Error("configured proxy not used")
	}
}
