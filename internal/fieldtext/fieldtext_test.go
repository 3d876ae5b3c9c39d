package fieldtext

import (
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
)

func TestIsTokenByteMatchesHTTPGuts(t *testing.T) {
	for c := 0; c < 256; c++ {
		if got, want := IsTokenByte(byte(c)), httpguts.IsTokenRune(rune(c)); got != want {
			t.Errorf("IsTokenByte(%#x) = %v, httpguts says %v", c, got, want)
		}
	}
}

func TestIsToken(t *testing.T) {
	for s, want := range map[string]bool{"GET": true, "X-Foo_1~": true, "": false, "a b": false, "a:b": false, "é": false} {
		if got := IsToken(s); got != want {
			t.Errorf("IsToken(%q) = %v, want %v", s, got, want)
		}
	}
}

// TrimOWS trims as strings.Trim(s, " \t") does, over random strings of
// spaces, tabs, CRs, NULs and letters.
func TestTrimOWS(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 4))
	const alphabet = " \t\r\x00ab"
	for range 100_000 {
		b := make([]byte, rng.IntN(8))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		if got, want := TrimOWS(string(b)), strings.Trim(string(b), " \t"); got != want {
			t.Fatalf("TrimOWS(%q) = %q, want %q", b, got, want)
		}
	}
}

func TestFirst(t *testing.T) {
	if got := First(nil); got != "" {
		t.Errorf("First(nil) = %q", got)
	}
	if got := First([]string{"a", "b"}); got != "a" {
		t.Errorf("First(a, b) = %q", got)
	}
}
