package anonymize_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/portcullis/portcullis/anonymize"
)

// needChromium returns Chromium's path; skipped under -short or when missing,
// unless CI=true.
func needChromium(t *testing.T) string {
	t.Helper()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("chromium tests skipped with -short")
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is required in CI")
		}
		t.Skip("chromium not installed")
	}
	return chromium
}

// TestChromiumHeadersDirectAndThroughPrivacy loads the same plain-http page
// (http://news.example/page, a loopback origin that records what it receives)
// in headless Chromium directly and through the forward door under the
// privacy profile, and compares the request header by header. Through the
// proxy exactly these differ, each as the threat model says: User-Agent
// (reduced form), Accept-Language (the common value), Sec-GPC (added) and the
// hop-by-hop Connection; every other field arrives as Chromium sent it, and
// nothing Chromium did not send appears — in particular no Sec-CH-UA* client
// hints, which Chromium never sends to an insecure origin (bc21481 added them:
// a tell that a proxy rewrote the request).
func TestChromiumHeadersDirectAndThroughPrivacy(t *testing.T) {
	chromium := needChromium(t)
	var mu sync.Mutex
	seen := map[string]http.Header{}
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/page" {
			mu.Lock()
			if _, ok := seen[r.URL.RawQuery]; !ok {
				seen[r.URL.RawQuery] = r.Header.Clone()
			}
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!DOCTYPE html><title>news</title><p>story</p>")
	}))
	origin.Config.ErrorLog = log.New(io.Discard, "", 0)
	origin.Start()
	t.Cleanup(origin.Close)
	originAddr := origin.Listener.Addr().String()
	proxy := forwardDoor().start(t, Privacy(), originAddr)

	load := func(run string, extra ...string) http.Header {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--disable-dev-shm-usage", "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
			"--user-data-dir=" + t.TempDir()}
		args = append(args, extra...)
		args = append(args, "--dump-dom", "http://news.example/page?"+run)
		cmd := exec.CommandContext(ctx, chromium, args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		dom, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium (%s): %v\n%s", run, err, stderr.String())
		}
		if !strings.Contains(string(dom), "story") {
			t.Fatalf("chromium (%s) did not render the page:\n%s", run, dom)
		}
		mu.Lock()
		defer mu.Unlock()
		h, ok := seen[run]
		if !ok {
			t.Fatalf("the origin did not see the %s request", run)
		}
		return h
	}
	direct := load("direct", "--host-resolver-rules=MAP news.example "+originAddr)
	proxied := load("proxied", "--proxy-server=http://"+proxy.Host)
	if _, ok := direct["User-Agent"]; !ok {
		t.Fatalf("the direct request has no User-Agent: %v", direct)
	}

	differ := map[string]func(d, p []string) bool{
		"User-Agent": func(d, p []string) bool {
			return len(p) == 1 && !strings.Contains(p[0], "Headless") && strings.HasSuffix(p[0], ".0.0.0 Safari/537.36")
		},
		"Accept-Language": func(_, p []string) bool { return slices.Equal(p, []string{"en-US,en;q=0.9"}) },
		"Sec-Gpc":         func(_, p []string) bool { return slices.Equal(p, []string{"1"}) },
		"Connection":      func(_, p []string) bool { return p == nil }, // hop-by-hop: never relayed
	}
	names := map[string]bool{}
	for k := range direct {
		names[k] = true
	}
	for k := range proxied {
		names[k] = true
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range names {
			if !yield(k) {
				return
			}
		}
	}) {
		d, p := direct[k], proxied[k]
		if ok, special := differ[k]; special {
			if !ok(d, p) {
				t.Errorf("%s: direct %q, through the privacy profile %q", k, d, p)
			}
			continue
		}
		if !slices.Equal(d, p) {
			t.Errorf("%s differs: direct %q, through the privacy profile %q", k, d, p)
		}
	}
	for k := range proxied {
		if strings.HasPrefix(strings.ToLower(k), "sec-ch-") {
			t.Errorf("a client hint reached an insecure origin through the proxy: %s: %q", k, proxied[k])
		}
	}
	t.Logf("direct: %v\nproxied: %v", direct, proxied)
}
