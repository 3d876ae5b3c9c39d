package phrase

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfig(t *testing.T) {
	bad := Config{Lists: []string{"a", ""}, Threshold: -1, MaxScan: 1 << 30}
	var paths []string
	for _, e := range bad.Validate() {
		paths = append(paths, e.Path)
	}
	if strings.Join(paths, " ") != "lists[1] threshold max_scan" {
		t.Fatalf("Validate paths = %v", paths)
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("<casino><40>\n"), 0o600)
	os.WriteFile(b, []byte("<jackpot><20>\n"), 0o600)
	c := Config{Lists: []string{a, b}}
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatal(errs)
	}
	m, err := c.Compile()
	if err != nil {
		t.Fatal(err)
	}
	s := scan(m, "casino jackpot")
	if s.Score() != 60 || !s.Blocked(c.Options().Threshold) {
		t.Fatalf("score %d with default threshold %d", s.Score(), c.Options().Threshold)
	}
	if o := c.Options(); o.Threshold != DefaultThreshold || o.MaxScan != DefaultMaxScan || o.ScanTail {
		t.Fatalf("defaults: %+v", o)
	}
	if o := (&Config{Threshold: 160, MaxScan: 1000, ScanTail: true}).Options(); o.Threshold != 160 || o.MaxScan != 1000 || !o.ScanTail {
		t.Fatalf("explicit options: %+v", o)
	}
	os.WriteFile(b, []byte("\n<jackpot<20>\n"), 0o600)
	if _, err := c.Compile(); err == nil || !strings.HasPrefix(err.Error(), b+":2: ") {
		t.Fatalf("bad list: %v", err)
	}
}
