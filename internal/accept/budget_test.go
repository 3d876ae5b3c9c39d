package accept

import "testing"

func TestConnBudget(t *testing.T) {
	for _, c := range []struct {
		nofile  uint64
		perConn int
		want    int
	}{
		{0, 2, 0},        // unknown: unlimited
		{20000, 2, 9872}, // (20000-256)/2
		{1024, 2, 384},   // (1024-256)/2
		{256, 2, 96},     // (256-64)/2
		{40, 2, 16},      // never below 16
		{1 << 20, 2, 524160},
	} {
		if got := ConnBudget(c.nofile, c.perConn); got != c.want {
			t.Errorf("ConnBudget(%d, %d) = %d, want %d", c.nofile, c.perConn, got, c.want)
		}
	}
	if n := DescriptorLimit(); n != 0 && ConnBudget(n, 2) >= int(n) {
		t.Errorf("the budget for this process (%d descriptors) leaves no reserve", n)
	}
}
