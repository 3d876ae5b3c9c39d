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
}

// hostKeyLabels is hostKey, also finding the TLD and family prefixes on
// the way. It works on eight bytes at a time (hostKeyWord); the bytes left
// over at the start of the host go through hostKeyByte.
func hostKeyLabels(buf *[MaxDomainLen]byte, host string) (queryKey, bool) {
	if len(host) > 0 && host[len(host)-1] == '.' {
		host = host[:len(host)-1]
	}
	n := len(host)
	if n == 0 || n > MaxDomainLen {
		return queryKey{}, false
	}
	q := queryKey{key: buf[:n], tld: n, fam: n}
	seps := 0
	i := 0
	for ; i+8 <= n; i += 8 {
		w, dots, ok := hostKeyWord(binary.LittleEndian.Uint64([]byte(host[n-i-8 : n-i])))
		if !ok {
			return queryKey{}, false
		}
		binary.LittleEndian.PutUint64(buf[i:], w)
		for ; dots != 0 && seps < 2; dots &= dots - 1 {
			if seps++; seps == 1 {
				q.tld = i + bits.TrailingZeros64(dots)/8
			} else {
				q.fam = i + bits.TrailingZeros64(dots)/8
			}
		}
	}
	for ; i < n; i++ {
		c, ok := hostKeyByte(host[n-1-i])
		if !ok {
			return queryKey{}, false
		}
		if c == keySep {
			if seps++; seps == 1 {
				q.tld = i
			} else if seps == 2 {
				q.fam = i
			}
		}
		buf[i] = c
	}
	return q, true
}

// hostKeyByte maps one host byte to its key byte: '.' to keySep, ASCII
// upper case to lower case. ok is false for bytes no key holds (a host with
// one cannot be listed): at or below keySep, or above 'z'.
func hostKeyByte(c byte) (byte, bool) {
	switch {
	case c == '.':
		return keySep, true
	case c <= keySep || c > 'z':
		return 0, false
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A', true
	}
	return c, true
}

// hostKeyWord is hostKeyByte on the eight bytes of w (loaded little-endian
// from the host), which it also reverses; dots has 0x80 set in every byte
// of the result that came from a '.'.
func hostKeyWord(w uint64) (key, dots uint64, ok bool) {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
		low7 = 0x7f7f7f7f7f7f7f7f
	)
	w = bits.ReverseBytes64(w)
	// zero has 0x80 in exactly the bytes of x that are zero.
	zero := func(x uint64) uint64 { return ^((x&low7 + low7) | x | low7) }
	lo := w & low7
	// Bytes >= 0x80 or > 'z', and bytes <= keySep, hold no key.
	if w&high|(lo+(0x80-'z'-1)*ones)&high|zero(w&^ones) != 0 {
		return 0, 0, false
	}
	upper := (lo + (0x80-'A')*ones) &^ (lo + (0x80-'Z'-1)*ones) & high
	dots = zero(w ^ '.'*ones)
	w |= upper >> 2                 // +0x20
	w ^= dots >> 7 * ('.' ^ keySep) // '.' -> keySep
	return w, dots, true
}

func (s *DomainSet) lookup(host string, exact bool) bool {
	if s == nil || s.n == 0 {
		return false
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
	ul := qk.fam
	h := maphash.Bytes(s.seed, q[:ul])
	if len(s.splits.slots) == 0 {
		return s.levels[0].find(h, q, ul, exact)
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
		h = maphash.Bytes(s.seed, q[:ul])
	}
	return level < len(s.levels) && s.levels[level].find(h, q, ul, exact)
}
