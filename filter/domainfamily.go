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
// The table is open addressing with linear probing over uint32 slots: from
// the top, a fingerprint of the family's hash, a "big family" bit, and the
// block number plus one (0 is an empty slot); it is sized for a load of 2/3,
// so a probe for an absent family reads about five neighbouring slots. A hint is only ever a starting
// point: a wrong one (fingerprint collision) costs a longer search, never a
// wrong answer (see DomainSet.scanFrom).
type familyTable struct {
	seed      maphash.Seed
	slots     []uint32
	blockBits uint
	// hasShort: some key has a single label, so a host whose family is
	// absent still needs the full search.
	hasShort bool
}

// familyLen returns the length of key's family prefix: up to its second
// separator, or the whole key.
func familyLen(key []byte) int { return labelsLen(key, 2) }

// labelsLen returns the length of key's first n labels (in key order, so
// the host's last n labels), or len(key) when it has no more.
func labelsLen(key []byte, n int) int {
	off := 0
	for ; n > 0; n-- {
		i := bytes.IndexByte(key[off:], keySep)
		if i < 0 {
			return len(key)
		}
		off += i + 1
	}
	return off - 1
}

// familyRecord is collected while building: the hash of a family (or of a
// three-label subfamily of a big family) and the block holding its first key.
type familyRecord struct {
	hash  uint64
	block uint32
	big   bool
}

// A family whose keys span this many blocks or more is big: the table also
// holds its three-label subfamilies ("x.blogspot.com" under
// "blogspot.com"), so a lookup jumps to the right one of its blocks.
const bigFamilyBlocks = 3

func newFamilyTable(seed maphash.Seed, recs []familyRecord, blocks int, hasShort bool) familyTable {
	t := familyTable{seed: seed, hasShort: hasShort, blockBits: uint(bits.Len(uint(blocks)+1)) + 1}
	if len(recs) == 0 {
		return t
	}
	t.slots = make([]uint32, len(recs)+len(recs)/2+1)
	for _, r := range recs {
		slot := t.fingerprint(r.hash)<<t.blockBits | (r.block + 1)
		if r.big {
			slot |= t.bigBit()
		}
		for i := t.start(r.hash); ; i = t.next(i) {
			if t.slots[i] == 0 {
				t.slots[i] = slot
				break
			}
		}
	}
	return t
}

// bigBit marks a big family's slot; it is the top bit of the block field.
func (t *familyTable) bigBit() uint32 { return 1 << (t.blockBits - 1) }

// start maps a hash onto the table (Lemire's multiply-shift range reduction).
func (t *familyTable) start(h uint64) int {
	return int((h & 0xffffffff) * uint64(len(t.slots)) >> 32)
}

func (t *familyTable) next(i int) int {
	if i++; i == len(t.slots) {
		return 0
	}
	return i
}

// fingerprint takes the hash bits the slot has room for (none when the block
// number needs all 32: then every occupied slot is a candidate).
func (t *familyTable) fingerprint(h uint64) uint32 {
	if t.blockBits >= 32 {
		return 0
	}
	return uint32(h>>32) & (1<<(32-t.blockBits) - 1)
}

// hint returns the block holding the first key of the family (or
// subfamily) prefix, or -1 when it is not in the set, and whether it is a
// big family.
func (t *familyTable) hint(prefix []byte) (block int, big bool) {
	if len(t.slots) == 0 {
		return -1, false
	}
	h := maphash.Bytes(t.seed, prefix)
	fp := t.fingerprint(h)
	blockMask := t.bigBit() - 1
	for i := t.start(h); ; i = t.next(i) {
		slot := t.slots[i]
		if slot == 0 {
			return -1, false
		}
		if slot>>t.blockBits == fp {
			return int(slot&blockMask) - 1, slot&t.bigBit() != 0
		}
	}
}
