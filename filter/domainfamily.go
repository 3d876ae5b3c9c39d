package filter

import (
	"bytes"
	"hash/maphash"
	"math/bits"
)

// Family hints. A key's family is its last two labels ("example.com" for
// "a.b.example.com"; a one-label key is its own family). Every listed
// ancestor of a host that has at least two labels is in the host's family,
// and a family's keys are contiguous in sorted order. The family table maps
// each family present to the block holding its first key, so a lookup
// starts next to its answer instead of binary searching the whole index:
// one probe into the table, then one or two blocks. A host whose family is
// absent can only be covered by a one-label entry ("com"), which is rare and
// handled by the full search.
//
// The table is open addressing with linear probing over uint64 slots
// (fingerprint<<32 | block+1; 0 is empty), sized for a load of at most 3/4.
// A hint is only ever a starting point: a wrong one (fingerprint collision)
// costs a longer search, never a wrong answer.
type familyTable struct {
	seed  maphash.Seed
	slots []uint64
	mask  uint64
	// hasShort: some key has a single label, so a host whose family is
	// absent still needs the full search.
	hasShort bool
}

// familyLen returns the length of key's family prefix: up to its second
// separator, or the whole key.
func familyLen(key []byte) int {
	i := bytes.IndexByte(key, keySep)
	if i < 0 {
		return len(key)
	}
	j := bytes.IndexByte(key[i+1:], keySep)
	if j < 0 {
		return len(key)
	}
	return i + 1 + j
}

// familyRecord is collected while building: a family's hash and first block.
type familyRecord struct {
	hash  uint64
	block uint32
}

func newFamilyTable(seed maphash.Seed, recs []familyRecord, hasShort bool) familyTable {
	size := uint64(1) << bits.Len64(uint64(len(recs))*4/3+1)
	t := familyTable{seed: seed, slots: make([]uint64, size), mask: size - 1, hasShort: hasShort}
	for _, r := range recs {
		slot := fingerprint(r.hash)<<32 | uint64(r.block+1)
		for i := r.hash & t.mask; ; i = (i + 1) & t.mask {
			if t.slots[i] == 0 {
				t.slots[i] = slot
				break
			}
		}
	}
	return t
}

func fingerprint(h uint64) uint64 {
	if fp := h >> 32; fp != 0 {
		return fp
	}
	return 1
}

// hint returns the block holding the first key of q's family, or -1 when
// the family is not in the set.
func (t *familyTable) hint(q []byte) int {
	if len(t.slots) == 0 {
		return -1
	}
	h := maphash.Bytes(t.seed, q[:familyLen(q)])
	fp := fingerprint(h)
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		slot := t.slots[i]
		if slot == 0 {
			return -1
		}
		if slot>>32 == fp {
			return int(uint32(slot)) - 1
		}
	}
}

// blockFrom returns the last block whose head is <= q, starting from a
// hint block b: if the hint's head is already past q, q sorts before its
// family's first key and the answer is the block before; otherwise gallop
// forward. The result is exact whatever the hint.
func (s *DomainSet) blockFrom(b int, q []byte) int {
	if b >= len(s.index) || s.cmpHead(b, q) > 0 {
		return s.searchBlock(q) // a wrong hint: fingerprint collision
	}
	step := 1
	for b+step < len(s.index) && s.cmpHead(b+step, q) <= 0 {
		b += step
		step *= 2
	}
	// The answer is in [b, b+step): binary search it.
	lo, hi := b+1, min(b+step, len(s.index))
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if s.cmpHead(mid, q) <= 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1
}

// cmpHead compares block blk's head key with q.
func (s *DomainSet) cmpHead(blk int, q []byte) int {
	h := &s.index[blk]
	q0, q1 := prefix64(q), headChunk2(q)
	switch {
	case h.p0 < q0:
		return -1
	case h.p0 > q0:
		return 1
	case h.p1 < q1:
		return -1
	case h.p1 > q1:
		return 1
	}
	return bytes.Compare(s.head(blk), q)
}
