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
	index map[K]int // key → position in heap
	heap  []Counter[K, V]
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

// Reset empties the sketch, keeping its allocations.
func (s *Sketch[K, V]) Reset() {
	clear(s.index)
	clear(s.heap)
	s.heap = s.heap[:0]
}

// Add counts key n more times and returns its counter's value for the caller to
// update; the pointer is valid until the next Add or Reset.
func (s *Sketch[K, V]) Add(key K, n uint64) *V {
	if s.index == nil {
		s.index = make(map[K]int)
	}
	if i, ok := s.index[key]; ok {
		s.heap[i].Count += n
		return &s.heap[s.down(i)].Value
	}
	if len(s.heap) < s.cap {
		s.heap = append(s.heap, Counter[K, V]{Key: key, Count: n})
		i := len(s.heap) - 1
		s.index[key] = i
		return &s.heap[s.up(i)].Value
	}
	// Full: the key takes over the smallest counter (the heap's root).
	old := s.heap[0]
	delete(s.index, old.Key)
	s.heap[0] = Counter[K, V]{Key: key, Count: old.Count + n, Err: old.Count}
	s.index[key] = 0
	return &s.heap[s.down(0)].Value
}

// Counters returns a copy of the counters, largest count first (ties by insertion
// order are not stable; callers sort by key if they need to).
func (s *Sketch[K, V]) Counters() []Counter[K, V] {
	out := slices.Clone(s.heap)
	slices.SortStableFunc(out, func(a, b Counter[K, V]) int { return cmp.Compare(b.Count, a.Count) })
	return out
}

// Each calls f for every counter, in no particular order.
func (s *Sketch[K, V]) Each(f func(c *Counter[K, V])) {
	for i := range s.heap {
		f(&s.heap[i])
	}
}

// less orders the min-heap by count.
func (s *Sketch[K, V]) less(i, j int) bool { return s.heap[i].Count < s.heap[j].Count }

func (s *Sketch[K, V]) swap(i, j int) {
	s.heap[i], s.heap[j] = s.heap[j], s.heap[i]
	s.index[s.heap[i].Key] = i
	s.index[s.heap[j].Key] = j
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
