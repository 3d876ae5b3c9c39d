package cache

import "testing"

// TestNormOrigin: every spelling of a host keys as one (case, trailing dots,
// default port, also together), other ports stay.

func TestNormOrigin(t *testing.T) {
	for _, c := range [][3]string{
		{"http", "SITE.Test.:80", "site.test"}, {"http", "site.test.", "site.test"}, {"http", "site.test", "site.test"},
		{"http", "site.test:8080", "site.test:8080"}, {"http", "site.test.:8080", "site.test:8080"}, {"https", "a:443", "a"},
		{"http", "a:443", "a:443"}, {"http", "[::1]:80", "[::1]"}, {"http", "[::1]", "[::1]"}, {"http", "[::1]:8080", "[::1]:8080"},
		{"http", "::1", "::1"}, {"http", "site.test:", "site.test"}, {"http", "a..", "a"}, {"http", "", ""},
	} {
		if _, h := normOrigin(c[0], c[1]); h != c[2] {
			t.Errorf("%q %q -> %q want %q", c[0], c[1], h, c[2])
		}
	}
}
