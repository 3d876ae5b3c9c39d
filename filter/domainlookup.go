package filter

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
)

// Len returns the number of distinct domains in the set.
func (s *DomainSet) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}

// SizeBytes returns the memory the index holds, in bytes.
func (s *DomainSet) SizeBytes() int {
	if s == nil {
		return 0
	}
	n := s.splits.sizeBytes() + s.tlds.sizeBytes()
	for i := range s.levels {
		n += s.levels[i].sizeBytes()
	}
	return n
}

// Match reports whether host or one of its parent domains is in the set.
// host is expected lowercased without port (ASCII upper case is folded, a
// trailing dot ignored); anything else that is not a host name is false.
func (s *DomainSet) Match(host string) bool {
	return s.lookup(host, false)
}

// MatchExact reports whether host itself is in the set.
func (s *DomainSet) MatchExact(host string) bool {
	return s.lookup(host, true)
}

// hostKey writes host's key into buf and returns it; ok is false when host
// cannot be a listed name.
func hostKey(buf *[MaxDomainLen]byte, host string) (key []byte, ok bool) {
	k, ok := hostKeyLabels(buf, host)
	return k.key, ok
}

// queryKey is a host's key with the lengths of its last-label (TLD) and
// family (last two labels) prefixes.
type queryKey struct {
	key      []byte
	tld, fam int
	lowered  bool // some upper-case letter was lowered
}

// hostKeyLabels is hostKey, also finding the TLD and family prefixes on
// the way. It maps eight bytes at a time as hostKeyByte does, reversing
// them; the bytes left over at the start of the host go one by one.
func hostKeyLabels(buf *[MaxDomainLen]byte, host string) (queryKey, bool) {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
		low7 = 0x7f7f7f7f7f7f7f7f
	)
	if len(host) > 0 && host[len(host)-1] == '.' {
		host = host[:len(host)-1]
	}
	n := len(host)
	if n == 0 || n > MaxDomainLen {
		return queryKey{}, false
	}
	tld, fam := n, n
	var uppers uint64
	i := 0
	for ; i+8 <= n; i += 8 {
		w := bits.ReverseBytes64(loadLE64(host[n-i-8:]))
		if zeroBytes(w&^ones) != 0 { // a byte <= keySep
			return queryKey{}, false
		}
		lo := w & low7
		upper := (lo + (0x80-'A')*ones) &^ (lo + (0x80-'Z'-1)*ones) &^ w & high
		uppers |= upper
		dots := zeroBytes(w ^ '.'*ones)
		w |= upper >> 2                 // +0x20
		w ^= dots >> 7 * ('.' ^ keySep) // '.' -> keySep
		binary.LittleEndian.PutUint64(buf[i:], w)
		if dots != 0 && fam == n {
			if tld == n {
				tld = i + bits.TrailingZeros64(dots)/8
				dots &= dots - 1
			}
			if dots != 0 {
				fam = i + bits.TrailingZeros64(dots)/8
			}
		}
	}
	for ; i < n; i++ {
		c, ok := hostKeyByte(host[n-1-i])
		if !ok {
			return queryKey{}, false
		}
		if c != host[n-1-i] && c != keySep {
			uppers = 1
		}
		if c == keySep && fam == n {
			if tld == n {
				tld = i
			} else {
				fam = i
			}
		}
		buf[i] = c
	}
	return queryKey{key: buf[:n], tld: tld, fam: fam, lowered: uppers != 0}, true
}

// zeroBytes has 0x80 set in exactly the bytes of x that are zero.
func zeroBytes(x uint64) uint64 {
	const low7 = 0x7f7f7f7f7f7f7f7f
	return ^((x&low7 + low7) | x | low7)
}

// loadLE64 reads the first eight bytes of s as a little-endian integer
// (the compiler merges the loads).
func loadLE64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// hostKeyByte maps one host byte to its key byte: '.' to keySep, ASCII
// upper case to lower case. ok is false for a byte at or below keySep (a
// host holding one is not a name). Other bytes no key holds are kept:
// "\x83.example.com" is still under a listed "example.com".
func hostKeyByte(c byte) (byte, bool) {
	switch {
	case c == '.':
		return keySep, true
	case c <= keySep:
		return 0, false
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A', true
	}
	return c, true
}

func (s *DomainSet) lookup(host string, exact bool) bool {
	if s == nil || s.n == 0 {
		return false
	}
	if len(host) > 0 && host[len(host)-1] == '.' {
		host = host[:len(host)-1]
	}
	// The common case, a lowercase host whose family is not split: hash its
	// family as written and request its bucket first, so that building
	// the key overlaps the memory access.
	sec := &s.levels[0]
	h := maphash.String(s.seed, host[labelsStart(host, 2):])
	var data []byte
	pos := 0
	fast := !s.splits.maybe(h)
	// A family the filter flags is most likely split: request the bucket
	// of the host's last three labels in the next level meanwhile.
	spec := !fast && len(s.levels) > 1
	var h1 uint64
	if fast {
		data, pos = sec.locate(h)
	} else if spec {
		h1 = maphash.String(s.seed, host[labelsStart(host, 3):])
		data, pos = s.levels[1].locate(h1)
	}
	var buf [MaxDomainLen]byte
	qk, ok := hostKeyLabels(&buf, host)
	if !ok {
		return false
	}
	q := qk.key
	if qk.tld == len(q) { // one label
		return s.tlds.has(q)
	}
	if !exact && len(s.tlds.offs) > 0 && s.tlds.has(q[:qk.tld]) {
		return true
	}
	if qk.lowered { // the hashes above are not the key's
		fast, spec = false, false
	}
	if fast {
		return sec.scan(data, pos, h, q, qk.fam, exact)
	}
	ul := qk.fam
	if qk.lowered {
		h = prefixHash(s.seed, q[:ul])
	}
	level := 0
	for {
		split, root := s.splits.find(h, q[:ul])
		if !split {
			break
		}
		if ul == len(q) || root && !exact {
			return root
		}
		level++
		ul = labelsLen(q, level+2)
		if level == 1 && spec {
			h = h1
		} else {
			h = prefixHash(s.seed, q[:ul])
		}
	}
	switch {
	case level >= len(s.levels):
		return false
	case level == 1 && spec:
		return s.levels[1].scan(data, pos, h, q, ul, exact)
	}
	return s.levels[level].find(h, q, ul, exact)
}

// labelsStart returns where host's last n labels start (0 when it has no
// more), looking for dots eight bytes at a time.
func labelsStart(host string, n int) int {
	const ones = 0x0101010101010101
	end, seen := len(host), 0
	for ; end >= 8; end -= 8 {
		dots := zeroBytes(loadLE64(host[end-8:]) ^ '.'*ones)
		for ; dots != 0; dots &^= 1 << (63 - bits.LeadingZeros64(dots)) {
			if seen++; seen == n {
				return end - 8 + (63-bits.LeadingZeros64(dots))/8 + 1
			}
		}
	}
	for end--; end >= 0; end-- {
		if host[end] == '.' {
			if seen++; seen == n {
				return end + 1
			}
		}
	}
	return 0
}
