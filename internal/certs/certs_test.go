package certs

import "testing"

func TestSerialPositiveAndDistinct(t *testing.T) {
	a, b := Serial(), Serial()
	if a.Sign() <= 0 || b.Sign() <= 0 || a.Cmp(b) == 0 {
		t.Fatalf("serials %v %v", a, b)
	}
}
