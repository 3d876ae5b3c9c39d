package main

import (
	"bytes"
	"compress/gzip"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/accesslog"
)

// writeAccessLog writes a small squid log through the proxy's writer: alice blocked
// twice on games.example, bob allowed once, at 08:00 and 09:00 UTC on 2026-11-26.
func writeAccessLog(t *testing.T, path string, format accesslog.Format) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := accesslog.NewWriter(accesslog.Config{Format: format}, f)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 8, 30, 0, 0, time.UTC)
	for i, e := range []accesslog.Entry{
		{Time: at, User: "alice", URL: "http://games.example/", Action: "block", Status: 403, BytesOut: 100},
		{Time: at.Add(time.Hour), User: "alice", URL: "http://games.example/x", Action: "block", Status: 403, BytesOut: 100},
		{Time: at.Add(time.Hour), User: "bob", URL: "http://www.example.org/", Action: "allow", Status: 200, BytesOut: 5000},
	} {
		e.Door, e.Method, e.Client = "forward", "GET", netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})
		l.Log(&e)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestReportCommand: `portcullis report` reads a squid log and a gzip-compressed
// json one, writes CSV and HTML, filters with --since, draws no progress bar when
// standard error is no terminal, and refuses bad flags and missing files clearly.
func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	squid := filepath.Join(dir, "access.log")
	writeAccessLog(t, squid, accesslog.FormatSquid)
	plain := filepath.Join(dir, "json.log")
	writeAccessLog(t, plain, accesslog.FormatJSON)
	data, _ := os.ReadFile(plain)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	rotated := filepath.Join(dir, "access.log.1.gz")
	os.WriteFile(rotated, gz.Bytes(), 0o644)

	out, errOut, code := runCLI(t, "report", "--log", squid, "--log", rotated, "--format", "csv")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"total,,,6,4,10400,0",
		"hour,2026-11-26T08:00:00Z,,2,2,200,0",
		"hour,2026-11-26T09:00:00Z,,4,2,10200,0",
		"user,alice,,4,4,400,0",
		"blocked_by_user,alice,games.example,4,4,400,0",
		"category,", // none: no category was logged
	} {
		if want == "category," {
			if strings.Contains(out, want) {
				t.Errorf("categories reported though none were logged:\n%s", out)
			}
			continue
		}
		if !strings.Contains(out, want+"\n") {
			t.Errorf("csv lacks %q:\n%s", want, out)
		}
	}

	html := filepath.Join(dir, "report.html")
	_, errOut, code = runCLI(t, "report", "--log", squid, "--since", "2026-11-26T09:00:00Z", "--out", html)
	page, _ := os.ReadFile(html)
	if code != 0 || errOut != "" || !strings.Contains(string(page), `id="requests">2<`) || !strings.Contains(string(page), "Top blocked sites") {
		t.Errorf("html --since: exit %d stderr %q\n%.600s", code, errOut, page)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"report"}, 2, "name an access log with --log FILE"},
		{[]string{"report", "--log", squid, "--format", "pdf"}, 2, `--format: want html or csv, got "pdf"`},
		{[]string{"report", "--log", squid, "--since", "yesterday"}, 2, `--since: want a duration`},
		{[]string{"report", "--log", filepath.Join(dir, "missing.log")}, 1, "missing.log: no such file"},
	} {
		_, errOut, code := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d stderr %q, want %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
}
