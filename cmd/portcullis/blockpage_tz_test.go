package main

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"
)

// TestBlockPageShowsPolicyTimeZone: the block page showed the time in UTC; it shows
// it in the policy's zone (its schedules' zone, here Asia/Tokyo).
func TestBlockPageShowsPolicyTimeZone(t *testing.T) {
	addrs := schoolLike(t)
	proxy := &url.URL{Scheme: "http", Host: addrs["forward"]}
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}}

	before := time.Now().In(time.FixedZone("JST", 9*3600))
	resp, err := client.Get("http://games.example/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("blocked request: %d\n%s", resp.StatusCode, body)
	}
	m := regexp.MustCompile(`(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (\w+)`).FindStringSubmatch(string(body))
	if m == nil || m[2] != "JST" {
		t.Fatalf("block page time not in the policy's zone (JST):\n%s", body)
	}
	shown, err := time.ParseInLocation("2006-01-02 15:04:05", m[1], before.Location())
	if err != nil || shown.Before(before.Truncate(time.Second)) || shown.After(time.Now().Add(time.Second)) {
		t.Errorf("block page time %s, want about %s", m[1], before.Format(time.DateTime))
	}
}
