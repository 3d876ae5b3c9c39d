package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/config"
)

// FuzzParse feeds arbitrary bytes to the policy parser: it must never panic, a
// policy it accepts must parse again the same way, and every problem it reports must
// name the file, say what is wrong, and (unless it is about the whole file) carry a
// line and column. Seeds: every example policy, plus testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	examples, _ := filepath.Glob("../../policies/*.yaml")
	for _, p := range examples {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"",
		"default: block\n",
		"forward: {listen: [\"127.0.0.1:0\"], colour: blue}\n",
		"rules:\n  - name: a\n    glob: [\"[x\"]\n    action: block\n",
		"rules:\n  - name: a\n    client: [300.1.1.1/8]\n    action: allow\n  - name: a\n    action: nope\n",
		"lists: {l: {format: domains, path: list.txt}}\nrules: [{name: r, list: [l, missing], action: block}]\n",
		"schedules: {s: {timezone: Mars/Base, windows: [{days: [mon-sun], from: \"25:00\", to: \"08:00\"}]}}\n",
		"rules: &a [*a]\n",
		"a: &x {b: *x}\n",
		"resolver: {upstreams: [\"tls://[::1]:853#\"], timeout: -1s}\n",
		"admin: {listen: \"::::\", log: {format: xml, buffer: -1}}\n",
		"\t- broken: [\n",
		"rules:\n- {name: r, port: [99999], action: block}\n- {name: s, schedule: \"!nope\", action: block}\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "list.txt"), []byte("example.com\n"), 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		const name = "fuzz.yaml"
		file, err := config.Parse(name, dir, src)
		if err == nil {
			if file == nil || file.Policy == nil {
				t.Fatal("nil file without an error")
			}
			if _, err := config.Parse(name, dir, file.Source); err != nil {
				t.Fatalf("accepted source no longer parses: %v", err)
			}
			return
		}
		if file != nil {
			t.Fatalf("a file and an error: %v", err)
		}
		var errs config.Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error is not config.Errors: %T %v", err, err)
		}
		for _, e := range errs {
			if e.File != name || e.Msg == "" {
				t.Errorf("problem without file or message: %#v", e)
			}
			if e.Line <= 0 || e.Col <= 0 {
				if e.Path != "" || !strings.HasPrefix(e.Msg, "YAML syntax") {
					t.Errorf("problem without a position: %#v", e)
				}
			}
			if strings.ContainsAny(e.Error(), "\r\n") && len(errs) == 1 {
				// one problem is one line: a crafted key cannot forge more lines
				t.Errorf("problem spans lines: %q", e.Error())
			}
		}
		if _, err2 := config.Parse(name, dir, src); err2 == nil || err2.Error() != err.Error() {
			t.Fatalf("not deterministic:\n%v\n---\n%v", err, err2)
		}
	})
}
