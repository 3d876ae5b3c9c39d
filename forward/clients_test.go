package forward

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/rules"
)

func TestCurlThroughProxy(t *testing.T) {
	curl := needTool(t, "curl")
	t.Parallel()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello from origin, ua="+r.Header.Get("User-Agent"))
	}))
	defer origin.Close()
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello over tls")
	}))
	defer tls.Close()
	tp := startProxy(t, Options{Config: connectPorts(t, tls.URL), Policy: hostPolicy("no-games", "games.example")})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, curl, append([]string{"-sS", "--noproxy", "", "-x", tp.url.String()}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run(origin.URL + "/"); !strings.HasPrefix(out, "hello from origin, ua=curl/") {
		t.Errorf("plain: %q", out)
	}
	if out := run("-k", tls.URL+"/"); out != "hello over tls" {
		t.Errorf("tunnel: %q", out)
	}
	if out := run("-w", "%{http_code}", "http://games.example/"); !strings.Contains(out, "Rule: no-games") || !strings.HasSuffix(out, "403") {
		t.Errorf("block: %q", out)
	}
}

func TestChromiumShowsBlockPage(t *testing.T) {
	chromium := needChromium(t)
	t.Parallel()
	tp := startProxy(t, Options{Policy: hostPolicy("no-games", "games.example"), Config: &Config{Contact: "Ask Ms Smith in room 12"}})
	dom := dumpDOM(t.Context(), t, chromium, tp.url.String(), "http://www.games.example/play?level=3")
	for _, want := range []string{"This page is blocked", "http://www.games.example/play?level=3", "no-games", "Blocked for the test &lt;games.example&gt;", "Ask Ms Smith in room 12"} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q:\n%s", want, dom)
		}
	}
}

// dumpDOM loads target in headless Chromium through proxy and returns the DOM.
// Each launch has its own 90 s: a test that loads several pages must not run
// out of time on a busy machine because Chromium was slow to start once.
func dumpDOM(ctx context.Context, t *testing.T, chromium, proxy, target string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(),
		"--proxy-server=" + proxy, "--proxy-bypass-list=<-loopback>"}
	args = append(args, extra...)
	args = append(args, "--dump-dom", target)
	cmd := exec.CommandContext(ctx, chromium, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return string(out)
}

func TestChromiumInspectedPathBlockAndAllow(t *testing.T) {
	chromium := needChromium(t)
	t.Parallel()
	env := newInspectEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<!DOCTYPE html><title>origin</title><p id=msg>allowed video page "+r.URL.Path+"</p>")
	}))
	tp := startProxy(t, env.proxyOpts(t, rules.EvaluatorFunc(inspectPolicy), &Config{Contact: "Ask the IT office"}))
	ctx := t.Context()
	trust := "--ignore-certificate-errors-spki-list=" + env.ca.SPKIHash()
	dom := dumpDOM(ctx, t, chromium, tp.url.String(), env.url("example.com", "/blocked/short1"), trust)
	for _, want := range []string{"This page is blocked", "no-shorts", "Short videos are blocked", "Ask the IT office"} {
		if !strings.Contains(dom, want) {
			t.Errorf("blocked path: page lacks %q:\n%s", want, dom)
		}
	}
	dom = dumpDOM(ctx, t, chromium, tp.url.String(), env.url("example.com", "/watch"), trust)
	if !strings.Contains(dom, "allowed video page /watch") {
		t.Errorf("allowed path not rendered:\n%s", dom)
	}
	// The origin's certificate does not name bad.example: the browser is told so.
	dom = dumpDOM(ctx, t, chromium, tp.url.String(), env.url("bad.example", "/"), trust)
	if !strings.Contains(dom, "502 Bad Gateway") || !strings.Contains(dom, "certificate could not be verified") {
		t.Errorf("bad upstream certificate not shown:\n%s", dom)
	}
}

func TestChromiumInspectToBlock(t *testing.T) {
	chromium := needChromium(t)
	t.Parallel()
	env := newInspectEnv(t, originHandler())
	cfg := &Config{CAClients: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	tp := startProxy(t, env.proxyOpts(t, hostPolicy("no-blocked", "blocked.example"), cfg))
	dom := dumpDOM(t.Context(), t, chromium, tp.url.String(), env.url("blocked.example", "/"),
		"--ignore-certificate-errors-spki-list="+env.ca.SPKIHash())
	for _, want := range []string{"This page is blocked", "no-blocked", "https://blocked.example:" + env.port + "/"} {
		if !strings.Contains(dom, want) {
			t.Errorf("page lacks %q:\n%s", want, dom)
		}
	}
}
