package phrase

import (
	"strings"
	"testing"
)

// FuzzParse checks that the list parser never panics and that whatever it
// accepts is well formed and compiles into a matcher that scans without
// panicking. Seeds: testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, src string, text string) {
		l, err := Parse(strings.NewReader(src), "fuzz")
		if err != nil {
			return
		}
		for _, e := range l.Entries {
			if len(e.Phrases) == 0 || e.Weight > MaxWeight || e.Weight < -MaxWeight || e.Banned && e.Weight != 0 {
				t.Fatalf("bad entry %+v", e)
			}
			for _, p := range e.Phrases {
				if strings.TrimSpace(p) == "" || strings.ContainsAny(p, "<>\t\n\r") || strings.Contains(p, "  ") || !normalised(p) {
					t.Fatalf("phrase %q not normalised", p)
				}
			}
		}
		s := scan(Compile(l), text)
		if len(s.Top(0)) > len(l.Entries) {
			t.Fatalf("more hits than entries")
		}
	})
}

func normalised(p string) bool {
	for i := 0; i < len(p); i++ {
		if foldByte(p[i]) != p[i] {
			return false
		}
	}
	return true
}

// FuzzChunks checks that where a body is split between Writes never changes
// its score. Seeds: testdata/fuzz/FuzzChunks.
func FuzzChunks(f *testing.F) {
	m := Compile(mustParse(f, "<free spins><30>\n< bet ><15>\n<casino>,<poker><50>\n<forbidden word>\n<a><1>\n<ab><2>\n<bab><4>\n"))
	f.Fuzz(func(t *testing.T, text string, cut1, cut2 uint16) {
		i, j := int(cut1)%(len(text)+1), int(cut2)%(len(text)+1)
		if i > j {
			i, j = j, i
		}
		whole := scan(m, text)
		s := m.NewScanner()
		s.Write([]byte(text[:i]))
		s.Write([]byte(text[i:j]))
		s.Write([]byte(text[j:]))
		s.Close()
		if s.Score() != whole.Score() || s.Banned() != whole.Banned() {
			t.Fatalf("%q cut at %d,%d: %d %v; whole %d %v", text, i, j, s.Score(), s.Banned(), whole.Score(), whole.Banned())
		}
	})
}
