package anonymize

import "testing"

func TestStripParams(t *testing.T) {
	s := compileParamSet(DefaultStripParams())
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"a=1&b=2", "a=1&b=2"},
		{"utm_source=x", ""},
		{"utm_source=x&utm_medium=y", ""},
		{"q=go+lang&utm_source=news&p=%2Fa%20b", "q=go+lang&p=%2Fa%20b"},
		{"utm_source=news&q=%E2%9C%93&z=", "q=%E2%9C%93&z="},
		{"a=1&&fbclid=abc&&b", "a=1&&&b"},
		{"&utm_campaign=x&a", "&a"},
		{"a&gclid", "a"},
		{"z=9&a=1&fbclid=F&m=%3D&utm_term=t&b=", "z=9&a=1&m=%3D&b="},
		{"utm%5Fsource=encoded-name&keep=1", "keep=1"},
		{"UTM_source=case-sensitive", "UTM_source=case-sensitive"},
		{"=nameless&fbclid", "=nameless"},
		{"a=fbclid&b=utm_source", "a=fbclid&b=utm_source"},
		{"a=1;utm_source=x", "a=1;utm_source=x"}, // ';' is not a separator
		{"q=%zz&mc_eid=1", "q=%zz"},
	}
	for _, tt := range tests {
		got, changed := s.strip(tt.in)
		if got != tt.want {
			t.Errorf("strip(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if changed != (got != tt.in) {
			t.Errorf("strip(%q) changed = %v", tt.in, changed)
		}
	}
}

func TestStripParamsNoneConfigured(t *testing.T) {
	s := compileParamSet(nil)
	if got, changed := s.strip("utm_source=x"); changed || got != "utm_source=x" {
		t.Errorf("an empty set stripped: %q", got)
	}
}

func TestStripParamsAllocatesOnlyWhenStripping(t *testing.T) {
	s := compileParamSet(DefaultStripParams())
	q := "id=42&page=3&sort=price%20asc&lang=en"
	if n := testing.AllocsPerRun(100, func() { s.strip(q) }); n != 0 {
		t.Errorf("strip of a clean query allocated %v times", n)
	}
}
