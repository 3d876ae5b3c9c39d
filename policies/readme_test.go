package policies_test

import (
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/portcullis/portcullis/internal/config"
)

// TestReadmeExamplesDecode checks that every YAML example in the README and in the
// policy reference (docs/policy.md) uses only fields and shapes the policy file
// accepts.
func TestReadmeExamplesDecode(t *testing.T) {
	for _, doc := range []struct {
		file string
		min  int // examples expected at least: the pattern still finds them
	}{
		{"../README.md", 4},
		{"../docs/policy.md", 6},
	} {
		b, err := os.ReadFile(doc.file)
		if err != nil {
			t.Fatal(err)
		}
		blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(b), -1)
		if len(blocks) < doc.min {
			t.Fatalf("found %d YAML examples in %s, expected at least %d", len(blocks), doc.file, doc.min)
		}
		// Examples are fragments: references to lists, pools or files they don't define
		// are fine; every other problem (a bad value, an unknown field) is not.
		fragment := regexp.MustCompile(`cannot read|unknown (list|pool|group|schedule|anonymize profile|cache policy)|no category folder|need a cache section|a route needs a pool|not a folder|no such file`)
		for i, m := range blocks {
			name := doc.file + " example " + strings.SplitN(m[1], "\n", 2)[0]
			if err := config.Decode(name, []byte(m[1])); err != nil {
				t.Errorf("%s:\n%v", name, err)
				continue
			}
			_, err := config.Parse(name, t.TempDir(), []byte(m[1]))
			var errs config.Errors
			if errors.As(err, &errs) {
				for _, e := range errs {
					if !fragment.MatchString(e.Msg) {
						t.Errorf("%s YAML example %d: %v", doc.file, i+1, e)
					}
				}
			} else if err != nil {
				t.Errorf("%s YAML example %d: %v", doc.file, i+1, err)
			}
		}
	}
}
