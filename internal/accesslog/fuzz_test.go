package accesslog

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// FuzzFormats checks the writers' invariants for any field contents: one line per
// entry, valid JSON, ten squid fields, a parseable combined line, no raw control
// characters, and no userinfo from the URL.
func FuzzFormats(f *testing.F) {
	f.Add("GET", "http://u:secretpw@example.com/a b?x=1", "alice", "Mozilla\n\"x\"", "text/html", "")
	f.Add("CONNECT", "example.com:443", "", "", "", "eof\r\n")
	f.Add("", "", "\x00\x1b[2J", "\u2028\xff", "%zz", "\\")
	f.Fuzz(func(t *testing.T, method, url, user, agent, ctype, errText string) {
		e := &Entry{Time: time.Unix(1_800_000_000, 0), Door: "forward", Client: netip.MustParseAddr("192.0.2.1"),
			Method: method, URL: url, User: user, UserAgent: agent, ContentType: ctype, Error: errText,
			Action: "allow", Status: 200, Upstream: "direct"}
		secret := ""
		if i := strings.Index(url, "://"); i >= 0 {
			if at := strings.LastIndexByte(url, '@'); at > i && !strings.ContainsAny(url[i+3:at], "/?#") {
				secret = url[i+3 : at]
			}
		}
		for _, format := range []Format{FormatJSON, FormatCombined, FormatSquid} {
			line := string(appendLine(nil, format, e, false))
			body := checkLine(t, format, line)
			if len(secret) > 3 && strings.Contains(body, "@") && strings.Contains(body, secret+"@") {
				t.Fatalf("%s: userinfo %q leaked: %q", format, secret, line)
			}
			switch format {
			case FormatSquid:
				if n := len(strings.Fields(line)); n != 10 {
					t.Fatalf("squid: %d fields: %q", n, line)
				}
			case FormatCombined:
				if !combinedRE.MatchString(line) {
					t.Fatalf("combined: %q", line)
				}
			}
		}
	})
}

// checkLine fails unless line is one line without raw control characters (and, in
// the json format, one JSON object); it returns the line without its newline.
func checkLine(t *testing.T, format Format, line string) string {
	t.Helper()
	body, ok := strings.CutSuffix(line, "\n")
	if !ok || strings.ContainsAny(body, "\n\r\x00\x1b") {
		t.Fatalf("%s: not one clean line: %q", format, line)
	}
	if format == FormatJSON {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("json: %v: %q", err, line)
		}
	}
	return body
}
