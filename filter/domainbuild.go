package filter

import (
	"bytes"
	"hash/maphash"
	"sync"
)

// parallelMin is the number of keys from which Build encodes the two halves
// of the sorted keys on two goroutines.
const parallelMin = 50_000

// encodeSet front-codes sorted keys into a DomainSet. Large sets are split
// at a family boundary near the middle and encoded in two halves at once:
// the only listed ancestor a key can have outside its family is its
// one-label top-level domain, which the second half is told about.
func encodeSet(ents []builderEntry, arena []byte, seed maphash.Seed) *DomainSet {
	var first, second encoder
	split := -1
	if len(ents) >= parallelMin {
		split = familySplit(ents, arena)
	}
	if split < 0 {
		first.run(ents, arena, seed, nil)
	} else {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := arena[ents[split].off : ents[split].off+uint32(ents[split].n)]
			tld := k[:labelsLen(k, 1)]
			if !listed(ents[:split], arena, tld) {
				tld = nil
			}
			second.run(ents[split:], arena, seed, tld)
		}()
		first.run(ents[:split], arena, seed, nil)
		wg.Wait()
		// Block numbers of the second half move past the first half.
		base := uint32(len(first.data) / blockBytes)
		for i := range second.fams {
			second.fams[i].block += base
		}
		first.data = append(first.data, second.data...)
		first.fams = append(first.fams, second.fams...)
		first.n += second.n
		first.hasShort = first.hasShort || second.hasShort
	}
	data := first.data
	if cap(data)-len(data) > len(data)/16 {
		data = append([]byte(nil), data...) // give back the estimate's slack
	}
	return &DomainSet{data: data, n: first.n, fam: newFamilyTable(seed, first.fams, len(data)/blockBytes, first.hasShort)}
}

// familySplit returns the index of the first key of a family near the
// middle, or -1 when there is none.
func familySplit(ents []builderEntry, arena []byte) int {
	key := func(i int) []byte { return arena[ents[i].off : ents[i].off+uint32(ents[i].n)] }
	for i := len(ents) / 2; i < len(ents)*3/4; i++ {
		prev, k := key(i-1), key(i)
		fp, fk := familyLen(prev), familyLen(k)
		if fp != fk || !bytes.Equal(prev[:fp], k[:fk]) {
			return i
		}
	}
	return -1
}

// listed reports whether sorted ents hold key (binary search).
func listed(ents []builderEntry, arena []byte, key []byte) bool {
	lo, hi := 0, len(ents)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		e := ents[mid]
		if bytes.Compare(arena[e.off:e.off+uint32(e.n)], key) < 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo < len(ents) && bytes.Equal(arena[ents[lo].off:ents[lo].off+uint32(ents[lo].n)], key)
}

// encoder writes one run of sorted keys as blocks and collects its family
// records.
type encoder struct {
	data     []byte
	fams     []familyRecord
	n        int
	hasShort bool
}

// run encodes ents. tld, when not nil, is a listed one-label key that sorts
// before ents and is an ancestor of its first keys.
//
// One pass over the sorted keys, each read once from the arena (the reads
// are random: the arena is in input order). prev holds the last key
// written. ancestors holds the lengths of the listed keys that are boundary
// prefixes of prev, shortest first: a parent sorts right before its
// subdomains, so this chain is all that can cover the next key, and a chain
// element of length a covers key k iff a <= lcp(prev, k) and k ends or has
// a label boundary at a.
func (w *encoder) run(ents []builderEntry, arena []byte, seed maphash.Seed, tld []byte) {
	var keyBytes int
	for _, e := range ents {
		keyBytes += int(e.n)
	}
	w.data = make([]byte, 0, keyBytes*3/4+entryHeader*len(ents)+blockBytes)
	w.fams = make([]familyRecord, 0, len(ents)+len(ents)/16)
	var (
		prev      [MaxDomainLen]byte
		prevLen   int
		prevFam   int
		prevSub   int
		famIdx    int
		subs      []familyRecord // the current family's subfamilies
		ancestors [MaxDomainLen/2 + 2]int
		depth     int
		data      = w.data
	)
	if tld != nil {
		prevLen = copy(prev[:], tld)
		ancestors[0], depth = len(tld), 1
	}
	for i, e := range ents {
		k := arena[e.off : e.off+uint32(e.n)]
		lcp := commonPrefix(prev[:prevLen], k)
		if i > 0 && lcp == len(k) && lcp == prevLen {
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
		shared := lcp
		if used := len(data) % blockBytes; used == 0 || used+entryHeader+len(k)-shared > blockBytes {
			data = growBytes(padBlock(data), blockBytes)
			shared = 0
		}
		data = append(data, byte(shared), byte(len(k)-shared), byte(anc))
		data = append(data, k[shared:]...)
		block := uint32((len(data) - 1) / blockBytes)
		if fl := familyLen(k); i == 0 || fl != prevFam || lcp < fl {
			w.fams = endFamily(w.fams, famIdx, subs, block)
			famIdx, subs = len(w.fams), subs[:0]
			w.fams = append(w.fams, familyRecord{hash: maphash.Bytes(seed, k[:fl]), block: block})
			prevFam, prevSub = fl, -1
			w.hasShort = w.hasShort || fl == len(k) && bytes.IndexByte(k, keySep) < 0
		}
		if sl := labelsLen(k, 3); sl > prevFam && (sl != prevSub || lcp < sl) {
			subs = append(subs, familyRecord{hash: maphash.Bytes(seed, k[:sl]), block: block})
			prevSub = sl
		}
		copy(prev[lcp:], k[lcp:])
		prevLen = len(k)
		w.n++
	}
	w.fams = endFamily(w.fams, famIdx, subs, uint32((len(data)+blockBytes-1)/blockBytes))
	w.data = padBlock(data)
}
