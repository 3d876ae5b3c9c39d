package dnsserver

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/filter"
)

// dig runs dig against the server and returns its output.
func dig(t *testing.T, addr string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("dig")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("dig is required in CI (dnsutils)")
		}
		t.Skip("dig not installed (apt-get install dnsutils)")
	}
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	full := append([]string{"@" + host, "-p", port, "+time=2", "+tries=1"}, args...)
	out, err := exec.CommandContext(ctx, path, full...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %v: %v\n%s", full, err, out)
	}
	return string(out)
}

func TestDig(t *testing.T) {
	up := testUpstream(t)
	cfg := gslbConfig()
	cfg.Groups = map[string]GroupConfig{"students": {SafeSearch: GroupSafeSearch{YouTube: filter.YouTubeModerate}}}
	_, addr := startServer(t, Options{
		Config: cfg, Policy: testPolicy(), Groups: testGroups, Resolver: newResolver(t, up), Health: &fakeHealth{},
	})
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"+short", "a.test", "A"}, []string{"192.0.2.1"}},
		{[]string{"+short", "+tcp", "a.test", "A"}, []string{"192.0.2.1"}},
		{[]string{"nx.test", "A"}, []string{"status: NXDOMAIN", "SOA"}},
		{[]string{"-b", "127.0.0.1", "games.test", "A"}, []string{"status: NOERROR", "192.0.2.7"}},
		{[]string{"-b", "127.0.0.2", "games.test", "A"}, []string{"status: NXDOMAIN", "EDE: 15 (Blocked)"}},
		{[]string{"-b", "127.0.0.2", "+short", "www.youtube.com", "A"}, []string{"restrictmoderate.youtube.com."}},
		{[]string{"+short", "+subnet=10.1.0.0/24", "www.example.test", "A"}, []string{"198.51.100.1"}},
		{[]string{"+subnet=10.2.0.0/24", "www.example.test", "A"}, []string{"203.0.113.1", "CLIENT-SUBNET: 10.2.0.0/24/16", "flags: qr aa"}},
		{[]string{"nope.example.test", "A"}, []string{"status: NXDOMAIN", "example.test.\t\t30\tIN\tSOA"}},
		{[]string{"+norec", "example.test", "NS"}, []string{"ns1.example.test.", "ns2.example.test."}},
	}
	for _, c := range cases {
		out := dig(t, addr, c.args...)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("dig %v: output lacks %q:\n%s", c.args, w, out)
			}
		}
	}
}
