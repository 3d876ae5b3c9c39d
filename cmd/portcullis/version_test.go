package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// buildWith builds the binary with extra go build flags and returns its path.
func buildWith(t *testing.T, flags ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "portcullis")
	args := append(append([]string{"build"}, flags...), "-o", out, ".")
	if b, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go %v: %v\n%s", args, err, b)
	}
	return out
}

// vcsInfo returns the vcs.* settings `go version -m` finds in bin.
func vcsInfo(t *testing.T, bin string) map[string]string {
	t.Helper()
	b, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	info := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s*build\s+(vcs[.\w]*)=(\S*)$`).FindAllStringSubmatch(string(b), -1) {
		info[m[1]] = m[2]
	}
	return info
}

// TestVersionFromBuildInfo: `portcullis version` used to print "(devel)" whatever
// the build. Built in a git checkout it prints the revision (`git rev-parse HEAD`),
// the commit date and whether the tree was modified; without VCS information it
// says so; a release build's -ldflags -X stamps win.
func TestVersionFromBuildInfo(t *testing.T) {
	bin := buildWith(t, "-buildvcs=auto")
	cmd := exec.Command(bin, "version")
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("version: %v %s", err, b)
	}
	got := string(b)
	if !strings.HasPrefix(got, "portcullis ") || !strings.Contains(got, "go:      go1.") {
		t.Errorf("version output:\n%s", got)
	}
	info := vcsInfo(t, bin)
	if rev := info["vcs.revision"]; rev != "" {
		head, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if err != nil {
			t.Fatal(err)
		}
		if want := "commit:  " + strings.TrimSpace(string(head)); !strings.Contains(got, want) {
			t.Errorf("version output lacks %q:\n%s", want, got)
		}
		if strings.Contains(got, "(devel)") {
			t.Errorf("a build with VCS information still says (devel):\n%s", got)
		}
		if want := "date:    " + info["vcs.time"]; !strings.Contains(got, want) {
			t.Errorf("version output lacks %q:\n%s", want, got)
		}
		if modified := info["vcs.modified"] == "true"; modified != strings.Contains(got, "(modified") {
			t.Errorf("vcs.modified=%v but the output says:\n%s", modified, got)
		}
	} else {
		t.Logf("no VCS information in this build (a git worktree, or not a git checkout)")
		if !strings.Contains(got, "commit:  unknown") {
			t.Errorf("without VCS information the output should say the commit is unknown:\n%s", got)
		}
	}

	const pkg = "github.com/portcullis/portcullis/internal/cli."
	rel := buildWith(t, "-ldflags", "-X "+pkg+"releaseVersion=v9.8.7 -X "+pkg+"releaseCommit=0123456789abcdef0123456789abcdef01234567 -X "+pkg+"releaseDate=2026-12-07T00:00:00Z")
	b, err = exec.Command(rel, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"portcullis v9.8.7\n",
		"commit:  0123456789abcdef0123456789abcdef01234567\n",
		"date:    2026-12-07T00:00:00Z\n",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("release build's version lacks %q:\n%s", want, b)
		}
	}
}
