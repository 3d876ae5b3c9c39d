package phrase

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// MaxWeight bounds the absolute value of one entry's weight, so no sum of a
// page's hits can overflow.
const MaxWeight = 1_000_000

// Entry is one line of a phrase list: a phrase, or a combination of phrases
// that must all appear, with its weight.
type Entry struct {
	// Phrases holds the normalised phrases (as the text is: ASCII-lowercased,
	// punctuation made spaces, space runs made one space; leading and trailing
	// spaces kept: they require a word boundary). More than one means a
	// combination.
	Phrases []string
	// Weight is added to the page's score once when the entry matches; it may
	// be negative (phrases that mark a page as legitimate).
	Weight int
	// Banned marks an entry written without a weight ("<phrase>", as in
	// e2guardian's bannedphraselist): a page containing it is blocked whatever
	// its score.
	Banned bool
	// Category is the list category in force (#listcategory), or "".
	Category string
	// Source is "FILE:LINE".
	Source string
}

// List is a parsed phrase list.
type List struct {
	Name    string // the file name, or the name passed to Parse
	Entries []Entry
}

// ParseError is a malformed line of a phrase list.
type ParseError struct {
	File string
	Line int
	Msg  string
}

// Error implements error as "FILE:LINE: MSG".
func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// maxIncludeDepth bounds nested .Include directives.
const maxIncludeDepth = 8

// maxLineLen bounds one line of a list file.
const maxLineLen = 64 << 10

// LoadFile reads the phrase list at path. Lines are, after trimming white
// space:
//
//	# comment, or #listcategory: "Name" (sets Entry.Category for what follows)
//	<phrase><weight>              e2guardian weighted phrase, e.g. < sex ><40>
//	<phrase a>,<phrase b><weight> combination: counts when all appear
//	<phrase>                      e2guardian banned phrase (no weight)
//	weight phrase words           the simple format, e.g. -20 sex education
//	.Include<other/file>          e2guardian include, relative to this file
//
// Phrases are normalised as the scanned text is (see the package comment), so
// e2guardian lists load unchanged; its percentage weights (<50%>) are
// rejected, its #noconvert and #time: comments ignored.
//
// Weights are integers, negative allowed, at most MaxWeight in absolute value.
// Spaces inside <...> are kept and mean word boundaries: "< cat >" does not
// match "category". Malformed lines are *ParseError naming FILE:LINE.
func LoadFile(path string) (*List, error) {
	l := &List{Name: path}
	if err := l.load(path, 0, map[string]bool{}); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *List) load(path string, depth int, open map[string]bool) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("phrase: %w", err)
	}
	if open[abs] {
		return fmt.Errorf("phrase: %s includes itself", path)
	}
	open[abs] = true
	defer delete(open, abs)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("phrase: %w", err)
	}
	defer f.Close()
	return l.parse(f, path, func(n int, inc string) error {
		if depth+1 > maxIncludeDepth {
			return &ParseError{path, n, "includes nested too deep"}
		}
		if !filepath.IsAbs(inc) {
			inc = filepath.Join(filepath.Dir(path), inc)
		}
		return l.load(inc, depth+1, open)
	})
}

// Parse reads a phrase list from r in the format LoadFile describes; name
// labels errors and Entry.Source. An .Include line is an error here (there is
// no directory to resolve it against).
func Parse(r io.Reader, name string) (*List, error) {
	l := &List{Name: name}
	err := l.parse(r, name, func(n int, _ string) error {
		return &ParseError{name, n, ".Include needs LoadFile"}
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (l *List) parse(r io.Reader, name string, include func(n int, path string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineLen)
	category := ""
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		switch {
		case line == "":
			continue
		case line[0] == '#':
			if rest, ok := cutPrefixFold(line, "#listcategory:"); ok {
				category = strings.Trim(strings.TrimSpace(rest), `"`)
			}
			continue
		case line[0] == '.':
			rest, ok := cutPrefixFold(line, ".include<")
			if !ok || !strings.HasSuffix(rest, ">") || rest == ">" {
				return &ParseError{name, n, "want .Include<path>"}
			}
			if err := include(n, rest[:len(rest)-1]); err != nil {
				return err
			}
			continue
		}
		e, msg := parseLine(line)
		if msg != "" {
			return &ParseError{name, n, msg}
		}
		e.Category = category
		e.Source = fmt.Sprintf("%s:%d", name, n)
		l.Entries = append(l.Entries, e)
	}
	if err := sc.Err(); err != nil {
		return &ParseError{name, n + 1, err.Error()}
	}
	return nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return "", false
}

// parseLine parses one non-comment line; msg says what is wrong.
func parseLine(line string) (e Entry, msg string) {
	if line[0] != '<' {
		i := strings.IndexAny(line, " \t")
		if i < 0 {
			return e, "want <phrase><weight> or WEIGHT PHRASE"
		}
		weight, msg := parseWeight(line[:i])
		if msg != "" {
			return e, "want <phrase><weight> or WEIGHT PHRASE: " + msg
		}
		p, msg := normalizePhrase(strings.TrimSpace(line[i+1:]))
		if msg != "" {
			return e, msg
		}
		return Entry{Phrases: []string{p}, Weight: weight}, ""
	}
	var tokens []string
	rest := line
	for {
		if rest == "" || rest[0] != '<' {
			return e, "want <phrase>"
		}
		end := strings.IndexByte(rest, '>')
		if end < 0 {
			return e, "unclosed <"
		}
		tokens = append(tokens, rest[1:end])
		rest = rest[end+1:]
		if strings.HasPrefix(rest, ",") {
			rest = rest[1:]
			continue
		}
		break
	}
	rest = strings.TrimSpace(rest)
	switch {
	case rest == "":
		e.Banned = true
	case rest[0] == '<' && rest[len(rest)-1] == '>' && strings.Count(rest, "<") == 1:
		w, msg := parseWeight(rest[1 : len(rest)-1])
		if msg != "" {
			return e, msg
		}
		e.Weight = w
	default:
		return e, fmt.Sprintf("unexpected %q after the phrases (want <weight>)", rest)
	}
	for _, t := range tokens {
		p, msg := normalizePhrase(t)
		if msg != "" {
			return e, msg
		}
		if !contains(e.Phrases, p) {
			e.Phrases = append(e.Phrases, p)
		}
	}
	return e, ""
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func parseWeight(s string) (int, string) {
	if strings.HasSuffix(s, "%") {
		return 0, fmt.Sprintf("percentage weight %q is not supported: write an absolute weight", s)
	}
	w, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Sprintf("weight %q is not an integer", s)
	}
	if w > MaxWeight || w < -MaxWeight {
		return 0, fmt.Sprintf("weight %d is beyond ±%d", w, MaxWeight)
	}
	return w, ""
}

// normalizePhrase applies the scanner's normalisation to a phrase: ASCII
// lowercase, each run of white space one space (ends kept).
func normalizePhrase(p string) (string, string) {
	var b bytes.Buffer
	space := false
	for i := 0; i < len(p); i++ {
		if c, keep := squeeze(p[i], &space); keep {
			b.WriteByte(c)
		}
	}
	out := b.String()
	switch {
	case strings.TrimSpace(out) == "":
		return "", "empty phrase"
	case strings.ContainsAny(out, "<>"):
		return "", fmt.Sprintf("phrase %q contains < or >, which never match (tags are stripped)", out)
	}
	return out, ""
}

// foldByte is the scanner's byte normalisation: ASCII letters lowercased;
// control characters, white space and the punctuation e2guardian's
// String::removePunctuation turns into spaces (everything below '/', and
// : ; = ? @ [ \ ] ^ _ `) made ' '; every other byte (digits, / < > { | } ~,
// UTF-8) unchanged.
func foldByte(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c + 'a' - 'A'
	case c < '/', c == ':', c == ';', c == '=', c == '?', c == '@', c >= '[' && c <= '`':
		return ' '
	}
	return c
}

// squeeze folds b and drops it when it is a space following a space; *space
// tracks whether the last byte kept was a space.
func squeeze(b byte, space *bool) (c byte, keep bool) {
	c = foldByte(b)
	if c == ' ' && *space {
		return c, false
	}
	*space = c == ' '
	return c, true
}
