package phrase

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseFormats(t *testing.T) {
	src := "\ufeff# weighted phrases\n" +
		"#listcategory: \"Gambling\"\n" +
		"<casino><40>\n" +
		"< Poker >< 30 >\n" +
		"<online>,<BET>,<online><25>\n" +
		"\t<science>\t<-20>  \n" +
		"<banned words>\n" +
		"<a>,<b>\n" +
		"#LISTCATEGORY: Simple\n" +
		"50 free\t\tspins\n" +
		"-10 maths  \n" +
		"<Free Spins!><5>\n"
	l, err := Parse(strings.NewReader(src), "w.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Phrases: []string{"casino"}, Weight: 40, Category: "Gambling", Source: "w.txt:3"},
		{Phrases: []string{" poker "}, Weight: 30, Category: "Gambling", Source: "w.txt:4"},
		{Phrases: []string{"online", "bet"}, Weight: 25, Category: "Gambling", Source: "w.txt:5"},
		{Phrases: []string{"science"}, Weight: -20, Category: "Gambling", Source: "w.txt:6"},
		{Phrases: []string{"banned words"}, Banned: true, Category: "Gambling", Source: "w.txt:7"},
		{Phrases: []string{"a", "b"}, Banned: true, Category: "Gambling", Source: "w.txt:8"},
		{Phrases: []string{"free spins"}, Weight: 50, Category: "Simple", Source: "w.txt:10"},
		{Phrases: []string{"maths"}, Weight: -10, Category: "Simple", Source: "w.txt:11"},
		{Phrases: []string{"free spins "}, Weight: 5, Category: "Simple", Source: "w.txt:12"},
	}
	if !reflect.DeepEqual(l.Entries, want) {
		t.Fatalf("entries:\n%+v\nwant\n%+v", l.Entries, want)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ line, want string }{
		{"<phrase><x>", `weight "x" is not an integer`},
		{"<phrase><30", "unexpected"},
		{"<phrase", "unclosed <"},
		{"<phrase>,", "want <phrase>"},
		{"<a><b><30>", "unexpected"},
		{"<a>junk", "unexpected"},
		{"<   ><30>", "empty phrase"},
		{"<><30>", "empty phrase"},
		{"<a><2000000>", "beyond"},
		{"<a><50%>", "percentage weight"},
		{"<!?!><5>", "empty phrase"},
		{".include", "want .Include<path>"},
		{"thirty word", "not an integer"},
		{"30", "want <phrase><weight> or WEIGHT PHRASE"},
		{"30 a<b", "contains < or >"},
		{".Include<x>", ".Include needs LoadFile"},
		{".Include<", "want .Include<path>"},
	}
	for _, c := range cases {
		_, err := Parse(strings.NewReader("# first\n\n"+c.line+"\n"), "list")
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Line != 3 || pe.File != "list" || !strings.Contains(pe.Msg, c.want) {
			t.Errorf("%q: err = %v, want list:3: ...%s", c.line, err, c.want)
		}
	}
}

func TestLoadFileInclude(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("lang/en", "<casino><40>\n")
	write("lang/fr", "<jeux d'argent><40>\n<oops\n")
	main := write("weighted", "<poker><30>\n.include<lang/en>\n")
	l, err := LoadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Entries) != 2 || l.Entries[1].Source != filepath.Join(dir, "lang/en")+":1" {
		t.Fatalf("entries %+v", l.Entries)
	}
	bad := write("bad", ".Include<lang/fr>\n")
	if _, err := LoadFile(bad); err == nil || !strings.HasPrefix(err.Error(), filepath.Join(dir, "lang/fr")+":2: ") {
		t.Fatalf("error in an included file: %v", err)
	}
	loop := write("loop", "<x><1>\n.Include<loop>\n")
	if _, err := LoadFile(loop); err == nil || !strings.Contains(err.Error(), "includes itself") {
		t.Fatalf("include loop: %v", err)
	}
	if _, err := LoadFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
