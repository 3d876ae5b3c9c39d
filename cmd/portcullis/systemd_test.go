package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnitVerifies checks contrib/systemd/portcullis.service with
// `systemd-analyze verify` (with ExecStart pointing at the binary under test, since
// verify requires it to exist): no warning at all, and the hardening the docs promise.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is required under CI=true (Debian package systemd)")
		}
		t.Skip("systemd-analyze not installed")
	}
	b, err := os.ReadFile("../../contrib/systemd/portcullis.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	keys := map[string][]string{}
	for _, line := range strings.Split(unit, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = append(keys[k], v)
		}
	}
	for k, want := range map[string]string{
		"DynamicUser":             "yes",
		"AmbientCapabilities":     "CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet":   "CAP_NET_BIND_SERVICE",
		"ProtectSystem":           "strict",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"NoNewPrivileges":         "yes",
		"PrivateTmp":              "yes",
		"StateDirectory":          "portcullis",
		"LogsDirectory":           "portcullis",
		"ReadWritePaths":          "-/var/lib/portcullis -/var/log/portcullis",
		"ExecStart":               "/usr/local/bin/portcullis run --config /etc/portcullis/policy.yaml",
		"ExecStartPre":            "/usr/local/bin/portcullis validate --config /etc/portcullis/policy.yaml",
		"KillSignal":              "SIGTERM",
		"SystemCallArchitectures": "native",
	} {
		if got := keys[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%v, want %s", k, got, want)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "portcullis.service")
	os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/portcullis", binary)), 0o644)
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The check can fail: an unknown key is reported.
	os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/portcullis", binary)+"[Service]\nProtectSystm=strict\n"), 0o644)
	if out, _ := exec.Command(analyze, "verify", path).CombinedOutput(); !strings.Contains(string(out), "ProtectSystm") {
		t.Errorf("systemd-analyze verify did not report a misspelt key:\n%s", out)
	}
}
