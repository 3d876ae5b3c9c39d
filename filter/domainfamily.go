package filter

import (
	"bytes"
	"slices"
)

// A section holds units in the order of their prefix hash, in 1<<kbits
// buckets chosen by the hash's top bits, each split in sub-buckets
// (see bucketHeader). A unit is
//
//	fingerprint (2 bytes, little-endian: the 16 hash bits below the bucket
//	bits), entry bytes (1 byte, at most maxUnitBytes), then its entries:
//	the first  [key length][ancestor length][key]
//	the others [shared prefix length][suffix length][ancestor length][suffix]
//
// with the keys in order and front-coded against the previous key; the
// ancestor length is that of the key's shortest listed ancestor-or-self
// in the unit. Units of a bucket are in fingerprint order, so a scan stops
// at the first larger one. The data is held in 1<<dbits groups of
// consecutive buckets. A lookup reads the bucket's bounds from the bucket
// index (coarse + fine, two bytes a bucket, small enough to stay in the
// CPU cache) and then the bucket, whose cache lines it requests at once:
// one random memory access.
type section struct {
	groups [][]byte // the data of each group of buckets
	coarse []uint32 // start of every 1<<cbits-th bucket, in its group
	fine   []uint16 // bucket start minus its coarse start
	kbits  uint8
	cbits  uint8
	dbits  uint8
}

// bucketHeader: a non-empty bucket starts with the offsets (two bytes
// each, from the bucket start) of its sub-buckets 1 to subBuckets-1, the
// units whose fingerprints start with those subBits bits; sub-bucket 0
// follows the header. A lookup scans only its sub-bucket.
const bucketHeader = 2 * (subBuckets - 1)

// subBits: a bucket has 1<<subBits sub-buckets, chosen by the top bits of
// the unit fingerprint.
const (
	subBits    = 2
	subBuckets = 1 << subBits
)

// fingerprint is the unit fingerprint of hash h in a section of 1<<kbits
// buckets.
func fingerprint(h uint64, kbits uint) uint16 { return uint16(h >> (48 - kbits)) }

// newSection compresses the bucket starts (offsets in their group) into
// the coarse and fine index, with coarse steps as large as the two-byte
// fine offsets allow (and never crossing a group).
func newSection(groups [][]byte, starts []uint32, kbits, dbits uint) section {
	nb := len(starts)
	g := min(uint(8), kbits-dbits)
	for ; g > 0; g-- {
		ok := true
		for i := 0; i < nb && ok; i += 1 << g {
			ok = starts[i+1<<g-1]-starts[i] <= 0xffff
		}
		if ok {
			break
		}
	}
	s := section{groups: groups, kbits: uint8(kbits), cbits: uint8(g), dbits: uint8(dbits)}
	s.coarse = make([]uint32, nb>>g)
	s.fine = make([]uint16, nb)
	for i, st := range starts {
		if i&(1<<g-1) == 0 {
			s.coarse[i>>g] = st
		}
		s.fine[i] = uint16(st - s.coarse[i>>g])
	}
	return s
}

func (s *section) sizeBytes() int {
	n := 4*cap(s.coarse) + 2*cap(s.fine) + 24*cap(s.groups)
	for _, g := range s.groups {
		n += cap(g)
	}
	return n
}

// find answers for the key q whose unit prefix is q[:ul], of hash h: is
// q (exact) or a parent of q in that unit (ancestors above the unit prefix
// are the caller's).
func (s *section) find(h uint64, q []byte, ul int, exact bool) bool {
	data, pos := s.locate(h)
	return s.scan(data, pos, h, q, ul, exact)
}

// locate returns the data holding the bucket of hash h, cut at the
// bucket's end, and the bucket's start. It also requests the cache lines
// where the sub-bucket of h should be (its share of the bucket), so that
// they arrive with the header's.
func (s *section) locate(h uint64) ([]byte, int) {
	i := int(h >> (64 - s.kbits))
	data := s.groups[i>>(s.kbits-s.dbits)]
	pos := int(s.coarse[i>>s.cbits]) + int(s.fine[i])
	if i++; i&(1<<(s.kbits-s.dbits)-1) != 0 { // not the group's last bucket
		data = data[:int(s.coarse[i>>s.cbits])+int(s.fine[i])]
	}
	if pos < len(data) {
		sub := int(fingerprint(h, uint(s.kbits)) >> (16 - subBits))
		guess := pos + (len(data)-pos)*sub/subBuckets
		if a := max(guess-64, pos+64); a < len(data) {
			prefetch(&data[a])
		}
	}
	return data, pos
}

// scan is find's search of the bucket that locate returned.
func (s *section) scan(data []byte, pos int, h uint64, q []byte, ul int, exact bool) bool {
	if pos+bucketHeader >= len(data) {
		return false // empty bucket
	}
	fp := fingerprint(h, uint(s.kbits))
	if sub := int(fp >> (16 - subBits)); sub == 0 {
		pos += bucketHeader
	} else {
		pos += int(data[pos+2*sub-2]) | int(data[pos+2*sub-1])<<8
	}
	for pos+5 <= len(data) {
		ufp := uint16(data[pos]) | uint16(data[pos+1])<<8
		ulen := int(data[pos+2])
		if ufp > fp {
			return false
		}
		if ufp == fp {
			unit := data[pos+3 : pos+3+ulen]
			if first := unit[2 : 2+int(unit[0])]; underPrefix(first, q[:ul]) {
				return matchUnit(unit, q, exact)
			}
		}
		pos += 3 + ulen
	}
	return false
}

// underPrefix reports whether prefix is key or a parent of key.
func underPrefix(key, prefix []byte) bool {
	return len(key) >= len(prefix) && string(key[:len(prefix)]) == string(prefix) &&
		(len(key) == len(prefix) || key[len(prefix)] == keySep)
}

// matchUnit finds q's predecessor P among the unit's keys (the last key
// <= q) and answers from it: any listed parent A of q in the unit sorts
// before q with only keys under A in between, so P is under A too, and
// P's shortest listed ancestor is a parent of q. It tracks m = lcp(P, q)
// without rebuilding keys: a key sharing fewer bytes with its predecessor
// than m sorts after q; one sharing more sorts before q with the same lcp.
func matchUnit(unit []byte, q []byte, exact bool) bool {
	var (
		m, pLen, pAnc int
		pNext         byte
		found         bool
	)
	for pos := 0; pos < len(unit); {
		var shared, sl, anc int
		if pos == 0 {
			sl, anc = int(unit[0]), int(unit[1])
			pos = 2
		} else {
			shared, sl, anc = int(unit[pos]), int(unit[pos+1]), int(unit[pos+2])
			pos += 3
		}
		suffix := unit[pos : pos+sl]
		pos += sl
		if shared < m {
			break // it differs from q earlier than P does: it sorts after q
		}
		if shared > m {
			pLen, pAnc, found = shared+sl, anc, true
			continue
		}
		// shared == m: compare the suffix with q[m:].
		j := commonPrefix(suffix, q[m:])
		if j < len(suffix) && (m+j == len(q) || suffix[j] > q[m+j]) {
			break // this key sorts after q
		}
		m += j
		pLen, pAnc, found = shared+sl, anc, true
		if j < len(suffix) {
			pNext = suffix[j]
		}
		if m == len(q) && pLen == len(q) {
			return true // q itself
		}
	}
	if exact || !found {
		return false
	}
	// l: the longest common prefix of P and q that ends at a label
	// boundary of both; any listed parent of q is a boundary prefix of it.
	l := m
	if !((m == pLen || pNext == keySep) && (m == len(q) || q[m] == keySep)) {
		l = bytes.LastIndexByte(q[:m], keySep)
	}
	return l > 0 && pAnc <= l
}

// sectionWriter appends the units of one group in hash order and records
// bucket starts.
type sectionWriter struct {
	data      []byte
	starts    []uint32 // shared by the writers of one section
	kbits     uint
	next, end int // next bucket start to record; one past the group's last bucket
	n         int // distinct keys written
	bucket    int // the bucket being written, or -1
	head      int // its header's offset in data
	sub       int // its next sub-bucket offset to record
	lastSub   int // the last sub-bucket offset recorded
}

// unit writes the unit of sorted keys u (duplicates allowed) whose prefix
// hash is h, or reports false, writing nothing, when it is too large.
func (w *sectionWriter) unit(h uint64, keys []byte, u []pent) bool {
	if b := int(h >> (64 - w.kbits)); b != w.bucket {
		w.closeBucket()
		for ; w.next <= b; w.next++ {
			w.starts[w.next] = uint32(len(w.data))
		}
		w.bucket, w.head, w.sub, w.lastSub = b, len(w.data), 1, bucketHeader
		w.data = append(w.data, make([]byte, bucketHeader)...)
	}
	fp := fingerprint(h, w.kbits)
	for ; w.sub <= int(fp>>(16-subBits)); w.sub++ {
		w.setSub(len(w.data))
	}
	pos := len(w.data)
	w.data = append(w.data, byte(fp), byte(fp>>8), 0)
	var n int
	w.data, n = encodeUnit(w.data, keys, u)
	ulen := len(w.data) - pos - 3
	if ulen > maxUnitBytes {
		w.data = w.data[:pos]
		return false
	}
	w.data[pos+2] = byte(ulen)
	w.n += n
	return true
}

// setSub records that sub-bucket w.sub starts at data offset at; an
// offset too far for two bytes is replaced by an earlier unit boundary,
// which only makes the scan longer.
func (w *sectionWriter) setSub(at int) {
	off := at - w.head
	if off > 0xffff {
		off = w.lastSub
	}
	w.data[w.head+2*w.sub-2], w.data[w.head+2*w.sub-1] = byte(off), byte(off>>8)
	w.lastSub = off
}

// closeBucket completes the open bucket's header.
func (w *sectionWriter) closeBucket() {
	if w.bucket < 0 {
		return
	}
	for ; w.sub < subBuckets; w.sub++ {
		w.setSub(len(w.data))
	}
	w.bucket = -1
}

// finish records the starts of the group's remaining (empty) buckets.
func (w *sectionWriter) finish() {
	w.closeBucket()
	for ; w.next < w.end; w.next++ {
		w.starts[w.next] = uint32(len(w.data))
	}
}

// encodeUnit appends the entries of sorted keys u (see section), skipping
// duplicates, and returns the number written; it stops early once past
// maxUnitBytes. ancestors holds the lengths of the listed keys that are
// boundary prefixes of the previous key, shortest first: a parent sorts
// right before its subdomains, so this chain is all that can cover the
// next key, and a chain element of length a covers key k iff
// a <= lcp(prev, k) and k ends or has a label boundary at a.
func encodeUnit(dst, keys []byte, u []pent) ([]byte, int) {
	var (
		ancestors [MaxDomainLen/2 + 2]int
		depth     int
		prev      []byte
		n         int
	)
	start := len(dst)
	for i, e := range u {
		k := keys[e.off : e.off+uint32(e.n)]
		lcp := commonPrefix(prev, k)
		if i > 0 && lcp == len(k) && lcp == len(prev) {
			continue // duplicate
		}
		for depth > 0 {
			a := ancestors[depth-1]
			if a <= lcp && (a == len(k) || k[a] == keySep) {
				break
			}
			depth--
		}
		anc := len(k)
		if depth > 0 {
			anc = ancestors[0]
		}
		ancestors[depth] = len(k)
		depth++
		if i == 0 {
			dst = append(dst, byte(len(k)), byte(anc))
			dst = append(dst, k...)
		} else {
			dst = append(dst, byte(lcp), byte(len(k)-lcp), byte(anc))
			dst = append(dst, k[lcp:]...)
		}
		prev = k
		n++
		if len(dst)-start > maxUnitBytes {
			break
		}
	}
	return dst, n
}

// splitTable holds the split prefixes (see DomainSet): open addressing
// over pointer-free slots, the prefixes in one byte pool. Every lookup asks
// it first, so a bit set of their hashes (sixteen bits an entry, a few
// kilobytes that stay in the CPU cache) answers most of them.
type splitTable struct {
	slots  []splitSlot
	pool   []byte
	filter []uint64
	fbits  uint8 // the filter has 1<<fbits bits
}

type splitSlot struct {
	h    uint64
	off  uint32
	n    uint8 // prefix length; 0 marks an empty slot
	root bool
}

func newSplitTable(entries []splitEntry) splitTable {
	if len(entries) == 0 {
		return splitTable{}
	}
	size := 4
	for size < 2*len(entries) {
		size *= 2
	}
	t := splitTable{slots: make([]splitSlot, size)}
	t.fbits = 9
	for 1<<t.fbits < 16*len(entries) {
		t.fbits++
	}
	t.filter = make([]uint64, 1<<t.fbits/64)
	for _, e := range entries {
		b := e.h >> (64 - t.fbits)
		t.filter[b/64] |= 1 << (b % 64)
		i := int(e.h) & (size - 1)
		for t.slots[i].n != 0 {
			i = (i + 1) & (size - 1)
		}
		t.slots[i] = splitSlot{h: e.h, off: uint32(len(t.pool)), n: uint8(len(e.prefix)), root: e.root}
		t.pool = append(t.pool, e.prefix...)
	}
	return t
}

// find reports whether prefix (of hash h) is split, and whether it is
// listed itself.
func (t *splitTable) find(h uint64, prefix []byte) (split, root bool) {
	if !t.maybe(h) {
		return false, false
	}
	mask := len(t.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.n == 0 {
			return false, false
		}
		if s.h == h && int(s.n) == len(prefix) && string(t.pool[s.off:s.off+uint32(s.n)]) == string(prefix) {
			return true, s.root
		}
	}
}

// maybe reports whether a prefix of hash h may be split (no: it is not).
func (t *splitTable) maybe(h uint64) bool {
	if len(t.filter) == 0 {
		return false
	}
	b := h >> (64 - t.fbits)
	return t.filter[b/64]&(1<<(b%64)) != 0
}

func (t *splitTable) sizeBytes() int { return 16*cap(t.slots) + cap(t.pool) + 8*cap(t.filter) }

// labelTable is a sorted set of one-label keys.
type labelTable struct {
	pool []byte
	offs []uint32 // key i is pool[offs[i]:offs[i+1]]
}

// newLabelTable sorts and deduplicates records (length byte, key).
func newLabelTable(recs []byte) labelTable {
	var keys [][]byte
	for len(recs) > 0 {
		n := int(recs[0])
		keys = append(keys, recs[2:2+n])
		recs = recs[2+n:]
	}
	if len(keys) == 0 {
		return labelTable{}
	}
	slices.SortFunc(keys, bytes.Compare)
	keys = slices.CompactFunc(keys, bytes.Equal)
	t := labelTable{offs: make([]uint32, 0, len(keys)+1)}
	for _, k := range keys {
		t.offs = append(t.offs, uint32(len(t.pool)))
		t.pool = append(t.pool, k...)
	}
	t.offs = append(t.offs, uint32(len(t.pool)))
	return t
}

func (t *labelTable) len() int { return max(len(t.offs)-1, 0) }

func (t *labelTable) has(key []byte) bool {
	lo, hi := 0, t.len()
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		switch c := bytes.Compare(t.pool[t.offs[mid]:t.offs[mid+1]], key); {
		case c == 0:
			return true
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return false
}

func (t *labelTable) sizeBytes() int { return cap(t.pool) + 4*cap(t.offs) }
