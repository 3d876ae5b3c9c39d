package filter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/maphash"
	"math/bits"
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
)

// ErrInvalidDomain is returned (wrapped) by DomainSetBuilder.Add for an entry
// that is not a domain name: empty, too long, an empty label, or a byte that
// no host name can hold.
var ErrInvalidDomain = errors.New("invalid domain")

// ErrSetTooLarge is returned by DomainSetBuilder.Add once the builder holds
// 3 GiB of keys (well over 100 million domains).
var ErrSetTooLarge = errors.New("domain set too large")

// maxRawBytes bounds the builder's key bytes, keeping every offset in the
// encoded set well inside a uint32.
const maxRawBytes = 3 << 30

// domainByte reports which bytes a stored domain may hold (after lowercasing):
// letters, digits, '-', '_' and ':' (IPv6 literals). '.' is handled apart.
func domainByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == ':'
}

// DomainSet is an immutable index of domain names, without pointers per
// entry. Match gives subdomain semantics (a listed "example.com" matches
// "example.com" and "a.b.example.com", never "xample.com" or
// "example.com.evil"); MatchExact matches listed names only. It is safe for
// concurrent use and neither method allocates.
//
// Layout (see section): keys are grouped into units, a unit being every
// key under one family (the last two labels, "example.com" for
// "a.b.example.com"), front-coded in key order. Units are laid out in the
// order of their family's hash, so a small bucket index (two bytes per
// bucket, small enough to stay in the CPU cache) sends a lookup straight to
// the few units sharing its hash bucket: one random memory read for most
// lookups. Each key records the length of its shortest listed ancestor in
// the unit, which lets Match answer from the host's predecessor alone
// however the list overlaps (example.com and m.example.com both listed).
// A family too large for one unit (a public suffix such as co.uk, a
// hosting platform with thousands of listed users) is split: its keys go
// to units one label deeper, in the next level's section, recursively; the
// split prefixes are in a small table (splitTable). One-label entries
// ("com") live in a sorted table of their own.
type DomainSet struct {
	seed   maphash.Seed
	levels []section  // levels[i]: units of i+2 labels
	splits splitTable // split prefixes, and whether each is listed itself
	tlds   labelTable // one-label entries
	n      int
}

// DomainSetBuilder collects domains for a DomainSet. Entries may come in any
// order, repeat and overlap. The zero value is ready to use. A builder is not
// safe for concurrent use.
type DomainSetBuilder struct {
	seed   maphash.Seed
	seeded bool
	store  recordStore
	tlds   []byte // one-label keys, as records
	count  int    // entries added, duplicates included
	raw    int    // key bytes added
}

// Add adds one domain. Accepted forms: "example.com", ".example.com",
// "*.example.com", any letter case, an optional trailing dot. The domain
// must already be ASCII (use NormalizeHost for IDNA); the error wraps
// ErrInvalidDomain otherwise.
func (b *DomainSetBuilder) Add(domain string) error {
	return addDomain(b, domain)
}

// Len returns the number of entries added so far, duplicates included.
func (b *DomainSetBuilder) Len() int { return b.count }

// Grow reserves room for about n more domains of keyBytes bytes in all, as
// a hint (LoadList passes the file size); it never changes the result.
func (b *DomainSetBuilder) Grow(n, keyBytes int) {
	b.store.slabSize = min(max(keyBytes/16, 64<<10), 8<<20)
}

func (b *DomainSetBuilder) init() {
	if !b.seeded {
		b.seed, b.seeded = maphash.MakeSeed(), true
	}
}

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
	var buf [MaxDomainLen]byte
	key := buf[:n]
	prevDot := true // at the end of the key: an empty last label is invalid
	fam, seps := n, 0
	lowered := false
	for i := 0; i < n; i++ {
		c := d[n-1-i]
		switch {
		case 'a' <= c && c <= 'z':
			prevDot = false
		case c == '.':
			if prevDot {
				return ErrInvalidDomain
			}
			prevDot = true
			if seps++; seps == 2 {
				fam = i
			}
			c = keySep
		case 'A' <= c && c <= 'Z':
			prevDot = false
			lowered = true
			c += 'a' - 'A'
		case domainByte(c):
			prevDot = false
		default:
			return ErrInvalidDomain
		}
		key[i] = c
	}
	if prevDot {
		return ErrInvalidDomain
	}
	if uint64(b.raw)+uint64(n) > maxRawBytes {
		return ErrSetTooLarge
	}
	b.init()
	b.raw += n
	b.count++
	if seps == 0 {
		b.tlds = appendRecord(b.tlds, key, n)
		return nil
	}
	var h uint64
	if lowered {
		h = prefixHash(b.seed, key[:fam])
	} else { // the family as written is its key prefix reversed
		var fwd [MaxDomainLen]byte
		h = maphash.Bytes(b.seed, fwd[:copy(fwd[:], d[n-fam:])])
	}
	b.store.add(h, key, fam)
	return nil
}

// recordStore holds keys as records (key length, unit prefix length, key)
// in partitions chosen by the top partBits of the unit prefix hash, each a
// list of small chunks: a build sorts and encodes one partition at a time,
// in cache, and nothing is copied twice.
type recordStore struct {
	parts    [][][]byte // per partition, its chunks
	partN    []int      // records per partition
	slab     []byte     // where new chunks are cut from
	slabSize int
	count    int
	bytes    int
}

// Build-time partitioning: the top partBits of a unit prefix hash pick the
// partition; chunkBytes is the size of a partition chunk.
const (
	partBits   = 10
	partCount  = 1 << partBits
	chunkBytes = 4 << 10
)

func (st *recordStore) add(h uint64, key []byte, ul int) {
	if st.parts == nil {
		st.parts = make([][][]byte, partCount)
		st.partN = make([]int, partCount)
	}
	p := h >> (64 - partBits)
	st.partN[p]++
	st.count++
	st.bytes += len(key)
	chunks := st.parts[p]
	if last := len(chunks) - 1; last >= 0 && cap(chunks[last])-len(chunks[last]) >= 2+len(key) {
		chunks[last] = appendRecord(chunks[last], key, ul)
		return
	}
	st.parts[p] = append(chunks, appendRecord(st.chunk(), key, ul))
}

// chunk cuts an empty chunk from the slab.
func (st *recordStore) chunk() []byte {
	if len(st.slab) < chunkBytes {
		st.slab = make([]byte, max(st.slabSize, 256<<10))
	}
	c := st.slab[:0:chunkBytes]
	st.slab = st.slab[chunkBytes:]
	return c
}

func appendRecord(dst, key []byte, ul int) []byte {
	dst = append(dst, byte(len(key)), byte(ul))
	return append(dst, key...)
}

// merge moves o's records into st.
func (st *recordStore) merge(o *recordStore) {
	if o.parts == nil {
		return
	}
	if st.parts == nil {
		*st = *o
		*o = recordStore{}
		return
	}
	for p := range o.parts {
		st.parts[p] = append(st.parts[p], o.parts[p]...)
		st.partN[p] += o.partN[p]
	}
	st.count += o.count
	st.bytes += o.bytes
	*o = recordStore{}
}

// merge moves o's entries into b (both built with the same seed).
func (b *DomainSetBuilder) merge(o *DomainSetBuilder) {
	b.store.merge(&o.store)
	b.tlds = append(b.tlds, o.tlds...)
	b.count += o.count
	b.raw += o.raw
	*o = DomainSetBuilder{}
}

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

// prefixHash hashes a unit prefix of a key in its written form
// ("example.com" for "moc\x01elpmaxe"): a lookup then hashes the tail of a
// lowercase host as it is, before building the host's key.
func prefixHash(seed maphash.Seed, prefix []byte) uint64 {
	const ones = 0x0101010101010101
	var buf [MaxDomainLen]byte
	n := len(prefix)
	i := 0
	for ; i+8 <= n; i += 8 {
		w := bits.ReverseBytes64(binary.LittleEndian.Uint64(prefix[i:]))
		w ^= zeroBytes(w^keySep*ones) >> 7 * ('.' ^ keySep)
		binary.LittleEndian.PutUint64(buf[n-i-8:], w)
	}
	for ; i < n; i++ {
		c := prefix[i]
		if c == keySep {
			c = '.'
		}
		buf[n-1-i] = c
	}
	return maphash.Bytes(seed, buf[:n])
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
