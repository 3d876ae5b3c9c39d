package filter

import (
	"bytes"
	"hash/maphash"
	"slices"
	"sync"
)

// parallelMin is the number of keys from which a level is encoded on two
// goroutines, each taking half of the hash space.
const parallelMin = 50_000

// maxUnitBytes is the most entry bytes a unit holds (its length is one
// byte); a larger family is split (see DomainSet).
const maxUnitBytes = 255

// Build sorts and compresses the collected domains into a DomainSet and
// resets the builder (its memory is released).
func (b *DomainSetBuilder) Build() *DomainSet {
	b.init()
	bld := *b
	*b = DomainSetBuilder{}
	s := &DomainSet{seed: bld.seed, tlds: newLabelTable(bld.tlds)}
	s.n = s.tlds.len()
	var splits []splitEntry
	store := &bld.store
	for labels := 2; ; labels++ {
		sec, next, n := buildLevel(bld.seed, store, labels, &splits)
		s.levels = append(s.levels, sec)
		s.n += n
		if next.count == 0 {
			break
		}
		store = next
	}
	for _, e := range splits {
		if e.root {
			s.n++ // a split prefix's own key is in no unit
		}
	}
	s.splits = newSplitTable(splits)
	return s
}

// buildLevel encodes the records of one level (unit prefixes of labels
// labels) into a section; the keys of units too large are returned in a
// store for the next level, their prefixes appended to splits. It also
// returns the number of distinct keys written.
func buildLevel(seed maphash.Seed, st *recordStore, labels int, splits *[]splitEntry) (section, *recordStore, int) {
	// Size estimate: a unit header and an entry header per key.
	kbits := bucketBits(st.bytes + 6*st.count)
	dbits := min(groupBits, kbits)
	starts := make([]uint32, 1<<kbits)
	groups := make([][]byte, 1<<dbits)
	var workers [2]levelWorker
	for i := range workers {
		workers[i] = levelWorker{seed: seed, st: st, labels: labels, starts: starts, groups: groups, kbits: kbits, dbits: dbits}
	}
	ng := 1 << dbits
	if st.count < parallelMin || dbits == 0 {
		workers[0].run(0, ng)
	} else {
		var wg sync.WaitGroup
		wg.Go(func() { workers[1].run(ng/2, ng) })
		workers[0].run(0, ng/2)
		wg.Wait()
	}
	next := &workers[0].next
	next.merge(&workers[1].next)
	*splits = append(append(*splits, workers[0].splits...), workers[1].splits...)
	return newSection(groups, starts, kbits, dbits), next, workers[0].n + workers[1].n
}

// groupBits: a section's data is held in 1<<groupBits slices (fewer for
// small sets), each allocated at its exact size once encoded, so building
// needs no size estimate and the index no slack.
const groupBits = 6

// bucketBits picks the bucket count for a section of about size bytes: a
// bucket averages 256 to 512 bytes, so that the bucket index (two bytes a
// bucket) is under a hundredth of the data and stays in the CPU cache; a
// lookup scans a quarter of it (see bucketHeader).
func bucketBits(size int) uint {
	k := uint(0)
	for k < 40 && size>>(k+bucketShift) > 0 {
		k++
	}
	return k
}

const bucketShift = 9

// pent is a key being sorted: the hash of its unit prefix, and where the
// key sits in the partition's bytes.
type pent struct {
	h   uint64
	off uint32
	n   uint8 // key length
	ul  uint8 // unit prefix length
}

// splitEntry is a split prefix: its keys are in units one label deeper.
type splitEntry struct {
	h      uint64
	prefix []byte
	root   bool // the prefix itself is listed
}

// levelWorker encodes a range of data groups of one level.
type levelWorker struct {
	seed   maphash.Seed
	st     *recordStore
	labels int
	starts []uint32
	groups [][]byte
	kbits  uint
	dbits  uint

	keys   []byte // the current partition's records
	ents   []pent
	tmp    []pent
	out    []byte // the current group, encoded
	next   recordStore
	splits []splitEntry
	n      int
}

// run encodes data groups [from, to).
func (w *levelWorker) run(from, to int) {
	perGroup := partCount >> w.dbits
	bucketsPerGroup := 1 << (w.kbits - w.dbits)
	for g := from; g < to; g++ {
		sw := sectionWriter{data: w.out[:0], starts: w.starts, kbits: w.kbits, bucket: -1,
			next: g * bucketsPerGroup, end: (g + 1) * bucketsPerGroup}
		for p := g * perGroup; p < (g+1)*perGroup; p++ {
			w.partition(p, &sw)
		}
		sw.finish()
		w.n += sw.n
		if len(sw.data) > 0 {
			w.groups[g] = bytes.Clone(sw.data)
		}
		w.out = sw.data
	}
}

// partition sorts partition p's keys by (unit hash, key) and writes its
// units, splitting those too large.
func (w *levelWorker) partition(p int, sw *sectionWriter) {
	if w.st.parts == nil {
		return
	}
	keys, ents := w.keys[:0], w.ents[:0]
	for _, c := range w.st.parts[p] {
		keys = append(keys, c...)
	}
	w.st.parts[p] = nil
	for off := 0; off < len(keys); {
		n, ul := int(keys[off]), int(keys[off+1])
		off += 2
		ents = append(ents, pent{h: prefixHash(w.seed, keys[off:off+ul]), off: uint32(off), n: uint8(n), ul: uint8(ul)})
		off += n
	}
	w.tmp = sortByHash(ents, w.tmp, keys)
	for i := 0; i < len(ents); {
		e := ents[i]
		prefix := keys[e.off : e.off+uint32(e.ul)]
		j := i + 1
		for j < len(ents) && ents[j].h == e.h && ents[j].ul == e.ul && string(w.key(keys, ents[j])[:e.ul]) == string(prefix) {
			j++
		}
		if !sw.unit(e.h, keys, ents[i:j]) {
			w.split(keys, ents[i:j])
		}
		i = j
	}
	w.keys, w.ents = keys, ents
}

func (w *levelWorker) key(keys []byte, e pent) []byte { return keys[e.off : e.off+uint32(e.n)] }

// split records the unit u as split and queues its keys, but its root,
// for units one label deeper.
func (w *levelWorker) split(keys []byte, u []pent) {
	prefix := keys[u[0].off : u[0].off+uint32(u[0].ul)]
	e := splitEntry{h: u[0].h, prefix: bytes.Clone(prefix)}
	for _, x := range u {
		k := w.key(keys, x)
		if len(k) == len(prefix) {
			e.root = true
			continue
		}
		ul := labelsLen(k, w.labels+1)
		w.next.add(prefixHash(w.seed, k[:ul]), k, ul)
	}
	w.splits = append(w.splits, e)
}

// sortByHash sorts the ents of one partition (their hashes share the top
// partBits) by (h, key): a two-pass radix sort on the 22 hash bits below
// the partition bits, then a comparison sort of each run of equal bits
// (the keys of one family, or a rare collision). tmp is scratch space,
// returned for reuse.
func sortByHash(ents, tmp []pent, keys []byte) []pent {
	const bits, shift = 11, 64 - partBits - 22
	if cap(tmp) < len(ents) {
		tmp = make([]pent, len(ents))
	}
	tmp = tmp[:len(ents)]
	digit := func(e pent, pass uint) uint32 { return uint32(e.h>>(shift+pass*bits)) & (1<<bits - 1) }
	src, dst := ents, tmp
	for pass := uint(0); pass < 2; pass++ {
		var count [1 << bits]uint32
		for _, e := range src {
			count[digit(e, pass)]++
		}
		sum := uint32(0)
		for i, c := range count {
			count[i] = sum
			sum += c
		}
		for _, e := range src {
			d := digit(e, pass)
			dst[count[d]] = e
			count[d]++
		}
		src, dst = dst, src
	}
	// Two passes: the result is back in ents.
	top := func(e pent) uint64 { return e.h >> shift }
	for i := 0; i < len(ents); {
		j := i + 1
		for j < len(ents) && top(ents[j]) == top(ents[i]) {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(ents[i:j], func(x, y pent) int {
				if x.h != y.h {
					if x.h < y.h {
						return -1
					}
					return 1
				}
				return bytes.Compare(keys[x.off:x.off+uint32(x.n)], keys[y.off:y.off+uint32(y.n)])
			})
		}
		i = j
	}
	return tmp
}
