package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/accesslog"
)

// TestReportProgressOnATerminal: with standard error on a terminal, `portcullis
// report` draws a progress bar that reaches 100%.
func TestReportProgressOnATerminal(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "access.log")
	writeAccessLog(t, log, accesslog.FormatCombined)
	out := filepath.Join(dir, "report.csv")
	p := startOnPTY(t, "report", "--log", log, "--format", "csv", "--out", out)
	code, shown := p.exit(t)
	if code != 0 {
		t.Fatalf("exit %d; terminal shows %q", code, shown)
	}
	if !strings.Contains(shown, "] 100% ") || !strings.Contains(shown, "[==============================]") {
		t.Errorf("no finished progress bar on the terminal: %q", shown)
	}
	csv, _ := os.ReadFile(out)
	if !strings.Contains(string(csv), "total,,,3,2,5200,0") {
		t.Errorf("report: %s", csv)
	}
}
