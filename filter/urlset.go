package filter

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"
)

// URLSet is an immutable, pointer-free set of "host/path-prefix" entries
// (the UT1/squidGuard "urls" file). An entry matches a request when the
// request's host is the entry's host or a subdomain of it, and the request's
// path starts with the entry's path at a segment boundary: "/foo" covers
// "/foo", "/foo/" and "/foo/bar", not "/foobar"; an entry path ending in
// '/' covers everything below it. Comparison ignores ASCII case, as
// squidGuard does; a leading "www." and a scheme on the entry are dropped.
type URLSet struct {
	arena []byte   // sorted keys: host key, 0x00, lowercased path
	offs  []uint32 // entry i is arena[offs[i]:offs[i+1]]
}

// URLSetBuilder collects entries for a URLSet. The zero value is ready.
type URLSetBuilder struct {
	arena []byte
	offs  []uint32
}

// Len returns the number of entries added so far.
func (b *URLSetBuilder) Len() int { return len(b.offs) }

func (b *URLSetBuilder) add(line []byte) string {
	if bytes.IndexAny(line, " \t") >= 0 {
		return fmt.Sprintf("expected one host/path entry, got %q", truncate(line))
	}
	if i := bytes.Index(line, []byte("://")); i >= 0 {
		line = line[i+3:]
	}
	hostPart, path := line, []byte("/")
	if i := bytes.IndexByte(line, '/'); i >= 0 {
		hostPart, path = line[:i], line[i:]
	}
	if len(hostPart) > 4 && bytes.EqualFold(hostPart[:4], []byte("www.")) {
		hostPart = hostPart[4:]
	}
	host, err := NormalizeHost(string(hostPart))
	if err != nil {
		return fmt.Sprintf("not a host/path entry: %q", truncate(line))
	}
	for _, c := range path {
		if c <= ' ' || c == 0x7f {
			return fmt.Sprintf("control byte in path: %q", truncate(line))
		}
	}
	var buf [MaxDomainLen]byte
	key, _ := hostKey(&buf, host)
	if uint64(len(b.arena))+uint64(len(key)+1+len(path)) > math.MaxUint32 {
		return "url list too large"
	}
	b.offs = append(b.offs, uint32(len(b.arena)))
	b.arena = append(b.arena, key...)
	b.arena = append(b.arena, 0)
	for _, c := range path {
		b.arena = append(b.arena, lowerASCII(c))
	}
	return ""
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Build sorts the entries into a URLSet and resets the builder.
func (b *URLSetBuilder) Build() *URLSet {
	arena, offs := b.arena, b.offs
	b.arena, b.offs = nil, nil
	ends := make([]uint32, len(offs))
	for i := range offs {
		if i+1 < len(offs) {
			ends[i] = offs[i+1]
		} else {
			ends[i] = uint32(len(arena))
		}
	}
	idx := make([]int, len(offs))
	for i := range idx {
		idx[i] = i
	}
	get := func(i int) []byte { return arena[offs[i]:ends[i]] }
	slices.SortFunc(idx, func(x, y int) int { return bytes.Compare(get(x), get(y)) })
	idx = slices.CompactFunc(idx, func(x, y int) bool { return bytes.Equal(get(x), get(y)) })
	s := &URLSet{offs: make([]uint32, 0, len(idx)+1)}
	size := 0
	for _, i := range idx {
		size += len(get(i))
	}
	s.arena = make([]byte, 0, size)
	for _, i := range idx {
		s.offs = append(s.offs, uint32(len(s.arena)))
		s.arena = append(s.arena, get(i)...)
	}
	s.offs = append(s.offs, uint32(len(s.arena)))
	return s
}

// Len returns the number of distinct entries.
func (s *URLSet) Len() int {
	if s == nil || len(s.offs) == 0 {
		return 0
	}
	return len(s.offs) - 1
}

// SizeBytes returns the memory the set holds.
func (s *URLSet) SizeBytes() int {
	if s == nil {
		return 0
	}
	return cap(s.arena) + 4*cap(s.offs)
}

func (s *URLSet) entry(i int) []byte { return s.arena[s.offs[i]:s.offs[i+1]] }

// Match reports whether an entry covers host and path (path without query;
// "" counts as "/"). It does not allocate.
func (s *URLSet) Match(host, path string) bool {
	if s.Len() == 0 {
		return false
	}
	if path == "" {
		path = "/"
	}
	var buf [MaxDomainLen]byte
	key, ok := hostKey(&buf, host)
	if !ok {
		return false
	}
	// Try the host, then each parent domain.
	for end := len(key); end > 0; end = bytes.LastIndexByte(key[:end], keySep) {
		if s.matchHost(key[:end], path) {
			return true
		}
	}
	return false
}

// matchHost scans the entries whose host key is exactly hk.
func (s *URLSet) matchHost(hk []byte, path string) bool {
	n := s.Len()
	// First entry >= hk+"\x00".
	lo, hi := 0, n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if cmpHostKey(s.entry(mid), hk) < 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	for i := lo; i < n; i++ {
		e := s.entry(i)
		if cmpHostKey(e, hk) != 0 {
			return false
		}
		if pathCovers(e[len(hk)+1:], path) {
			return true
		}
	}
	return false
}

// cmpHostKey compares entry's host part with hk: <0, 0 (same host), >0.
// Entries sort by host part first because the host ends at the entry's
// only 0x00 byte, which sorts below every host byte.
func cmpHostKey(entry, hk []byte) int {
	if len(entry) > len(hk) && entry[len(hk)] == 0 {
		return bytes.Compare(entry[:len(hk)], hk)
	}
	return bytes.Compare(entry[:bytes.IndexByte(entry, 0)], hk)
}

// pathCovers reports whether request path starts with the entry's path
// prefix p at a segment boundary, ignoring ASCII case.
func pathCovers(p []byte, path string) bool {
	if len(path) < len(p) {
		return false
	}
	for i, c := range p {
		if lowerASCII(path[i]) != c {
			return false
		}
	}
	return len(path) == len(p) || p[len(p)-1] == '/' || strings.IndexByte("/?#;", path[len(p)]) >= 0
}
