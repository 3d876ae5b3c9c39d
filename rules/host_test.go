package rules

import "testing"

func TestSplitHostPort(t *testing.T) {
	for _, c := range []struct {
		in   string
		host string
		port uint16
	}{
		{"Example.COM.:8080", "example.com", 8080},
		{"example.com", "example.com", 0},
		{"[::1]:443", "::1", 443},
		{"[::1]", "::1", 0},
		{"10.0.0.1:x", "10.0.0.1", 0},
	} {
		if h, p := SplitHostPort(c.in); h != c.host || p != c.port {
			t.Errorf("SplitHostPort(%q) = %q, %d; want %q, %d", c.in, h, p, c.host, c.port)
		}
	}
	if n := testing.AllocsPerRun(100, func() { SplitHostPort("example.com:443") }); n != 0 {
		t.Fatalf("%v allocations for a lowercase host", n)
	}
}
