package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// schoolLike starts a school-like policy (schedules in Asia/Tokyo, a blocked
// domain, CONNECT to 443 only) and returns its listeners.
func schoolLike(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	policy := filepath.Join(dir, "p.yaml")
	os.WriteFile(policy, []byte(`forward:
  listen: ["127.0.0.1:0"]
  connect_ports: [443]
schedules:
  lessons: {timezone: Asia/Tokyo, windows: [{days: [mon-sun], from: "00:00", to: "24:00"}]}
rules:
  - {name: no-games, domain: [games.example], action: block, reason: No games.}
default: allow
admin: {listen: "127.0.0.1:0", log: {off: true}}
`), 0o644)
	_, addrs := runPolicy(t, policy)
	return addrs
}

// TestStatusPanelsThroughBinary: a CONNECT to a port outside connect_ports used to
// be counted as a blocked domain; the status page and /status.json now show it as a
// "(port not allowed)" block, and list the top clients.
func TestStatusPanelsThroughBinary(t *testing.T) {
	addrs := schoolLike(t)
	proxy := &url.URL{Scheme: "http", Host: addrs["forward"]}
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}}
	resp, err := client.Get("http://games.example/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("blocked request: %d", resp.StatusCode)
	}

	// ssh over CONNECT: refused by connect_ports.
	c, err := net.Dial("tcp", addrs["forward"])
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "CONNECT github.example:22 HTTP/1.1\r\nHost: github.example:22\r\n\r\n")
	cr, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	cr.Body.Close()
	c.Close()
	if cr.StatusCode != http.StatusForbidden {
		t.Fatalf("CONNECT to port 22: %d", cr.StatusCode)
	}

	var doc struct {
		Traffic struct {
			Blocked           int                     `json:"blocked"`
			TopBlockedDomains []struct{ Name string } `json:"top_blocked_domains"`
			TopClients        []struct {
				Name  string
				Count int
			} `json:"top_clients"`
			TopClientsDay []struct {
				Name  string
				Count int
			} `json:"top_clients_day"`
		} `json:"traffic"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for { // the counters report whole seconds: poll until both blocks are in
		_, _, s := fetch(t, http.DefaultClient, "http://"+addrs["admin"]+"/status.json")
		if err := json.Unmarshal([]byte(s), &doc); err != nil {
			t.Fatalf("%v: %s", err, s)
		}
		if doc.Traffic.Blocked >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status.json never counted the two blocks: %s", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(doc.Traffic.TopBlockedDomains) != 1 || doc.Traffic.TopBlockedDomains[0].Name != "games.example" {
		t.Errorf("top blocked domains %+v, want only games.example (not the refused port)", doc.Traffic.TopBlockedDomains)
	}
	if len(doc.Traffic.TopClients) != 1 || doc.Traffic.TopClients[0].Name != "127.0.0.1" || doc.Traffic.TopClients[0].Count < 2 {
		t.Errorf("top clients %+v, want 127.0.0.1 with the requests", doc.Traffic.TopClients)
	}
	if len(doc.Traffic.TopClientsDay) != 1 || doc.Traffic.TopClientsDay[0] != doc.Traffic.TopClients[0] {
		t.Errorf("top clients of the day %+v, want those of the hour %+v", doc.Traffic.TopClientsDay, doc.Traffic.TopClients)
	}
	_, _, page := fetch(t, http.DefaultClient, "http://"+addrs["admin"]+"/")
	for _, want := range []string{"Top clients", "127.0.0.1", "Top users", "(port not allowed)", "Top clients · last day", "Blocked per user · last day"} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if strings.Contains(page, "github.example") {
		t.Error("status page lists the refused CONNECT's host as a blocked domain")
	}
}
