package engine

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestDNSGroupSafeSearchRefinesTopLevel runs the README's DNS SafeSearch example
// through the engine's DNS door: the students group sets only youtube, so it keeps
// the top level's Google, Bing and DuckDuckGo enforcement (the old code replaced
// the top level and turned them off for students), while the YouTube level is the
// group's own.
func TestDNSGroupSafeSearchRefinesTopLevel(t *testing.T) {
	up, _ := fakeUpstream(t, "192.0.2.1")
	e := runEngine(t, fmt.Sprintf(`
resolver:
  upstreams: ["udp://%s"]
groups:
  students: {clients: ["127.0.0.2/32"]}
dns:
  listen: ["127.0.0.1:0"]
  safesearch: {google: true, youtube: moderate, bing: true, duckduckgo: true}
  groups: {students: {safesearch: {youtube: strict}}}
`, up))
	server := e.Addrs()["dns"][0].String()
	// cname asks from client for name's A record and returns the CNAME target of
	// the answer, or "" when there is none.
	cname := func(from, name string) string {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeA)
		c := &dns.Client{Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}}
		r, _, err := c.Exchange(m, server)
		if err != nil {
			t.Fatalf("%s from %s: %v", name, from, err)
		}
		for _, rr := range r.Answer {
			if c, ok := rr.(*dns.CNAME); ok {
				return strings.TrimSuffix(c.Target, ".")
			}
		}
		return ""
	}
	const student, teacher = "127.0.0.2", "127.0.0.1"
	cases := []struct{ from, name, want string }{
		{student, "www.google.com", "forcesafesearch.google.com"},
		{student, "www.bing.com", "strict.bing.com"},
		{student, "duckduckgo.com", "safe.duckduckgo.com"},
		{student, "www.youtube.com", "restrict.youtube.com"},
		{teacher, "www.google.com", "forcesafesearch.google.com"},
		{teacher, "www.youtube.com", "restrictmoderate.youtube.com"},
	}
	for _, c := range cases {
		if got := cname(c.from, c.name); got != c.want {
			t.Errorf("%s from %s: CNAME %q, want %q", c.name, c.from, got, c.want)
		}
	}
}

// TestStartLogsPolicyWarnings: the warnings validate prints are logged when the
// engine starts (a DNS group turning off a top-level SafeSearch).
func TestStartLogsPolicyWarnings(t *testing.T) {
	p := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, p, `groups:
  staff: {clients: ["10.2.0.0/16"]}
dns:
  listen: ["127.0.0.1:0"]
  safesearch: {bing: true}
  groups: {staff: {safesearch: {bing: false}}}
`)
	var logs bytes.Buffer
	e, err := New(Options{PolicyPath: p, Logger: slog.New(slog.NewTextHandler(&logs, nil)), AccessLog: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	want := `level=WARN msg="policy warning" problem="` + p + `:6:39: dns.groups.staff.safesearch.bing: warning: turns off Bing SafeSearch`
	if !strings.Contains(logs.String(), want) {
		t.Fatalf("log lacks %q:\n%s", want, logs.String())
	}
}
