package filter

import "bytes"

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
	return cap(s.data) + 4*cap(s.fam.slots)
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

// queryKey is a host's key with the lengths of its family (last two labels)
// and subfamily (last three) prefixes.
type queryKey struct {
	key      []byte
	fam, sub int
}

// hostKeyLabels is hostKey, also finding the family prefixes on the way.
func hostKeyLabels(buf *[MaxDomainLen]byte, host string) (queryKey, bool) {
	if len(host) > 0 && host[len(host)-1] == '.' {
		host = host[:len(host)-1]
	}
	n := len(host)
	if n == 0 || n > MaxDomainLen {
		return queryKey{}, false
	}
	key := buf[:n]
	seps := 0
	q := queryKey{fam: n, sub: n}
	for i := range key {
		c := host[n-1-i]
		switch {
		case c == '.':
			c = keySep
			if seps++; seps == 2 {
				q.fam = i
			} else if seps == 3 {
				q.sub = i
			}
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c <= keySep:
			return queryKey{}, false
		}
		key[i] = c
	}
	q.key = key
	return q, true
}

// pred describes the predecessor P of a query q: the last key <= q.
type pred struct {
	found bool // P exists in the block (false: the block's head is > q)
	exact bool // P == q
	m     int  // lcp(P, q)
	pLen  int  // len(P)
	pAnc  int  // length of P's shortest listed ancestor-or-self
	pNext byte // P[m] when m < pLen
	end   bool // every key of the block is <= q: P may lie further on
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
	q, fl := qk.key, qk.fam
	var p pred
	switch hint, big := s.fam.hint(q[:fl]); {
	case hint >= 0 && big && fl < len(q):
		// A big family: go to q's three-label subfamily. When it is
		// absent, only the family's root (or a one-label entry) can
		// cover q, so q's answer is its root's.
		if sub, _ := s.fam.hint(q[:qk.sub]); sub >= 0 {
			p = s.scanFrom(sub, q)
		} else if exact {
			return false
		} else {
			q = q[:fl]
			p = s.scanFrom(hint, q)
		}
	case hint >= 0:
		p = s.scanFrom(hint, q)
	case s.fam.hasShort:
		p = s.scanFrom(s.searchBlock(q), q)
	default:
		return false // no listed name shares q's last two labels
	}
	if p.exact {
		return true
	}
	if exact || !p.found {
		return false
	}
	// l: the longest common prefix of P and q that ends at a label
	// boundary of both; any listed parent of q is a boundary prefix of it.
	l := p.m
	if !((p.m == p.pLen || p.pNext == keySep) && (p.m == len(q) || q[p.m] == keySep)) {
		l = bytes.LastIndexByte(q[:p.m], keySep)
	}
	return l > 0 && p.pAnc <= l
}

// scanFrom returns q's predecessor, starting at block b (a family hint or
// a search result; -1 means q sorts before every key). The result is exact
// whatever b is: a block whose head is past q sends it to the full search,
// and a block all of whose keys are <= q to the next blocks.
func (s *DomainSet) scanFrom(b int, q []byte) pred {
	if b < 0 {
		return pred{}
	}
	p := s.scanBlock(b, q)
	if !p.found {
		// Block b's head is past q: q sorts before its family's first key,
		// which heads block b (the family's root is not listed:
		// "m.example.com" is, q is "example.com"), so the answer is
		// usually in the block before; or the hint is a fingerprint
		// collision: search.
		if b > 0 && bytes.Compare(s.head(b-1), q) <= 0 {
			b--
		} else if b = s.searchBlock(q); b < 0 {
			return pred{}
		}
		p = s.scanBlock(b, q)
	}
	if !p.end || b+1 >= s.blocks() || bytes.Compare(s.head(b+1), q) > 0 {
		return p
	}
	// The family runs on: gallop to the last block whose head is <= q.
	step := 1
	for b+2*step < s.blocks() && bytes.Compare(s.head(b+2*step), q) <= 0 {
		step *= 2
	}
	return s.scanBlock(s.searchBlocks(b+step, min(b+2*step, s.blocks()), q), q)
}

// scanBlock finds q's predecessor among block b's keys (found is false when
// even the head is > q). It tracks m = lcp(P, q) without rebuilding keys: a key sharing
// fewer bytes with its predecessor than m sorts after q; one sharing more
// sorts before q with the same lcp.
func (s *DomainSet) scanBlock(b int, q []byte) pred {
	data := s.data[b*blockBytes : (b+1)*blockBytes]
	var p pred
	for pos := 0; pos+entryHeader <= len(data); {
		shared, sl, anc := int(data[pos]), int(data[pos+1]), int(data[pos+2])
		if sl == 0 {
			break // padding
		}
		suffix := data[pos+entryHeader : pos+entryHeader+sl]
		pos += entryHeader + sl
		if shared < p.m {
			return p // it differs from q earlier than P does: it sorts after q
		}
		if shared > p.m {
			p.pLen, p.pAnc, p.found = shared+sl, anc, true
			continue
		}
		// shared == m: compare the suffix with q[m:].
		j := commonPrefix(suffix, q[p.m:])
		if j < len(suffix) && (p.m+j == len(q) || suffix[j] > q[p.m+j]) {
			return p // this key sorts after q
		}
		p.m += j
		p.pLen, p.pAnc, p.found = shared+sl, anc, true
		if j < len(suffix) {
			p.pNext = suffix[j]
		}
		if p.m == len(q) && p.pLen == len(q) {
			p.exact = true
			return p
		}
	}
	p.end = true
	return p
}

// searchBlock returns the last block whose head is <= q, or -1: a binary
// search over the block heads, for hosts the family table cannot place.
func (s *DomainSet) searchBlock(q []byte) int { return s.searchBlocks(0, s.blocks(), q) }

// searchBlocks returns the last block in [lo-1, hi) whose head is <= q,
// knowing that block lo-1's head is (or lo is 0: then -1 means none).
func (s *DomainSet) searchBlocks(lo, hi int, q []byte) int {
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if bytes.Compare(s.head(mid), q) <= 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1
}

func (s *DomainSet) blocks() int { return len(s.data) / blockBytes }

// head returns block b's first key, stored whole.
func (s *DomainSet) head(b int) []byte {
	off := b * blockBytes
	n := int(s.data[off+1])
	return s.data[off+entryHeader : off+entryHeader+n]
}
