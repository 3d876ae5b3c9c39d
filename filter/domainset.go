package filter

import (
	"encoding/binary"
	"errors"
	"hash/maphash"
	"math"
	"math/bits"
	"slices"
)

// Keys. A domain is stored character-reversed with every '.' replaced by
// keySep ("www.example.com" -> "moc\x01elpmaxe\x01www"). keySep sorts below
// every byte a domain may hold, so in sorted order a domain is immediately
// followed by all of its listed subdomains, and a parent domain of a host is a
// prefix of the host's key that ends at a keySep (or at the end of the key).
const (
	keySep = 0x01
	// MaxDomainLen is the longest domain name a DomainSet stores (RFC 1035
	// presentation form without the trailing dot).
	MaxDomainLen = 253
	// blockBytes is the size of a block of front-coded keys: four cache
	// lines, enough for the longest key with its header (3+253 bytes).
	blockBytes = 256
	// entryHeader is the per-key header inside a block: shared prefix length
	// with the previous key, suffix length, and the length of the key's
	// shortest listed ancestor-or-self.
	entryHeader = 3
)

// ErrInvalidDomain is returned (wrapped) by DomainSetBuilder.Add for an entry
// that is not a domain name: empty, too long, an empty label, or a byte that
// no host name can hold.
var ErrInvalidDomain = errors.New("invalid domain")

// ErrSetTooLarge is returned by DomainSetBuilder.Add once the builder holds
// 4 GiB of keys (about 200 million domains).
var ErrSetTooLarge = errors.New("domain set too large")

// domainByte reports which bytes a stored domain may hold (after lowercasing):
// letters, digits, '-', '_' and ':' (IPv6 literals). '.' is handled apart.
func domainByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == ':'
}

// DomainSet is an immutable, pointer-free index of domain names. Match gives
// subdomain semantics (a listed "example.com" matches "example.com" and
// "a.b.example.com", never "xample.com" or "example.com.evil"); MatchExact
// matches listed names only. It is safe for concurrent use and neither
// method allocates.
//
// Layout: the sorted keys (see keySep) are front-coded in fixed-size blocks
// of blockBytes inside one []byte, each block starting with a whole key, so
// block b starts at b*blockBytes and needs no offset table. A family table
// (see familyTable) sends a lookup straight to the block where the host's
// registered-domain family starts: one table probe and one block read for
// most lookups. Each key also records the length of its shortest listed
// ancestor, which lets Match answer from the host's predecessor alone however
// the list overlaps (example.com and m.example.com both listed).
type DomainSet struct {
	data []byte // len(data) = blocks * blockBytes; zero bytes pad each block
	fam  familyTable
	n    int
}

// DomainSetBuilder collects domains for a DomainSet. Entries may come in any
// order, repeat and overlap. The zero value is ready to use. A builder is not
// safe for concurrent use.
type DomainSetBuilder struct {
	arena []byte
	ents  []builderEntry
}

type builderEntry struct {
	pre uint64 // first 8 key bytes, big-endian, zero padded
	off uint32 // key position in arena
	n   uint8  // key length
}

// Add adds one domain. Accepted forms: "example.com", ".example.com",
// "*.example.com", any letter case, an optional trailing dot. The domain
// must already be ASCII (use NormalizeHost for IDNA); the error wraps
// ErrInvalidDomain otherwise.
func (b *DomainSetBuilder) Add(domain string) error {
	return addDomain(b, domain)
}

// Len returns the number of entries added so far, duplicates included.
func (b *DomainSetBuilder) Len() int { return len(b.ents) }

// addDomain is Add for strings and byte slices alike (list loading adds
// lines straight from the read buffer).
func addDomain[T string | []byte](b *DomainSetBuilder, d T) error {
	for len(d) > 0 && (d[0] == '*' || d[0] == '.') {
		if d[0] == '*' && (len(d) < 2 || d[1] != '.') {
			return ErrInvalidDomain
		}
		d = d[1:]
	}
	if len(d) > 0 && d[len(d)-1] == '.' {
		d = d[:len(d)-1]
	}
	n := len(d)
	if n == 0 || n > MaxDomainLen {
		return ErrInvalidDomain
	}
	if uint64(len(b.arena))+uint64(n) > math.MaxUint32 {
		return ErrSetTooLarge
	}
	start := len(b.arena)
	b.arena = growBytes(b.arena, n)[:start+n]
	key := b.arena[start:]
	prevDot := true // at the end of the key: an empty last label is invalid
	for i := 0; i < n; i++ {
		c := d[i]
		switch {
		case c == '.':
			if prevDot {
				b.arena = b.arena[:start]
				return ErrInvalidDomain
			}
			prevDot = true
			c = keySep
		case 'A' <= c && c <= 'Z':
			prevDot = false
			c += 'a' - 'A'
		case domainByte(c):
			prevDot = false
		default:
			b.arena = b.arena[:start]
			return ErrInvalidDomain
		}
		key[n-1-i] = c
	}
	if prevDot {
		b.arena = b.arena[:start]
		return ErrInvalidDomain
	}
	if len(b.ents) == cap(b.ents) {
		b.ents = slices.Grow(b.ents, max(1024, len(b.ents)))
	}
	b.ents = append(b.ents, builderEntry{pre: prefix64(key), off: uint32(start), n: uint8(n)})
	return nil
}

// growBytes makes room for n more bytes, doubling: append's growth factor
// for large slices (1.25) would copy a multi-gigabyte total for a 5 M list.
func growBytes(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	return slices.Grow(b, max(n, len(b), 4096))
}

// Grow reserves room for about n more domains of keyBytes bytes in all, as
// a hint (LoadList passes the file size); it never changes the result.
func (b *DomainSetBuilder) Grow(n, keyBytes int) {
	b.arena = slices.Grow(b.arena, max(keyBytes, 0))
	b.ents = slices.Grow(b.ents, max(n, 0))
}

// prefix64 returns the first 8 bytes of key as a big-endian integer, zero
// padded; keys never hold a zero byte, so comparing prefixes orders keys.
func prefix64(key []byte) uint64 {
	if len(key) >= 8 {
		return binary.BigEndian.Uint64(key)
	}
	var p [8]byte
	copy(p[:], key)
	return binary.BigEndian.Uint64(p[:])
}

// Build sorts and compresses the collected domains into a DomainSet and
// resets the builder (its memory is released).
func (b *DomainSetBuilder) Build() *DomainSet {
	arena, ents := b.arena, b.ents
	b.arena, b.ents = nil, nil
	sortEntries(ents, arena)
	return encodeSet(ents, arena, maphash.MakeSeed())
}

// endFamily closes the family whose record is fams[fam] when the next key
// (in block next) starts another: a big family is marked and its
// subfamilies recorded.
func endFamily(fams []familyRecord, fam int, subs []familyRecord, next uint32) []familyRecord {
	if fam >= len(fams) || fams[fam].block+bigFamilyBlocks > next {
		return fams
	}
	fams[fam].big = true
	return append(fams, subs...)
}

// padBlock fills the current block with zeros: a zero header (no suffix)
// ends a block's keys.
func padBlock(data []byte) []byte {
	used := len(data) % blockBytes
	if used == 0 {
		return data
	}
	n := blockBytes - used
	data = growBytes(data, n)
	data = data[:len(data)+n]
	clear(data[len(data)-n:])
	return data
}

// sortEntries sorts by key: a radix sort on the first 8 key bytes, then,
// inside each run of equal bytes, on the next 8, and so on. Comparing whole
// keys instead would read the arena at random O(n log n) times. It leaves
// pre holding a deeper chunk for entries in such runs; Build recomputes
// what it needs from the keys.
func sortEntries(ents []builderEntry, arena []byte) {
	var tmp []builderEntry
	if len(ents) >= radixMin {
		tmp = make([]builderEntry, len(ents))
	}
	sortByPre(ents, tmp)
	sortTies(ents, arena, 8, tmp)
}

// radixMin is the run length from which a radix sort beats pdqsort.
const radixMin = 256

// sortTies sorts every run of entries whose keys agree on their first depth
// bytes (their pre is equal) by the following 8 bytes, recursively.
func sortTies(ents []builderEntry, arena []byte, depth int, tmp []builderEntry) {
	for i := 0; i < len(ents); {
		j := i + 1
		long := int(ents[i].n) > depth
		for j < len(ents) && ents[j].pre == ents[i].pre {
			long = long || int(ents[j].n) > depth
			j++
		}
		if j-i > 1 && long { // equal runs of short keys are duplicates
			run := ents[i:j]
			for k := range run {
				e := &run[k]
				e.pre = 0
				if int(e.n) > depth {
					e.pre = prefix64(arena[e.off+uint32(depth) : e.off+uint32(e.n)])
				}
			}
			sortByPre(run, tmp)
			sortTies(run, arena, depth+8, tmp)
		}
		i = j
	}
}

// sortByPre sorts by pre; tmp (at least as long, or nil below radixMin)
// is the radix sort's scratch space.
func sortByPre(ents, tmp []builderEntry) {
	if len(ents) < radixMin {
		slices.SortFunc(ents, func(x, y builderEntry) int {
			if x.pre < y.pre {
				return -1
			} else if x.pre > y.pre {
				return 1
			}
			return 0
		})
		return
	}
	radixSortByPrefix(ents, tmp[:len(ents)])
}

// radixSortByPrefix is an LSD radix sort on pre, one byte per pass; passes
// where every entry has the same byte are skipped.
func radixSortByPrefix(ents, tmp []builderEntry) {
	var counts [8][256]int
	for _, e := range ents {
		for d := 0; d < 8; d++ {
			counts[d][byte(e.pre>>(8*d))]++
		}
	}
	src, dst := ents, tmp
	for d := 0; d < 8; d++ {
		c := &counts[d]
		if c[byte(src[0].pre>>(8*d))] == len(src) {
			continue // every entry has this byte: nothing to do
		}
		var pos [256]int
		sum := 0
		for i, n := range c {
			pos[i] = sum
			sum += n
		}
		shift := 8 * d
		for _, e := range src {
			k := byte(e.pre >> shift)
			dst[pos[k]] = e
			pos[k]++
		}
		src, dst = dst, src
	}
	if &src[0] != &ents[0] {
		copy(ents, src)
	}
}

func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		if x := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:]); x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for ; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
