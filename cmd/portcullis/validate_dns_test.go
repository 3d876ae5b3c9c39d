package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateRefusesRootGSLBZone: `zone: "."` would make the DNS door answer every
// name from the GSLB zone; validate refuses it with the field's line and column.
func TestValidateRefusesRootGSLBZone(t *testing.T) {
	p := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(p, []byte(`dns:
  listen: ["127.0.0.1:0"]
  gslb:
    zone: "."
    names:
      www:
        sites: [{name: eu, addresses: [192.0.2.1]}]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCLI(t, "validate", "--config", p)
	want := p + `:4:11: dns.gslb.zone: the root zone "." cannot be a GSLB zone`
	if code != 1 || !strings.Contains(errOut, want) {
		t.Fatalf("validate: exit %d, want 1 and %q in:\n%s", code, want, errOut)
	}
}

// TestValidateWarnsWhenAGroupWeakensSafeSearch: a DNS group that turns off or lowers
// a SafeSearch the top level enforces is accepted (exit 0, OK) but validate warns
// with the key's line and column; the README's example, which only tightens
// YouTube for students, gets no warning.
func TestValidateWarnsWhenAGroupWeakensSafeSearch(t *testing.T) {
	dir := t.TempDir()
	weak := filepath.Join(dir, "weak.yaml")
	if err := os.WriteFile(weak, []byte(`groups:
  staff: {clients: ["10.2.0.0/16"]}
dns:
  listen: ["127.0.0.1:0"]
  safesearch: {google: true, youtube: moderate, bing: true, duckduckgo: true}
  groups:
    staff:
      safesearch: {google: false, youtube: "off"}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "validate", "--config", weak)
	if code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("validate: exit %d, want 0 and OK\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		weak + `:8:28: dns.groups.staff.safesearch.google: warning: turns off Google SafeSearch for group "staff"`,
		weak + `:8:44: dns.groups.staff.safesearch.youtube: warning: lowers YouTube restriction for group "staff" to off`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("missing %q in:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "bing") || strings.Contains(errOut, "duckduckgo") {
		t.Errorf("warned about a key the group inherits:\n%s", errOut)
	}

	readme := filepath.Join(dir, "readme.yaml")
	if err := os.WriteFile(readme, []byte(`groups:
  students: {clients: ["10.1.0.0/16"]}
dns:
  listen: ["127.0.0.1:0"]
  safesearch: {google: true, youtube: moderate, bing: true, duckduckgo: true}
  groups: {students: {safesearch: {youtube: strict}}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runCLI(t, "validate", "--config", readme)
	if code != 0 || !strings.Contains(out, "OK") || strings.Contains(errOut, "warning") {
		t.Fatalf("validate README example: exit %d\n%s%s", code, out, errOut)
	}
}
