package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writePolicy(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ads.txt"), []byte("ads.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadGoodPolicy(t *testing.T) {
	p := writePolicy(t, `
default: allow
lists:
  ads: {format: domains, path: ads.txt}
groups:
  students: {clients: [10.0.0.0/8, 192.168.1.7]}
schedules:
  school-hours:
    timezone: Europe/Paris
    windows: [{days: [mon-fri], from: "08:00", to: "15:30"}]
    except: ["2026-12-25", "2026-12-19..2027-01-04"]
rules:
  - name: no-ads
    list: [ads]
    action: block
    category: ads
  - name: tiktok
    glob: ["*.tiktok.*"]
    group: [students]
    schedule: school-hours
    action: block
`)
	f, err := Load(p)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := len(f.Policy.Rules); got != 2 {
		t.Fatalf("rules = %d, want 2", got)
	}
	if f.Policy.Rules[1].Glob[0] != "*.tiktok.*" {
		t.Fatalf("glob = %q", f.Policy.Rules[1].Glob)
	}
}

// TestValidateReportsEveryMistake checks that each kind of mistake is reported with
// its line, column and field path, all in one run.
func TestValidateReportsEveryMistake(t *testing.T) {
	p := writePolicy(t, `default: allow
lists:
  ads: {format: domains, path: ads.txt}
  gone: {format: domains, path: missing.txt}
groups:
  staff: {clients: [10.0.0.0/33]}
rules:
  - name: one
    list: [ads]
    action: block
  - name: one
    list: [nosuch]
    action: block
  - name: two
    glob: ["[abc"]
    client: [not-a-cidr]
    action: block
    colour: red
`)
	_, err := Load(p)
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load error = %v (%T), want Errors", err, err)
	}
	want := []string{
		":4:33: lists.gone.path: cannot read",
		":6:21: groups.staff.clients[0]: invalid CIDR",
		":11:11: rules[1].name: duplicate rule name \"one\"",
		":12:12: rules[1].list[0]: unknown list \"nosuch\"",
		":15:12: rules[2].glob[0]: invalid glob",
		":16:14: rules[2].client[0]: invalid CIDR",
		":18:5: rules[2].colour: unknown field",
	}
	text := err.Error()
	for _, w := range want {
		if !strings.Contains(text, p+w) {
			t.Errorf("missing %q in:\n%s", p+w, text)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("got %d problems, want %d:\n%s", len(errs), len(want), text)
	}
}

func TestSyntaxErrorHasLine(t *testing.T) {
	p := writePolicy(t, "rules:\n  - name: x\n   action: [\n")
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), p+":") || !strings.Contains(err.Error(), "YAML syntax") {
		t.Fatalf("err = %v", err)
	}
}

func TestWrongShapes(t *testing.T) {
	p := writePolicy(t, `rules:
  - name: x
    action: block
    port: [http]
    quiet: maybe
    schedule: [a, b]
`)
	_, err := Load(p)
	if err == nil {
		t.Fatal("want errors")
	}
	for _, w := range []string{":4:12: rules[0].port[0]: expected a whole number", ":5:12: rules[0].quiet: expected true or false", ":6:15: rules[0].schedule: expected a string"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
}

func TestUnknownFieldSuggestsName(t *testing.T) {
	p := writePolicy(t, "rules:\n  - name: x\n    acton: block\n")
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), `unknown field (did you mean "action"?)`) {
		t.Fatalf("err = %v", err)
	}
}

func TestScheduleMistakes(t *testing.T) {
	p := writePolicy(t, `schedules:
  s:
    timezone: Mars/Olympus
    windows: [{days: [mon-fry], from: "9:00", to: "25:00"}]
    except: [2026-13-01]
`)
	_, err := Load(p)
	if err == nil {
		t.Fatal("want errors")
	}
	for _, w := range []string{"schedules.s.timezone: unknown time zone", "schedules.s.windows[0].days[0]: unknown day range", "windows[0].to: invalid time", "schedules.s.except[0]: invalid date"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
}

// TestAuthFilesMustBeReadable: a missing htpasswd or group file, or a folder in its
// place, is reported at the field that names it, with line and column, like a
// missing list file.
func TestAuthFilesMustBeReadable(t *testing.T) {
	p := writePolicy(t, `forward:
  listen: ["127.0.0.1:0"]
  auth:
    htpasswd_file: nowhere/htpasswd
    group_file: .
`)
	_, err := Load(p)
	if err == nil {
		t.Fatal("Load accepted missing auth files")
	}
	dir := filepath.Dir(p)
	for _, want := range []string{
		p + ":4:20: forward.auth.htpasswd_file: cannot read " + filepath.Join(dir, "nowhere/htpasswd") + ": no such file or directory",
		p + ":5:17: forward.auth.group_file: " + dir + " is a folder, not a file",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	// Present files pass.
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("forward: {auth: {htpasswd_file: htpasswd}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err != nil {
		t.Fatalf("Load with an htpasswd file: %v", err)
	}
}

// TestIndentationErrorPointsAtLine: a mis-indented key used to be reported at the
// start of its section (line 1, column 1 for a key deep in forward:); the error must
// name the line to fix and its first character.
func TestIndentationErrorPointsAtLine(t *testing.T) {
	for _, c := range []struct {
		src       string
		line, col int
	}{
		{"forward:\n  listen: [\"127.0.0.1:0\"]\n   connect_ports: [443]\ndefault: allow\n", 3, 4},
		{"default: allow\nforward:\n  listen: [\"127.0.0.1:0\"]\n connect_ports: [443]\n", 4, 2},
		{"rules:\n  - name: a\n    action: block\n     domain: [x.com]\n", 4, 6},
		{"# a comment\nrules:\n  - name: a\n    action: block\n  - name: b\n      action: allow\n", 6, 7},
		{"rules:\n  - name: x\n   action: [\n", 3, 4},
	} {
		p := writePolicy(t, c.src)
		_, err := Load(p)
		want := fmt.Sprintf("%s:%d:%d: YAML syntax: ", p, c.line, c.col)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: err = %v, want it to start with %q", c.src, err, want)
		}
	}
}
