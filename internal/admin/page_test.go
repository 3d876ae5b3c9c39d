package admin

import (
	"bytes"
	"context"
	"math"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/accesslog"
)

const chromiumPath = "/usr/bin/chromium"

// pageServer serves the admin handler with ten minutes of synthetic traffic and the
// test snapshot, on loopback.
func pageServer(t *testing.T) *httptest.Server {
	t.Helper()
	s, c := newTestStatus()
	logDoors(s)
	for sec := range 600 {
		n := 20 + int(12*math.Sin(float64(sec)/45)) // a gentle wave of 8…32 requests/s
		for i := range n {
			d := time.Duration(4+i%7) * time.Millisecond
			if i == 0 { // the slow tail drifts between 60 and 240 ms
				d = time.Duration(150+90*math.Cos(float64(sec)/70)) * time.Millisecond
			}
			s.Log(entry("forward", "GET", "http://www.example.org/", "allow", 200, func(e *accesslog.Entry) {
				e.Duration = d
				e.Client = netip.AddrFrom4([4]byte{10, 1, 2, byte(i % 3)})
				if i%4 == 1 {
					e.User = "pupil-7"
				}
			}))
		}
		if sec%2 == 0 {
			s.Log(entry("forward", "GET", "https://tiktok.example/feed", "block", 403, func(e *accesslog.Entry) { e.Category = "social"; e.User = "pupil-9" }))
		}
		if sec%5 == 1 {
			s.Log(entry("forward", "CONNECT", "roblox.example:443", "block", 403, func(e *accesslog.Entry) { e.Category = "games" }))
		}
		if sec%3 == 2 {
			s.Log(entry("dns", "A", "ads.tracker.example.", "block", 5, func(e *accesslog.Entry) { e.Category = "ads"; e.Answer = "blocked" }))
		}
		s.Log(entry("dns", "AAAA", "www.example.org.", "allow", 0, func(e *accesslog.Entry) { e.Answer = "AAAA" }))
		c.advance(time.Second)
	}
	srv := httptest.NewServer(NewServer(ServerOptions{Status: s, Snapshot: func() Snapshot {
		snap := testSnapshot(c.t.Add(-42 * time.Minute))
		snap.TunnelsOpen = 37
		return snap
	}}))
	t.Cleanup(srv.Close)
	return srv
}

// pageTexts are what the page must show for pageServer's data.
var pageTexts = []string{
	"school-2026-11-26.3", "42 min ago", "Last reload failed", `unknown action \"alow\"`,
	"tiktok.example", "roblox.example", "ads.tracker.example", "social", "games",
	"http://10.0.0.12:8080", "ejected", "connection refused", "http://10.0.1.5:9000",
	"80.0%", "52.0 MiB", "1834", "ut1/adult", "4.7M", "local-allow", "AAAA", "blocked",
	"Top clients", "10.1.2.0", "10.1.2.2", "Top users", "pupil-7",
	"Blocked per user · last hour", "Top users · last day", "pupil-9 → tiktok.example",
	"Certificates (ACME)", "shop.example.org", "R11", "61.5", "not obtained yet", "429 rateLimited",
	// The OCSP column: a staple and its next update, none, nothing before the first certificate.
	`<th>OCSP staple</th>`,
	`<td class="n">61.5</td><td class="mono">yes, next update 2026-11-29 20:28</td>`,
	`<td class="n">10.0</td><td class="mono">no</td>`,
	`<td class="mono">not obtained yet</td><td class="n"></td><td class="mono"></td>`,
	"Doors · since start", `<b id="tunnels-open">37</b>`,
	`<tr><td class="pool">socks</td><td class="mono">SOCKS5</td><td class="n">5</td><td class="n">1</td><td class="n">2</td><td class="n">1</td></tr>`,
	`<tr><td class="pool">reverse (TLS)</td><td class="mono">HTTP/3.0</td><td class="n">2</td><td class="n">0</td><td class="n">0</td><td class="n">1</td></tr>`,
	`<tr><td class="pool">forward (TLS)</td><td class="mono">HTTP/2.0</td>`,
}

func TestStatusPageWithoutJavaScript(t *testing.T) {
	srv := pageServer(t)
	code, body, _ := get(t, srv.URL+"/", nil)
	if code != 200 {
		t.Fatalf("GET /: %d", code)
	}
	body = strings.ReplaceAll(body, "&#34;", `\"`)
	for _, want := range pageTexts {
		if !strings.Contains(body, want) {
			t.Errorf("server-rendered page lacks %q", want)
		}
	}
	for _, bad := range []string{"ZgotmplZ", "http://www.", "https://fonts", "<script src", "<link"} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	if !strings.Contains(body, `id="req-line" d="M0.0,`) {
		t.Error("request sparkline not rendered server-side")
	}
}

func chromium(t *testing.T, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, chromiumPath, append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.Bytes())
	}
	return out
}

func TestStatusPageInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is required in CI: %v", err)
		}
		t.Skipf("no %s", chromiumPath)
	}
	srv := pageServer(t)

	// One run (Chromium starts slowly on a busy machine): the DOM after the script ran
	// for 3 s of virtual time, and a screenshot.
	shot := filepath.Join(t.TempDir(), "status.png")
	dom := string(chromium(t, "--virtual-time-budget=3000", "--hide-scrollbars", "--window-size=1280,900",
		"--screenshot="+shot, "--dump-dom", srv.URL+"/"))
	if !strings.Contains(dom, `class="chip live on"`) {
		t.Errorf("the script did not refresh the page from /status.json:\n%.2000s", dom)
	}
	dom = strings.ReplaceAll(dom, "&quot;", `\"`)
	dom = strings.ReplaceAll(dom, `"alow"`, `\"alow\"`)
	for _, want := range pageTexts {
		if !strings.Contains(dom, want) {
			t.Errorf("page in chromium lacks %q", want)
		}
	}
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 20_000 {
		t.Errorf("screenshot is not a plausible PNG (%d bytes)", len(png))
	}
	if keep := os.Getenv("PORTCULLIS_SCREENSHOT"); keep != "" {
		if err := os.WriteFile(keep, png, 0o644); err != nil {
			t.Error(err)
		}
	}
}
