package report

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/accesslog"
)

var formats = []accesslog.Format{accesslog.FormatJSON, accesslog.FormatCombined, accesslog.FormatSquid}

// writeLog writes entries through the proxy's own access-log writer in format f.
func writeLog(t testing.TB, f accesslog.Format, entries []accesslog.Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	l, err := accesslog.NewWriter(accesslog.Config{Format: f, Buffer: len(entries) + 1}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range entries {
		l.Log(&entries[i])
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l.Dropped() != 0 {
		t.Fatalf("%d lines dropped", l.Dropped())
	}
	return buf.Bytes()
}

var start = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

const hostileUser = `<script>alert(3)</script>`

// testEntries is three hours of mixed traffic: signed-in users (one with a space and
// an accent, one hostile), anonymous clients, blocks with and without a category,
// refusals, CONNECT tunnels, DNS queries, hostile user agents and URLs.
func testEntries() []accesslog.Entry {
	users := []string{"alice", "bob", "élève 1", hostileUser, ""}
	hosts := []string{"www.example.org", "games.example", "social.example", "news.example"}
	var out []accesslog.Entry
	for i := range 3000 {
		e := accesslog.Entry{
			Time:     start.Add(time.Duration(i) * 3600 * time.Millisecond), // 3000 × 3.6 s = 3 h
			Door:     "forward",
			Client:   netip.AddrFrom4([4]byte{10, 0, byte(i % 3), byte(i % 7)}),
			User:     users[i%len(users)],
			Method:   "GET",
			Action:   "allow",
			Status:   200,
			BytesIn:  int64(i % 11),
			BytesOut: int64(1000 + i%97),
			Duration: time.Duration(i%13) * time.Millisecond,
			Upstream: "direct",
			Proto:    "HTTP/1.1",
		}
		host := hosts[i%len(hosts)]
		e.URL = "http://" + host + "/page?id=" + strconv.Itoa(i)
		if i%9 == 0 {
			e.UserAgent = `Mozilla/5.0 <script>alert(1)</script> "quoted"`
		} else if i%2 == 0 {
			e.UserAgent = "Mozilla/5.0 (X11; Linux x86_64)"
		}
		switch {
		case host == "games.example" && i%3 != 0:
			e.Action, e.Status, e.Category, e.Rule, e.BytesOut = "block", 403, "games", "no-games", 2345
		case host == "social.example" && i%5 == 0:
			e.Action, e.Status, e.Rule, e.BytesOut = "block", 403, "no-social", 0
		case host == "news.example" && i%7 == 0:
			e.Method, e.URL, e.Action = "CONNECT", "news.example:443", "tunnel"
		case i%50 == 3:
			e.Action, e.Status, e.Rule = "refuse", 403, "allow_clients"
		case i%10 == 1:
			e.Category = "education"
		}
		if i%8 == 5 {
			e.URL = "http://evil.example/<script>alert(2)</script>?q=\"x\""
		}
		out = append(out, e)
		if i%6 == 0 { // a DNS query now and then
			d := accesslog.Entry{Time: e.Time, Door: "dns", Client: e.Client, Method: "A", URL: "tracker.example.",
				Action: "allow", Status: 0, BytesOut: 60, Proto: "udp", Answer: "A", Upstream: "resolver"}
			if i%12 == 0 {
				d.Action, d.Status, d.Rule, d.Category, d.Answer = "block", 3, "no-ads", "ads", "blocked"
			}
			out = append(out, d)
		}
	}
	return out
}

// expect computes what the report must count, section → "name|detail" → totals.
func expect(entries []accesslog.Entry, f accesslog.Format, since time.Time) map[string]map[string]Totals {
	m := map[string]map[string]Totals{}
	add := func(section, key string, e *accesslog.Entry, blocked bool) {
		if m[section] == nil {
			m[section] = map[string]Totals{}
		}
		t := m[section][key]
		t.Requests++
		if blocked {
			t.Blocked++
		}
		t.Bytes += uint64(e.BytesOut)
		m[section][key] = t
	}
	for i := range entries {
		e := &entries[i]
		if e.Time.Before(since) {
			continue
		}
		blocked := e.Action == "block" || e.Action == "refuse"
		host := accesslog.HostOf(e.URL)
		add("total", "|", e, blocked)
		add("hour", e.Time.Truncate(time.Hour).Format(time.RFC3339)+"|", e, blocked)
		add("client", e.Client.String()+"|", e, blocked)
		add("site", host+"|", e, blocked)
		if e.User != "" {
			add("user", e.User+"|", e, blocked)
		}
		if blocked {
			add("blocked_site", host+"|", e, blocked)
			if e.User != "" {
				add("blocked_by_user", e.User+"|"+host, e, blocked)
			}
		}
		if e.Category != "" && f == accesslog.FormatJSON {
			add("category", e.Category+"|", e, blocked)
		}
		if e.UserAgent != "" && f != accesslog.FormatSquid {
			add("user_agent", e.UserAgent+"|", e, blocked)
		}
	}
	return m
}

// readCSV parses the report's CSV into the shape expect returns.
func readCSV(t *testing.T, b []byte) map[string]map[string]Totals {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rows[0], ","); got != "section,name,detail,requests,blocked,bytes,overcount" {
		t.Fatalf("header %q", got)
	}
	m := map[string]map[string]Totals{}
	for _, r := range rows[1:] {
		n := func(i int) uint64 {
			v, err := strconv.ParseUint(r[i], 10, 64)
			if err != nil {
				t.Fatalf("row %q: column %d: %v", r, i, err)
			}
			return v
		}
		if n(6) != 0 {
			t.Errorf("row %q: overcount with few keys", r)
		}
		if m[r[0]] == nil {
			m[r[0]] = map[string]Totals{}
		}
		m[r[0]][r[1]+"|"+r[2]] = Totals{n(3), n(4), n(5)}
	}
	return m
}

func compare(t *testing.T, got, want map[string]map[string]Totals) {
	t.Helper()
	for section, w := range want {
		g := got[section]
		if len(g) != len(w) {
			t.Errorf("%s: %d rows, want %d:\n got %v\nwant %v", section, len(g), len(w), g, w)
			continue
		}
		for k, v := range w {
			if g[k] != v {
				t.Errorf("%s %q: %+v, want %+v", section, k, g[k], v)
			}
		}
	}
	for section := range got {
		if want[section] == nil {
			t.Errorf("unexpected section %s: %v", section, got[section])
		}
	}
}

func build(t *testing.T, opts Options, logs ...[]byte) *Report {
	t.Helper()
	b := New(opts)
	for i, l := range logs {
		if err := b.Read(fmt.Sprintf("log%d", i), bytes.NewReader(l)); err != nil {
			t.Fatal(err)
		}
	}
	return b.Report()
}

// TestCSVMatchesWhatWasLogged: for each access-log format, entries written through
// the proxy's writer come back in the CSV report with exactly their counts, per
// hour, user, client, site, blocked site, blocked site per user, category (json) and
// user agent (json, combined).
func TestCSVMatchesWhatWasLogged(t *testing.T) {
	entries := testEntries()
	for _, f := range formats {
		t.Run(string(f), func(t *testing.T) {
			r := build(t, Options{Top: 1000}, writeLog(t, f, entries))
			if r.Skipped != 0 || r.Entries != uint64(len(entries)) {
				t.Fatalf("entries %d skipped %d (%v), want %d and 0", r.Entries, r.Skipped, r.Problems, len(entries))
			}
			if r.DNS != 500 {
				t.Errorf("DNS queries %d, want 500", r.DNS)
			}
			var out bytes.Buffer
			if err := r.WriteCSV(&out); err != nil {
				t.Fatal(err)
			}
			compare(t, readCSV(t, out.Bytes()), expect(entries, f, time.Time{}))
		})
	}
}

// TestSinceFilters: --since drops earlier entries and counts them apart.
func TestSinceFilters(t *testing.T) {
	entries := testEntries()
	since := start.Add(90 * time.Minute)
	for _, f := range formats {
		t.Run(string(f), func(t *testing.T) {
			r := build(t, Options{Top: 1000, Since: since}, writeLog(t, f, entries))
			want := expect(entries, f, since)
			if r.Total != want["total"]["|"] || r.Entries+r.Before != uint64(len(entries)) || r.First.Before(since) {
				t.Errorf("total %+v (before %d, first %v), want %+v", r.Total, r.Before, r.First, want["total"]["|"])
			}
			var out bytes.Buffer
			r.WriteCSV(&out)
			compare(t, readCSV(t, out.Bytes()), want)
		})
	}
}

// TestGzipAndMalformedLines: a rotated .gz log reads as the plain one; a malformed
// line is skipped and named with its file and line.
func TestGzipAndMalformedLines(t *testing.T) {
	entries := testEntries()
	plain := writeLog(t, accesslog.FormatCombined, entries)
	cut := bytes.IndexByte(plain[len(plain)/2:], '\n') + len(plain)/2 + 1 // a rotation ends on a whole line
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain[:cut])
	zw.Close()
	rest := append([]byte("this is no log line\n"), plain[cut:]...)
	r := build(t, Options{Top: 1000}, gz.Bytes(), rest)
	if r.Skipped != 1 || len(r.Problems) != 1 || !strings.HasPrefix(r.Problems[0], "log1:1: combined: ") {
		t.Errorf("skipped %d problems %q, want log1:1: combined: …", r.Skipped, r.Problems)
	}
	whole := build(t, Options{Top: 1000}, plain)
	if r.Entries != uint64(len(entries)) || r.Total != whole.Total || fmt.Sprint(r.Lists) != fmt.Sprint(whole.Lists) {
		t.Errorf("gzip+plain: %d entries, total %+v; plain: total %+v", r.Entries, r.Total, whole.Total)
	}
}

// TestHTMLEscapesHostileValues: the HTML report renders every section and escapes
// user agents, URLs and user names from the log.
func TestHTMLEscapesHostileValues(t *testing.T) {
	entries := testEntries()
	for _, f := range formats {
		t.Run(string(f), func(t *testing.T) {
			r := build(t, Options{}, writeLog(t, f, entries))
			var out bytes.Buffer
			if err := r.WriteHTML(&out); err != nil {
				t.Fatal(err)
			}
			page := out.String()
			if strings.Contains(strings.ToLower(page), "<script") {
				t.Errorf("unescaped script in the report:\n%s", page)
			}
			for _, want := range []string{"Top users", "Top blocked sites", "Blocked sites per user", "Requests per hour",
				"games.example", "&lt;script&gt;alert(3)&lt;/script&gt;", "2026-11-26 08:00 UTC", `id="requests">3500 (500 DNS queries)`} {
				if !strings.Contains(page, want) {
					t.Errorf("report lacks %q", want)
				}
			}
			if f != accesslog.FormatSquid && !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
				t.Errorf("hostile user agent not shown escaped")
			}
			if f != accesslog.FormatJSON && !strings.Contains(page, "only the json format records them") {
				t.Errorf("no note on missing categories")
			}
		})
	}
}
