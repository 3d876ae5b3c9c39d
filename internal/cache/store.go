package cache

import (
	"container/list"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
)

// store is the bounded in-memory store: URL key → its variants. It charges each
// node the sizes of its variants plus its key, and evicts with S3-FIFO (Yang et
// al., SOSP 2023): new keys enter a small FIFO (10% of the bytes); those hit
// while there move to the main FIFO, the others leave a ghost fingerprint and
// go; keys seen in the ghost queue enter main directly; main gives a hit key
// another round (up to 3). One-hit wonders and scans never displace the
// working set.
type store struct {
	max  int64
	seed maphash.Seed
	st   *counters

	mu         sync.RWMutex
	m          map[string]*node
	small      list.List // of *node, oldest at front
	main       list.List
	smallBytes int64
	bytes      int64 // stored responses plus the buffers of fills in progress
	filling    int64 // the part of bytes held by fills in progress
	fillMax    int64 // bound on filling

	// ported indexes the keys whose host names a port by the same key
	// without it, so that a purge of the URL without its port finds them.
	ported map[string]map[string]struct{}

	ghost  map[uint64]struct{}
	ghostQ []uint64
	ghostH int // index of the oldest fingerprint in ghostQ

	// Fills in flight, by key, so that an invalidation reaches exactly the
	// stores of its own URL (RFC 9111 §4.4): a response fetched before it
	// is not stored after it. fmu nests inside mu.
	fmu     sync.Mutex
	epoch   uint64 // invalidations so far
	pending map[string]*pendingFill
}

// pendingFill counts the fills in flight for one key and the epoch of the
// key's latest invalidation while they were.
type pendingFill struct {
	n     int
	inval uint64
}

type node struct {
	key      string
	variants []*entry // replaced, never modified in place
	size     int64
	freq     atomic.Int32
	inMain   bool
	el       *list.Element
}

const nodeOverhead = 128

// newStore makes a store bounded by max bytes, of which fills in progress may
// hold up to fillMax.
func newStore(max, fillMax int64, st *counters) *store {
	return &store{max: max, fillMax: min(fillMax, max), seed: maphash.MakeSeed(), st: st, m: make(map[string]*node),
		ghost: make(map[uint64]struct{}), pending: make(map[string]*pendingFill), ported: make(map[string]map[string]struct{})}
}

func (s *store) usage() (bytes, filling, objects int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.bytes, s.filling, int64(len(s.m))
}

// reserve charges n bytes of a fill's buffer to the store, evicting stored
// responses as a new one would, and reports whether it could: false when
// fills in progress already hold fillMax. A fill that cannot reserve gives up
// storing (and keeps relaying).
func (s *store) reserve(n int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.filling+n > s.fillMax {
		return false
	}
	s.filling += n
	s.bytes += n
	s.smallBytes += n // a new response enters the small queue
	s.evictLocked()
	return true
}

// release returns n reserved bytes.
func (s *store) release(n int64) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	s.releaseLocked(n)
	s.mu.Unlock()
}

func (s *store) releaseLocked(n int64) {
	s.filling -= n
	s.bytes -= n
	s.smallBytes -= n
}

// get returns the variants stored under key (newest first) and counts the hit
// for eviction.
func (s *store) get(key string) []*entry {
	s.mu.RLock()
	n := s.m[key]
	return s.hitLocked(n)
}

// getBytes is get for a key held in a byte slice; it does not allocate.
func (s *store) getBytes(key []byte) []*entry {
	s.mu.RLock()
	n := s.m[string(key)]
	return s.hitLocked(n)
}

// hitLocked counts a hit on n (which may be nil) and returns its variants;
// it releases the read lock.
func (s *store) hitLocked(n *node) []*entry {
	var v []*entry
	if n != nil {
		v = n.variants
		if n.freq.Load() < 3 {
			n.freq.Add(1)
		}
	}
	s.mu.RUnlock()
	return v
}

// beginFill registers a fill of key about to ask the origin and returns the
// generation to pass to put; every beginFill needs one endFill.
func (s *store) beginFill(key string) uint64 {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	p := s.pending[key]
	if p == nil {
		p = &pendingFill{}
		s.pending[key] = p
	}
	p.n++
	return s.epoch
}

// endFill unregisters a fill of key.
func (s *store) endFill(key string) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if p := s.pending[key]; p != nil {
		if p.n--; p.n <= 0 {
			delete(s.pending, key)
		}
	}
}

// invalidateFills makes the fills in flight for the keys match accepts
// (nil: key alone) unstorable; the caller holds mu.
func (s *store) invalidateFills(key string, match func(string) bool) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.epoch++
	if match == nil {
		if p := s.pending[key]; p != nil {
			p.inval = s.epoch
		}
		return
	}
	for k, p := range s.pending {
		if match(k) {
			p.inval = s.epoch
		}
	}
}

// invalidatedSince reports whether key was invalidated after the fill that
// began at gen did; the caller holds mu.
func (s *store) invalidatedSince(key string, gen uint64) bool {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	p := s.pending[key]
	return p != nil && p.inval > gen
}

// put stores e as the newest variant of key, replacing the variant with the
// same secondary key and dropping the oldest beyond maxVariants. It reports
// whether e was stored. The fill's reserved bytes are returned either way.
func (s *store) put(key string, e *entry, gen uint64, maxVariants int, reserved int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(reserved)
	if e.size > s.max || s.invalidatedSince(key, gen) {
		return false
	}
	n := s.m[key]
	var old []*entry
	if n != nil {
		old = n.variants
	}
	vs := make([]*entry, 0, min(len(old)+1, maxVariants))
	vs = append(vs, e)
	for _, o := range old {
		if len(vs) < maxVariants && !o.sameVariant(e) {
			vs = append(vs, o)
		}
	}
	s.setLocked(key, n, vs)
	return true
}

// replace swaps old for nw among key's variants (a 304 update); it does nothing
// when old is no longer stored.
func (s *store) replace(key string, old, nw *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.m[key]
	if n == nil {
		return
	}
	vs := make([]*entry, len(n.variants))
	found := false
	for i, o := range n.variants {
		if o == old {
			o, found = nw, true
		}
		vs[i] = o
	}
	if found {
		s.setLocked(key, n, vs)
	}
}

func (s *store) setLocked(key string, n *node, vs []*entry) {
	size := int64(len(key)) + nodeOverhead
	for _, e := range vs {
		size += e.size
	}
	if n == nil {
		n = &node{key: key}
		h := maphash.String(s.seed, key)
		if _, ok := s.ghost[h]; ok {
			delete(s.ghost, h)
			n.inMain = true
			n.el = s.main.PushBack(n)
		} else {
			n.el = s.small.PushBack(n)
		}
		s.m[key] = n
		if pk, ok := portless(key); ok {
			if s.ported[pk] == nil {
				s.ported[pk] = make(map[string]struct{})
			}
			s.ported[pk][key] = struct{}{}
		}
	} else {
		s.account(n, -n.size)
	}
	n.variants, n.size = vs, size
	s.account(n, size)
	s.evictLocked()
}

func (s *store) account(n *node, d int64) {
	s.bytes += d
	if !n.inMain {
		s.smallBytes += d
	}
}

func (s *store) evictLocked() {
	for s.bytes > s.max && s.small.Len()+s.main.Len() > 0 {
		if s.main.Len() == 0 || (s.smallBytes > s.max/10 && s.small.Len() > 0) {
			s.evictSmall()
		} else {
			s.evictMain()
		}
	}
}

func (s *store) evictSmall() {
	n := s.small.Remove(s.small.Front()).(*node)
	if n.freq.Load() > 0 {
		n.freq.Store(0)
		s.smallBytes -= n.size
		n.inMain = true
		n.el = s.main.PushBack(n)
		return
	}
	s.dropLocked(n)
	s.remember(maphash.String(s.seed, n.key))
	s.st.evictions.Add(1)
}

func (s *store) evictMain() {
	n := s.main.Front().Value.(*node)
	if f := n.freq.Load(); f > 0 {
		n.freq.Store(f - 1)
		s.main.MoveToBack(n.el)
		return
	}
	s.main.Remove(n.el)
	s.dropLocked(n)
	s.st.evictions.Add(1)
}

// dropLocked forgets n; its list element must already be removed.
func (s *store) dropLocked(n *node) {
	s.account(n, -n.size)
	delete(s.m, n.key)
	n.variants = nil
	if pk, ok := portless(n.key); ok {
		if delete(s.ported[pk], n.key); len(s.ported[pk]) == 0 {
			delete(s.ported, pk)
		}
	}
}

// portless returns key without the port of its host, and whether it had one.
func portless(key string) (string, bool) {
	i := strings.Index(key, "://")
	if i < 0 {
		return "", false
	}
	rest := key[i+3:]
	j := strings.IndexByte(rest, '/')
	if j < 0 {
		j = len(rest)
	}
	name, port := splitPort(rest[:j])
	if port == "" {
		return "", false
	}
	return key[:i+3] + name + rest[j:], true
}

// removeAnyPort deletes key and the keys that differ from it only by naming
// a port, and returns how many were stored.
func (s *store) removeAnyPort(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidateFills("", func(k string) bool {
		if k == key {
			return true
		}
		pk, ok := portless(k)
		return ok && pk == key
	})
	count := 0
	if n := s.m[key]; n != nil {
		s.unlinkLocked(n)
		count++
	}
	ks := make([]string, 0, len(s.ported[key]))
	for k := range s.ported[key] {
		ks = append(ks, k)
	}
	for _, k := range ks {
		if n := s.m[k]; n != nil {
			s.unlinkLocked(n)
			count++
		}
	}
	return count
}

// remember records an evicted key's fingerprint, keeping about as many as
// there are stored keys (at least 1024).
func (s *store) remember(h uint64) {
	s.ghost[h] = struct{}{}
	s.ghostQ = append(s.ghostQ, h)
	for len(s.ghost) > max(1024, len(s.m)) && s.ghostH < len(s.ghostQ) {
		delete(s.ghost, s.ghostQ[s.ghostH])
		s.ghostH++
	}
	if s.ghostH > 4096 && s.ghostH > len(s.ghostQ)/2 {
		s.ghostQ = append(s.ghostQ[:0], s.ghostQ[s.ghostH:]...)
		s.ghostH = 0
	}
}

// remove deletes key and bumps its invalidation generation; it reports whether
// something was stored.
func (s *store) remove(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidateFills(key, nil)
	n := s.m[key]
	if n == nil {
		return false
	}
	s.unlinkLocked(n)
	return true
}

func (s *store) unlinkLocked(n *node) {
	if n.inMain {
		s.main.Remove(n.el)
	} else {
		s.small.Remove(n.el)
	}
	s.dropLocked(n)
}

// removePrefix deletes every key starting with prefix and returns how many.
// With anyPort, a key whose host names a port matches when it does without
// the port.
func (s *store) removePrefix(prefix string, anyPort bool) int {
	match := func(k string) bool {
		if strings.HasPrefix(k, prefix) {
			return true
		}
		if !anyPort {
			return false
		}
		pk, ok := portless(k)
		return ok && strings.HasPrefix(pk, prefix)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	count := 0
	s.invalidateFills("", match)
	for k, n := range s.m {
		if match(k) {
			s.unlinkLocked(n)
			count++
		}
	}
	return count
}
