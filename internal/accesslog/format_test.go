package accesslog

import (
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func sampleEntry() *Entry {
	return &Entry{
		Time:        time.Date(2026, 11, 26, 9, 15, 30, 250_000_000, time.UTC),
		Door:        "forward",
		Client:      netip.MustParseAddr("10.1.2.3"),
		User:        "alice",
		Method:      "GET",
		URL:         "http://bob:s3cret@example.com:8080/path?q=1",
		Action:      "allow",
		Rule:        "default",
		Category:    "news",
		Status:      200,
		BytesIn:     12,
		BytesOut:    3456,
		Duration:    1500 * time.Millisecond,
		Upstream:    "direct",
		Cache:       "miss",
		Proto:       "HTTP/1.1",
		Referer:     "https://u:p@ref.example/page",
		UserAgent:   "Mozilla/5.0 (X11)",
		ContentType: "text/html",
	}
}

func TestSquidLineHasSquidsTenFields(t *testing.T) {
	e := sampleEntry()
	line := string(appendSquid(nil, e, false))
	if !strings.HasSuffix(line, "\n") {
		t.Fatalf("line not terminated: %q", line)
	}
	f := strings.Fields(line)
	if len(f) != 10 {
		t.Fatalf("got %d fields, want 10: %q", len(f), line)
	}
	// %ts.%03tu: the time the transaction ended.
	end := e.Time.Add(e.Duration)
	if want := strconv.FormatInt(end.Unix(), 10) + ".750"; f[0] != want {
		t.Errorf("time = %q, want %q", f[0], want)
	}
	want := []string{"", "1500", "10.1.2.3", "TCP_MISS/200", "3456", "GET",
		"http://example.com:8080/path?q=1", "alice", "HIER_DIRECT/example.com", "text/html"}
	for i := 1; i < 10; i++ {
		if f[i] != want[i] {
			t.Errorf("field %d = %q, want %q (line %q)", i+1, f[i], want[i], line)
		}
	}
	// %6tr is right-aligned in six columns, as Squid prints it.
	if !strings.Contains(line, ".750   1500 10.1.2.3 ") {
		t.Errorf("elapsed not padded to 6: %q", line)
	}
}

func TestSquidResultCodes(t *testing.T) {
	cases := []struct {
		name   string
		modify func(e *Entry)
		code   string
		hier   string
	}{
		{"miss", func(e *Entry) {}, "TCP_MISS/200", "HIER_DIRECT/example.com"},
		{"hit", func(e *Entry) { e.Cache = "hit" }, "TCP_HIT/200", "HIER_NONE/-"},
		{"stale", func(e *Entry) { e.Cache = "stale" }, "TCP_REFRESH_FAIL_OLD/200", "HIER_NONE/-"},
		{"revalidated", func(e *Entry) { e.Cache = "revalidated"; e.Status = 304 }, "TCP_REFRESH_UNMODIFIED/304", "HIER_DIRECT/example.com"},
		{"denied", func(e *Entry) { e.Action = "block"; e.Status = 403; e.Upstream = "" }, "TCP_DENIED/403", "HIER_NONE/-"},
		{"client refused", func(e *Entry) { e.Action = "refuse"; e.Status = 403 }, "TCP_DENIED/403", "HIER_NONE/-"},
		{"auth required", func(e *Entry) { e.Action = "block"; e.Status = 407 }, "TCP_DENIED/407", "HIER_NONE/-"},
		{"tunnel", func(e *Entry) { e.Method = "CONNECT"; e.URL = "example.com:443"; e.Action = "tunnel" }, "TCP_TUNNEL/200", "HIER_DIRECT/example.com"},
		{"bumped", func(e *Entry) { e.Method = "CONNECT"; e.URL = "example.com:443"; e.Action = "inspect" }, "NONE_NONE/200", "HIER_DIRECT/example.com"},
		{"aborted", func(e *Entry) { e.Status = 0; e.Error = "upstream timeout" }, "TCP_MISS_ABORTED/000", "HIER_DIRECT/example.com"},
		{"parent", func(e *Entry) { e.Upstream = "http://10.0.0.7:3128"; e.Pool = "parents" }, "TCP_MISS/200", "ANY_OLD_PARENT/10.0.0.7"},
		{"bad gateway", func(e *Entry) { e.Status = 502; e.Error = "dial" }, "TCP_MISS/502", "HIER_DIRECT/example.com"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := sampleEntry()
			c.modify(e)
			f := strings.Fields(string(appendSquid(nil, e, false)))
			if len(f) != 10 {
				t.Fatalf("%d fields: %q", len(f), f)
			}
			if f[3] != c.code || f[8] != c.hier {
				t.Errorf("got %s … %s, want %s … %s", f[3], f[8], c.code, c.hier)
			}
		})
	}
}

func TestSquidFieldsNeverSplit(t *testing.T) {
	e := sampleEntry()
	e.User = "jo smith\n"
	e.URL = "http://example.com/a b\tc%zz%41"
	e.ContentType = ""
	e.Client = netip.Addr{}
	line := string(appendSquid(nil, e, false))
	f := strings.Fields(line)
	if len(f) != 10 {
		t.Fatalf("%d fields: %q", len(f), line)
	}
	if f[6] != "http://example.com/a%20b%09c%25zz%41" || f[7] != "jo%20smith%0A" || f[2] != "-" || f[9] != "-" {
		t.Errorf("fields not escaped: %q", f)
	}
}

var combinedRE = regexp.MustCompile(`^(\S+) (\S+) (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{1,3}) (\S+) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"\n$`)

func TestCombinedParsesBack(t *testing.T) {
	e := sampleEntry()
	line := string(appendCombined(nil, e, false))
	m := combinedRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("not combined format: %q", line)
	}
	ts, err := time.Parse("02/Jan/2006:15:04:05 -0700", m[4])
	if err != nil || !ts.Equal(e.Time.Truncate(time.Second)) {
		t.Errorf("time %q: %v", m[4], err)
	}
	got := []string{m[1], m[2], m[3], m[5], m[6], m[7], m[8], m[9]}
	want := []string{"10.1.2.3", "-", "alice", "GET http://example.com:8080/path?q=1 HTTP/1.1", "200", "3456",
		"https://ref.example/page", "Mozilla/5.0 (X11)"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("field %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestCombinedEscapesControlCharacters(t *testing.T) {
	e := sampleEntry()
	e.UserAgent = "evil\"agent\n127.0.0.1 - - [fake] \x1b[31m\\"
	e.User = "a b"
	e.BytesOut = 0
	e.Proto = ""
	line := string(appendCombined(nil, e, false))
	if strings.Count(line, "\n") != 1 || strings.ContainsAny(line[:len(line)-1], "\x1b\r\n") {
		t.Fatalf("control characters leaked: %q", line)
	}
	m := combinedRE.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("not combined format: %q", line)
	}
	if m[3] != `a\x20b` || m[7] != "-" || m[9] != `evil\"agent\x0a127.0.0.1 - - [fake] \x1b[31m\\` ||
		!strings.HasSuffix(m[5], " HTTP/1.1") {
		t.Errorf("escaping: user %q bytes %q agent %q request %q", m[3], m[7], m[9], m[5])
	}
}

func TestJSONParsesBack(t *testing.T) {
	e := sampleEntry()
	e.Error = "bad \"thing\"\n\x00\x7f\u0085\u2028" + string([]byte{0xff})
	line := appendJSON(nil, e, false)
	if n := strings.Count(string(line), "\n"); n != 1 || line[len(line)-1] != '\n' {
		t.Fatalf("want exactly one trailing newline, got %d: %q", n, line)
	}
	for _, c := range string(line[:len(line)-1]) {
		if c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x2028 {
			t.Fatalf("raw control character %U in %q", c, line)
		}
	}
	var got map[string]any
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("%v: %s", err, line)
	}
	want := map[string]any{
		"time": "2026-11-26T09:15:30.250Z", "door": "forward", "client": "10.1.2.3", "user": "alice",
		"method": "GET", "url": "http://example.com:8080/path?q=1", "action": "allow", "rule": "default",
		"category": "news", "status": 200.0, "bytes_in": 12.0, "bytes_out": 3456.0, "duration_ms": 1500.0,
		"upstream": "direct", "cache": "miss", "proto": "HTTP/1.1", "referer": "https://ref.example/page",
		"user_agent": "Mozilla/5.0 (X11)", "content_type": "text/html",
		"error": "bad \"thing\"\n\x00\x7f\u0085\u2028\ufffd",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got fields %v, want %d fields", got, len(want))
	}
}

func TestJSONOmitsEmptyOptionalFields(t *testing.T) {
	e := &Entry{Time: time.Unix(0, 0), Door: "dns", Method: "A", URL: "example.org.", Action: "block", Answer: "blocked", Status: 5}
	var got map[string]any
	if err := json.Unmarshal(appendJSON(nil, e, false), &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"user", "rule", "upstream", "pool", "cache", "error", "referer"} {
		if _, ok := got[k]; ok {
			t.Errorf("empty %q written", k)
		}
	}
	if got["client"] != "" || got["answer"] != "blocked" || got["status"] != 5.0 {
		t.Errorf("got %v", got)
	}
}

func TestScrubURL(t *testing.T) {
	cases := []struct {
		in          string
		strip, want string
	}{
		{"http://user:pw@host/p?q#f", "http://host/p", "http://host/p?q#f"},
		{"https://host/p@x?a=b", "https://host/p@x", "https://host/p@x?a=b"},
		{"user:pw@host:443", "host:443", "host:443"},
		{"example.com:443", "example.com:443", "example.com:443"},
		{"http://a@b@host?x", "http://host", "http://host?x"},
		{"ftp://h", "ftp://h", "ftp://h"},
	}
	for _, c := range cases {
		h, tl := scrubURL(c.in, false)
		if h+tl != c.want {
			t.Errorf("scrubURL(%q) = %q, want %q", c.in, h+tl, c.want)
		}
		h, tl = scrubURL(c.in, true)
		if h+tl != c.strip {
			t.Errorf("scrubURL(%q, strip) = %q, want %q", c.in, h+tl, c.strip)
		}
	}
}

func TestHostOf(t *testing.T) {
	for in, want := range map[string]string{
		"http://u:p@Example.com:80/x": "Example.com",
		"example.com:443":             "example.com",
		"example.com.":                "example.com",
		"[2001:db8::1]:443":           "2001:db8::1",
		"http://[::1]/":               "::1",
		"2001:db8::1":                 "2001:db8::1",
	} {
		if got := hostOf(in); got != want {
			t.Errorf("hostOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestJSONTimeAsAppendFormat: the JSON line's time is what AppendFormat
// writes for its layout in UTC, for times across the years (zones,
// milliseconds, the zero time, years beyond four digits).
func TestJSONTimeAsAppendFormat(t *testing.T) {
	east := time.FixedZone("east", 5*3600+30*60)
	times := []time.Time{
		{}, time.Unix(0, 0), time.Unix(0, 999_999_999), time.Date(2026, 12, 7, 23, 59, 59, 999_500_000, east),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(99, 1, 2, 3, 4, 5, 6_000_000, time.UTC),
		time.Now(), time.Now().In(east),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		times = append(times, time.Unix(r.Int64N(300_000_000_000)-62_000_000_000, r.Int64N(1e9)))
	}
	for _, tm := range times {
		if got, want := string(appendJSONTime(nil, tm)), tm.UTC().Format(jsonTimeLayout); got != want {
			t.Errorf("%v: %q, want %q", tm, got, want)
		}
	}
}
