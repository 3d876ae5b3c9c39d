package accesslog

import (
	"encoding/json"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sampleDNSEntry is a blocked query as dnsserver logs it.
func sampleDNSEntry() *Entry {
	return &Entry{
		Time:     time.Date(2026, 11, 26, 9, 15, 30, 250_000_000, time.UTC),
		Door:     "dns",
		Client:   netip.MustParseAddr("10.1.2.3"),
		Method:   "A",
		URL:      "tracker.ads.example",
		Action:   "block",
		Rule:     "no-ads",
		Category: "ads",
		Status:   3, // NXDOMAIN
		BytesOut: 45,
		Duration: 1234 * time.Microsecond,
		Upstream: "block",
		Proto:    "udp",
	}
}

// The exact lines are the formats' specification (docs/operations.md, "Access logs").
func TestDNSLines(t *testing.T) {
	e := sampleDNSEntry()
	want := map[Format]string{
		FormatSquid: "1795684530.251      1 10.1.2.3 TCP_DENIED/403 45 A " +
			"dns://tracker.ads.example/?rcode=NXDOMAIN&proto=udp&rule=no-ads - HIER_NONE/- application/dns-message\n",
		FormatCombined: `10.1.2.3 - - [26/Nov/2026:09:15:30 +0000] "A dns://tracker.ads.example/?rcode=NXDOMAIN&proto=udp&rule=no-ads DNS" 403 45 "-" "-" 1.234ms` + "\n",
		FormatJSON: `{"time":"2026-11-26T09:15:30.250Z","door":"dns","client":"10.1.2.3","method":"A",` +
			`"url":"tracker.ads.example","action":"block","rule":"no-ads","category":"ads","status":3,"rcode":"NXDOMAIN",` +
			`"bytes_in":0,"bytes_out":45,"duration_ms":1.234,"upstream":"block","proto":"udp"}` + "\n",
	}
	for f, w := range want {
		// strip_query applies to users' URLs, not to the facts a DNS line carries.
		for _, strip := range []bool{false, true} {
			if got := string(appendLine(nil, f, e, strip)); got != w {
				t.Errorf("%s (strip_query %v):\n got %q\nwant %q", f, strip, got, w)
			}
		}
	}
}

// TestDNSMapping covers each way a query ends: the squid result, status and hierarchy,
// the combined status, and the URL both formats share.
func TestDNSMapping(t *testing.T) {
	allowed := func(e *Entry) { e.Action, e.Rule, e.Category, e.Status, e.Upstream = "allow", "", "", 0, "resolver" }
	cases := []struct {
		name   string
		modify func(e *Entry)
		code   string // squid %Ss/%>Hs
		hier   string
		url    string
	}{
		{"blocked with NXDOMAIN", func(e *Entry) {}, "TCP_DENIED/403", "HIER_NONE/-",
			"dns://tracker.ads.example/?rcode=NXDOMAIN&proto=udp&rule=no-ads"},
		{"blocked with the null address", func(e *Entry) { e.Status = 0 }, "TCP_DENIED/403", "HIER_NONE/-",
			"dns://tracker.ads.example/?rcode=NOERROR&proto=udp&rule=no-ads"},
		{"client not allowed", func(e *Entry) { e.Rule, e.Status, e.Upstream = "allow_clients", 5, "" }, "TCP_DENIED/403", "HIER_NONE/-",
			"dns://tracker.ads.example/?rcode=REFUSED&proto=udp&rule=allow_clients"},
		{"forwarded", allowed, "TCP_MISS/200", "HIER_DIRECT/-",
			"dns://tracker.ads.example/?rcode=NOERROR&proto=udp"},
		{"from the cache over tcp", func(e *Entry) { allowed(e); e.Cache, e.Proto = "hit", "tcp" }, "TCP_HIT/200", "HIER_NONE/-",
			"dns://tracker.ads.example/?rcode=NOERROR&proto=tcp"},
		{"no such name", func(e *Entry) { allowed(e); e.Status = 3 }, "TCP_MISS/404", "HIER_DIRECT/-",
			"dns://tracker.ads.example/?rcode=NXDOMAIN&proto=udp"},
		{"cached no such name", func(e *Entry) { allowed(e); e.Status, e.Cache = 3, "hit" }, "TCP_HIT/404", "HIER_NONE/-",
			"dns://tracker.ads.example/?rcode=NXDOMAIN&proto=udp"},
		{"upstream failed", func(e *Entry) { allowed(e); e.Status, e.Error = 2, "timeout" }, "TCP_MISS/502", "HIER_DIRECT/-",
			"dns://tracker.ads.example/?rcode=SERVFAIL&proto=udp"},
		{"no resolver", func(e *Entry) { allowed(e); e.Status = 5 }, "TCP_DENIED/403", "HIER_NONE/-",
			"dns://tracker.ads.example/?rcode=REFUSED&proto=udp"},
		{"gslb with an allow rule", func(e *Entry) { allowed(e); e.Upstream, e.Rule = "gslb", "internal" }, "TCP_MISS/200", "HIER_NONE/-",
			"dns://tracker.ads.example/?rcode=NOERROR&proto=udp&rule=internal"},
		{"safesearch", func(e *Entry) { allowed(e); e.Upstream = "safesearch" }, "TCP_MISS/200", "HIER_NONE/-",
			"dns://tracker.ads.example/?rcode=NOERROR&proto=udp"},
		{"not a query", func(e *Entry) { allowed(e); e.Method, e.URL, e.Upstream, e.Status = "", "", "", 4 }, "TCP_MISS/501", "HIER_NONE/-",
			"dns://./?rcode=NOTIMP&proto=udp"},
		{"no question", func(e *Entry) { allowed(e); e.Method, e.URL, e.Upstream, e.Status = "", "", "", 1 }, "TCP_MISS/400", "HIER_NONE/-",
			"dns://./?rcode=FORMERR&proto=udp"},
		{"bad EDNS version", func(e *Entry) { allowed(e); e.Upstream, e.Status = "", 16 }, "TCP_MISS/400", "HIER_NONE/-",
			"dns://tracker.ads.example/?rcode=BADVERS&proto=udp"},
		{"unnamed rcode", func(e *Entry) { allowed(e); e.Status = 12 }, "TCP_MISS/500", "HIER_DIRECT/-",
			"dns://tracker.ads.example/?rcode=RCODE12&proto=udp"},
		{"root, unknown transport", func(e *Entry) { allowed(e); e.Method, e.URL, e.Proto = "NS", ".", "" }, "TCP_MISS/200", "HIER_DIRECT/-",
			"dns://./?rcode=NOERROR"},
		{"odd bytes", func(e *Entry) { allowed(e); e.URL, e.Rule = `a\032b/c?d&e%41.example.`, "r 1&x" }, "TCP_MISS/200", "HIER_DIRECT/-",
			"dns://a%5C032b%2Fc%3Fd%26e%2541.example/?rcode=NOERROR&proto=udp&rule=r%201%26x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := sampleDNSEntry()
			c.modify(e)
			line := string(appendLine(nil, FormatSquid, e, false))
			f := strings.Fields(line)
			if len(f) != 10 {
				t.Fatalf("%d squid fields: %q", len(f), line)
			}
			if f[3] != c.code || f[6] != c.url || f[8] != c.hier {
				t.Errorf("squid %s … %s … %s, want %s … %s … %s", f[3], f[6], f[8], c.code, c.url, c.hier)
			}
			status := c.code[strings.IndexByte(c.code, '/')+1:]
			m := awstatsCombined.FindStringSubmatch(string(appendLine(nil, FormatCombined, e, false)))
			if m == nil || m[5] != c.url || m[6] != status {
				t.Errorf("combined %q, want url %s status %s", m, c.url, status)
			}
		})
	}
}

// What the analysers of each format check, from their sources: the line must pass.
var (
	// Squid's scripts/Squid/ParseLog.pm.
	squidParseLog = regexp.MustCompile(`^(.*?) (\d+?) (.*?) (.*?)/(\d+?) (\d+?) (.*?) (.*?) (.*?) (.*?)/(.*?) (.*)$`)
	// lightsquid's lightparser.pl, the site of a URL ($2.$3.$5).
	lightsquidSite = regexp.MustCompile(`([a-z]+://)??([a-z0-9\-]+\.){1}(([a-z0-9\-]+\.){0,})([a-z0-9\-]+){1}(:[0-9]+)?/(.*)`)
	// AWStats' LogFormat=1 (combined), not anchored at the end.
	awstatsCombined = regexp.MustCompile(`([^ ]+) [^ ]+ ([^/\[]+) \[([^ ]+) [^ ]+\] "([^ ]+) ([^ ]+)(?: [^"]+|)" ([\d|-]+) ([\d|-]+) "(.*?)" "([^"]*)"`)
	// AWStats keeps these methods for web logs and drops other lines as not qualified.
	awstatsWebMethods = map[string]bool{"GET": true, "POST": true, "HEAD": true, "PROPFIND": true, "CHECKOUT": true,
		"LOCK": true, "PROPPATCH": true, "OPTIONS": true, "MKACTIVITY": true, "PUT": true, "MERGE": true,
		"DELETE": true, "REPORT": true, "MKCOL": true, "COPY": true, "RPC_IN_DATA": true, "RPC_OUT_DATA": true}
	calamarisTime = regexp.MustCompile(`^\d+\.\d{3}$`)
)

func TestDNSLinesPassTheAnalysers(t *testing.T) {
	types := []string{"A", "AAAA", "HTTPS", "MX", "TXT", "PTR", "NS", "SOA", "SRV", "CAA", "ANY", "NSAP-PTR", "TYPE65534"}
	for _, qtype := range types {
		for _, blocked := range []bool{false, true} {
			e := sampleDNSEntry()
			e.Method = qtype
			if !blocked {
				e.Action, e.Rule, e.Status, e.Upstream = "allow", "", 0, "resolver"
			}
			squid := string(appendLine(nil, FormatSquid, e, false))
			f := strings.Fields(squid)
			// Calamaris: exactly ten fields, a seconds.milliseconds time, elapsed >= 0.
			if len(f) != 10 || !calamarisTime.MatchString(f[0]) || f[1] < "0" {
				t.Errorf("calamaris: %q", squid)
			}
			m := squidParseLog.FindStringSubmatch(strings.TrimSuffix(squid, "\n"))
			if m == nil || m[7] != qtype || !strings.HasPrefix(m[8], "dns://") || m[12] != dnsMediaType {
				t.Errorf("ParseLog.pm: %q", m)
			}
			// netdata's squidlog: a TCP_ result code, an HTTP status, a HIER_ hierarchy code.
			code, status, _ := strings.Cut(f[3], "/")
			if n, err := strconv.Atoi(status); err != nil || n < 100 || n > 599 || !strings.HasPrefix(code, "TCP_") || !strings.HasPrefix(f[8], "HIER_") {
				t.Errorf("result %q hierarchy %q", f[3], f[8])
			}
			// SARG's denied report: "DENIED/403"; lightsquid skips lines with DENIED.
			if strings.Contains(f[3], "DENIED/403") != blocked {
				t.Errorf("blocked %v: %q", blocked, f[3])
			}
			if s := lightsquidSite.FindStringSubmatch(f[6]); s == nil || s[2]+s[3]+s[5] != "tracker.ads.example" {
				t.Errorf("lightsquid site of %q: %q", f[6], s)
			}

			combined := string(appendLine(nil, FormatCombined, e, false))
			c := awstatsCombined.FindStringSubmatch(combined)
			if c == nil || c[4] != qtype || awstatsWebMethods[c[4]] {
				t.Errorf("awstats: %q", combined)
			}
			// GoAccess: a status in 100-599 (its strict default); what follows the user
			// agent is ignored.
			if n, err := strconv.Atoi(c[6]); err != nil || n < 100 || n > 599 {
				t.Errorf("goaccess status %q", c[6])
			}
			if !combinedDNSRE.MatchString(combined) {
				t.Errorf("combined: %q", combined)
			}
		}
	}
}

// combinedDNSRE is a combined DNS line, whole: the combined fields and the duration.
var combinedDNSRE = regexp.MustCompile(`^(\S+) - (\S+) \[([^\]]+)\] "(\S+) (dns://\S+) DNS" (\d{3}) (\d+|-) "-" "-" (\d+\.\d{3})ms\n$`)

func TestDNSJSONFields(t *testing.T) {
	e := sampleDNSEntry()
	e.Action, e.Status, e.Cache, e.Proto = "allow", 2, "hit", "tcp"
	var got map[string]any
	if err := json.Unmarshal(appendJSON(nil, e, false), &got); err != nil {
		t.Fatal(err)
	}
	if got["rcode"] != "SERVFAIL" || got["status"] != 2.0 || got["proto"] != "tcp" || got["bytes_out"] != 45.0 || got["cache"] != "hit" {
		t.Errorf("got %v", got)
	}
	// HTTP entries have no rcode.
	got = nil
	if err := json.Unmarshal(appendJSON(nil, sampleEntry(), false), &got); err != nil {
		t.Fatal(err)
	}
	if _, ok := got["rcode"]; ok {
		t.Errorf("HTTP entry with an rcode: %v", got)
	}
}

// FuzzDNSFormats checks the DNS lines' invariants for any name, type, rule and
// transport: one clean line, ten squid fields whose URL is one dns:// token, a combined
// line with its duration, valid JSON.
func FuzzDNSFormats(f *testing.F) {
	f.Add("tracker.ads.example", "A", "no-ads", "udp", 3)
	f.Add("", "", "", "", 0)
	f.Add("a b\n\"c\\d%zz.", "TYPE\x00", "r\u2028", "t c p", -1)
	f.Fuzz(func(t *testing.T, name, qtype, rule, proto string, rcode int) {
		e := &Entry{Time: time.Unix(1_800_000_000, 0), Door: "dns", Client: netip.MustParseAddr("192.0.2.1"),
			Method: qtype, URL: name, Rule: rule, Proto: proto, Status: rcode, Action: "allow", Upstream: "resolver"}
		for _, format := range []Format{FormatJSON, FormatCombined, FormatSquid} {
			line := string(appendLine(nil, format, e, false))
			checkLine(t, format, line)
			switch format {
			case FormatSquid:
				f := strings.Fields(line)
				if len(f) != 10 || !strings.HasPrefix(f[6], "dns://") || strings.Count(f[6], "?") != 1 {
					t.Fatalf("squid: %q", line)
				}
			case FormatCombined:
				if !combinedDNSRE.MatchString(line) || awstatsCombined.FindString(line) == "" {
					t.Fatalf("combined: %q", line)
				}
			}
		}
	})
}
