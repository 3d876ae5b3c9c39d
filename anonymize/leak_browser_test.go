package anonymize_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/portcullis/portcullis/anonymize"
	"github.com/portcullis/portcullis/internal/certs"
	"github.com/portcullis/portcullis/rules"
)

// siteRecorder is a TLS origin for two sites. https://tracker.example/set sets a
// cross-site cookie and redirects to https://news.example/page, whose page embeds
// a tracking pixel from tracker.example. It records every request's header by
// host and path.
type siteRecorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen map[string]*http.Request // "host/path" → the request as received (body aside)
}

func startSiteRecorder(t *testing.T) *siteRecorder {
	t.Helper()
	sr := &siteRecorder{seen: make(map[string]*http.Request)}
	sr.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sr.mu.Lock()
		sr.seen[r.Host+r.URL.Path] = &http.Request{Header: r.Header.Clone(), RequestURI: r.RequestURI}
		sr.mu.Unlock()
		switch r.Host + r.URL.Path {
		case "tracker.example/set":
			w.Header().Set("Set-Cookie", "tid=t-123; Path=/; Secure; SameSite=None; Max-Age=3600")
			http.Redirect(w, r, "https://news.example/page", http.StatusFound)
		case "news.example/page":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, `<!DOCTYPE html><title>news</title><p>story</p>`+
				`<img src="https://tracker.example/pixel.gif?utm_source=news&id=7">`)
		case "tracker.example/pixel.gif":
			w.Header().Set("Content-Type", "image/gif")
			io.WriteString(w, "GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
		default:
			http.NotFound(w, r)
		}
	}))
	sr.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	sr.srv.StartTLS()
	t.Cleanup(sr.srv.Close)
	return sr
}

func (sr *siteRecorder) request(hostPath string) (*http.Request, bool) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	r, ok := sr.seen[hostPath]
	return r, ok
}

// TestChromiumThirdPartyPixel drives headless Chromium through the forward door,
// inspecting HTTPS, so the browser sends its real Sec-Fetch-*, client hints and
// cookies. Under elite the tracking pixel carries the tracker's cookie (which shows
// the cookie is there to be stripped); under privacy it arrives without cookie,
// Referer, tracking parameter or the headless agent.
func TestChromiumThirdPartyPixel(t *testing.T) {
	chromium := needChromium(t)
	dir := t.TempDir()
	ca, err := certs.CreateCA(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key"), certs.InspectionCAName)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*Profile{Elite(), Privacy()} {
		t.Run(p.Name(), func(t *testing.T) {
			t.Parallel()
			sites := startSiteRecorder(t)
			proxy := httpsDoor(t, p, sites.srv, rules.ActionInspect, ca)
			// A fresh profile that allows third-party cookies, as most browsers
			// still do: the control run must see the tracker's cookie.
			profileDir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(profileDir, "Default"), 0o700); err != nil {
				t.Fatal(err)
			}
			prefs := `{"profile":{"cookie_controls_mode":0,"block_third_party_cookies":false}}`
			if err := os.WriteFile(filepath.Join(profileDir, "Default", "Preferences"), []byte(prefs), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
				"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
				"--disable-dev-shm-usage", "--user-data-dir="+profileDir, "--proxy-server=http://"+proxy.Host,
				"--ignore-certificate-errors-spki-list="+ca.SPKIHash(), "--dump-dom", "https://tracker.example/set")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			dom, err := cmd.Output()
			if err != nil {
				t.Fatalf("chromium: %v\n%s", err, stderr.String())
			}
			if !strings.Contains(string(dom), "story") {
				t.Fatalf("news page not rendered:\n%s", dom)
			}
			pixel, ok := sites.request("tracker.example/pixel.gif")
			if !ok {
				t.Fatal("the pixel was never requested")
			}
			checkPixel(t, p, pixel)
		})
	}
}

// checkPixel states what the tracker learns from the pixel request per profile.
func checkPixel(t *testing.T, p *Profile, r *http.Request) {
	t.Helper()
	h := r.Header
	if got := h.Get("Sec-Fetch-Site"); got != "cross-site" {
		t.Errorf("Sec-Fetch-Site %q: the browser did not see the pixel as cross-site", got)
	}
	ua := h.Get("User-Agent")
	switch p.Name() {
	case "elite":
		if h.Get("Cookie") != "tid=t-123" || !strings.HasPrefix(h.Get("Referer"), "https://news.example/") ||
			!strings.Contains(ua, "HeadlessChrome/") || r.RequestURI != "/pixel.gif?utm_source=news&id=7" {
			t.Errorf("control run: the browser's own values did not arrive: Cookie %q, Referer %q, UA %q, target %q",
				h.Get("Cookie"), h.Get("Referer"), ua, r.RequestURI)
		}
	case "privacy":
		for _, name := range []string{"Cookie", "Referer", "Sec-Ch-Ua-Full-Version-List", "Sec-Ch-Ua-Platform-Version", "Sec-Ch-Ua-Model"} {
			if v, ok := h[name]; ok {
				t.Errorf("%s arrived: %q", name, v)
			}
		}
		if r.RequestURI != "/pixel.gif?id=7" {
			t.Errorf("pixel requested as %q", r.RequestURI)
		}
		if strings.Contains(ua, "Headless") || !strings.HasSuffix(ua, ".0.0.0 Safari/537.36") {
			t.Errorf("User-Agent %q is not the reduced Chrome agent", ua)
		}
		if brands := h.Get("Sec-Ch-Ua"); brands != "" && !strings.Contains(brands, `"Google Chrome"`) {
			t.Errorf("Sec-CH-UA %q does not match the agent sent", brands)
		}
		if h.Get("Sec-Gpc") != "1" || h.Get("Accept-Language") != "en-US,en;q=0.9" {
			t.Errorf("Sec-GPC %q, Accept-Language %q", h.Get("Sec-Gpc"), h.Get("Accept-Language"))
		}
	}
}
