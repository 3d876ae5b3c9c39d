package filter

import (
	"fmt"
	"strings"

	"github.com/gobwas/glob"
)

// GlobSet matches host names against a set of glob patterns (gobwas/glob
// syntax, globstar mode), with '.' as the separator:
//
//   - any run of characters within one label ("*.tiktok.*" matches
//     "www.tiktok.com", not "tiktok.com", "a.b.tiktok.com" nor
//     "www.tiktok.co.uk")
//     **.     zero or more whole labels ("**.tiktok.com" matches "tiktok.com",
//     "www.tiktok.com" and "a.b.tiktok.com"; "tiktok.**" matches
//     "tiktok.com" and "tiktok.co.uk")
//     **      elsewhere, any run of characters, dots included
//     ?       one character other than '.'
//     [abc] [a-z] [!abc]   one character from (or not from) a class
//     {a,b}   either alternative ("*.{tiktok,douyin}.com")
//     \x      the character x literally
//
// Patterns are lowercased; hosts are expected lowercased (see NormalizeHost).
// Each pattern is indexed by its longest label made only of literal
// characters; Match looks up the host's labels in that index, so only the
// patterns sharing a label with the host (plus those with no literal label)
// are tried.
type GlobSet struct{ idx globIndex }

// PathGlobSet matches URL paths against glob patterns with '/' as the
// separator: "*" stays within one path segment ("/shorts/*" matches
// "/shorts/abc", not "/shorts/a/b" nor "/shorts"), "**" crosses segments
// ("/shorts/**" matches "/shorts/abc" and "/shorts/a/b"; "/**/x.mp4" matches
// "/x.mp4" and "/a/b/x.mp4"). Paths are case-sensitive. Indexed by literal
// segments like GlobSet.
type PathGlobSet struct{ idx globIndex }

// NewGlobSet compiles host patterns. The error names the first bad pattern.
func NewGlobSet(patterns []string) (*GlobSet, error) {
	lower := make([]string, len(patterns))
	for i, p := range patterns {
		lower[i] = strings.ToLower(p)
	}
	idx, err := compileGlobs(lower, '.')
	if err != nil {
		return nil, err
	}
	return &GlobSet{idx: idx}, nil
}

// NewPathGlobSet compiles path patterns. The error names the first bad one.
func NewPathGlobSet(patterns []string) (*PathGlobSet, error) {
	idx, err := compileGlobs(patterns, '/')
	if err != nil {
		return nil, err
	}
	return &PathGlobSet{idx: idx}, nil
}

var (
	_ Matcher = (*GlobSet)(nil)
)

// Match reports whether host matches any pattern.
func (s *GlobSet) Match(host string) bool {
	return s != nil && s.idx.match(host)
}

// Len returns the number of patterns.
func (s *GlobSet) Len() int {
	if s == nil {
		return 0
	}
	return s.idx.n
}

// Match reports whether path matches any pattern.
func (s *PathGlobSet) Match(path string) bool {
	return s != nil && s.idx.match(path)
}

// Len returns the number of patterns.
func (s *PathGlobSet) Len() int {
	if s == nil {
		return 0
	}
	return s.idx.n
}

// GlobError reports a pattern that does not compile.
type GlobError struct {
	Pattern string
	Err     error
}

// Error names the pattern.
func (e *GlobError) Error() string { return fmt.Sprintf("bad glob %q: %v", e.Pattern, e.Err) }

// Unwrap returns the compiler's error.
func (e *GlobError) Unwrap() error { return e.Err }

// globIndex maps a literal segment to the globs containing it; unindexed
// globs are tried for every input.
type globIndex struct {
	sep       byte
	byLiteral map[string][]*glob.Pattern
	always    []*glob.Pattern
	n         int
}

func compileGlobs(patterns []string, sep byte) (globIndex, error) {
	idx := globIndex{sep: sep, byLiteral: map[string][]*glob.Pattern{}}
	for _, p := range patterns {
		if p == "" {
			return globIndex{}, &GlobError{Pattern: p, Err: fmt.Errorf("empty pattern")}
		}
		g, err := glob.Compiler{Separators: []rune{rune(sep)}, Globstar: true}.Compile(p)
		if err != nil {
			return globIndex{}, &GlobError{Pattern: p, Err: err}
		}
		idx.n++
		if lit := longestLiteralSegment(p, sep); lit != "" {
			idx.byLiteral[lit] = append(idx.byLiteral[lit], g)
		} else {
			idx.always = append(idx.always, g)
		}
	}
	return idx, nil
}

// longestLiteralSegment returns the longest separator-delimited segment of p
// made only of literal characters, or "" when there is none (or p holds
// escapes or braces, whose segments cannot be split safely). A literal
// segment delimited by separators (or the pattern's ends) can only match a
// whole segment of the input, since '*' and '?' never match a separator and
// '**' can only run up to the literal separator.
func longestLiteralSegment(p string, sep byte) string {
	if strings.ContainsAny(p, `\{}`) {
		return ""
	}
	best := ""
	for _, seg := range strings.Split(p, string(sep)) {
		if len(seg) > len(best) && !strings.ContainsAny(seg, "*?[]!") {
			best = seg
		}
	}
	return best
}

// match tries the globs indexed under each segment of s, then the rest.
func (x *globIndex) match(s string) bool {
	if len(x.byLiteral) > 0 {
		rest := s
		for {
			i := strings.IndexByte(rest, x.sep)
			seg := rest
			if i >= 0 {
				seg = rest[:i]
			}
			for _, g := range x.byLiteral[seg] {
				if g.Match(s) {
					return true
				}
			}
			if i < 0 {
				break
			}
			rest = rest[i+1:]
		}
	}
	for _, g := range x.always {
		if g.Match(s) {
			return true
		}
	}
	return false
}
