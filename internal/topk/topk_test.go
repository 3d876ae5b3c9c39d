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
