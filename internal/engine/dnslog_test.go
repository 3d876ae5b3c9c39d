package engine

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/portcullis/portcullis/internal/resolver/resolvertest"
)

// TestDNSQueriesInEveryLogFormat runs the engine with a DNS listener on loopback and
// each access-log format, asks for an allowed name (over UDP, then again from the
// cache) and a blocked one (over TCP) with a miekg/dns client, and reads the lines
// the log file gets: every format records the queries, each with its client, type,
// name, rcode, verdict and rule, transport, reply size and duration.
func TestDNSQueriesInEveryLogFormat(t *testing.T) {
	up := resolvertest.New(3600, 60).Add(t, "www.school.test. 300 IN A 192.0.2.1").Start(t)
	const (
		num  = `(\d+)`
		ms   = `\d+\.\d{3}`
		when = `\d+\.\d{3} +\d+` // squid: end time, elapsed ms
	)
	formats := []struct {
		format string
		lines  [3]string // allowed (udp), allowed again (cache), blocked (tcp); num is the reply size
	}{
		{"squid", [3]string{
			when + ` 127\.0\.0\.1 TCP_MISS/200 ` + num + ` A dns://www\.school\.test/\?rcode=NOERROR&proto=udp&rule=default - HIER_DIRECT/- application/dns-message`,
			when + ` 127\.0\.0\.1 TCP_HIT/200 ` + num + ` A dns://www\.school\.test/\?rcode=NOERROR&proto=udp&rule=default - HIER_NONE/- application/dns-message`,
			when + ` 127\.0\.0\.1 TCP_DENIED/403 ` + num + ` A dns://tracker\.ads\.test/\?rcode=NXDOMAIN&proto=tcp&rule=no-ads - HIER_NONE/- application/dns-message`,
		}},
		{"combined", [3]string{
			`127\.0\.0\.1 - - \[[^\]]+\] "A dns://www\.school\.test/\?rcode=NOERROR&proto=udp&rule=default DNS" 200 ` + num + ` "-" "-" ` + ms + `ms`,
			`127\.0\.0\.1 - - \[[^\]]+\] "A dns://www\.school\.test/\?rcode=NOERROR&proto=udp&rule=default DNS" 200 ` + num + ` "-" "-" ` + ms + `ms`,
			`127\.0\.0\.1 - - \[[^\]]+\] "A dns://tracker\.ads\.test/\?rcode=NXDOMAIN&proto=tcp&rule=no-ads DNS" 403 ` + num + ` "-" "-" ` + ms + `ms`,
		}},
		{"json", [3]string{
			`\{"time":"[^"]+","door":"dns","client":"127\.0\.0\.1","method":"A","url":"www\.school\.test","action":"allow","rule":"default","status":0,"rcode":"NOERROR","bytes_in":0,"bytes_out":` + num + `,"duration_ms":` + ms + `,"upstream":"resolver","proto":"udp"\}`,
			`\{"time":"[^"]+","door":"dns","client":"127\.0\.0\.1","method":"A","url":"www\.school\.test","action":"allow","rule":"default","status":0,"rcode":"NOERROR","bytes_in":0,"bytes_out":` + num + `,"duration_ms":` + ms + `,"upstream":"resolver","cache":"hit","proto":"udp"\}`,
			`\{"time":"[^"]+","door":"dns","client":"127\.0\.0\.1","method":"A","url":"tracker\.ads\.test","action":"block","rule":"no-ads","category":"ads","status":3,"rcode":"NXDOMAIN","bytes_in":0,"bytes_out":` + num + `,"duration_ms":` + ms + `,"upstream":"block","proto":"tcp"\}`,
		}},
	}
	for _, f := range formats {
		t.Run(f.format, func(t *testing.T) {
			dir := t.TempDir()
			logPath := filepath.Join(dir, "access.log")
			writeFile(t, filepath.Join(dir, "ads.txt"), "ads.test\n")
			e := runEngine(t, fmt.Sprintf(`
resolver: {upstreams: ["udp://%s"]}
lists: {ads: {format: domains, path: %q}}
rules:
  - {name: no-ads, list: [ads], action: block, category: ads}
dns: {listen: ["127.0.0.1:0"]}
admin: {listen: "off", log: {format: %s, path: %q}}
`, up.Addr, filepath.Join(dir, "ads.txt"), f.format, logPath))
			server := e.Addrs()["dns"][0].String()
			queries := [3]struct {
				network, name string
				rcode         int
			}{{"udp", "www.school.test", dns.RcodeSuccess}, {"udp", "www.school.test", dns.RcodeSuccess}, {"tcp", "tracker.ads.test", dns.RcodeNameError}}
			var sizes [3]int
			var lines []string
			for i, q := range queries {
				sizes[i] = dnsQuery(t, server, q.network, q.name, q.rcode)
				// The server logs after it has answered: wait for the line before the
				// next query, so that the lines come in the queries' order.
				lines = readLog(t, logPath, i+1)
			}
			for i, pattern := range f.lines {
				m := regexp.MustCompile(`^` + pattern + `$`).FindStringSubmatch(lines[i])
				if m == nil {
					t.Errorf("line %d:\n%s\ndoes not match\n%s", i+1, lines[i], pattern)
					continue
				}
				if n, _ := strconv.Atoi(m[1]); n != sizes[i] {
					t.Errorf("line %d: reply size %d, the client received %d bytes", i+1, n, sizes[i])
				}
			}
		})
	}
}

// dnsQuery asks server for name's A records over network, checks the rcode and
// returns the size of the reply as received.
func dnsQuery(t *testing.T, server, network, name string, rcode int) int {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	conn, err := c.Dial(server)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	if err := conn.WriteMsg(q); err != nil {
		t.Fatal(err)
	}
	raw, err := conn.ReadMsgHeader(nil)
	if err != nil {
		t.Fatalf("%s %s: %v", network, name, err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(raw); err != nil || r.Id != q.Id || r.Rcode != rcode {
		t.Fatalf("%s %s: reply %v (%v), want rcode %s", network, name, r, err, dns.RcodeToString[rcode])
	}
	return len(raw)
}
