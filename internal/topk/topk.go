// Package topk counts the most frequent keys of a stream in bounded memory with the
// space-saving algorithm (Metwally, Agrawal, El Abbadi, 2005): a sketch keeps at most
// its capacity of counters; a key not counted yet takes over the smallest counter
// and inherits its count as a possible overcount. Every key seen more than N/capacity
// times (N the total added) is kept, each count is at most its key's true count plus
// its recorded error, and counts are exact while fewer distinct keys than the
// capacity were seen.
package topk

import (
	"cmp"
	"slices"
)

// Sketch counts keys K in at most Cap counters. Each counter carries a value V that
// the caller updates through the pointer Add returns (sums the ranking does not use:
// bytes, blocks…); a counter taken over by a new key starts with a zero V. The zero
// Sketch is not usable: make one with New. Not safe for concurrent use.
type Sketch[K comparable, V any] struct {
	cap   int
	index map[K]*node[K, V]
	heap  []*node[K, V] // a min-heap by count
	last  *node[K, V]   // the counter of the last key added: a stream repeats keys
}

// node is a counter and its position in the heap (so that sifting moves pointers and
// never touches the map).
type node[K comparable, V any] struct {
	Counter[K, V]
	pos int
}

// Counter is one key's count. Count overstates the key's true count by at most Err.
type Counter[K comparable, V any] struct {
	Key   K
	Count uint64
	Err   uint64
	Value V
}

// New returns an empty sketch of capacity counters (at least 1). Memory is allocated
// as keys arrive, up to capacity counters.
func New[K comparable, V any](capacity int) *Sketch[K, V] {
	return &Sketch[K, V]{cap: max(capacity, 1)}
}

// Cap is the most counters the sketch keeps.
func (s *Sketch[K, V]) Cap() int { return s.cap }

// Len is the number of counters in use (at most Cap).
func (s *Sketch[K, V]) Len() int { return len(s.heap) }

// Reset empties the sketch, keeping its map and heap allocations.
func (s *Sketch[K, V]) Reset() {
	clear(s.index)
	clear(s.heap)
	s.heap = s.heap[:0]
	s.last = nil
}

// Add counts key n more times and returns its counter's value for the caller to
// update; the pointer is valid until the key loses its counter (a later Add of
// another key) or Reset.
func (s *Sketch[K, V]) Add(key K, n uint64) *V {
	if x := s.last; x != nil && x.Key == key { // no hashing while the key repeats
		x.Count += n
		s.down(x.pos)
		return &x.Value
	}
	if s.index == nil {
		s.index = make(map[K]*node[K, V])
	}
	if x, ok := s.index[key]; ok {
		x.Count += n
		s.down(x.pos)
		s.last = x
		return &x.Value
	}
	if len(s.heap) < s.cap {
		x := &node[K, V]{Counter: Counter[K, V]{Key: key, Count: n}, pos: len(s.heap)}
		s.heap = append(s.heap, x)
		s.index[key] = x
		s.up(x.pos)
		s.last = x
		return &x.Value
	}
	// Full: the key takes over the smallest counter (the heap's root).
	x := s.heap[0]
	delete(s.index, x.Key)
	x.Counter = Counter[K, V]{Key: key, Count: x.Count + n, Err: x.Count}
	s.index[key] = x
	s.down(0)
	s.last = x
	return &x.Value
}

// Counters returns a copy of the counters, largest count first (ties in no
// particular order: callers sort by key if they need to).
func (s *Sketch[K, V]) Counters() []Counter[K, V] {
	out := make([]Counter[K, V], len(s.heap))
	for i, x := range s.heap {
		out[i] = x.Counter
	}
	slices.SortStableFunc(out, func(a, b Counter[K, V]) int { return cmp.Compare(b.Count, a.Count) })
	return out
}

// Each calls f for every counter, in no particular order.
func (s *Sketch[K, V]) Each(f func(c *Counter[K, V])) {
	for _, x := range s.heap {
		f(&x.Counter)
	}
}

// less orders the min-heap by count.
func (s *Sketch[K, V]) less(i, j int) bool { return s.heap[i].Count < s.heap[j].Count }

func (s *Sketch[K, V]) swap(i, j int) {
	s.heap[i], s.heap[j] = s.heap[j], s.heap[i]
	s.heap[i].pos = i
	s.heap[j].pos = j
}

// up moves i towards the root while it is smaller than its parent; it returns i's
// final position.
func (s *Sketch[K, V]) up(i int) int {
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s.swap(i, p)
		i = p
	}
	return i
}

// down moves i away from the root while a child is smaller; it returns i's final
// position.
func (s *Sketch[K, V]) down(i int) int {
	n := len(s.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return i
		}
		c := l
		if r := l + 1; r < n && s.less(r, l) {
			c = r
		}
		if !s.less(c, i) {
			return i
		}
		s.swap(i, c)
		i = c
	}
}
