package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var nextGCRE = regexp.MustCompile(`(?m)^go_memstats_next_gc_bytes (\S+)$`)

// heapGoal starts the binary with extra arguments and environment and returns the
// heap size at which its next garbage collection will start, from its /metrics.
func heapGoal(t *testing.T, env []string, args ...string) float64 {
	t.Helper()
	policy := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(policy, []byte("forward: {listen: [\"127.0.0.1:0\"]}\nadmin: {listen: \"127.0.0.1:0\", log: {off: true}}\n"), 0o644)
	t.Setenv("GOGC", "")
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	p, running := spawn(t, append([]string{"run", "--config", policy}, args...)...)
	defer p.cmd.Process.Kill()
	resp, err := http.Get("http://" + adminRE.FindStringSubmatch(running)[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := nextGCRE.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no go_memstats_next_gc_bytes in /metrics:\n%s", body)
	}
	goal, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return goal
}

// TestHeapFloor: `portcullis run` lets the heap reach 16 MiB before collecting
// (Go's own pace would collect at a few MiB for this idle process), --heap-floor
// changes or removes the floor, GOGC in the environment wins, and a bad size is
// refused naming the flag.
func TestHeapFloor(t *testing.T) {
	const mib = 1 << 20
	if g := heapGoal(t, nil); g < 16*mib {
		t.Errorf("default: next collection at %.1f MiB, want at least the 16 MiB floor", g/mib)
	}
	if g := heapGoal(t, nil, "--heap-floor", "64MiB"); g < 64*mib {
		t.Errorf("--heap-floor 64MiB: next collection at %.1f MiB, want at least 64", g/mib)
	}
	if g := heapGoal(t, nil, "--heap-floor", "0"); g >= 16*mib {
		t.Errorf("--heap-floor 0: next collection at %.1f MiB, want Go's own pace (a few MiB)", g/mib)
	}
	if g := heapGoal(t, []string{"GOGC=100"}); g >= 16*mib {
		t.Errorf("GOGC=100: next collection at %.1f MiB, want Go's own pace (a few MiB)", g/mib)
	}
	_, errOut, code := runCLI(t, "run", "--heap-floor", "lots")
	if code != 2 || !strings.Contains(errOut, `--heap-floor: invalid size "lots"`) {
		t.Errorf("--heap-floor lots: exit %d, stderr %q; want 2 and the flag named", code, errOut)
	}
}
