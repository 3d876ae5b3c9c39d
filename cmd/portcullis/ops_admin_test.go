package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdminLogAloneOpensNoListener: an admin section that only sets the access log
// used to open an admin listener (status page, metrics, pprof) on 127.0.0.1:9090.
// Only admin.listen opens one now; the access log still works.
func TestAdminLogAloneOpensNoListener(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "p.yaml")
	os.WriteFile(policy, []byte(`forward: {listen: ["127.0.0.1:0"]}
default: allow
admin: {log: {path: access.log}}
`), 0o644)
	_, addrs := runPolicy(t, policy)
	if a, ok := addrs["admin"]; ok {
		t.Fatalf("admin listener on %s without admin.listen", a)
	}
	if addrs["forward"] == "" {
		t.Fatalf("no forward listener: %v", addrs)
	}
	// The access log is still written, relative to the policy file's folder (as
	// docs/operations.md says), not to the working directory.
	resp, err := http.Get("http://" + addrs["forward"] + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if l := waitLines(t, filepath.Join(dir, "access.log"), 1); !strings.Contains(l[0], `"door":"forward"`) {
		t.Errorf("access log: %q", l[0])
	}
}
