package filter

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type hostCase struct {
	host string
	want bool
}

func checkMatches(t *testing.T, l *List, cases []hostCase) {
	t.Helper()
	for _, c := range cases {
		if got := l.Match(c.host); got != c.want {
			t.Errorf("Match(%q) = %v, want %v", c.host, got, c.want)
		}
	}
}

func problemLines(l *List) []int {
	var out []int
	for _, p := range l.Problems {
		out = append(out, p.Line)
	}
	return out
}

func TestLoadListDomains(t *testing.T) {
	path := writeFile(t, filepath.Join(t.TempDir(), "domains"), strings.Join([]string{
		"# a comment",
		"",
		"example.com",
		"m.example.com", // overlap with its parent
		"  Upper.ORG  ",
		".dotted.net",
		"*.star.io",
		"bücher.de",  // IDNA
		"10.1.2.3",   // UT1 lists hold addresses
		"bad domain", // line 10: two tokens
		"a..b",       // line 11: empty label
		"trail.com # inline comment",
		"example.com", // duplicate
		"-\x00-",      // line 14: garbage
	}, "\n")) // no final newline
	l, err := LoadList(FormatDomains, path)
	if err != nil {
		t.Fatal(err)
	}
	checkMatches(t, l, []hostCase{
		{"example.com", true}, {"www.example.com", true}, {"www.m.example.com", true},
		{"xample.com", false}, {"upper.org", true}, {"a.dotted.net", true}, {"star.io", true},
		{"x.star.io", true}, {"xn--bcher-kva.de", true}, {"www.xn--bcher-kva.de", true},
		{"10.1.2.3", true}, {"trail.com", true}, {"domain", false}, {"bad", false},
	})
	if got := problemLines(l); len(got) != 3 || got[0] != 10 || got[1] != 11 || got[2] != 14 {
		t.Errorf("problem lines = %v, want [10 11 14]; problems: %v", got, l.Problems)
	}
	if l.Malformed != 3 {
		t.Errorf("Malformed = %d, want 3", l.Malformed)
	}
	if want := path + ":10: "; !strings.HasPrefix(l.Problems[0].Error(), want) {
		t.Errorf("LineError = %q, want prefix %q", l.Problems[0].Error(), want)
	}
	if l.Len() != 8 {
		t.Errorf("Len = %d, want 8", l.Len())
	}
}

func TestLoadListHosts(t *testing.T) {
	path := writeFile(t, filepath.Join(t.TempDir(), "hosts"), `# hosts
127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
0.0.0.0 0.0.0.0
0.0.0.0 ads.example.com
127.0.0.1 track.example.net pixel.example.net # two names
0.0.0.0
notanip tracker.org
0.0.0.0 ok.example.org
`)
	l, err := LoadList(FormatHosts, path)
	if err != nil {
		t.Fatal(err)
	}
	checkMatches(t, l, []hostCase{
		{"ads.example.com", true}, {"x.ads.example.com", false}, {"example.com", false},
		{"track.example.net", true}, {"pixel.example.net", true}, {"localhost", false},
		{"ok.example.org", true}, {"tracker.org", false},
	})
	if got := problemLines(l); len(got) != 2 || got[0] != 7 || got[1] != 8 {
		t.Errorf("problem lines = %v, want [7 8]", got)
	}
	if l.Len() != 4 {
		t.Errorf("Len = %d, want 4", l.Len())
	}
}

func TestLoadListAdblock(t *testing.T) {
	path := writeFile(t, filepath.Join(t.TempDir(), "adblock.txt"), `[Adblock Plus 2.0]
! Title: test
||ads.example.com^
||tracker.net^
@@||good.tracker.net^
||cdn.example.org^$third-party
example.com##.banner
/banner/*
||wild*.com^
||bad domain^
# comment
`)
	l, err := LoadList(FormatAdblock, path)
	if err != nil {
		t.Fatal(err)
	}
	checkMatches(t, l, []hostCase{
		{"ads.example.com", true}, {"x.ads.example.com", true}, {"tracker.net", true},
		{"a.tracker.net", true}, {"good.tracker.net", false}, {"x.good.tracker.net", false},
		{"cdn.example.org", false}, {"example.com", false},
	})
	if l.Unsupported != 4 {
		t.Errorf("Unsupported = %d, want 4", l.Unsupported)
	}
	if got := problemLines(l); len(got) != 1 || got[0] != 10 {
		t.Errorf("problem lines = %v, want [10]", got)
	}
	if st := l.Stats(); st.Entries != 2 || st.Exceptions != 1 || st.Bytes == 0 || st.Unsupported != 4 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestLoadListUT1AndURLs(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "adult", "domains"), "porn.example\nsub.site.example\n")
	writeFile(t, filepath.Join(dir, "adult", "urls"), strings.Join([]string{
		"www.blog.example/girls",
		"host.example/dir/",
		"http://scheme.example/x",
		"whole.example",
		"bad host/x",
		"ctl.example/a\x01b",
	}, "\n")+"\n")
	l, err := LoadList(FormatUT1, filepath.Join(dir, "adult"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		host, path string
		want       bool
	}{
		{"porn.example", "/", true},
		{"blog.example", "/girls", true},
		{"www.blog.example", "/girls/1.html", true},
		{"blog.example", "/GIRLS", true},
		{"blog.example", "/girlsx", false},
		{"blog.example", "/", false},
		{"blog.example", "", false},
		{"host.example", "/dir/a/b", true},
		{"host.example", "/dir", false},
		{"host.example", "/other", false},
		{"scheme.example", "/x", true},
		{"whole.example", "", true},
		{"a.whole.example", "/anything", true},
		{"other.example", "/girls", false},
	}
	for _, c := range cases {
		if got := l.MatchURL(c.host, c.path); got != c.want {
			t.Errorf("MatchURL(%q, %q) = %v, want %v", c.host, c.path, got, c.want)
		}
	}
	if l.Match("blog.example") {
		t.Error("a urls entry made its host match as a whole")
	}
	if l.Len() != 6 {
		t.Errorf("Len = %d, want 6", l.Len())
	}
	if got := problemLines(l); len(got) != 2 || got[0] != 5 || got[1] != 6 {
		t.Errorf("problem lines = %v, want [5 6]: %v", got, l.Problems)
	}
}

func TestLoadCategories(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "adult", "domains"), "porn.example\n")
	writeFile(t, filepath.Join(dir, "gambling", "domains"), "bet.example\n")
	writeFile(t, filepath.Join(dir, "gambling", "urls"), "casino.example/play\n")
	writeFile(t, filepath.Join(dir, "social", "urls"), "video.example/shorts\n")
	writeFile(t, filepath.Join(dir, "README"), "not a category\n")
	writeFile(t, filepath.Join(dir, "empty", "usage"), "no lists here\n")
	if err := os.Symlink("adult", filepath.Join(dir, "porn")); err != nil {
		t.Fatal(err)
	}

	all, err := LoadCategories(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range all {
		names = append(names, n)
	}
	if len(all) != 4 || all["adult"] == nil || all["gambling"] == nil || all["social"] == nil || all["porn"] == nil {
		t.Fatalf("categories = %v", names)
	}
	if !all["porn"].Match("www.porn.example") || !all["gambling"].MatchURL("casino.example", "/play/1") ||
		!all["social"].MatchURL("video.example", "/shorts") || all["social"].Match("video.example") {
		t.Error("a category answers wrongly")
	}

	some, err := LoadCategories(dir, "gambling")
	if err != nil || len(some) != 1 || some["gambling"] == nil {
		t.Fatalf("LoadCategories(only gambling) = %v, %v", some, err)
	}
	if _, err := LoadCategories(dir, "missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing category: err = %v, want ErrNotExist", err)
	}
	if _, err := LoadCategories(dir, "../x"); err == nil {
		t.Error("a path as category name was accepted")
	}
	if _, err := LoadCategories(filepath.Join(dir, "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing folder: err = %v", err)
	}
}

func TestLoadListErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadList(FormatDomains, filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want ErrNotExist", err)
	}
	if _, err := LoadList(FormatDomains, dir); err == nil {
		t.Error("a folder loaded as a domains file")
	}
	if _, err := LoadList(FormatUT1, writeFile(t, filepath.Join(dir, "f"), "x.com\n")); err == nil {
		t.Error("a file loaded as a UT1 category")
	}
	if _, err := LoadList(FormatUT1, dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("UT1 folder without lists: err = %v", err)
	}
	if _, err := LoadList("csv", filepath.Join(dir, "f")); err == nil {
		t.Error("unknown format accepted")
	}
	for _, f := range Formats() {
		if !f.Valid() {
			t.Errorf("%q not valid", f)
		}
	}
	if Format("csv").Valid() {
		t.Error("csv valid")
	}
}

func TestLoadListLongLinesAndProblemCap(t *testing.T) {
	var b strings.Builder
	b.WriteString(strings.Repeat("x", maxLine+10) + "\n")
	b.WriteString("ok.example\n")
	for i := 0; i < 150; i++ {
		b.WriteString("bad line\n")
	}
	b.WriteString("last.example")
	path := writeFile(t, filepath.Join(t.TempDir(), "d"), b.String())
	l, err := LoadList(FormatDomains, path)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Match("ok.example") || !l.Match("last.example") || l.Len() != 2 {
		t.Errorf("good lines around bad ones lost: Len %d", l.Len())
	}
	if l.Malformed != 151 || len(l.Problems) != maxProblems {
		t.Errorf("Malformed = %d, Problems = %d; want 151, %d", l.Malformed, len(l.Problems), maxProblems)
	}
	if l.Problems[0].Line != 1 || l.Problems[0].Msg != "line too long" || l.Problems[1].Line != 3 {
		t.Errorf("first problems = %v", l.Problems[:2])
	}
}

func TestNilList(t *testing.T) {
	var l *List
	if l.Match("a") || l.MatchURL("a", "/") || l.Len() != 0 || l.Stats() != (ListStats{}) {
		t.Error("nil list is not empty")
	}
}

// FuzzLoadList feeds arbitrary bytes to every format: no panic, no error
// for a readable file, and every problem points at an existing line.
func FuzzLoadList(f *testing.F) {
	f.Add("example.com\n# c\n0.0.0.0 ads.example\n||x.org^\n@@||y.x.org^\nhost.example/path\n\xff\xfe")
	f.Add("a..b\n\n\r\n*.x\n.y\n127.0.0.1 localhost")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content string) {
		path := filepath.Join(dir, "list")
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		lines := strings.Count(content, "\n") + 1
		for _, format := range []Format{FormatDomains, FormatHosts, FormatAdblock, formatURLs} {
			var lp listParser
			if err := lp.readFile(path, format); err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			l := lp.build()
			for _, p := range l.Problems {
				if p.Line < 1 || p.Line > lines || p.File != path {
					t.Fatalf("%s: problem at %s:%d of %d lines", format, p.File, p.Line, lines)
				}
			}
			l.Match("example.com")
			l.MatchURL("host.example", "/path")
		}
	})
}

// TestLoadDomainsAcrossBlocks: a list several read blocks long, with lines
// cut by block ends, bad lines, a line longer than maxLine and one longer
// than a whole block, keeps every good entry and numbers every problem.
func TestLoadDomainsAcrossBlocks(t *testing.T) {
	var b strings.Builder
	var want []int
	line := 0
	add := func(s string, bad bool) {
		line++
		b.WriteString(s + "\n")
		if bad {
			want = append(want, line)
		}
	}
	for i := 0; b.Len() < 3*readBlockBytes; i++ {
		switch {
		case i == 5000:
			add(strings.Repeat("y", maxLine+1), true)
		case i == 70000:
			add(strings.Repeat("z", readBlockBytes+100), true)
		case i%20011 == 7:
			add("bad entry here", true)
		default:
			add(fmt.Sprintf("host%d.example.org", i), false)
		}
	}
	path := writeFile(t, filepath.Join(t.TempDir(), "d"), b.String())
	l, err := LoadList(FormatDomains, path)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, p := range l.Problems {
		got = append(got, p.Line)
	}
	if !slices.Equal(got, want) || l.Malformed != len(want) {
		t.Fatalf("problem lines %v (Malformed %d), want %v", got, l.Malformed, want)
	}
	if l.Len() != line-len(want) {
		t.Errorf("Len = %d, want %d", l.Len(), line-len(want))
	}
	for i := 0; i < line; i += 997 {
		if i != 5000 && i != 70000 && i%20011 != 7 && !l.Match(fmt.Sprintf("w.host%d.example.org", i)) {
			t.Fatalf("host%d missing", i)
		}
	}
}
