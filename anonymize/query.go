package anonymize

import (
	"net/url"
	"strings"

	"github.com/gobwas/glob"
)

// paramSet removes query parameters by exact name or glob, keeping every other byte
// of the query as it was: order, percent-encodings, '+', empty values and empty
// segments ("a=1&&b=2").
type paramSet struct {
	exact    map[string]struct{}
	prefixes []string // "utm_*" is the prefix "utm_": a HasPrefix, not a glob walk
	globs    []*glob.Pattern
}

// compileParamSet builds a paramSet from validated patterns.
func compileParamSet(patterns []string) paramSet {
	s := paramSet{exact: make(map[string]struct{})}
	for _, pat := range patterns {
		if !strings.ContainsAny(pat, paramMeta) {
			s.exact[pat] = struct{}{}
			continue
		}
		if prefix, ok := literalPrefix(pat, paramMeta); ok {
			s.prefixes = append(s.prefixes, prefix)
			continue
		}
		if g, err := glob.Compile(pat); err == nil {
			s.globs = append(s.globs, g)
		}
	}
	return s
}

// paramMeta are the characters with a meaning in gobwas/glob syntax.
const paramMeta = `*?[]{}\`

// literalPrefix reports whether pat is a literal followed by one trailing '*', and
// returns the literal.
func literalPrefix(pat, meta string) (string, bool) {
	prefix, ok := strings.CutSuffix(pat, "*")
	return prefix, ok && !strings.ContainsAny(prefix, meta)
}

func (s *paramSet) empty() bool {
	return len(s.exact) == 0 && len(s.prefixes) == 0 && len(s.globs) == 0
}

// match reports whether the raw segment "name=value" (or "name") is to be removed.
// The name is matched decoded; decoding allocates only for names holding '%' or '+'.
func (s *paramSet) match(segment string) bool {
	name, _, _ := strings.Cut(segment, "=")
	if name == "" {
		return false
	}
	if strings.ContainsAny(name, "%+") {
		if dec, err := url.QueryUnescape(name); err == nil {
			name = dec
		}
	}
	if _, ok := s.exact[name]; ok {
		return true
	}
	for _, p := range s.prefixes {
		if strings.HasPrefix(name, p) {
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

// strip returns rawQuery without the matching parameters and whether it removed
// any. When nothing matches it returns rawQuery itself and allocates nothing.
func (s *paramSet) strip(rawQuery string) (string, bool) {
	if rawQuery == "" || s.empty() {
		return rawQuery, false
	}
	first := -1 // byte offset of the first segment to remove
	for off, rest := 0, rawQuery; ; {
		seg, tail, more := strings.Cut(rest, "&")
		if s.match(seg) {
			first = off
			break
		}
		if !more {
			break
		}
		off += len(seg) + 1
		rest = tail
	}
	if first < 0 {
		return rawQuery, false
	}
	var b strings.Builder
	b.Grow(len(rawQuery))
	kept := 0
	if first > 0 {
		// Everything before the first removed segment is kept as is, without its
		// trailing '&' (written again before the next kept segment).
		b.WriteString(rawQuery[:first-1])
		kept = 1
	}
	for rest := rawQuery[first:]; ; {
		seg, tail, more := strings.Cut(rest, "&")
		if !s.match(seg) {
			if kept > 0 {
				b.WriteByte('&')
			}
			b.WriteString(seg)
			kept++
		}
		if !more {
			break
		}
		rest = tail
	}
	return b.String(), true
}
