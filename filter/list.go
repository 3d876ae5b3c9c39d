package filter

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
)

// Format names a list file format, as written in a policy file.
type Format string

// The list formats LoadList reads.
const (
	// FormatDomains: one domain per line; the domain and all its subdomains
	// are listed. '#' starts a comment (whole line, or after whitespace);
	// blank lines are skipped; a leading "." or "*." is accepted. This is
	// the squidGuard/UT1 "domains" file.
	FormatDomains Format = "domains"
	// FormatHosts: hosts-file lines, "0.0.0.0 name" or "127.0.0.1 name
	// [name…]"; each name is listed exactly (no subdomains); localhost-style
	// names are skipped; '#' comments.
	FormatHosts Format = "hosts"
	// FormatAdblock: the "||domain^" subset of Adblock Plus syntax (domain
	// and subdomains) and "@@||domain^" exceptions (an allow set that wins
	// over the list); '!' and "# " comments and the "[Adblock …]" header are
	// skipped; any other rule (cosmetic, paths, regexps, $options) is counted
	// in List.Unsupported.
	FormatAdblock Format = "adblock"
	// FormatUT1: a UT1/squidGuard category folder DIR/CATEGORY holding a
	// "domains" file (FormatDomains) and/or a "urls" file of
	// "host/path-prefix" lines (see List.MatchURL).
	FormatUT1 Format = "ut1"
)

// Formats returns every Format, for validation messages.
func Formats() []Format {
	return []Format{FormatDomains, FormatHosts, FormatAdblock, FormatUT1}
}

// Valid reports whether f is a known format.
func (f Format) Valid() bool {
	switch f {
	case FormatDomains, FormatHosts, FormatAdblock, FormatUT1:
		return true
	}
	return false
}

// maxProblems bounds List.Problems; List.Malformed counts them all.
const maxProblems = 100

// maxLine is the longest line read whole; longer lines are reported.
const maxLine = 64 << 10

// LineError is one malformed list line.
type LineError struct {
	File string
	Line int
	Msg  string
}

// Error returns "file:line: msg".
func (e LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// List is a loaded blocklist. It is immutable once loaded and safe for
// concurrent use; its indexes hold no pointers per entry.
type List struct {
	// Problems holds the first 100 malformed lines, in file order.
	Problems []LineError
	// Malformed counts every malformed line (skipped, never fatal).
	Malformed int
	// Unsupported counts adblock rules outside the supported subset.
	Unsupported int

	domains *DomainSet // subdomain semantics
	exact   *DomainSet // exact names (hosts files)
	allow   *DomainSet // adblock exceptions
	urls    *URLSet    // UT1 urls
}

var _ Matcher = (*List)(nil)

// Match reports whether host (lowercased, no port, no trailing dot) is
// listed: by a domain entry for it or a parent domain, or by an exact
// (hosts) entry, and not excepted by an adblock "@@" rule.
func (l *List) Match(host string) bool {
	if l == nil {
		return false
	}
	if !l.domains.Match(host) && !l.exact.MatchExact(host) {
		return false
	}
	return !l.allow.Match(host)
}

// MatchURL reports whether the request for host and path is listed: Match
// is true, or a UT1 urls entry covers it (see URLSet.Match).
func (l *List) MatchURL(host, path string) bool {
	if l == nil {
		return false
	}
	return l.Match(host) || l.urls.Match(host, path)
}

// Len returns the number of distinct entries (domains, names and URLs;
// adblock exceptions not counted).
func (l *List) Len() int {
	if l == nil {
		return 0
	}
	return l.domains.Len() + l.exact.Len() + l.urls.Len()
}

// ListStats describes a loaded list for the admin page.
type ListStats struct {
	Entries     int // distinct listed entries (Len)
	Exceptions  int // adblock "@@" entries
	Bytes       int // memory held by the indexes
	Malformed   int
	Unsupported int
}

// Stats returns the list's size figures.
func (l *List) Stats() ListStats {
	if l == nil {
		return ListStats{}
	}
	return ListStats{
		Entries:     l.Len(),
		Exceptions:  l.allow.Len(),
		Bytes:       l.domains.SizeBytes() + l.exact.SizeBytes() + l.allow.SizeBytes() + l.urls.SizeBytes(),
		Malformed:   l.Malformed,
		Unsupported: l.Unsupported,
	}
}

// LoadList reads a list file (for FormatUT1, a category folder). The file is
// streamed line by line: memory while loading is the index being built, not
// the file. Malformed lines are recorded in List.Problems and skipped; the
// error is non-nil only when the file (or, for UT1, both files) cannot be
// read, or the format is unknown.
func LoadList(format Format, path string) (*List, error) {
	var lp listParser
	switch format {
	case FormatDomains, FormatHosts, FormatAdblock:
		if err := lp.readFile(path, format); err != nil {
			return nil, err
		}
	case FormatUT1:
		if err := lp.readUT1(path); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("filter: unknown list format %q", format)
	}
	return lp.build(), nil
}

// listParser accumulates one List.
type listParser struct {
	list    List
	domains DomainSetBuilder
	exact   DomainSetBuilder
	allow   DomainSetBuilder
	urls    URLSetBuilder
}

func (p *listParser) build() *List {
	l := p.list
	l.domains = p.domains.Build()
	if p.exact.Len() > 0 {
		l.exact = p.exact.Build()
	}
	if p.allow.Len() > 0 {
		l.allow = p.allow.Build()
	}
	if p.urls.Len() > 0 {
		l.urls = p.urls.Build()
	}
	return &l
}

func (p *listParser) problem(file string, line int, msg string) {
	p.list.Malformed++
	if len(p.list.Problems) < maxProblems {
		p.list.Problems = append(p.list.Problems, LineError{File: file, Line: line, Msg: msg})
	}
}

// readUT1 loads DIR/CATEGORY/domains and DIR/CATEGORY/urls; either may be
// missing, not both.
func (p *listParser) readUT1(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("filter: %s: a UT1 category must be a folder", dir)
	}
	found := 0
	for _, f := range []struct {
		name   string
		format Format
	}{{"domains", FormatDomains}, {"urls", formatURLs}} {
		err := p.readFile(filepath.Join(dir, f.name), f.format)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		found++
	}
	if found == 0 {
		return fmt.Errorf("filter: %s: no domains or urls file: %w", dir, os.ErrNotExist)
	}
	return nil
}

// formatURLs is the UT1 urls file, only read inside a category.
const formatURLs Format = "urls"

// readFile streams one file through the parser for its format.
func (p *listParser) readFile(path string, format Format) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if format == FormatDomains {
		var size int64
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			size = st.Size()
		}
		return p.readDomains(f, path, size)
	}
	return p.read(f, path, format)
}

func (p *listParser) read(r io.Reader, name string, format Format) error {
	br := bufio.NewReaderSize(r, maxLine)
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			p.problem(name, lineNo, "line too long")
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			line = nil
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("filter: reading %s: %w", name, err)
		}
		if len(line) > 0 {
			if msg := p.parseLine(format, line); msg != "" {
				p.problem(name, lineNo, msg)
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// parseLine adds what one line lists and returns "" or what is wrong.
func (p *listParser) parseLine(format Format, line []byte) string {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return ""
	}
	switch format {
	case FormatDomains:
		line = stripComment(line)
		if len(line) == 0 {
			return ""
		}
		return addListed(&p.domains, line)
	case FormatHosts:
		return p.parseHostsLine(stripComment(line))
	case FormatAdblock:
		return p.parseAdblockLine(line)
	case formatURLs:
		line = stripComment(line)
		if len(line) == 0 {
			return ""
		}
		return p.urls.add(line)
	}
	return "unknown format"
}

// stripComment removes a '#' comment (at the start or after whitespace).
func stripComment(line []byte) []byte {
	for i, c := range line {
		if c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return bytes.TrimSpace(line[:i])
		}
	}
	return line
}

// addListed adds one domain from a list line, trying the exact bytes first
// (no allocation) and NormalizeHost for anything else (IDNA, IP literals).
func addListed(b *DomainSetBuilder, d []byte) string {
	if bytes.IndexAny(d, " \t") >= 0 {
		return fmt.Sprintf("expected one domain, got %q", truncate(d))
	}
	if addDomain(b, d) == nil {
		return ""
	}
	s := string(d)
	for len(s) > 0 && s[0] == '.' {
		s = s[1:]
	}
	if len(s) > 2 && s[:2] == "*." {
		s = s[2:]
	}
	h, err := NormalizeHost(s)
	if err != nil {
		return fmt.Sprintf("not a domain: %q", truncate(d))
	}
	if err := b.Add(h); err != nil {
		return fmt.Sprintf("not a domain: %q: %v", truncate(d), err)
	}
	return ""
}

func truncate(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

// localName reports the names hosts files map to themselves; never listed.
func localName(name []byte) bool {
	switch string(bytes.ToLower(name)) {
	case "localhost", "localhost.localdomain", "local", "broadcasthost",
		"ip6-localhost", "ip6-loopback", "ip6-localnet", "ip6-mcastprefix",
		"ip6-allnodes", "ip6-allrouters", "ip6-allhosts", "0.0.0.0":
		return true
	}
	return false
}

func (p *listParser) parseHostsLine(line []byte) string {
	if len(line) == 0 {
		return ""
	}
	fields := bytes.Fields(line)
	if len(fields) < 2 {
		return fmt.Sprintf("expected \"address name…\", got %q", truncate(line))
	}
	if _, err := netip.ParseAddr(string(fields[0])); err != nil {
		return fmt.Sprintf("not an address: %q", truncate(fields[0]))
	}
	for _, name := range fields[1:] {
		if localName(name) {
			continue
		}
		if msg := addListed(&p.exact, name); msg != "" {
			return msg
		}
	}
	return ""
}

func (p *listParser) parseAdblockLine(line []byte) string {
	switch {
	case line[0] == '!', line[0] == '[',
		line[0] == '#' && (len(line) == 1 || line[1] == ' '):
		return ""
	}
	b := &p.domains
	if bytes.HasPrefix(line, []byte("@@")) {
		b, line = &p.allow, line[2:]
	}
	if !bytes.HasPrefix(line, []byte("||")) || !bytes.HasSuffix(line, []byte("^")) {
		p.list.Unsupported++
		return ""
	}
	d := line[2 : len(line)-1]
	if bytes.ContainsAny(d, "*/^|$") {
		p.list.Unsupported++ // wildcards and paths are outside the subset
		return ""
	}
	return addListed(b, d)
}
