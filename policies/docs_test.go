package policies_test

import (
	"encoding"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/portcullis/portcullis/internal/config"
)

// docFiles are the documents whose links are checked: the README and docs/*.md.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("docs/ holds %v, expected policy, operations, threats, guarantees, performance and design", files)
	}
	return append([]string{"../README.md"}, files...)
}

var (
	fenceRE   = regexp.MustCompile("(?ms)^```.*?^```[ \t]*$")
	codeRE    = regexp.MustCompile("`[^`\n]*`")
	linkRE    = regexp.MustCompile(`\[[^\]\n]*\]\(([^)\s]+)\)`)
	headingRE = regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$`)
)

// prose returns md without fenced code blocks, indented code blocks and code
// spans, where a link is text and not a link.
func prose(md string) string {
	md = fenceRE.ReplaceAllString(md, "")
	var b strings.Builder
	blank := true
	inCode := false
	for line := range strings.SplitSeq(md, "\n") {
		indented := strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "\t")
		switch {
		case strings.TrimSpace(line) == "":
			blank = true
			b.WriteString("\n")
			continue
		case indented && (blank || inCode):
			inCode = true
		default:
			inCode = false
			b.WriteString(codeRE.ReplaceAllString(line, "")) // a code span on one line
		}
		blank = false
		b.WriteString("\n")
	}
	return b.String()
}

// anchors returns the anchors GitHub makes for the headings of md: lower case,
// punctuation dropped, spaces as hyphens, "-1", "-2"… for repeats.
func anchors(md string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, m := range headingRE.FindAllStringSubmatch(fenceRE.ReplaceAllString(md, ""), -1) {
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			seen[a] = n + 1
			a = fmt.Sprintf("%s-%d", a, n)
		} else {
			seen[a] = 1
		}
		out[a] = true
	}
	return out
}

// TestDocsLinksResolve checks every relative link of the README and docs/*.md: the
// file or folder it names exists in the repository, and its #anchor is a heading of
// the document it points to. Links to other sites are not fetched.
func TestDocsLinksResolve(t *testing.T) {
	checked := 0
	for _, doc := range docFiles(t) {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range linkRE.FindAllStringSubmatch(prose(string(b)), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			checked++
			path, frag, _ := strings.Cut(target, "#")
			file := doc
			if path != "" {
				file = filepath.Join(filepath.Dir(doc), filepath.FromSlash(path))
				rel, err := filepath.Rel("..", file)
				if err != nil || strings.HasPrefix(rel, "..") {
					t.Errorf("%s: link %q leaves the repository", doc, target)
					continue
				}
				if _, err := os.Stat(file); err != nil {
					t.Errorf("%s: link %q: %v", doc, target, err)
					continue
				}
			}
			if frag == "" {
				continue
			}
			if !strings.HasSuffix(file, ".md") {
				t.Errorf("%s: link %q: an anchor into a file that is not Markdown", doc, target)
				continue
			}
			tb, err := os.ReadFile(file)
			if err != nil {
				t.Errorf("%s: link %q: %v", doc, target, err)
				continue
			}
			if !anchors(string(tb))[frag] {
				t.Errorf("%s: link %q: no heading with anchor #%s in %s", doc, target, frag, file)
			}
		}
	}
	if checked < 20 {
		t.Fatalf("checked only %d links: the link pattern no longer finds them", checked)
	}
}

// TestDocsLinkCheckerCatchesBrokenLinks makes sure the checker's parts fail on what
// they must: a missing anchor, a link in code, GitHub's anchor spelling.
func TestDocsLinkCheckerCatchesBrokenLinks(t *testing.T) {
	a := anchors("# Title\n## DNS: filtering server\n## `forward`\n## Hostile input — 95 cases\n## Soak\n## Soak\n```\n# not a heading\n```\n")
	for _, want := range []string{"title", "dns-filtering-server", "forward", "hostile-input--95-cases", "soak", "soak-1"} {
		if !a[want] {
			t.Errorf("anchor %q missing from %v", want, a)
		}
	}
	if a["not-a-heading"] {
		t.Error("a line in a code block was taken as a heading")
	}
	links := linkRE.FindAllStringSubmatch(prose("see [a](a.md) and `[b](b.md)`\n\n    [c](c.md)\n\n```\n[d](d.md)\n```\n[e](e.md#x)\n"), -1)
	var got []string
	for _, l := range links {
		got = append(got, l[1])
	}
	if !slices.Equal(got, []string{"a.md", "e.md#x"}) {
		t.Errorf("links found %v, want [a.md e.md#x]", got)
	}
}

var (
	durationType    = reflect.TypeFor[time.Duration]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	yamlUnmarshaler = reflect.TypeFor[yaml.Unmarshaler]()
)

// policyKeys walks t the way the policy decoder does (yaml tags, inline structs,
// pointers, maps and lists; values with their own decoding are leaves) and calls
// add with every key: "forward.listen", "pools.*.members[].url".
func policyKeys(t reflect.Type, path string, add func(string)) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType || reflect.PointerTo(t).Implements(textUnmarshaler) || reflect.PointerTo(t).Implements(yamlUnmarshaler) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			if strings.Contains(opts, "inline") {
				policyKeys(sf.Type, path, add)
				continue
			}
			if name == "" {
				name = strings.ToLower(sf.Name)
			}
			if path != "" {
				name = path + "." + name
			}
			add(name)
			policyKeys(sf.Type, name, add)
		}
	case reflect.Slice:
		policyKeys(t.Elem(), path+"[]", add)
	case reflect.Map:
		policyKeys(t.Elem(), path+".*", add)
	}
}

// referenceRowRE is a row of a key table in docs/policy.md: | `key` | type | meaning |.
var referenceRowRE = regexp.MustCompile("^\\| `([^`]+)` \\|")

// documentedKeys returns the first cells of the rows of the tables whose header
// starts with "| key |" in md.
func documentedKeys(md string) []string {
	var keys []string
	inKeyTable := false
	for line := range strings.SplitSeq(md, "\n") {
		switch {
		case !strings.HasPrefix(line, "|"):
			inKeyTable = false
		case strings.HasPrefix(line, "| key |"):
			inKeyTable = true
		case inKeyTable:
			if m := referenceRowRE.FindStringSubmatch(line); m != nil {
				keys = append(keys, m[1])
			}
		}
	}
	return keys
}

// TestPolicyReferenceComplete checks docs/policy.md against the configuration structs:
// every key the decoder accepts is documented (as `key`, in a table row or in the
// text), and every key in the first column of a table row exists.
func TestPolicyReferenceComplete(t *testing.T) {
	b, err := os.ReadFile("../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	accepted := map[string]bool{}
	policyKeys(reflect.TypeFor[config.Policy](), "", func(k string) { accepted[k] = true })
	if len(accepted) < 100 || !accepted["forward.listen"] || !accepted["pools.*.members[].url"] || !accepted["rules[].action"] {
		t.Fatalf("the walk found %d keys, not the policy's: %v", len(accepted), accepted)
	}
	var missing []string
	for k := range accepted {
		if !strings.Contains(doc, "`"+k+"`") {
			missing = append(missing, k)
		}
	}
	slices.Sort(missing)
	for _, k := range missing {
		t.Errorf("docs/policy.md does not document `%s` (add a row: | `%s` | type | meaning |)", k, k)
	}
	rows := documentedKeys(doc)
	if len(rows) < len(accepted) {
		t.Errorf("docs/policy.md has %d key rows for %d keys", len(rows), len(accepted))
	}
	for _, k := range rows {
		if !accepted[k] {
			t.Errorf("docs/policy.md documents `%s`, which the policy decoder does not accept", k)
		}
	}
}

// TestReadmeStartsWithTheTwoCommands keeps the README's first lines what a fresh
// machine needs: run on the embedded default policy, and run every test.
func TestReadmeStartsWithTheTwoCommands(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const start = "# Portcullis\n\n    go run ./cmd/portcullis run\n    go test -race -shuffle=on ./...\n\n"
	if !strings.HasPrefix(string(b), start) {
		t.Fatalf("README.md must start with\n%s", start)
	}
}
