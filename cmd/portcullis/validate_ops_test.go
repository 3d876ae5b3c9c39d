package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateReportsMalformedListLines: validate used to say OK and nothing else
// for a list with malformed lines (run skips them with a warning in its log). It
// now names each one as LISTFILE:LINE, and still exits 0 (run accepts the list).
func TestValidateReportsMalformedListLines(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ads.txt"), []byte("good.example\nbad domain here\n# comment\n*.ok.example\nhttp://x/y z\n"), 0o644)
	p := filepath.Join(dir, "p.yaml")
	os.WriteFile(p, []byte("lists:\n  ads: {format: domains, path: ads.txt}\nrules:\n  - {name: r, list: [ads], action: block}\n"), 0o644)
	out, errOut, code := runCLI(t, "validate", "--config", p)
	if code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	list := filepath.Join(dir, "ads.txt")
	for _, want := range []string{
		list + `:2: expected one domain, got "bad domain here" (list ads: line skipped)`,
		list + `:5: expected one domain, got "http://x/y z" (list ads: line skipped)`,
		"count=2",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("validate output lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, ":1:") || strings.Contains(errOut, ":4:") {
		t.Errorf("a good line reported:\n%s", errOut)
	}
}

// TestValidateReportsListenerClash: two doors on one address used to pass
// validate and fail at bind time ("address already in use"), or not at all when
// the second bind happened to win; validate names both fields.
func TestValidateReportsListenerClash(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "p.yaml")
	os.WriteFile(p, []byte(`forward:
  listen: ["127.0.0.1:3128", "127.0.0.1:0"]
reverse:
  listen: ["0.0.0.0:8080", "127.0.0.1:0"]
  tls_listen: ["127.0.0.1:8080"]
  tls: {mode: internal, names: [a.test]}
  routes: [{name: a, pool: p}]
pools:
  p: {members: [{url: "http://127.0.0.1:1"}]}
dns:
  listen: ["[::1]:8080", "127.0.0.1:3128"]
admin:
  listen: "127.0.0.1:3128"
`), 0o644)
	out, errOut, code := runCLI(t, "validate", "--config", p)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		p + ":5:16: reverse.tls_listen[0]: reverse (TLS) listener 127.0.0.1:8080 clashes with the reverse listener 0.0.0.0:8080 (reverse.listen[0], line 4)",
		p + ":11:26: dns.listen[1]: dns listener 127.0.0.1:3128 clashes with the forward listener 127.0.0.1:3128 (forward.listen[0], line 2)",
		p + ":13:11: admin.listen: admin listener 127.0.0.1:3128 clashes with the forward listener 127.0.0.1:3128 (forward.listen[0], line 2)",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("validate output lacks %q:\n%s", want, errOut)
		}
	}
	// Port 0, and 0.0.0.0 against an IPv6 address, do not clash.
	if n := strings.Count(errOut, "clashes"); n != 3 {
		t.Errorf("%d clashes reported, want 3:\n%s", n, errOut)
	}
}

// TestValidateReportsInterceptListenerProblems: forward.intercept addresses are
// checked like every listener: a malformed one and one clashing with the
// forward listener are named at their line.
func TestValidateReportsInterceptListenerProblems(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "p.yaml")
	os.WriteFile(p, []byte(`forward:
  listen: ["127.0.0.1:3128"]
  intercept:
    http: ["0.0.0.0:3128"]
    https: ["proxy.example:3130"]
`), 0o644)
	_, errOut, code := runCLI(t, "validate", "--config", p)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, errOut)
	}
	for _, want := range []string{
		p + ":4:12: forward.intercept.http[0]: forward (intercept HTTP) listener 0.0.0.0:3128 clashes with the forward listener 127.0.0.1:3128 (forward.listen[0], line 2)",
		p + ":5:13: forward.intercept.https[0]: host \"proxy.example\" is not an IP address",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("validate output lacks %q:\n%s", want, errOut)
		}
	}
}
