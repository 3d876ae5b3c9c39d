package pool

import (
	"strings"
	"testing"
)

// TestSmoothWRRInterleaves: nginx's example, weights a=5 b=1 c=1, gives
// a a b a c a a in every cycle of 7; a candidate of weight 0 is skipped and
// none at all is -1.
func TestSmoothWRRInterleaves(t *testing.T) {
	names := []string{"a", "b", "c"}
	weights := []int{5, 1, 1}
	var s SmoothWRR[string]
	var got strings.Builder
	for range 14 {
		i := s.Pick(len(names), func(i int) string { return names[i] }, func(i int) int { return weights[i] })
		got.WriteString(names[i])
	}
	if want := "aabacaaaabacaa"; got.String() != want {
		t.Errorf("picks %s, want %s", got.String(), want)
	}
	weights = []int{0, 2, 0}
	for range 3 {
		if i := s.Pick(len(names), func(i int) string { return names[i] }, func(i int) int { return weights[i] }); i != 1 {
			t.Errorf("with only b of weight > 0: picked %d", i)
		}
	}
	if i := s.Pick(len(names), func(i int) string { return names[i] }, func(int) int { return 0 }); i != -1 {
		t.Errorf("no candidate: picked %d, want -1", i)
	}
}
