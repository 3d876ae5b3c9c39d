package engine

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

// TestTrackersBlockedQuietly runs a privacy profile with a tracker list: a tracker
// gets an empty 204 (not the block page, and nothing leaves the proxy), everything
// else goes through with the tracking parameters removed.
func TestTrackersBlockedQuietly(t *testing.T) {
	var gotQuery string
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQuery = r.URL.RawQuery
		io.WriteString(w, "page")
	}))
	defer origin.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "trackers.txt"), []byte("||tracker.example.test^\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := runEngine(t, fmt.Sprintf(`
forward: {listen: ["127.0.0.1:0"], profile: private}
resolver: {egress: {allow: ["127.0.0.0/8"]}}
lists:
  trackers: {format: adblock, path: %s/trackers.txt}
profiles:
  private: {level: elite, trackers: [trackers]}
`, dir))
	proxyURL := &url.URL{Scheme: "http", Host: e.Addrs()["forward"][0].String()}
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	resp, err := client.Get("http://pixel.tracker.example.test/collect?id=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
		t.Fatalf("tracker: %d %q, want an empty 204", resp.StatusCode, body)
	}
	resp, err = client.Get(origin.URL + "/a?x=1&utm_source=mail&y=%41")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || gotQuery != "x=1&y=%41" {
		t.Fatalf("page: %d, origin saw query %q", resp.StatusCode, gotQuery)
	}
}
