package forward

import (
	"testing"
	"time"
)

// TestLogThrottle: one line per period gets through, and it carries how many
// were held back since the last one.
func TestLogThrottle(t *testing.T) {
	var l logThrottle
	t0 := time.Unix(1000, 0)
	if n, ok := l.allow(t0, 10*time.Second); !ok || n != 0 {
		t.Fatalf("first line: %d %v", n, ok)
	}
	for i := range 5 {
		if _, ok := l.allow(t0.Add(time.Duration(i+1)*time.Second), 10*time.Second); ok {
			t.Fatalf("line %d within the period got through", i)
		}
	}
	if n, ok := l.allow(t0.Add(10*time.Second), 10*time.Second); !ok || n != 5 {
		t.Fatalf("line after the period: %d %v, want 5 held back", n, ok)
	}
}
