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
