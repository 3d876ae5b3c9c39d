package accesslog

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestAccessLogReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	a, err := Open(Config{Format: FormatSquid, Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	first := sampleEntry()
	first.URL = "http://first.example/"
	a.Log(first)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Reopen(); err != nil {
		t.Fatal(err)
	}
	second := sampleEntry()
	second.URL = "http://second.example/"
	a.Log(second)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	old, cur := readLines(t, path+".1"), readLines(t, path)
	if len(old) != 1 || !strings.Contains(old[0], "first.example") {
		t.Errorf("rotated file: %q", old)
	}
	if len(cur) != 1 || !strings.Contains(cur[0], "second.example") {
		t.Errorf("new file: %q", cur)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("new file mode: %v %v", fi.Mode(), err)
	}
	if a.Written() != 2 || a.Dropped() != 0 {
		t.Errorf("written %d dropped %d", a.Written(), a.Dropped())
	}
	if err := a.Reopen(); !errors.Is(err, ErrClosed) {
		t.Errorf("Reopen after Close: %v", err)
	}
	a.Log(first)
	if a.Dropped() != 1 {
		t.Errorf("Log after Close not counted as dropped: %d", a.Dropped())
	}
}

func TestAccessLogReopenFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "logs")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(sub, "access.log")
	a, err := Open(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := os.Rename(sub, sub+".gone"); err != nil {
		t.Fatal(err)
	}
	if err := a.Reopen(); err == nil {
		t.Fatal("Reopen into a missing directory succeeded")
	}
	a.Log(sampleEntry())
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if lines := readLines(t, filepath.Join(sub+".gone", "access.log")); len(lines) != 1 {
		t.Errorf("old file got %q", lines)
	}
}

func TestAccessLogJSONFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.json")
	a, err := Open(Config{Path: path, StripQuery: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		a.Log(sampleEntry())
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	if len(lines) != 100 {
		t.Fatalf("%d lines", len(lines))
	}
	var v struct{ URL string }
	if err := json.Unmarshal([]byte(lines[99]), &v); err != nil || v.URL != "http://example.com:8080/path" {
		t.Errorf("url %q (strip_query) err %v", v.URL, err)
	}
}

func TestAccessLogFullDiskDropsAndCounts(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	a, err := Open(Config{Format: FormatCombined, Path: "/dev/full"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		a.Log(sampleEntry())
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if a.Dropped() != 3 || a.Written() != 0 {
		t.Errorf("dropped %d written %d, want 3 and 0", a.Dropped(), a.Written())
	}
}

// stuckWriter blocks every Write until released, like a stdout pipe nobody reads.
type stuckWriter struct {
	entered chan struct{}
	release chan struct{}
	lines   int
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	w.entered <- struct{}{}
	<-w.release
	w.lines += strings.Count(string(p), "\n")
	return len(p), nil
}

func TestAccessLogNeverBlocksOnSlowWriter(t *testing.T) {
	w := &stuckWriter{entered: make(chan struct{}, 16), release: make(chan struct{})}
	a, err := NewWriter(Config{Format: FormatSquid, Buffer: 4}, w)
	if err != nil {
		t.Fatal(err)
	}
	a.Log(sampleEntry())
	<-w.entered // the writer holds the first line and is stuck; the queue is empty
	for range 7 {
		a.Log(sampleEntry()) // four fit in the queue, three are dropped, none blocks
	}
	if a.Dropped() != 3 {
		t.Errorf("dropped %d, want 3", a.Dropped())
	}
	close(w.release)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if w.lines != 5 || a.Written() != 5 {
		t.Errorf("wrote %d lines (counted %d), want 5", w.lines, a.Written())
	}
}

func TestAccessLogRejectsBadConfig(t *testing.T) {
	if _, err := Open(Config{Format: "apache"}); err == nil {
		t.Error("unknown format accepted")
	}
	if _, err := Open(Config{Path: filepath.Join(t.TempDir(), "missing", "x.log")}); err == nil {
		t.Error("unopenable path accepted")
	}
}

func TestMulti(t *testing.T) {
	var a, b counter
	m := Multi(&a, nil, Multi(&b))
	m.Log(sampleEntry())
	m.Log(sampleEntry())
	if a.n != 2 || b.n != 2 {
		t.Errorf("a %d b %d", a.n, b.n)
	}
	if Multi(&a) != Logger(&a) {
		t.Error("Multi of one logger should be that logger")
	}
	Multi().Log(sampleEntry()) // discards without panicking
}

type counter struct{ n int }

func (c *counter) Log(*Entry) { c.n++ }
