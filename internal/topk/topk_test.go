package topk

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestExactBelowCapacity: with fewer distinct keys than counters, counts are exact.
func TestExactBelowCapacity(t *testing.T) {
	s := New[string, int](8)
	want := map[string]uint64{"a": 5, "b": 3, "c": 9, "d": 1}
	for k, n := range want {
		for range n {
			*s.Add(k, 1) += 2
		}
	}
	got := s.Counters()
	if len(got) != 4 || got[0].Key != "c" || got[3].Key != "d" {
		t.Fatalf("order %+v", got)
	}
	for _, c := range got {
		if c.Count != want[c.Key] || c.Err != 0 || c.Value != int(2*want[c.Key]) {
			t.Errorf("%s: count %d err %d value %d, want %d 0 %d", c.Key, c.Count, c.Err, c.Value, want[c.Key], 2*want[c.Key])
		}
	}
}

// TestHeavyHittersSurviveManyKeys: 100,000 distinct keys through 64 counters keep
// the three keys that each make up more than 1/64 of the stream, with counts within
// their error bounds, and never more than 64 counters.
func TestHeavyHittersSurviveManyKeys(t *testing.T) {
	s := New[string, struct{}](64)
	rng := rand.New(rand.NewPCG(1, 2))
	truth := map[string]uint64{}
	for i := range 100000 {
		k := fmt.Sprintf("k%d", i)
		switch r := rng.IntN(100); {
		case r < 10:
			k = "heavy1"
		case r < 15:
			k = "heavy2"
		case r < 18:
			k = "heavy3"
		}
		truth[k]++
		s.Add(k, 1)
		if s.Len() > 64 || len(s.index) > 64 {
			t.Fatalf("sketch holds %d counters, %d index entries", s.Len(), len(s.index))
		}
	}
	got := s.Counters()
	for i, k := range []string{"heavy1", "heavy2", "heavy3"} {
		c := got[i]
		if c.Key != k {
			t.Fatalf("rank %d: %s, want %s (%+v)", i, c.Key, k, got[:4])
		}
		if c.Count < truth[k] || c.Count-c.Err > truth[k] {
			t.Errorf("%s: count %d err %d, true %d", k, c.Count, c.Err, truth[k])
		}
	}
	s.Reset()
	if s.Len() != 0 || len(s.index) != 0 {
		t.Errorf("after Reset: %d counters", s.Len())
	}
}

// TestRepeatedKeysAcrossTakeovers: a stream of runs of one key (what Add
// remembers), where keys keep losing their counters to others in a small
// sketch, stays within the bounds: every counter's count is at least its
// key's true count and at most that plus its error, the counts sum to the
// stream's length, each key has one counter, and values follow their keys.
func TestRepeatedKeysAcrossTakeovers(t *testing.T) {
	s := New[string, uint64](3)
	rng := rand.New(rand.NewPCG(3, 4))
	truth := map[string]uint64{}
	total := uint64(0)
	for range 2000 {
		k := fmt.Sprintf("k%d", rng.IntN(6))
		for range 1 + rng.IntN(4) {
			truth[k]++
			total++
			*s.Add(k, 1)++
		}
		sum, seen := uint64(0), map[string]bool{}
		for _, c := range s.Counters() {
			sum += c.Count
			if seen[c.Key] || s.index[c.Key] == nil || s.index[c.Key].Key != c.Key {
				t.Fatalf("key %s: duplicate counter or index out of step", c.Key)
			}
			seen[c.Key] = true
			if c.Count < truth[c.Key] || c.Count-c.Err > truth[c.Key] || c.Value != c.Count-c.Err {
				t.Fatalf("%s: count %d err %d value %d, true %d", c.Key, c.Count, c.Err, c.Value, truth[c.Key])
			}
		}
		if sum != total || len(s.index) != s.Len() {
			t.Fatalf("counts sum to %d, want %d; %d index entries for %d counters", sum, total, len(s.index), s.Len())
		}
	}
}

// TestResetForgetsLastKey: after Reset, the key added just before counts
// again from zero in a counter of its own.
func TestResetForgetsLastKey(t *testing.T) {
	s := New[string, int](4)
	s.Add("a", 5)
	s.Reset()
	*s.Add("a", 1) += 7
	if got := s.Counters(); len(got) != 1 || got[0] != (Counter[string, int]{Key: "a", Count: 1, Value: 7}) {
		t.Fatalf("after Reset: %+v", got)
	}
}
