package anonymize

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gobwas/glob"
	"golang.org/x/net/http/httpguts"
)

// headerSet removes header fields by exact name or case-insensitive glob. Exact
// names are deleted by their canonical key; globs are tried against every key only
// when there are any. Patterns are compiled once, each letter turned into a
// two-case class, so matching needs no lower-casing and no allocation.
type headerSet struct {
	exact    []string // canonical names
	prefixes []string // "X-Powered-By*": compared without regard to case
	globs    []*glob.Pattern
}

// checkHeaderPattern reports whether pat is a header name or a glob over header
// names: token characters plus '*' and '?'.
func checkHeaderPattern(pat string) error {
	if pat == "" {
		return errors.New("empty pattern")
	}
	if !isGlob(pat) {
		if !httpguts.ValidHeaderFieldName(pat) {
			return fmt.Errorf("%q is not a valid header name", pat)
		}
		return nil
	}
	if !httpguts.ValidHeaderFieldName(strings.NewReplacer("*", "x", "?", "x").Replace(pat)) {
		return fmt.Errorf("%q: a header glob holds header-name characters, '*' and '?' only", pat)
	}
	return nil
}

func isGlob(pat string) bool { return strings.ContainsAny(pat, "*?") }

// compileHeaderSet builds a headerSet from validated patterns.
func compileHeaderSet(patterns []string) headerSet {
	var s headerSet
	for _, pat := range patterns {
		if !isGlob(pat) {
			if c := http.CanonicalHeaderKey(pat); !slices.Contains(s.exact, c) {
				s.exact = append(s.exact, c)
			}
			continue
		}
		if prefix, ok := literalPrefix(pat, "*?"); ok {
			s.prefixes = append(s.prefixes, prefix)
			continue
		}
		var b strings.Builder
		for i := 0; i < len(pat); i++ {
			c := pat[i]
			lower, upper := c|0x20, c&^0x20
			if lower >= 'a' && lower <= 'z' {
				b.WriteByte('[')
				b.WriteByte(lower)
				b.WriteByte(upper)
				b.WriteByte(']')
				continue
			}
			b.WriteByte(c)
		}
		// Validated patterns hold no glob syntax beyond '*' and '?', so this compiles.
		if g, err := glob.Compile(b.String()); err == nil {
			s.globs = append(s.globs, g)
		}
	}
	return s
}

// empty reports whether the set removes nothing.
func (s *headerSet) empty() bool {
	return len(s.exact) == 0 && len(s.prefixes) == 0 && len(s.globs) == 0
}

// match reports whether the field called name is in the set.
func (s *headerSet) match(name string) bool {
	for _, e := range s.exact {
		if strings.EqualFold(e, name) {
			return true
		}
	}
	return s.matchPattern(name)
}

// matchPattern reports whether name matches one of the prefixes or globs.
func (s *headerSet) matchPattern(name string) bool {
	for _, p := range s.prefixes {
		if len(name) >= len(p) && strings.EqualFold(name[:len(p)], p) {
			return true
		}
	}
	for _, g := range s.globs {
		if g.Match(name) {
			return true
		}
	}
	return false
}

// remove deletes the fields in the set from h.
func (s *headerSet) remove(h http.Header) {
	s.removeExact(h)
	if !s.hasPatterns() {
		return
	}
	for name := range h {
		if s.matchPattern(name) {
			delete(h, name)
		}
	}
}

// removeExact deletes the fields the set names exactly.
func (s *headerSet) removeExact(h http.Header) {
	for _, name := range s.exact {
		delete(h, name)
	}
}

// hasPatterns reports whether matching needs a pass over every field name.
func (s *headerSet) hasPatterns() bool { return len(s.prefixes) > 0 || len(s.globs) > 0 }

// headerValue is one field set by a profile, canonical name and prepared value.
type headerValue struct {
	name, value string
}
